"""S1 downloads into a size-capped cache shared by workers (a lock per file), and ASF burst
products fetched and assembled into SAFEs there.

Each file comes through `transfer.download` (resumable, verified, atomic) with Earthdata
Login (`earthdata.py`); both are importable from here as before the split.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import requests

from ..errors import PermanentError
from .bursts import BurstFiles, assemble_safe
from .earthdata import (
    AUTH_HOSTS,
    EDL_HOST,
    Credentials,
    EarthdataSession,
    download_session,
    earthdata_credentials,
)
from .products import BurstRef, S1Product, burst_refs
from .transfer import DownloadRetry, download, md5_of

log = logging.getLogger(__name__)

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
    started) and, per file it fetches, the last seq of the node that reads that file (per
    burst for burst products: `CacheHint.until_of`; `until`, in a `.<name>.hold` file).
    Files held past the clock go last; among equals, least recently used first
    (runner/locality.py `replay` simulates this rule). No cap given: `default_cap`, never
    unbounded.
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

    def until(self, name: str) -> int:
        """The last seq of the node that reads entry `name` (0: none said)."""
        return self._read_int(self.root / f".{name}.hold")

    def held(self, name: str, clock: int) -> bool:
        return self.until(name) > clock

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
                     max_workers: int = 2, until: int | Mapping[str, int] | None = None) -> Path:
    """ASF burst products of one SLC (per swath a run of consecutive bursts, any swaths and
    polarisations) downloaded into the cache and assembled into one SAFE folder there, ready
    for the processor. `until` holds the burst files (per burst name, or all alike) and each
    metadata XML as long as its bursts; the SAFE is this unit's own subset of the bursts
    (a later unit assembles its own), so it is not held."""
    if not bursts:
        raise PermanentError("no bursts to fetch")
    urls: dict[str, str] = {}
    for b in bursts:
        if not (b.tiff_url and b.xml_url):
            raise PermanentError(f"{b.name}: no TIFF/XML download URL")
        urls[b.name] = b.tiff_url
        urls[b.polarisation] = b.xml_url
    held = {b.name: until if not isinstance(until, Mapping) else until.get(b.name)
            for b in bursts}
    pinned = [cache.root / f"{b.name}.tiff" for b in bursts]
    # one metadata XML per SLC and polarisation (ASF's and burst2safe's naming): `s1 assemble`
    # reads the cache folder as it is
    xml_names = {b.polarisation: f"{b.slc}_{b.polarisation}.xml" for b in bursts}
    xml_until = {pol: max((u for b in bursts if b.polarisation == pol
                           and (u := held[b.name]) is not None), default=None)
                 for pol in xml_names}
    pinned += [cache.root / n for n in xml_names.values()]
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as ex:
        tiffs = [ex.submit(cache.fetch_file, f"{b.name}.tiff", urls[b.name], session,
                           b.tiff_size, b.tiff_md5, retry, pinned, held[b.name])
                 for b in bursts]
        xmls = {pol: ex.submit(cache.fetch_file, name, urls[pol], session, None, None, retry,
                               pinned, xml_until[pol]) for pol, name in xml_names.items()}
        files = [BurstFiles(b.slc, b.swath, b.polarisation, b.index, t.result(),
                            xmls[b.polarisation].result()) for b, t in zip(bursts, tiffs,
                                                                          strict=True)]
    with cache.using(pinned):
        safe = assemble_safe(files, cache.root)
    os.utime(safe)
    cache.evict(keep={safe})
    return safe


#: how long the cache holds a product's files: one seq for all, or per burst product
Until = int | Callable[[S1Product], int] | None


def fetch_product(products: Sequence[S1Product], cache: DownloadCache,
                  session: requests.Session, retry: DownloadRetry | None = None,
                  max_workers: int = 2, until: Until = None) -> Path:
    """What the processor opens for one acquisition: an SLC product's zip, or the SAFE
    assembled from ASF burst products (`s1.search` results carrying `extra["burst"]`: bursts
    of one SLC, with their polarisations, a run of consecutive bursts per swath). A callable
    `until` gives each burst product its own hold (`CacheHint.until_of` its footprint)."""
    bursts = [p for p in products if p.extra.get("burst")]
    if products and len(bursts) == len(products):
        refs = [(p, r) for p in products for r in burst_refs(p)]
        per: int | Mapping[str, int] | None = until if not callable(until) else {
            r.name: until(p) for p, r in refs}
        return fetch_burst_safe([r for _, r in refs], cache, session, retry, max_workers, per)
    if len(products) == 1 and not bursts:
        one = until(products[0]) if callable(until) else until
        return cache.fetch(products[0], session, retry, until=one)
    raise PermanentError(f"one SLC product or burst products of one acquisition, not "
                         f"{[p.name for p in products]}")


__all__ = ["AUTH_HOSTS", "EDL_HOST", "FREE_SHARE", "Credentials", "DownloadCache",
           "DownloadRetry", "EarthdataSession", "Until", "default_cap", "download",
           "download_session", "earthdata_credentials", "fetch_all", "fetch_burst_safe",
           "fetch_product", "md5_of"]
