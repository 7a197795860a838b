"""The ASF source downloads bursts by default (issue 12 item 3).

Fast: a burst search result keeps what the download needs through the unit's picklable
ProductRecord (`extra["burst"]`, burst ids, polarisations); `asf.burst=false` (text or bool)
selects full SLCs; anything else is a one-line error.
Slow: the simulator's SAFEs cut into ASF burst products on the loopback ASF; `fetch -m s1coh
-m s1grd --source asf` (bursts by default) downloads and assembles the bursts and gives, on
every tile inside one burst, the archive source's numbers from the full SAFEs.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle

import numpy as np
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
def test_fetch_with_bursts_matches_the_archive_inside_a_burst(small_sim, tmp_path, monkeypatch):
    from m3leo_tiles.runner.fetch import FetchRequest, fetch
    from m3leo_tiles.s1.archive import read_product
    from m3leo_tiles.store.store import open_store
    from tests.s1.test_burst_chain import serve_bursts
    from tests.sources.asf_server import FakeAsf

    m = json.loads((small_sim / "simulation.json").read_text())
    dem = str(small_sim / "rasters" / "dem.tif")
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    urls = {"asf": str(tmp_path / "asf.zarr"), "archive": str(tmp_path / "arc.zarr")}
    opts = {"archive": {"archive": str(small_sim / "s1"), "dem": dem}}
    with FakeAsf() as asf:
        asf.token = TOKEN
        for p in m["products"]:
            serve_bursts(asf, small_sim / p)
        opts["asf"] = {"host": asf.host, "cache": str(tmp_path / "cache"), "dem": dem}
        for name, url in urls.items():
            s = fetch(FetchRequest(store=url, region=str(small_sim / "aoi.geojson"),
                                   modalities=["s1coh", "s1grd"], period="2025-MAM",
                                   source=name, source_options=opts, workers=1,
                                   progress=False))
            assert s.failed == 0, s.as_dict()
        assert set(asf.served.values()) == {1}  # every burst TIFF and XML fetched once
    # the cache holds assembled burst SAFEs, not the SLC zips
    safes = sorted((tmp_path / "cache").glob("*.SAFE"))
    assert safes and not list((tmp_path / "cache").glob("*.zip"))
    fps: dict[str, list[shapely.Geometry]] = {}
    for s in safes:
        p = read_product(s)
        assert len(p.burst_ids) == 1
        fps.setdefault(str(p.date), []).append(p.footprint)
    tiles = json.loads((small_sim / "simulation.json").read_text())["tiles"]
    from m3leo_tiles.grid.tiles import tile_from_id

    # inside one burst: a burst SAFE's footprint stops where its annotation grid does, but
    # its lines run ~2 km further into the neighbours' overlap (where the full SLC splits the
    # overlap in its middle and the burst unit takes one burst whole): keep 0.03 deg clear
    inside = []
    for t in tiles:
        poly = tile_from_id(t).polygon_lonlat
        if all(sum(fp.covers(poly) for fp in v) == 1 and
               sum(fp.buffer(0.03).intersects(poly) for fp in v) == 1 for v in fps.values()):
            inside.append(t)
    assert len(inside) >= 2, "fewer than two tiles inside one burst alone"
    trees = {k: open_store(u) for k, u in urls.items()}
    for layer, period, tol in (("s1coh", "20250406_20250418", 1e-5),
                               ("s1grd", "2025-MAM", 1e-3)):
        for t in inside:
            a = trees["asf"][layer].ds[layer].sel(period=period, tile=t).values
            b = trees["archive"][layer].ds[layer].sel(period=period, tile=t).values
            assert np.array_equal(np.isfinite(a), np.isfinite(b)), (layer, t)
            ok = np.isfinite(a)
            assert ok.mean() > 0.5 and np.abs(a[ok] - b[ok]).max() <= tol, (layer, t)
