"""The archive source: scanning, pairing, planning, and per-unit failures, on real SAFE metadata."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from m3leo_tiles.errors import PairError, SafeError
from m3leo_tiles.grid.tiles import Tile
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.periods import expand, request
from m3leo_tiles.sar.geocode import grid_ecef
from m3leo_tiles.sar.product import open_product
from m3leo_tiles.sar.radargrid import geocode_grid
from m3leo_tiles.sources.base import TileRef
from m3leo_tiles.sources.s1 import S1ArchiveSource

from .synth import PAIR, gcp_target, write_sparse

SARSEN = "sarsen/tests/data/S1A_IW_SLC__1SDV_20220104T170557_20220104T170624_041314_04E951_F1F1.SAFE"


def _tile_at(lon, lat) -> TileRef:
    zone = int((lon + 180) // 6) + 1
    x, y = Transformer.from_crs(4326, 32600 + zone, always_xy=True).transform(lon, lat)
    t = Tile(zone, "N", int(x // 4480), int(y // 4480))
    return TileRef.of(t)


def _dem(path, tile: TileRef, h: float):
    g = tile.grid
    prof = dict(driver="GTiff", width=g.width // 4 + 20, height=g.height // 4 + 20, count=1,
                dtype="float32", crs=g.crs,
                transform=rasterio.Affine(40, 0, g.x0 - 400, 0, -40, g.y0 + 400))
    with rasterio.open(path, "w", **prof) as r:
        r.write(np.full((prof["height"], prof["width"]), h, np.float32), 1)
    return str(path)


@pytest.fixture()
def archive(s1data, tmp_path):
    arc = tmp_path / "archive"
    arc.mkdir()
    for p in sorted((s1data / PAIR).glob("*.SAFE")):
        shutil.copytree(p, arc / p.name)
    shutil.copytree(s1data / SARSEN, arc / SARSEN.split("/")[-1])
    (arc / "S1A_IW_SLC__1SDV_20250430T022008_20250430T022035_058980_07500A_0000.zip").write_bytes(
        b"PK\x03\x04 this is not a zip")
    return arc


def test_scan_pair_plan_and_failures(archive, tmp_path):
    from m3leo_tiles.sar.safe import open_swath

    safes = sorted(archive.glob("S1A_IW_SLC__1SDV_2025*.SAFE"))
    sw = open_swath(safes[0], "IW2", "VV")
    lon, lat, h, *_ = gcp_target(sw, 4, 10)
    tile = _tile_at(lon, lat)
    far = _tile_at(lon + 3, lat)
    src = S1ArchiveSource(archive=str(archive), dem=_dem(tmp_path / "dem.tif", tile, h))
    assert len(src.products()) == 3  # the corrupt zip is skipped
    assert [p.label for p in src.pairs()] == ["20250406_20250418"]
    coh = get_modality("s1coh")
    periods = src.periods(coh, request("pair", "2025"), [tile, far])
    assert [p.label for p in periods] == ["20250406_20250418"]
    units = src.plan(coh, periods[0], [tile, far])
    assert len(units) == 1 and units[0].tiles == (tile.id,)
    assert [pw.label for pw in units[0].payload.pairs] == [periods[0].label]
    # measurement TIFFs of the hyp3 pair are 0-byte placeholders: a clear failure
    res = list(src.read(units[0], {tile.id: tile}, coh, periods[0]))
    assert res[0].status == "failed" and "measurement" in res[0].error
    # a DEM that does not reach the tile
    src2 = S1ArchiveSource(archive=str(archive), dem=_dem(tmp_path / "dem2.tif", far, h))
    res = list(src2.read(units[0], {tile.id: tile}, coh, periods[0]))
    assert res[0].status == "failed" and "DEM" in res[0].error


def test_pair_unit_on_speckle(archive, tmp_path):
    from m3leo_tiles.sar.safe import open_swath

    safes = sorted(archive.glob("S1A_IW_SLC__1SDV_2025*.SAFE"))
    sw = open_swath(safes[0], "IW2", "VV")
    lon, lat, h, *_ = gcp_target(sw, 4, 10)
    tile = _tile_at(lon, lat)
    rng = np.random.default_rng(3)
    xyz = grid_ecef(tile.grid, np.full(tile.grid.shape, h))
    for safe in safes:
        prod = open_product(str(safe), ["VV"])
        geo = geocode_grid(prod, xyz)
        k = sorted(prod.swaths).index("IW2")
        assert (geo.swath == k).all()
        s = prod.swaths["IW2"]["VV"]
        for pol in ("VV", "VH"):
            patches = []
            for bi in np.unique(geo.burst):
                m = geo.burst == bi
                b = s.bursts[int(bi)]
                r0 = max(int(geo.line[m].min()) - 12, 0)
                r1 = min(int(geo.line[m].max()) + 12, s.lines_per_burst)
                c0, c1 = int(geo.sample[m].min()) - 12, int(geo.sample[m].max()) + 12
                shape = (r1 - r0, c1 - c0)
                amp = 60 if pol == "VV" else 20
                dn = amp * (rng.normal(size=shape) + 1j * rng.normal(size=shape)) / math.sqrt(2)
                patches.append((b.first_line + r0, c0, dn))
            write_sparse(safe, "IW2", pol, patches)
        prod.close()
    src = S1ArchiveSource(archive=str(archive), dem=_dem(tmp_path / "dem.tif", tile, h))
    coh = get_modality("s1coh")
    period = src.periods(coh, request("pair", "2025"), [tile])[0]
    unit = src.plan(coh, period, [tile])[0]
    r = list(src.read(unit, {tile.id: tile}, coh, period))[0]
    assert r.status == "done", r.error
    assert r.data.shape == (2, 112, 112) and r.data.dtype == np.float32
    c = r.data[np.isfinite(r.data)]
    assert c.size > 0.9 * r.data.size
    # independent speckle: only the estimator's bias floor remains
    assert 0.1 < float(c.mean()) < 0.45
    ifg = get_modality("s1ifg")
    r = list(src.read(src.plan(ifg, period, [tile])[0], {tile.id: tile}, ifg, period))[0]
    assert r.status == "done" and r.data.shape == (1, 112, 112)
    assert np.nanmax(np.abs(r.data)) <= math.pi + 1e-6
    # backscatter composite of the two dates: sigma0 of 60 DN over the LUT
    grd = get_modality("s1grd")
    gp = [p for p in expand("seasonal", "2025") if p.label == "2025-MAM"][0]
    gu = src.plan(grd, gp, [tile])
    assert len(gu) == 1 and len(gu[0].items) == 2
    r = list(src.read(gu[0], {tile.id: tile}, grd, gp))[0]
    assert r.status == "done" and r.data.shape == (6, 448, 448)
    assert np.nanmean(r.data[0]) > np.nanmean(r.data[1]) + 5  # VV 60 DN vs VH 20 DN
    # both dates are ascending: two valid acquisitions where the tile is imaged, no descending
    assert np.nanmax(r.data[4]) == 2 and (r.data[5] == 0).all() and np.isnan(r.data[2]).all()
    # the same through the runner into a store: fetch s1coh + s1ifg for the pair
    import pickle

    from m3leo_tiles.runner.fetch import FetchRequest, fetch

    pickle.loads(pickle.dumps(src))  # workers receive the source pickled
    aoi = tmp_path / "aoi.geojson"
    import json

    import shapely

    c = shapely.centroid(tile.polygon)
    aoi.write_text(json.dumps({"type": "Feature", "properties": {},
                               "geometry": shapely.geometry.mapping(c.buffer(0.005))}))
    opts = {"archive": str(archive), "dem": str(tmp_path / "dem.tif")}
    summ = fetch(FetchRequest(store=str(tmp_path / "s.zarr"), region=str(aoi),
                              modalities=["s1coh", "s1ifg"], period="2025", tiles=[tile.id],
                              source="archive", source_options={"archive": opts}))
    d = summ.as_dict()
    assert d["done"] == 2 and d["failed"] == 0, d


def test_bad_inputs_fail_clearly(archive, tmp_path, s1data):
    from m3leo_tiles.sar.pipeline import process_grd
    from m3leo_tiles.sar.product import check_pair
    from m3leo_tiles.sar.safe import open_swath
    from m3leo_tiles.sources.base import WorkUnit
    from m3leo_tiles.sources.s1blocks import PairWork, ProductRecord, S1Work

    safes = sorted(archive.glob("S1A_IW_SLC__1SDV_2025*.SAFE"))
    sw = open_swath(safes[0], "IW2", "VV")
    lon, lat, h, *_ = gcp_target(sw, 4, 10)
    tile = _tile_at(lon, lat)
    src = S1ArchiveSource(archive=str(archive), dem=_dem(tmp_path / "dem.tif", tile, h))
    coh = get_modality("s1coh")
    period = src.periods(coh, request("pair", "2025"), [tile])[0]
    def pair_unit(ref, sec) -> WorkUnit:
        recs = tuple(ProductRecord(Path(p).name, "t108A", dt.date(2025, 4, 6), "S1A", "", "",
                                   path=str(p)) for p in (ref, sec))
        work = S1Work(recs, {tile.id: (0, 1)}, (),
                      (PairWork(period.label, "t108A", ((0, 1),), (tile.id,)),), ())
        return WorkUnit("s1coh", period.label, (tile.id,), payload=work)

    # a corrupt zip in a unit: failed, with the reason
    bad = pair_unit(next(archive.glob("*.zip")), safes[1])
    r = list(src.read(bad, {tile.id: tile}, coh, period))[0]
    assert r.status == "failed" and "zip" in r.error
    # different tracks
    other = pair_unit(next(archive.glob("S1A_IW_SLC__1SDV_2022*.SAFE")), safes[1])
    r = list(src.read(other, {tile.id: tile}, coh, period))[0]
    assert r.status == "failed" and ("track" in r.error or "polarisation" in r.error)
    # missing calibration: remove the IW2 VV calibration file
    cal = next((safes[0] / "annotation" / "calibration").glob("calibration-*-iw2-*-vv-*.xml"))
    cal.unlink()
    with pytest.raises(SafeError, match="calibration"):
        process_grd(str(safes[0]), [tile], lambda g: np.full(g.shape, h), ["VV"])
    # the hyp3 pair's footprints overlap; a product and itself shifted would not: use the
    # sarsen product against the pair for the overlap check through check_pair directly
    ref = open_product(str(safes[1]), ["VV"], swaths=["IW2"])
    far = open_product(str(next(archive.glob("S1A_IW_SLC__1SDV_2022*.SAFE"))), ["VV"])
    far.attrs = dict(ref.attrs)  # same track/pass on paper, so only geometry differs
    far.swaths = {"IW2": far.swaths["IW1"]}
    with pytest.raises(PairError, match="overlap|burst"):
        check_pair(far, ref)
