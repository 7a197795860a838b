"""Every S1 layer online: loopback CMR search -> plan -> download -> process -> store.

The simulated SLC products are zipped and served by the loopback ASF (CMR granules built from
their own metadata, verified downloads with a bearer token); the same products read from a
local archive must give byte-identical chunks, because one processor sits behind both
sources. A CLI run killed with -9 during processing and rerun gives the same chunks again.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from m3leo_tiles.runner.fetch import FetchRequest, fetch
from m3leo_tiles.s1.archive import scan_archive
from m3leo_tiles.sources.s1blocks import block_of
from m3leo_tiles.store.store import open_store
from tests.sources.asf_server import FakeAsf, umm_item
from tests.sources.test_asf_archive import _zip_safe

TOKEN = "edl-token-for-the-chain"
LAYERS = ["s1grd", "s1coh", "s1ifg", "s1geom", "s1unw"]


def digests(url: str, modality: str) -> dict[str, str]:
    root = Path(url) / modality / modality / "c"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def served(small_sim, tmp_path_factory):
    """The simulated products zipped on the loopback ASF, found through its CMR."""
    zdir = tmp_path_factory.mktemp("asfzips")
    with FakeAsf() as asf:
        asf.token = TOKEN
        for p in scan_archive(small_sim / "s1"):
            z = _zip_safe(small_sim / "s1" / f"{p.name}.SAFE", zdir)
            md5 = asf.add_file(z.name, z.read_bytes())
            asf.items.append(umm_item(p, asf.base, size=z.stat().st_size, md5=md5))
        yield asf


def _opts(small_sim, served, cache: Path) -> dict:
    dem = str(small_sim / "rasters" / "dem.tif")
    return {"asf": {"host": served.host, "cache": str(cache), "dem": dem, "burst": "false"},
            "archive": {"archive": str(small_sim / "s1"), "dem": dem}}


@pytest.fixture(scope="module")
def stores(small_sim, served, tmp_path_factory):
    out = tmp_path_factory.mktemp("asfchain")
    old = os.environ.get("EARTHDATA_TOKEN")
    os.environ["EARTHDATA_TOKEN"] = TOKEN
    try:
        runs = {}
        # the ASF run in-process: joblib's loky workers outlive a test and keep the
        # environment they were started with (no token); the CLI test below uses 2 workers
        for name, workers in (("asf", 1), ("archive", 2)):
            url = str(out / f"{name}.zarr")
            s = fetch(FetchRequest(store=url, region=str(small_sim / "aoi.geojson"),
                                   modalities=LAYERS, period="2025-MAM", source=name,
                                   source_options=_opts(small_sim, served, out / "cache"),
                                   workers=workers, progress=False))
            runs[name] = (url, s)
    finally:
        if old is None:
            os.environ.pop("EARTHDATA_TOKEN", None)
        else:
            os.environ["EARTHDATA_TOKEN"] = old
    return out, runs


def test_every_s1_layer_online_matches_the_archive_byte_for_byte(stores, small_sim, served):
    out, runs = stores
    m = json.loads((small_sim / "simulation.json").read_text())
    n = len(m["tiles"])
    url, s = runs["asf"]
    # one unit per block: every layer of its tiles from one unit
    blocks = {block_of(t) for t in m["tiles"]}
    assert (s.done, s.failed, s.nodata, s.units) == (len(LAYERS) * n, 0, 0, len(blocks)), \
        s.as_dict()
    # search went through CMR, both products came down verified into the cache
    assert any(path.startswith("/search/granules") for _, path, _ in served.requests)
    assert sorted(p.name for p in (out / "cache").glob("*.zip")) == \
        sorted(f"{Path(p).name.removesuffix('.SAFE')}.zip" for p in m["products"])
    tree = open_store(url)
    assert list(tree["s1coh"].ds.period.values) == ["20250406_20250418"]
    assert list(tree["s1geom"].ds.period.values) == ["t108A"]
    unw = tree["s1unw"].ds["s1unw"].isel(period=0)
    assert list(unw.band.values) == ["unw_VV", "conncomp"] and unw.shape[-1] == 56
    assert (unw.sel(band="conncomp").values > 0).mean() > 0.5  # most of the scene unwrapped
    grd = tree["s1grd"].ds["s1grd"].isel(period=0)
    assert list(grd.band.values) == ["VV_asc", "VH_asc", "VV_des", "VH_des",
                                     "count_asc", "count_des"]
    count = grd.sel(band="count_asc").values
    assert np.nanmax(count) == 2 and (grd.sel(band="count_des").values == 0).all()
    assert np.isnan(grd.sel(band="VV_des").values).all()  # the simulated pass is ascending
    vv, vh = grd.sel(band="VV_asc").values, grd.sel(band="VH_asc").values
    assert np.nanmean(vv) > np.nanmean(vh) + 3
    for layer in LAYERS:
        a, b = digests(url, layer), digests(runs["archive"][0], layer)
        assert a == b and len(a) == n, layer


@pytest.mark.slow
def test_kill_9_during_processing_then_rerun_gives_identical_chunks(stores, small_sim, served,
                                                                    tmp_path):
    out, runs = stores
    opts = _opts(small_sim, served, out / "cache")["asf"]  # products already cached
    url = str(tmp_path / "k.zarr")
    args = [sys.executable, "-m", "m3leo_tiles", "fetch", "--store", url, "--region",
            str(small_sim / "aoi.geojson"), "--period", "2025-MAM", "--source", "asf",
            "--workers", "2", *[a for m in LAYERS for a in ("-m", m)],
            *[a for k, v in opts.items() for a in ("--source-opt", f"asf.{k}={v}")]]
    env = {**os.environ, "EARTHDATA_TOKEN": TOKEN}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # kill once the first chunk is on disk: processing is under way, the unit unfinished
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if any(digests(url, m) for m in LAYERS if (Path(url) / m).is_dir()):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    p = subprocess.run(args + ["--json"], env=env, text=True, capture_output=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["failed"] == 0
    for layer in LAYERS:
        assert digests(url, layer) == digests(runs["asf"][0], layer), layer
    assert not list(Path(url).rglob("*.partial"))
