"""One resumable, verified download (asf_search's own is a single streamed GET that keeps a
partial file on failure and checks nothing): Range resume into `<name>.part`, size + MD5
check against what ASF publishes, atomic rename, bounded retries with exponential backoff and
jitter, 401/403 -> AuthError, 202 (on-demand burst extraction still running) waited on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests

from ..errors import AuthError, PermanentError, TransientError

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # hashing block
STREAM_CHUNK = 1 << 16  # small reads: a cut connection loses at most this much


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
