"""The ASF source downloads bursts by default (issue 12 item 3).

Fast: a burst search result keeps what the download needs through the unit's picklable
ProductRecord (`extra["burst"]`, burst ids, polarisations); `asf.burst=false` (text or bool)
selects full SLCs; anything else is a one-line error.
Slow: `fetch` (bursts by default) killed with -9 while a burst TIFF is coming down, then
rerun: the torn download is resumed, never used, and the chunks equal an uninterrupted run's.
The burst chain's numbers against the archive are tests/sources/test_asf_burst_units.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import shapely

from m3leo_tiles.errors import BadInput
from m3leo_tiles.s1.products import S1Product, burst_refs
from m3leo_tiles.sources.asf import AsfSource
from m3leo_tiles.sources.asf import _as_product as as_product
from m3leo_tiles.sources.s1blocks import ProductRecord

TOKEN = "edl-token-burst-source"


def test_burst_records_keep_their_files_and_the_option_parses(tmp_path):
    files = {pol: {"name": f"S1_230560_IW2_20250406T022011_{pol}_93A7-BURST",
                   "url": f"https://example.org/{pol}.tiff", "xml_url": f"https://example.org/{pol}.xml",
                   "size": 100, "md5": "0" * 32} for pol in ("VV", "VH")}
    p = S1Product("S1_230560_IW2_20250406T022011_93A7-BURST", "S1A",
                  dt.datetime(2025, 4, 6, 2, 20, 11), dt.datetime(2025, 4, 6, 2, 20, 14), 108,
                  58630, "ASCENDING", ("VV", "VH"), shapely.box(0, 0, 1, 1),
                  burst_ids=("108_230560_IW2",),
                  extra={"burst": {"slc": "S1A_IW_SLC__1SDV_20250406T022008_20250406T022035_"
                                          "058630_07421F_93A7", "swath": "IW2", "index": 3,
                                   "files": files}})
    rec = pickle.loads(pickle.dumps(ProductRecord.of(p)))
    assert rec.burst_ids == ("108_230560_IW2",) and rec.polarisations == ("VV", "VH")
    back = as_product(rec)
    assert burst_refs(back) == burst_refs(p)
    assert AsfSource(cache=str(tmp_path)).burst is True
    assert AsfSource(cache=str(tmp_path), burst="false").burst is False
    assert AsfSource(cache=str(tmp_path), burst=False).burst is False
    with pytest.raises(BadInput, match="asf.burst"):
        AsfSource(cache=str(tmp_path), burst="maybe")


@pytest.mark.slow
def test_kill_9_during_a_burst_download_then_rerun_gives_identical_chunks(small_sim, tmp_path):
    from tests.s1.test_burst_chain import serve_bursts
    from tests.sources.asf_server import FakeAsf
    from tests.sources.test_asf_s1_chain import digests

    m = json.loads((small_sim / "simulation.json").read_text())
    dem = str(small_sim / "rasters" / "dem.tif")
    layers = ["s1grd", "s1coh"]
    env = {**os.environ, "EARTHDATA_TOKEN": TOKEN}
    with FakeAsf() as asf:
        asf.token = TOKEN
        for p in m["products"]:
            serve_bursts(asf, small_sim / p, frame=True)

        def cli(url: str, cache: Path) -> list[str]:
            opts = {"host": asf.host, "cache": str(cache), "dem": dem}  # bursts by default
            return [sys.executable, "-m", "m3leo_tiles", "fetch", "--store", url, "--region",
                    str(small_sim / "aoi.geojson"), "--period", "2025-MAM", "--source", "asf",
                    "--workers", "1", "--json", *[a for x in layers for a in ("-m", x)],
                    *[a for k, v in opts.items() for a in ("--source-opt", f"asf.{k}={v}")]]

        cache, url = tmp_path / "cache", str(tmp_path / "k.zarr")
        asf.trickle = 0.05  # 64 KiB every 50 ms: a burst TIFF takes many seconds
        proc = subprocess.Popen(cli(url, cache), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if any(f.stat().st_size > 1 << 20 for f in cache.glob("*.tiff.part")):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        torn = list(cache.glob("*.tiff.part"))
        assert torn and not list(cache.glob("*.SAFE"))  # mid-download: nothing assembled
        for t in torn:  # never under its final name unverified
            assert not t.with_name(t.name.removesuffix(".part")).exists()
        asf.trickle = 0.0
        p = subprocess.run(cli(url, cache), env=env, text=True, capture_output=True)
        assert p.returncode == 0, p.stderr[-2000:]
        assert json.loads(p.stdout.strip().splitlines()[-1])["failed"] == 0
        resumed = [h.get("Range") for _, path, h in asf.requests
                   if path.startswith("/burst/") and h.get("Range")]
        assert resumed  # the torn TIFF was resumed, not started over
        # the same run, never interrupted, into its own cache and store
        ref = str(tmp_path / "ref.zarr")
        q = subprocess.run(cli(ref, tmp_path / "cache2"), env=env, text=True,
                           capture_output=True)
        assert q.returncode == 0, q.stderr[-2000:]
    for layer in layers:
        a, b = digests(url, layer), digests(ref, layer)
        assert a == b and len(a) == len(m["tiles"]), layer
    assert not list(Path(url).rglob("*.partial"))
