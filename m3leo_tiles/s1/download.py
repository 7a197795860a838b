"""Resumable, verified S1 downloads with Earthdata Login into a size-capped LRU cache shared by
workers (a lock per file), and ASF burst products fetched and assembled into SAFEs there.

asf_search's own download is a single streamed GET that keeps a partial file on failure and
checks nothing, so we do our own: Range resume into `<name>.part`, size + MD5 check against
what ASF publishes, atomic rename, bounded retries with exponential backoff and jitter,
401/403 -> AuthError, 202 (on-demand burst extraction still running) waited on.
Credentials come from the environment or ~/.netrc and are never logged or written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import netrc
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests

from ..errors import AuthError, PermanentError, TransientError
from .bursts import BurstFiles, assemble_safe
from .products import BurstRef, S1Product, burst_refs

log = logging.getLogger(__name__)

EDL_HOST = "urs.earthdata.nasa.gov"
AUTH_HOSTS = (EDL_HOST, "auth.asf.alaska.edu", "sentinel1.asf.alaska.edu",
              "datapool.asf.alaska.edu", "cumulus.asf.alaska.edu")
CHUNK = 1 << 20  # hashing block
STREAM_CHUNK = 1 << 16  # small reads: a cut connection loses at most this much


@dataclass(frozen=True, repr=False)
class Credentials:
    """Earthdata Login: a bearer token or a username/password; repr never shows them."""

    username: str | None = None
    password: str | None = field(default=None)
    token: str | None = field(default=None)
    origin: str = ""

    def __repr__(self) -> str:
        return f"Credentials(from {self.origin or 'caller'}, hidden)"


def earthdata_credentials(env: Mapping[str, str] | None = None,
                          netrc_file: str | os.PathLike | None = None) -> Credentials | None:
    """EARTHDATA_TOKEN, else EARTHDATA_USERNAME/PASSWORD, else ~/.netrc for Earthdata Login."""
    env = os.environ if env is None else env
    if env.get("EARTHDATA_TOKEN"):
        return Credentials(token=env["EARTHDATA_TOKEN"], origin="EARTHDATA_TOKEN")
    if env.get("EARTHDATA_USERNAME") and env.get("EARTHDATA_PASSWORD"):
        return Credentials(env["EARTHDATA_USERNAME"], env["EARTHDATA_PASSWORD"],
                           origin="EARTHDATA_USERNAME/EARTHDATA_PASSWORD")
    path = Path(netrc_file) if netrc_file else Path(env.get("NETRC") or Path.home() / ".netrc")
    if path.is_file():
        try:
            auth = netrc.netrc(str(path)).authenticators(EDL_HOST)
        except (netrc.NetrcParseError, OSError) as e:
            log.warning("cannot read %s: %s", path, type(e).__name__)
            auth = None
        if auth and auth[0] and auth[2]:
            return Credentials(auth[0], auth[2], origin=str(path))
    return None


class EarthdataSession(requests.Session):
    """A session that keeps credentials across the Earthdata Login redirects, only there."""

    def __init__(self, creds: Credentials | None, auth_hosts: Sequence[str] = AUTH_HOSTS) -> None:
        super().__init__()
        self.trust_env = False  # no implicit netrc lookups for arbitrary hosts
        self._auth_hosts = set(auth_hosts)
        self._creds = creds
        if creds and creds.token:
            self.headers["Authorization"] = f"Bearer {creds.token}"
        elif creds and creds.username:
            self.auth = (creds.username, creds.password or "")

    def rebuild_auth(self, prepared_request, response):  # type: ignore[override]
        """Drop credentials on redirects to hosts outside Earthdata/ASF (requests' rule otherwise)."""
        host = urlparse(prepared_request.url).hostname
        if host in self._auth_hosts:
            if self._creds and self._creds.token:
                prepared_request.headers["Authorization"] = f"Bearer {self._creds.token}"
            return None
        return super().rebuild_auth(prepared_request, response)

    def __repr__(self) -> str:
        return "EarthdataSession(credentials hidden)"


def download_session(creds: Credentials | None = None, auth_hosts: Sequence[str] = AUTH_HOSTS,
                 require: bool = True) -> EarthdataSession:
    """A download session; `require` raises AuthError before any work when none are found."""
    creds = creds if creds is not None else earthdata_credentials()
    if creds is None and require:
        raise AuthError("no Earthdata Login credentials: set EARTHDATA_TOKEN, or "
                        "EARTHDATA_USERNAME and EARTHDATA_PASSWORD, or add "
                        f"'machine {EDL_HOST} login ... password ...' to ~/.netrc")
    return EarthdataSession(creds, auth_hosts)


@dataclass
class DownloadRetry:
    """Bounded exponential backoff with full jitter; a separate budget for 202 waits."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    wait_202: float = 600.0  # seconds to wait in total for an on-demand product
    poll_202: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2 ** attempt))


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, session: requests.Session,
             size: int | None = None, md5: str | None = None,
             retry: DownloadRetry | None = None, timeout: float = 60.0) -> Path:
    """Fetch url to dest (resuming dest.part), verify size/MD5, rename; return dest."""
    retry = retry or DownloadRetry()
    dest = Path(dest)
    if dest.is_file() and (size is None or dest.stat().st_size == size):
        return dest  # only verified files are ever renamed into place
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    waited = 0.0
    polls = 0
    max_polls = int(retry.wait_202 / max(retry.poll_202, 0.01)) + 1
    last = ""
    while attempt < retry.attempts:
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()
            have = 0
        if size is None or have < size:
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with session.get(url, headers=headers, stream=True, timeout=timeout,
                                 allow_redirects=True) as r:
                    if r.status_code in (401, 403):
                        raise AuthError(
                            f"Earthdata Login refused the download of {Path(urlparse(url).path).name} "
                            f"(HTTP {r.status_code}): check your credentials and that you accepted "
                            "the ASF EULA at urs.earthdata.nasa.gov")
                    if r.status_code == 202:
                        pause = float(r.headers.get("Retry-After") or retry.poll_202)
                        polls += 1
                        if waited + pause > retry.wait_202 or polls > max_polls:
                            raise TransientError(f"{url}: still processing after {waited:.0f} s")
                        log.info("%s is being prepared (202); waiting %.0f s", dest.name, pause)
                        retry.sleep(pause)
                        waited += pause
                        continue
                    if r.status_code == 429 or r.status_code >= 500:
                        raise requests.HTTPError(f"HTTP {r.status_code}", response=r)
                    if r.status_code >= 400:
                        raise PermanentError(f"{url}: HTTP {r.status_code}")
                    mode = "ab"
                    if have and r.status_code != 206:  # server ignored Range: start over
                        mode = "wb"
                    elif have:
                        cr = r.headers.get("Content-Range", "")
                        if not cr.startswith(f"bytes {have}-"):
                            mode = "wb"
                    with open(part, mode) as f:
                        for block in r.iter_content(STREAM_CHUNK):
                            f.write(block)
            except (requests.ConnectionError, requests.Timeout, requests.HTTPError,
                    requests.exceptions.ChunkedEncodingError) as e:
                last = f"{type(e).__name__}: {e}"
                got = part.stat().st_size if part.exists() else 0
                log.warning("download of %s interrupted at %d bytes (%s); retrying", dest.name,
                            got, type(e).__name__)
                attempt += 1
                if attempt < retry.attempts:
                    retry.sleep(retry.delay(attempt - 1))
                continue
        got = part.stat().st_size
        if size is not None and got < size:
            last = f"short body ({got} of {size} bytes)"
            attempt += 1
            if attempt < retry.attempts:
                retry.sleep(retry.delay(attempt - 1))
            continue
        if size is not None and got != size:
            last = f"size {got} != {size}"
        elif md5 and md5_of(part) != md5.lower():
            last = "MD5 mismatch"
        else:
            os.replace(part, dest)
            return dest
        log.warning("%s failed verification (%s); downloading again", dest.name, last)
        part.unlink(missing_ok=True)
        attempt += 1
        if attempt < retry.attempts:
            retry.sleep(retry.delay(attempt - 1))
    raise TransientError(f"download of {dest.name} failed after {retry.attempts} attempts: {last}")


#: the default cap: this share of the cache disk's free space when the cache is opened
FREE_SHARE = 0.5


_stated: set[str] = set()


def default_cap(root: str | os.PathLike) -> int:
    """Half the free space of the cache's disk (stated in the log, once per process and
    folder): a region run can live with it, and the store or other users keep the other
    half. Never unbounded."""
    free = shutil.disk_usage(root).free
    cap = int(free * FREE_SHARE)
    if str(root) in _stated:
        return cap
    _stated.add(str(root))
    log.info("download cache %s: capped at %.1f GB (half the %.1f GB free on its disk; set "
             "asf.cache_gb to choose)", root, cap / 1e9, free / 1e9)
    return cap


class DownloadCache:
    """A directory of verified downloads shared by workers and runs, capped in bytes.

    Per file, one writer at a time across threads and processes (an flock on a hidden lock
    file): a second worker asking for the same file waits and then finds it done, so nothing
    is downloaded twice at once. Files only appear under their final name once verified
    (`download` renames a checked `.part`), so a torn download is never used: the next
    attempt resumes or restarts it. Files in use (`using`, or being fetched) hold a shared
    lock and are never evicted; the cap holds for everything else. Assembled burst SAFEs
    (folders ending .SAFE) are entries too, sized by their files.

    Eviction keeps what the plan still needs (issue 20): a unit tells the cache where it
    stands in its node's schedule (`advance(seq)`: the node's clock, the highest seq
    started) and, per file it fetches, the last seq of the node that reads the same product
    (`until`, in a `.<name>.hold` file). Files held past the clock go last; among equals,
    least recently used first. No cap given: `default_cap`, never unbounded.
    """

    def __init__(self, root: str | os.PathLike, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes if max_bytes is not None else default_cap(self.root)
        self._lock = threading.Lock()

    def path_for(self, product: S1Product) -> Path:
        """`<product name><suffix of its URL>`: burst URLs end in `/{index}.tiff`, so the URL's
        own name would collide across products."""
        url_name = Path(urlparse(product.url or "").path).name
        suffix = Path(url_name).suffix or ".zip"
        return self.root / (f"{product.name}{suffix}" if product.name else url_name)

    def _lock_path(self, name: str) -> Path:
        return self.root / f".{name}.lock"

    @contextlib.contextmanager
    def _file_lock(self, name: str, mode: int = fcntl.LOCK_EX):
        """One writer per file across processes sharing the cache (LOCK_SH: a reader)."""
        with open(self._lock_path(name), "a") as fh:
            fcntl.flock(fh, mode)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read_int(self, path: Path) -> int:
        try:
            return int(path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _raise_to(self, path: Path, value: int) -> None:
        """path's number := max(it, value), atomically (flock on the file, then a rename)."""
        with self._file_lock(path.name.lstrip(".") + ".n"):
            if self._read_int(path) >= value:
                return
            tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}")
            tmp.write_text(str(value))
            os.replace(tmp, path)

    def advance(self, seq: int) -> None:
        """A unit of seq `seq` in this node's schedule has started."""
        self._raise_to(self.root / ".clock", seq)

    def hold(self, name: str, until: int) -> None:
        """Keep entry `name` (before the rest) until the node's clock passes `until`."""
        self._raise_to(self.root / f".{name}.hold", until)

    def held(self, name: str, clock: int) -> bool:
        return self._read_int(self.root / f".{name}.hold") > clock

    @contextlib.contextmanager
    def using(self, paths: Iterable[Path]):
        """Hold cached files (or SAFE folders) in use: eviction leaves them alone meanwhile."""
        with contextlib.ExitStack() as stack:
            for p in paths:
                stack.enter_context(self._file_lock(Path(p).name, fcntl.LOCK_SH))
            yield

    def fetch_file(self, name: str, url: str, session: requests.Session,
                   size: int | None = None, md5: str | None = None,
                   retry: DownloadRetry | None = None, pinned: Iterable[Path] = (),
                   until: int | None = None) -> Path:
        """`root/name`, downloaded from `url` unless already there; marks it recently used
        (and held until the node's clock passes `until`)."""
        dest = self.root / name
        with self._file_lock(dest.name):
            path = download(url, dest, session, size, md5, retry)
            os.utime(path)  # LRU clock
        if until is not None:
            self.hold(dest.name, until)
        self.evict(keep={path, *pinned})
        return path

    def fetch(self, product: S1Product, session: requests.Session,
              retry: DownloadRetry | None = None, pinned: Iterable[Path] = (),
              until: int | None = None) -> Path:
        """The product's local path, downloading it if absent; marks it recently used."""
        if not product.url:
            raise PermanentError(f"{product.name}: no download URL")
        return self.fetch_file(self.path_for(product).name, product.url, session, product.size,
                               product.md5, retry, pinned, until)

    def entries(self) -> list[Path]:
        return [p for p in self.root.iterdir() if not p.name.startswith(".")
                and ".hold." not in p.name
                and ((p.is_file() and not p.name.endswith(".part"))
                     or (p.is_dir() and p.name.endswith(".SAFE")))]

    @staticmethod
    def _size(p: Path) -> int:
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return p.stat().st_size

    def evict(self, keep: Iterable[Path] = ()) -> list[Path]:
        """Delete entries not in use until the cache fits its cap: those no pending unit of
        the node holds first, least recently used first, then the held ones likewise."""
        keep = {Path(k) for k in keep}
        removed = []
        with self._lock:
            clock = self._read_int(self.root / ".clock")
            entries = []
            for p in self.entries():
                try:
                    entries.append((self.held(p.name, clock), p.stat().st_mtime, p,
                                    self._size(p)))
                except FileNotFoundError:  # another worker evicted it meanwhile
                    continue
            total = sum(e[3] for e in entries)
            if total <= self.max_bytes:
                return []
            for _, _, p, size in sorted(entries, key=lambda e: e[:2]):
                if total <= self.max_bytes:
                    break
                if p in keep:
                    continue
                with open(self._lock_path(p.name), "a") as fh:
                    try:  # in use (being read or written) by someone: keep it
                        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                    try:
                        if p.is_dir():
                            shutil.rmtree(p, ignore_errors=True)
                        else:
                            p.unlink(missing_ok=True)
                        (self.root / f".{p.name}.hold").unlink(missing_ok=True)
                    finally:
                        fcntl.flock(fh, fcntl.LOCK_UN)
                total -= size
                removed.append(p)
                log.info("cache: evicted %s", p.name)
        return removed


def fetch_all(products: Sequence[S1Product], cache: DownloadCache, session: requests.Session,
              max_workers: int = 2, retry: DownloadRetry | None = None) -> list[Path]:
    """Download several products with at most `max_workers` transfers at once, in order."""
    pinned = [cache.path_for(p) for p in products]
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as ex:
        futs = [ex.submit(cache.fetch, p, session, retry, pinned) for p in products]
        return [f.result() for f in futs]


def fetch_burst_safe(bursts: Sequence[BurstRef], cache: DownloadCache,
                     session: requests.Session, retry: DownloadRetry | None = None,
                     max_workers: int = 2, until: int | None = None) -> Path:
    """ASF burst products of one SLC (per swath a run of consecutive bursts, any swaths and
    polarisations) downloaded into the cache and assembled into one SAFE folder there, ready
    for the processor."""
    if not bursts:
        raise PermanentError("no bursts to fetch")
    urls: dict[str, str] = {}
    for b in bursts:
        if not (b.tiff_url and b.xml_url):
            raise PermanentError(f"{b.name}: no TIFF/XML download URL")
        urls[b.name] = b.tiff_url
        urls[b.polarisation] = b.xml_url
    pinned = [cache.root / f"{b.name}.tiff" for b in bursts]
    # one metadata XML per SLC and polarisation (ASF's and burst2safe's naming): `s1 assemble`
    # reads the cache folder as it is
    xml_names = {b.polarisation: f"{b.slc}_{b.polarisation}.xml" for b in bursts}
    pinned += [cache.root / n for n in xml_names.values()]
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as ex:
        tiffs = [ex.submit(cache.fetch_file, f"{b.name}.tiff", urls[b.name], session,
                           b.tiff_size, b.tiff_md5, retry, pinned, until) for b in bursts]
        xmls = {pol: ex.submit(cache.fetch_file, name, urls[pol], session, None, None, retry,
                               pinned, until) for pol, name in xml_names.items()}
        files = [BurstFiles(b.slc, b.swath, b.polarisation, b.index, t.result(),
                            xmls[b.polarisation].result()) for b, t in zip(bursts, tiffs,
                                                                          strict=True)]
    with cache.using(pinned):
        safe = assemble_safe(files, cache.root)
    os.utime(safe)
    if until is not None:
        cache.hold(safe.name, until)
    cache.evict(keep={safe})
    return safe


def fetch_product(products: Sequence[S1Product], cache: DownloadCache,
                  session: requests.Session, retry: DownloadRetry | None = None,
                  max_workers: int = 2, until: int | None = None) -> Path:
    """What the processor opens for one acquisition: an SLC product's zip, or the SAFE
    assembled from ASF burst products (`s1.search` results carrying `extra["burst"]`: bursts
    of one SLC, with their polarisations, a run of consecutive bursts per swath)."""
    bursts = [p for p in products if p.extra.get("burst")]
    if products and len(bursts) == len(products):
        return fetch_burst_safe([r for p in products for r in burst_refs(p)], cache, session,
                                retry, max_workers, until)
    if len(products) == 1 and not bursts:
        return cache.fetch(products[0], session, retry, until=until)
    raise PermanentError(f"one SLC product or burst products of one acquisition, not "
                         f"{[p.name for p in products]}")
