"""The local raster source: real S2 L2A and Copernicus DEM files, and synthetic composites."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
from rasterio.transform import from_origin

from m3leo_tiles.errors import BadInput
from m3leo_tiles.grid import tile_from_id
from m3leo_tiles.grid.tiles import from_lonlat
from m3leo_tiles.modalities import S2_BANDS, get_modality
from m3leo_tiles.periods import STATIC, expand
from m3leo_tiles.sources.base import TileRef, WorkUnit
from m3leo_tiles.sources.local import LocalRasterSource, slope_aspect

S2_DIR = "rio-tiler-pds/tests/fixtures/sentinel-cogs/sentinel-s2-l2a-cogs/29/R/KH/2020/2/" \
         "S2A_29RKH_20200219_0_L2A"


def ref(tile_id: str) -> TileRef:
    t = tile_from_id(tile_id)
    return TileRef.of(t)


def read_one(src, tile: TileRef, modality: str, period):
    m = get_modality(modality)
    (r,) = src.read(WorkUnit(m.name, period.label, (tile.id,)), {tile.id: tile}, m, period)
    return r


def test_real_s2_scene_matches_direct_reads(s1data):
    root = s1data / "rio-tiler-pds/tests/fixtures"
    src = LocalRasterSource(root=str(root))
    tile = ref("29N-0050-0610")
    r = read_one(src, tile, "s2", expand("seasonal", "2020")[0])  # DJF holds 2020-02-19
    assert r.status == "done" and r.items == ("S2A_29RKH_20200219_0_L2A",)
    assert r.data.shape == (11, 448, 448) and r.data.dtype == np.uint16
    assert (r.data[-1] == 1).all()  # one clear observation everywhere (a desert scene)
    rng = np.random.default_rng(0)
    g = tile.grid
    for band_i, name in ((0, "B02"), (2, "B04"), (8, "B11")):
        with rasterio.open(s1data / S2_DIR / f"{name}.tif") as ds:
            for _ in range(20):
                i, j = rng.integers(5, 443, size=2)
                x, y = g.xs()[j], g.ys()[i]
                row, col = ds.index(x, y)
                win = ds.read(1, window=((row - 1, row + 2), (col - 1, col + 2))).astype(float)
                ours = float(r.data[band_i, i, j])
                # bilinear: inside the range of the neighbouring source pixels
                assert win.min() - 1 <= ours <= win.max() + 1, (name, ours, win)
    # and the no-data period is nodata, not a failure
    assert read_one(src, tile, "s2", expand("seasonal", "2020")[2]).status == "nodata"


def test_real_copernicus_dem_with_slope_and_aspect(s1data):
    root = s1data / "rio-tiler-pds/tests/fixtures/copernicus-dem-30m"
    src = LocalRasterSource(root=str(root))
    x, y = from_lonlat(32632).transform(6.55, 0.45)
    tile = ref(f"32N-{int(x // 4480):04d}-{int(y // 4480):04d}")
    r = read_one(src, tile, "dem", STATIC)
    assert r.status == "done", r.error
    elev, slope, aspect = r.data
    assert np.isfinite(r.data).all()
    with rasterio.open(next(root.rglob("*.tif"))) as ds:
        lon, lat = from_lonlat(32632).transform(tile.grid.xs()[[100, 300]],
                                                tile.grid.ys()[[200, 50]], direction="INVERSE")
        for k, (i, j) in enumerate(((200, 100), (50, 300))):
            row, col = ds.index(lon[k], lat[k])
            win = ds.read(1, window=((row - 1, row + 2), (col - 1, col + 2)))
            assert win.min() - 0.5 <= elev[i, j] <= win.max() + 0.5
    assert 0 <= slope.min() and slope.max() < 90 and 0 <= aspect.min() and aspect.max() < 360


def test_slope_aspect_on_a_known_plane():
    yy, xx = np.mgrid[0:50, 0:50].astype(float)
    east_up = xx * 10 * 0.1  # rises 0.1 m per metre eastwards, 10 m pixels
    slope, aspect = slope_aspect(east_up, 10.0, 10.0)
    assert np.allclose(slope, np.degrees(np.arctan(0.1)))
    assert np.allclose(aspect, 270.0)  # faces west (downslope)
    north_up = -yy * 10 * 0.2  # rows run south, so this rises northwards
    slope, aspect = slope_aspect(north_up, 10.0, 10.0)
    assert np.allclose(aspect, 180.0) and np.allclose(slope, np.degrees(np.arctan(0.2)))


def _write(path: Path, data: np.ndarray, epsg: int, x0: float, y0: float, res: float) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                       count=1, dtype=data.dtype, crs=f"EPSG:{epsg}", nodata=0,
                       transform=from_origin(x0, y0, res, res), tiled=True) as ds:
        ds.write(data, 1)


def synthetic_archive(tmp_path: Path, tile_id: str) -> Path:
    """Three dates over one tile: a cloud on date 2, the L2A offset on date 3."""
    t = tile_from_id(tile_id)
    x0, y0 = t.bounds[0] - 400, t.bounds[3] + 400
    n = int((4480 + 800) / 20)
    feats = []
    truth = {b: 1000 + 100 * k for k, b in enumerate(S2_BANDS)}
    for d, (day, factor, cloud, baseline) in enumerate(
            [(5, 1.0, False, "03.01"), (15, 1.2, True, "03.01"), (25, 0.9, False, "04.00")]):
        item_dir = tmp_path / f"scene{d}"
        item_dir.mkdir()
        assets = {}
        for b in S2_BANDS:
            res = 10 if b in ("B2", "B3", "B4", "B8") else 20
            m = int((4480 + 800) / res)
            v = truth[b] * factor + (1000 if baseline == "04.00" else 0)
            _write(item_dir / f"{b}.tif", np.full((m, m), v, np.uint16), t.epsg, x0, y0, res)
            assets[b] = {"href": f"scene{d}/{b}.tif"}
        scl = np.full((n, n), 4, np.uint8)
        if cloud:
            scl[: n // 2] = 9  # northern half: high-probability cloud
        _write(item_dir / "SCL.tif", scl, t.epsg, x0, y0, 20)
        assets["SCL"] = {"href": f"scene{d}/SCL.tif"}
        feats.append({"type": "Feature", "id": f"scene{d}", "collection": "sentinel-2-l2a",
                      "properties": {"datetime": f"2021-07-{day:02d}T10:00:00Z",
                                     "s2:processing_baseline": baseline},
                      "bbox": list(t.polygon_lonlat.buffer(0.01).bounds), "assets": assets})
    (tmp_path / "items.json").write_text(json.dumps({"type": "FeatureCollection",
                                                     "features": feats}))
    return tmp_path / "items.json"


def test_composite_masks_clouds_removes_offset_and_counts(tmp_path):
    tile = ref("31N-0100-1200")
    items = synthetic_archive(tmp_path, tile.id)
    src = LocalRasterSource(root=str(items))
    r = read_one(src, tile, "s2", expand("seasonal", "2021-JJA")[0])
    assert r.status == "done" and len(r.items) == 3
    b2, count = r.data[0].astype(float), r.data[-1]
    # south half: three clear dates (1.0, 1.2, 0.9) -> median 1.0; north: two (1.0, 0.9)
    assert (count[-50:] == 3).all() and (count[:50] == 2).all()
    assert np.allclose(b2[-50:], 1000, atol=1)
    assert np.allclose(b2[:50], 950, atol=1)
    rgb = read_one(src, tile, "s2rgb", expand("monthly", "2021-07")[0])
    assert rgb.data.dtype == np.uint8 and rgb.data.shape == (3, 448, 448)
    assert rgb.data[0, -1, -1] == round(1200 * 1e-4 / 0.3 * 255)  # B4 truth 1200


def test_corrupt_raster_fails_the_unit_with_a_clear_error(tmp_path):
    tile = ref("31N-0100-1200")
    items = synthetic_archive(tmp_path, tile.id)
    (tmp_path / "scene0" / "B5.tif").write_bytes(b"II*\x00garbage")
    src = LocalRasterSource(root=str(items))
    r = read_one(src, tile, "s2", expand("seasonal", "2021-JJA")[0])
    assert r.status == "failed" and "B5.tif" in r.error and "unreadable" in r.error


def test_missing_archive_is_bad_input(tmp_path):
    with pytest.raises(BadInput):
        LocalRasterSource(root=str(tmp_path / "none")).check()
    with pytest.raises(BadInput):
        LocalRasterSource()


def test_datetimes_are_utc_aware(tmp_path):
    items = synthetic_archive(tmp_path, "31N-0100-1200")
    its = LocalRasterSource(root=str(items)).items()
    assert all(i.datetime.tzinfo is not None for i in its)
    assert its[0].datetime == dt.datetime(2021, 7, 5, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize("res, offset", [(20.0, 0.0), (20.0, 10.0), (10.0, 0.0), (60.0, 30.0)])
def test_fast_separable_path_equals_a_gdal_bilinear_warp(tmp_path, res, offset):
    from rasterio.warp import Resampling, reproject

    from m3leo_tiles.sources.local.rasters import read_onto

    t = tile_from_id("31N-0100-1200")
    g = t.grid(10)
    rng = np.random.default_rng(1)
    n = int((4480 + 2000) / res)
    data = (1000 + 300 * rng.random((n, n))).astype(np.uint16)
    path = tmp_path / "b.tif"
    _write(path, data, t.epsg, t.bounds[0] - 1000 - offset, t.bounds[3] + 1000 + offset, res)
    ours = read_onto([str(path)], g, Resampling.bilinear)[0]
    ref = np.zeros(g.shape, np.float32)
    with rasterio.open(path) as ds:
        reproject(rasterio.band(ds, 1), ref, dst_transform=g.transform, dst_crs=g.crs,
                  resampling=Resampling.bilinear)
    np.testing.assert_allclose(ours, ref, rtol=2e-3)


@pytest.mark.parametrize("dates", [1, 2, 3, 4, 7])
def test_nan_median_equals_numpy(dates):
    from m3leo_tiles.sources.local import nan_median

    rng = np.random.default_rng(dates)
    stack = rng.integers(1, 50, (dates, 3, 64, 64)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        want = np.nanmedian(stack, axis=0)
    np.testing.assert_array_equal(nan_median(stack), want)


def test_nodata_neighbours_give_nan_not_a_blend(tmp_path):
    """A 20 m pixel flagged nodata must not leak into the 10 m bilinear result as a low value."""
    from rasterio.warp import Resampling

    from m3leo_tiles.sources.local.rasters import read_onto

    t = tile_from_id("31N-0100-1200")
    g = t.grid(10)
    n = int((4480 + 2000) / 20)
    data = np.full((n, n), 2000, np.uint16)
    data[100:110, 100:110] = 0
    path = tmp_path / "b.tif"
    _write(path, data, t.epsg, t.bounds[0] - 1000, t.bounds[3] + 1000, 20)
    out = read_onto([str(path)], g, Resampling.bilinear)[0]
    finite = out[np.isfinite(out)]
    assert np.isnan(out).sum() > 0 and np.all(finite == 2000)


def _recrs(path: Path, crs) -> None:
    with rasterio.open(path) as ds:
        data, prof = ds.read(1), ds.profile
    prof.update(crs=crs)
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(data, 1)


@pytest.mark.parametrize("crs, message", [
    (None, "B5.tif: raster has no CRS"),
    ('LOCAL_CS["site grid",UNIT["metre",1]]',
     "B5.tif: its CRS 'site grid' (Engineering CRS) cannot be related to the tile's EPSG:32631"),
])
def test_raster_in_a_crs_we_cannot_use_fails_its_unit_clearly(tmp_path, crs, message):
    tile = ref("31N-0100-1200")
    items = synthetic_archive(tmp_path, tile.id)
    _recrs(tmp_path / "scene0" / "B5.tif", crs)
    r = read_one(LocalRasterSource(root=str(items)), tile, "s2", expand("seasonal", "2021-JJA")[0])
    assert r.status == "failed" and message in r.error


def test_directory_scan_skips_a_raster_it_cannot_place_and_serves_the_rest(tmp_path, caplog):
    t = tile_from_id("31N-0100-1200")
    good, bad = tmp_path / "Copernicus_DSM_A_DEM.tif", tmp_path / "Copernicus_DSM_B_DEM.tif"
    for p in (good, bad):
        _write(p, np.full((700, 700), 120, np.uint16), t.epsg, t.bounds[0] - 1000,
               t.bounds[3] + 1000, 10)
    _recrs(bad, 'LOCAL_CS["site grid",UNIT["metre",1]]')
    src = LocalRasterSource(root=str(tmp_path))
    with caplog.at_level("WARNING"):
        assert [i.id for i in src.items()] == ["Copernicus_DSM_A_DEM"]
    assert "Copernicus_DSM_B_DEM.tif" in caplog.text and "site grid" in caplog.text
    r = read_one(src, ref(t.id), "dem", STATIC)
    assert r.status == "done" and np.allclose(r.data[0], 120)


def test_ghs_built_in_mollweide_lands_on_the_tile_grid_by_nearest(tmp_path):
    """JRC ships GHS-BUILT-S in Mollweide (ESRI:54009) at 100 m: a real reprojection, checked
    against the source cell that holds each target pixel centre."""
    t = tile_from_id("31N-0100-1200")
    moll = pyproj.Transformer.from_crs(t.epsg, "ESRI:54009", always_xy=True)
    xs, ys = moll.transform([t.bounds[0], t.bounds[2], t.bounds[0], t.bounds[2]],
                            [t.bounds[1], t.bounds[1], t.bounds[3], t.bounds[3]])
    x0, y0 = np.floor(min(xs) / 100) * 100 - 500, np.ceil(max(ys) / 100) * 100 + 500
    w, h = int((max(xs) - x0) / 100) + 10, int((y0 - min(ys)) / 100) + 10
    rng = np.random.default_rng(3)
    data = rng.integers(0, 10000, (h, w)).astype(np.uint16)
    data[:5] = 65535  # nodata rows north of the tile
    path = tmp_path / "GHS_BUILT_S_E2020_GLOBE_R2023A_54009_100_V1_0_R4_C19.tif"
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="uint16",
                       crs="ESRI:54009", nodata=65535, transform=from_origin(x0, y0, 100, 100),
                       tiled=True) as ds:
        ds.write(data, 1)
    src = LocalRasterSource(root=str(tmp_path))
    r = read_one(src, ref(t.id), "ghsbuilt", expand("annual", "2020")[0])
    assert r.status == "done" and r.data.shape == (1, 112, 112) and r.data.dtype == np.uint16
    g = t.grid(40)
    cx, cy = np.meshgrid(g.xs(), g.ys())
    mx, my = moll.transform(cx, cy)
    want = data[((y0 - my) // 100).astype(int), ((mx - x0) // 100).astype(int)]
    # GDAL's approximate transformer may pick a neighbour cell within 1/8 pixel of an edge
    assert (r.data[0] == want).mean() > 0.97
    assert read_one(src, ref(t.id), "ghsbuilt", expand("annual", "2015")[0]).status == "nodata"


def test_stac_catalog_with_earth_search_asset_names_equals_the_folder_scan(s1data, tmp_path):
    """A Catalog -> Collection -> Item tree (relative links, Earth Search keys `blue`, `scl`)
    indexes the same scene as scanning its folder, and gives the identical composite."""
    folder = s1data / S2_DIR
    item = json.loads((folder / "S2A_29RKH_20200219_0_L2A.json").read_text())
    names = {"blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
             "rededge3": "B07", "nir": "B08", "nir08": "B8A", "swir16": "B11", "swir22": "B12",
             "scl": "SCL"}
    item["assets"] = {k: {"href": str(folder / f"{v}.tif"), "type": "image/tiff"}
                      for k, v in names.items()}
    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "scene.json").write_text(json.dumps(item))
    (tmp_path / "collection.json").write_text(json.dumps(
        {"type": "Collection", "id": "sentinel-2-l2a",
         "links": [{"rel": "item", "href": "items/scene.json"},
                   {"rel": "self", "href": "https://example.invalid/collection.json"}]}))
    (tmp_path / "catalog.json").write_text(json.dumps(
        {"type": "Catalog", "id": "mine", "links": [{"rel": "child", "href": "collection.json"},
                                                     {"rel": "root", "href": "catalog.json"}]}))
    tile, period = ref("29N-0050-0610"), expand("seasonal", "2020")[0]
    from_catalog = read_one(LocalRasterSource(root=str(tmp_path)), tile, "s2", period)
    from_folder = read_one(LocalRasterSource(root=str(folder)), tile, "s2", period)
    assert from_catalog.status == "done" and from_catalog.items == ("S2A_29RKH_20200219_0_L2A",)
    np.testing.assert_array_equal(from_catalog.data, from_folder.data)


def test_a_json_that_is_not_stac_is_bad_input(tmp_path):
    (tmp_path / "items.json").write_text('{"type": "Topology"}')
    with pytest.raises(BadInput, match="not a STAC"):
        LocalRasterSource(root=str(tmp_path)).check()


def test_dem_partly_covered_keeps_nan_where_no_dem_tile_reaches(tmp_path):
    """A coastal tile: GLO-30 has no tile over open sea, so half the tile has no DEM."""
    t = tile_from_id("31N-0100-1200")
    n = 700
    yy, xx = np.mgrid[0:n, 0:n]
    plane = (100 + 0.1 * xx * 10).astype(np.float32)  # rises 0.1 m/m eastwards, 10 m pixels
    west = plane[:, :250]  # 1000 m west of the tile to 1500 m into it
    path = tmp_path / "Copernicus_DSM_W_DEM.tif"
    with rasterio.open(path, "w", driver="GTiff", width=west.shape[1], height=n, count=1,
                       dtype="float32", crs=f"EPSG:{t.epsg}",
                       transform=from_origin(t.bounds[0] - 1000, t.bounds[3] + 1000, 10, 10)
                       ) as ds:
        ds.write(west, 1)
    r = read_one(LocalRasterSource(root=str(tmp_path)), ref(t.id), "dem", STATIC)
    assert r.status == "done"
    elev, slope, aspect = r.data
    covered = np.isfinite(elev)
    assert covered[:, :150].all() and not covered[:, 150:].any()
    inside = covered & np.isfinite(slope)
    assert inside[:, :149].all()
    np.testing.assert_allclose(slope[inside], np.degrees(np.arctan(0.1)), atol=0.01)
    np.testing.assert_allclose(aspect[inside], 270.0, atol=0.1)


def test_dem_tiles_side_by_side_read_as_one_raster_across_the_seam(tmp_path):
    """GLO-30 comes in 1-degree tiles: a tile of ours across a seam must see the same
    elevation, slope and aspect as from one unsplit raster (warping each piece alone
    renormalises the kernel at its edge: up to 0.5 m and 1.5 deg off near the seam)."""
    res, lon0, lat0, n = 1 / 3600, 6.0, 0.6, 720
    yy, xx = np.mgrid[0:n, 0:n]
    dem = (300 + 50 * np.sin(xx / 40.0) + 30 * np.cos(yy / 25.0)).astype(np.float32)

    def write(path: Path, arr: np.ndarray, x0: float) -> None:
        path.parent.mkdir(exist_ok=True)
        with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                           count=1, dtype="float32", crs="EPSG:4326",
                           transform=from_origin(x0, lat0, res, res)) as ds:
            ds.write(arr, 1)

    write(tmp_path / "whole" / "Copernicus_DSM_W_DEM.tif", dem, lon0)
    write(tmp_path / "split" / "Copernicus_DSM_A_DEM.tif", dem[:, :360], lon0)
    write(tmp_path / "split" / "Copernicus_DSM_B_DEM.tif", dem[:, 360:], lon0 + 360 * res)
    x, y = from_lonlat(32632).transform(6.1, 0.5)  # the seam runs through this tile
    tile = ref(f"32N-{int(x // 4480):04d}-{int(y // 4480):04d}")
    whole = read_one(LocalRasterSource(root=str(tmp_path / "whole")), tile, "dem", STATIC)
    split = read_one(LocalRasterSource(root=str(tmp_path / "split")), tile, "dem", STATIC)
    assert split.status == "done" and len(split.items) == 2
    np.testing.assert_allclose(split.data, whole.data, atol=1e-4)


def test_granules_of_one_day_count_once(tmp_path):
    """Neighbouring MGRS granules of one pass overlap: their common pixels are one
    observation, so count is 2 (two days) and the median is over days, not granules."""
    t = tile_from_id("31N-0100-1200")
    feats = []
    for name, day, value in (("A", 5, 1000), ("B", 5, 1010), ("C", 15, 1200)):
        folder = tmp_path / name
        folder.mkdir()
        assets = {}
        for b in S2_BANDS + ("SCL",):
            res = 10 if b in ("B2", "B3", "B4", "B8") else 20
            m = int((4480 + 800) / res)
            data = np.full((m, m), 4 if b == "SCL" else value, np.uint8 if b == "SCL"
                           else np.uint16)
            _write(folder / f"{b}.tif", data, t.epsg, t.bounds[0] - 400, t.bounds[3] + 400, res)
            assets[b] = {"href": f"{name}/{b}.tif"}
        feats.append({"type": "Feature", "id": f"S2A_{name}", "collection": "sentinel-2-l2a",
                      "bbox": list(t.polygon_lonlat.buffer(0.01).bounds), "assets": assets,
                      "properties": {"datetime": f"2021-07-{day:02d}T10:{day:02d}:00Z"}})
    (tmp_path / "items.json").write_text(json.dumps({"type": "FeatureCollection",
                                                     "features": feats}))
    r = read_one(LocalRasterSource(root=str(tmp_path / "items.json")), ref(t.id), "s2",
                 expand("monthly", "2021-07")[0])
    assert r.status == "done" and len(r.items) == 3
    assert (r.data[-1] == 2).all()  # two days, not three granules
    assert (r.data[0] == 1100).all()  # median of day 5 (granule A first) and day 15


def test_truncated_tiff_fails_its_unit_naming_the_file_and_gdals_reason(tmp_path):
    tile = ref("31N-0100-1200")
    items = synthetic_archive(tmp_path, tile.id)
    path = tmp_path / "scene1" / "B11.tif"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 5])  # header intact, the tiles the window needs gone
    r = read_one(LocalRasterSource(root=str(items)), tile, "s2", expand("seasonal", "2021-JJA")[0])
    assert r.status == "failed"
    assert "unreadable raster B11.tif" in r.error and "TIFFReadEncodedTile" in r.error


def test_footprint_index_selects_what_a_full_scan_selects():
    import shapely

    from m3leo_tiles.sources.local import S2, Item

    rng = np.random.default_rng(5)
    items = []
    for k in range(1000):
        x, y = rng.uniform(1.7, 2.8), rng.uniform(47.8, 48.9)
        w = rng.uniform(0.01, 0.5)
        items.append(Item(f"s{k}", S2 if k % 3 else "other",
                          dt.datetime(2021, 1 + k % 12, 1 + k % 28, tzinfo=dt.UTC),
                          (x, y, x + w, y + w), {}))
    src = LocalRasterSource(root="unused")
    src._items = items
    period = expand("seasonal", "2021-JJA")[0]
    for tile_id in ("31N-0100-1200", "31N-0095-1190", "31N-0110-1210"):
        tile = ref(tile_id)
        box = shapely.box(*tile.polygon.bounds)
        want = sorted(it.id for it in items if it.collection == S2
                      and box.intersects(shapely.box(*it.bbox))
                      and period.contains(it.datetime.date()))
        got = sorted(it.id for it in src._select(tile, S2, period))
        assert got == want and len(want) > 3
