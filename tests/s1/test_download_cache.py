"""The shared download cache: one download per file at a time across threads and processes,
the size cap, torn downloads never used; ASF burst search -> download -> SAFE."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from m3leo_tiles.errors import PermanentError
from m3leo_tiles.s1.download import (
    Credentials,
    DownloadCache,
    DownloadRetry,
    download_session,
    fetch_burst_safe,
    fetch_product,
)
from m3leo_tiles.s1.products import burst_refs
from tests.sources.asf_server import FakeAsf

TOKEN = "edl-token-cache"
ROOT = Path(__file__).resolve().parents[2]


def _data(n: int, seed: int = 1) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (n // 32 + 1))[:n]


@pytest.fixture
def asf():
    with FakeAsf() as f:
        f.token = TOKEN
        yield f


def _session():
    return download_session(Credentials(token=TOKEN))


def _policy() -> DownloadRetry:
    return DownloadRetry(sleep=lambda s: None)


def test_two_threads_same_burst_one_download(asf, tmp_path):
    key = "S1A_SLC/IW2/VV/3.tiff"
    md5 = asf.add_file(key, data := _data(400_000))
    asf.slow = 0.5  # the extractor takes a while: both threads ask while it works
    cache = DownloadCache(tmp_path / "cache")
    got: list[Path] = []

    def worker() -> None:
        got.append(cache.fetch_file("b3.tiff", f"{asf.base}/burst/{key}", _session(), len(data),
                                    md5, _policy()))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert asf.served == {key: 1}
    assert len(got) == 3 and {p.read_bytes() == data for p in got} == {True}


_CHILD = """
import sys
from m3leo_tiles.s1.download import Credentials, DownloadCache, download_session
cache = DownloadCache(sys.argv[1])
p = cache.fetch_file(sys.argv[2], sys.argv[3], download_session(Credentials(token=sys.argv[4])),
                     int(sys.argv[5]) if sys.argv[5] != "-" else None)
print(p)
"""


def _child(cache: Path, name: str, url: str, size: int | None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(cache), name, url, TOKEN,
                             str(size) if size else "-"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_processes_same_burst_one_download(asf, tmp_path):
    key = "S1A_SLC/IW2/VH/4.tiff"
    asf.add_file(key, data := _data(300_000, 2))
    asf.slow = 1.0
    procs = [_child(tmp_path / "cache", "b4.tiff", f"{asf.base}/burst/{key}", len(data))
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert asf.served == {key: 1}
    assert (tmp_path / "cache" / "b4.tiff").read_bytes() == data


def test_kill_9_mid_download_then_rerun_identical(asf, tmp_path):
    key = "S1A_SLC/IW1/VV/0.tiff"
    md5 = asf.add_file(key, data := _data(2_000_000, 3))
    asf.trickle = 0.05  # 64 KiB every 50 ms: about 1.5 s for the body
    cache = tmp_path / "cache"
    proc = _child(cache, "b0.tiff", f"{asf.base}/burst/{key}", len(data))
    part = cache / "b0.tiff.part"
    deadline = time.time() + 60
    while time.time() < deadline and not (part.exists() and part.stat().st_size > 300_000):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cache / "b0.tiff").exists()  # never under its final name unverified
    had = part.stat().st_size
    assert 0 < had < len(data)
    asf.trickle = 0.0
    p = DownloadCache(cache).fetch_file("b0.tiff", f"{asf.base}/burst/{key}", _session(),
                                        len(data), md5, _policy())
    assert p.read_bytes() == data and not part.exists()
    ranges = [h.get("Range") for m, path, h in asf.requests if path.endswith("0.tiff")]
    assert ranges[-1] == f"bytes={had}-"  # resumed where the killed worker stopped


def test_size_cap_holds_and_files_in_use_stay(asf, tmp_path):
    cache = DownloadCache(tmp_path / "cache", max_bytes=250_000)
    paths = []
    for i in range(4):
        key = f"S/IW2/VV/{i}.tiff"
        asf.add_file(key, _data(100_000, 10 + i))
        paths.append(cache.fetch_file(f"b{i}.tiff", f"{asf.base}/burst/{key}", _session(),
                                      100_000, None, _policy()))
        os.utime(paths[-1], (1000 + i, 1000 + i))
        assert sum(p.stat().st_size for p in cache.entries()) <= 250_000
    assert sorted(p.name for p in cache.entries()) == ["b2.tiff", "b3.tiff"]
    # b2 is the least recently used, but in use: the next fetch evicts b3 instead
    asf.add_file("S/IW2/VV/9.tiff", _data(100_000, 19))
    with cache.using([paths[2]]):
        cache.fetch_file("b9.tiff", f"{asf.base}/burst/S/IW2/VV/9.tiff", _session(), 100_000,
                         None, _policy())
        assert sorted(p.name for p in cache.entries()) == ["b2.tiff", "b9.tiff"]


def test_files_a_pending_unit_needs_are_evicted_last(asf, tmp_path):
    """Issue 20: b0 is the least recently used, but held for the node's unit 5: while the
    clock is before 5 the next fetch evicts b1 (free) instead; once unit 6 starts, b0 goes."""
    cache = DownloadCache(tmp_path / "cache", max_bytes=250_000)
    cache.advance(1)
    for i in range(2):
        asf.add_file(f"S/IW2/VV/{i}.tiff", _data(100_000, 30 + i))
        p = cache.fetch_file(f"b{i}.tiff", f"{asf.base}/burst/S/IW2/VV/{i}.tiff", _session(),
                             100_000, None, _policy(), until=5 if i == 0 else 1)
        os.utime(p, (1000 + i, 1000 + i))
    for i in (2, 3):
        asf.add_file(f"S/IW2/VV/{i}.tiff", _data(100_000, 30 + i))
    cache.fetch_file("b2.tiff", f"{asf.base}/burst/S/IW2/VV/2.tiff", _session(), 100_000,
                     None, _policy(), until=2)
    assert sorted(p.name for p in cache.entries()) == ["b0.tiff", "b2.tiff"]
    cache.advance(6)
    cache.advance(3)  # a slower worker's older unit: the clock never goes back
    cache.fetch_file("b3.tiff", f"{asf.base}/burst/S/IW2/VV/3.tiff", _session(), 100_000,
                     None, _policy())
    assert sorted(p.name for p in cache.entries()) == ["b2.tiff", "b3.tiff"]


def test_default_cap_is_half_the_free_space_and_says_so(tmp_path, caplog):
    import shutil

    with caplog.at_level("INFO", logger="m3leo_tiles.s1.download"):
        cache = DownloadCache(tmp_path / "cache")
    free = shutil.disk_usage(tmp_path).free
    assert cache.max_bytes is not None and abs(cache.max_bytes - free / 2) < 0.01 * free
    assert "capped at" in caplog.text and "free on its disk" in caplog.text


# --- burst search -> download -> SAFE ------------------------------------------------------
def test_burst_search_fetch_and_assemble(asf, tmp_path):
    """Real annotation (track 108): ASF burst results become BurstRefs, their TIFF + XML land
    in the cache once however many workers ask, and one SAFE is assembled from them."""
    from m3leo_tiles.s1.archive import read_product, scan_archive
    from m3leo_tiles.s1.search import search_products
    from tests.s1 import burstcut
    from tests.sources.asf_server import umm_item
    from tests.sources.test_asf_archive import REF, SLC
    from tests.sources.test_asf_search import APRIL

    if not SLC.is_dir():
        pytest.skip("shared s1data not present")
    ref = scan_archive(SLC)[0]
    bid = "108_230133_IW2"  # the second burst of IW2
    tiffs = {}
    for pol in ("VV", "VH"):
        asf.add_file(f"{REF}/IW2/{pol}/1.xml", burstcut.metadata_xml(SLC / f"{REF}.SAFE", pol))
        tiffs[pol] = _data(50_000, ord(pol[1]))
        md5 = asf.add_file(f"{REF}/IW2/{pol}/1.tiff", tiffs[pol])
        asf.items.append(umm_item(ref, asf.base, burst=bid, index=1, pol=pol,
                                  size=len(tiffs[pol]), md5=md5))
    prods = search_products(ref.footprint, *APRIL, host=asf.host, burst=True)
    assert len(prods) == 1  # ASF lists VV and VH apart: one acquisition of one burst here
    (prod,) = prods
    assert (prod.burst_ids, prod.polarisations, prod.platform) == ((bid,), ("VV", "VH"), "S1A")
    refs = burst_refs(prod)
    assert [(str(b.burst_id), b.slc, b.swath, b.index, b.polarisation) for b in refs] == [
        (bid, REF, "IW2", 1, "VV"), (bid, REF, "IW2", 1, "VH")]
    assert refs[0].name == prod.name  # ASF's burst granule name (S1_230133_IW2_..._VV_93A7-BURST)
    assert prod.name.startswith("S1_230133_IW2_") and prod.name.endswith("_VV_93A7-BURST")
    cache = DownloadCache(tmp_path / "cache")
    safes: list[Path] = []
    threads = [threading.Thread(target=lambda: safes.append(
        fetch_burst_safe(refs, cache, _session(), _policy()))) for _ in range(2)]
    threads.append(threading.Thread(target=lambda: safes.append(
        fetch_product(prods, cache, _session(), _policy()))))  # from the search results
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(safes) == 3 and len(set(safes)) == 1
    assert sorted(asf.served.values()) == [1, 1, 1, 1]  # 2 TIFFs + 2 XMLs, once each
    safe = safes[0]
    p = read_product(safe)
    assert p.burst_ids == (bid,) and p.polarisations == ("VV", "VH")
    for pol in ("VV", "VH"):
        (meas,) = (safe / "measurement").glob(f"*-{pol.lower()}-*.tiff")
        assert meas.read_bytes() == tiffs[pol]
    assert safe.parent == cache.root and safe in cache.entries()
    with pytest.raises(PermanentError, match="one SLC product or burst products"):
        fetch_product(prods + [dataclasses.replace(prods[0], extra={})], cache, _session())
