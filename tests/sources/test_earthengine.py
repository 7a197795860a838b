"""The Earth Engine source with the real `ee` client against a loopback REST server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from m3leo_tiles.errors import AuthError
from m3leo_tiles.grid import TileRef, tile_from_id
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.periods import STATIC, expand
from m3leo_tiles.runner.engine import UnitRetryPolicy, run_unit
from m3leo_tiles.sources.base import WorkUnit
from m3leo_tiles.sources.earthengine import EarthEngineSource
from tests.sources.ee_graph import Asset
from tests.sources.ee_server import EEServer

TILE = tile_from_id("31N-0100-1200")
REF = TileRef.of(TILE)


@pytest.fixture(autouse=True)
def offline_ee(monkeypatch):
    import ee
    import googleapiclient.http

    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda s: None)  # instant backoff


@pytest.fixture
def server():
    with EEServer(fill=lambda band, h, w: np.full((h, w), 7 if band == "count" else 1234)) as s:
        yield s


def read(src, modality: str, period):
    m = get_modality(modality)
    return list(src.read(WorkUnit(m.name, period.label, (TILE.id,)), {TILE.id: REF}, m, period))


S2 = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")


def s2_granule(date: str, level: float, scl: np.ndarray | int = 4,
               bbox: tuple[float, ...] = (2.0, 48.0, 3.0, 49.0)) -> Asset:
    """A COPERNICUS/S2_SR_HARMONIZED granule: uint16 reflectance (a level per date, an offset
    per band, a ramp along x) and its scene classes (4: vegetation, clear; 9: cloud)."""
    ramp = np.round(500 * np.arange(448)[None, :] / 448) * np.ones((448, 1))
    bands: dict = {b: level + 100 * i + ramp for i, b in enumerate(S2)}
    bands["SCL"] = scl
    return Asset(bands, bbox=bbox, date=date, dtype="<u2")


def test_one_request_per_tile_period_on_the_exact_grid():
    """The s2 composite the loopback evaluates from the recipe on known granules: per pixel
    the median over days (one mosaic per day: overlapping granules of a pass count once) of
    the SCL-clear values, rounded half up; and the count of clear days."""
    north_cloud = np.where(np.arange(448)[:, None] < 224, 9, 4) * np.ones((1, 448))
    east = (slice(None), slice(224, None))
    day1 = [s2_granule("2021-06-10T10:30:00", 1000.0),  # two granules of one pass
            s2_granule("2021-06-10T10:30:20", 1500.0)]
    day1[1].bands["SCL"] = np.where(np.arange(448)[None, :] >= 224, 4, 0) * np.ones((448, 1))
    day2 = s2_granule("2021-07-05T10:30:00", 1101.0, north_cloud)
    day3 = s2_granule("2021-08-20T10:30:00", 1201.0)  # a median of two ends in .5
    others = [s2_granule("2021-05-30T10:30:00", 9000.0),  # spring
              s2_granule("2021-07-15T10:30:00", 9000.0, bbox=(10.0, 44.0, 11.0, 45.0))]
    assets = {"COPERNICUS/S2_SR_HARMONIZED": day1 + [day2] + others + [day3]}
    with EEServer(assets=assets) as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url)
        (r,) = read(src, "s2", expand("seasonal", "2021-JJA")[0])
        assert r.status == "done" and r.data.shape == (11, 448, 448)
        assert r.data.dtype == np.uint16
        for i, b in enumerate(S2):
            d1 = day1[0].bands[b].copy()
            d1[east] = day1[1].bands[b][east]  # the later granule on top where it is clear
            days = np.stack([d1, np.where(north_cloud == 4, day2.bands[b], np.nan),
                             day3.bands[b]])
            want = np.floor(np.nanmedian(days, axis=0) + 0.5)  # round half up
            np.testing.assert_array_equal(r.data[i], want, err_msg=b)
        np.testing.assert_array_equal(r.data[10], np.where(north_cloud == 4, 3, 2))
        (req,) = server.pixel_requests()
        n = len(server.requests)
        (r,) = read(src, "s2", expand("seasonal", "2021-SON")[0])  # no granule: nodata
        assert r.status == "nodata" and len(server.requests) == n + 1
    body = req["body"]
    assert body["fileFormat"] == "NPY"
    assert body["bandIds"] == ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12",
                               "count"]
    assert body["grid"] == {"dimensions": {"width": 448, "height": 448},
                            "affineTransform": {"scaleX": 10.0, "shearX": 0.0,
                                                "translateX": 100 * 4480.0, "shearY": 0.0,
                                                "scaleY": -10.0, "translateY": 1201 * 4480.0},
                            "crsCode": "EPSG:32631"}
    graph = json.dumps(body["expression"])
    assert "COPERNICUS/S2_SR_HARMONIZED" in graph and "2021-06-01" in graph
    assert "2021-09-01" in graph and '"SCL"' in graph
    assert "Image.resample" in graph and '"bilinear"' in graph
    # one mosaic per day (overlapping granules of a pass count once), then the median
    for needle in ("ImageCollection.mosaic", "List.distinct", "YYYY-MM-dd",
                   "reduce.median", "reduce.count", "Image.round", "Image.max"):
        assert needle in graph, needle
    # (the second tile-period above cost exactly one more request: initialised once)


def test_dem_and_worldcover_graphs(server):
    src = EarthEngineSource(project="p", access_token="test", url=server.url)
    server.dtype_of = lambda band: "<f4" if band != "class" else "u1"
    server.fill = lambda band, h, w: (np.where(np.arange(w)[None, :] < 100, 1.0, 0.0)
                                      .repeat(h, 0) if band == "dem_valid"
                                      else np.full((h, w), 250.0))
    (r,) = read(src, "dem", STATIC)
    assert r.status == "done" and r.data.dtype == np.float32 and r.data.shape == (3, 448, 448)
    assert (r.data[:, :, :100] == 250).all() and np.isnan(r.data[:, :, 100:]).all()
    assert server.pixel_requests()[-1]["body"]["bandIds"] == ["elevation", "slope", "aspect",
                                                              "dem_valid"]
    graph = json.dumps(server.pixel_requests()[-1]["body"]["expression"])
    assert "COPERNICUS/DEM/GLO30" in graph and "Terrain.slope" in graph
    assert "Image.resample" in graph and '"bilinear"' in graph
    # open sea has no GLO-30 tile: nothing may depend on a first image existing
    assert "ImageCollection.merge" in graph and "ImageCollection.first" not in graph
    (r,) = read(src, "esawc", expand("annual", "2021")[0])
    assert "ESA/WorldCover/v200" in json.dumps(server.pixel_requests()[-1]["body"])
    (r,) = read(src, "esawc", expand("annual", "2019")[0])
    assert r.status == "nodata"


def test_429_then_success_is_retried_by_the_client(server):
    src = EarthEngineSource(project="p", access_token="test", url=server.url, client_retries=3)
    server.script = [("error", 429, "Too Many Requests"), ("error", 503, "unavailable")]
    (r,) = read(src, "s2", expand("seasonal", "2021-JJA")[0])
    assert r.status == "done"
    assert len(server.pixel_requests()) == 3


def test_repeated_5xx_is_a_transient_failure_without_multiplied_retries(server):
    src = EarthEngineSource(project="p", access_token="test", url=server.url, client_retries=2)
    server.script = [("error", 500, "Internal error")] * 20
    m, period = get_modality("s2"), expand("seasonal", "2021-JJA")[0]
    outs = run_unit(src, WorkUnit("s2", period.label, (TILE.id,)), {TILE.id: REF}, m, period,
                    "unused", {TILE.id: 0}, 0, UnitRetryPolicy(tries_per_run=3, base_delay=0))
    assert outs[0].status == "failed" and outs[0].transient
    assert "Internal error" in outs[0].error
    assert len(server.pixel_requests()) == 3  # the client's 1 + 2 retries, not x3 runner tries


def test_request_size_limit_splits_the_bands(server):
    src = EarthEngineSource(project="p", access_token="test", url=server.url)
    server.script = [("error", 400, "Total request size (60000000 bytes) must be less than or "
                      "equal to 50331648 bytes.")]
    (r,) = read(src, "s2", expand("seasonal", "2021-JJA")[0])
    assert r.status == "done" and (r.data[:10] == 1234).all()
    reqs = server.pixel_requests()
    assert [len(q["body"]["bandIds"]) for q in reqs] == [11, 5, 6]


def test_malformed_body_is_transient(server):
    src = EarthEngineSource(project="p", access_token="test", url=server.url)
    server.script = [("raw", b"not an npy file")]
    m, period = get_modality("s2"), expand("seasonal", "2021-JJA")[0]
    outs = run_unit(src, WorkUnit("s2", period.label, (TILE.id,)), {TILE.id: REF}, m, period,
                    "unused", {TILE.id: 0}, 0, UnitRetryPolicy())
    assert outs[0].status == "failed" and outs[0].transient and "malformed" in outs[0].error


def test_no_clear_pixel_is_nodata(server):
    server.fill = lambda band, h, w: np.zeros((h, w))
    src = EarthEngineSource(project="p", access_token="test", url=server.url)
    (r,) = read(src, "s2", expand("seasonal", "2021-JJA")[0])
    assert r.status == "nodata"


def test_missing_project_or_credentials_fail_before_any_work(monkeypatch, tmp_path):
    for var in ("EE_PROJECT", "GOOGLE_CLOUD_PROJECT", "EE_ACCESS_TOKEN",
                "GOOGLE_APPLICATION_CREDENTIALS", "EE_SERVICE_ACCOUNT_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(AuthError, match="Cloud project"):
        EarthEngineSource().check()
    with pytest.raises(AuthError, match="no Earth Engine credentials"):
        EarthEngineSource(project="p").check()
    bad = tmp_path / "key.json"
    bad.write_text("{}")
    with pytest.raises(AuthError, match="not a service-account key"):
        EarthEngineSource(project="p", credentials=str(bad)).check()


def test_cli_without_credentials_exits_2_and_creates_nothing(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("EE_", "GOOGLE_"))}
    env["HOME"] = str(tmp_path)
    aoi = tmp_path / "a.wkt"
    aoi.write_text("POLYGON((2 48, 2.1 48, 2.1 48.1, 2 48.1, 2 48))")
    p = subprocess.run([sys.executable, "-m", "m3leo_tiles", "fetch", "--region", str(aoi),
                        "-m", "s2", "--period", "2021", "--store", str(tmp_path / "s.zarr"),
                        "--source-opt", "earthengine.project=p"], env=env, capture_output=True,
                       text=True)
    assert p.returncode == 2 and "no Earth Engine credentials" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.wkt"]


UNREGISTERED = ("Project zz is not registered to use Earth Engine. Visit "
                "https://code.earthengine.google.com/register?project=zz to register your project.")


def test_unregistered_project_is_refused_at_check(server):
    server.algorithms_error = (403, UNREGISTERED)
    with pytest.raises(AuthError, match="refused project zz: Project zz is not registered"):
        EarthEngineSource(project="zz", access_token="test", url=server.url).check()
    assert not server.pixel_requests()


def test_unavailable_service_at_init_is_transient(server):
    from m3leo_tiles.errors import TransientError

    server.algorithms_error = (503, "The service is currently unavailable.")
    with pytest.raises(TransientError, match="unavailable"):
        EarthEngineSource(project="p2", access_token="test", url=server.url).check()


def test_cli_unregistered_project_exits_2_in_one_line_and_creates_nothing(
        server, tmp_path, monkeypatch, capsys):
    from m3leo_tiles.cli import main

    server.algorithms_error = (403, UNREGISTERED)
    monkeypatch.setenv("EE_ACCESS_TOKEN", "test")
    aoi = tmp_path / "a.wkt"
    aoi.write_text("POLYGON((2 48, 2.1 48, 2.1 48.1, 2 48.1, 2 48))")
    with pytest.raises(SystemExit) as e:
        main(["fetch", "--region", str(aoi), "-m", "s2", "--period", "2021",
              "--store", str(tmp_path / "s.zarr"), "--ee-project", "zz",
              "--source-opt", f"earthengine.url={server.url}"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "zz is not registered to use Earth Engine" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.wkt"]


N = 448  # the 10 m grid of a 4480 m tile
RAMP = np.arange(N)[None, :] * np.ones((N, 1)) / N  # values vary along x: a flip shows
HERE = (2.0, 48.0, 3.0, 49.0)  # around TILE
AWAY = (10.0, 44.0, 11.0, 45.0)


def s1_scene(date: str, orbit: str, vv: float, vh: float, west_only: bool = False,
             mode: str = "IW", pols: tuple[str, ...] = ("VV", "VH"),
             bbox: tuple[float, ...] = HERE) -> Asset:
    """A COPERNICUS/S1_GRD image (dB, as the catalogue stores it) with its properties."""
    def band(v: float) -> np.ma.MaskedArray:
        a = np.ma.masked_array(v + RAMP, np.zeros((N, N), bool))
        if west_only:
            a[:, N // 2:] = np.ma.masked  # the scene ends mid-tile
        return a
    return Asset({p: band({"VV": vv, "VH": vh}[p]) for p in pols},
                 {"instrumentMode": mode, "transmitterReceiverPolarisation": list(pols),
                  "orbitProperties_pass": orbit}, bbox=bbox, date=date)


def test_s1grd_ee_composites_per_pass_with_nan_where_a_pass_has_no_scene():
    """Pixels the loopback evaluates from the recipe on known scenes: the per-pass median of
    the IW VV+VH scenes of the season over the tile, NaN where a pass saw nothing."""
    keep_asc = [s1_scene("2019-12-03", "ASCENDING", -12.0, -19.0),
                s1_scene("2020-01-08", "ASCENDING", -14.0, -18.0),
                s1_scene("2020-02-25", "ASCENDING", -11.0, -21.0)]
    keep_des = [s1_scene("2019-12-10", "DESCENDING", -9.0, -16.0, west_only=True),
                s1_scene("2020-01-15", "DESCENDING", -10.0, -17.0, west_only=True)]
    left_out = [s1_scene("2020-01-01", "ASCENDING", 5.0, 5.0, mode="EW"),  # not IW
                s1_scene("2020-03-01", "ASCENDING", 5.0, 5.0),  # spring
                s1_scene("2019-11-30", "DESCENDING", 5.0, 5.0),  # autumn
                s1_scene("2020-01-02", "DESCENDING", 5.0, 5.0, pols=("VV",)),  # no VH
                s1_scene("2020-01-03", "ASCENDING", 5.0, 5.0, bbox=AWAY)]  # elsewhere
    assets = {"COPERNICUS/S1_GRD": keep_asc + left_out + keep_des}
    with EEServer(assets=assets) as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url)
        (r,) = read(src, "s1grd-ee", expand("seasonal", "2020-DJF")[0])
        assert r.status == "done" and r.data.shape == (4, N, N) and r.data.dtype == np.float32
        east = np.zeros((N, N), bool)
        east[:, N // 2:] = True
        for i, (pol, scenes, nan) in enumerate((("VV", keep_asc, None), ("VH", keep_asc, None),
                                                ("VV", keep_des, east), ("VH", keep_des, east))):
            want = np.median([sc.bands[pol].data for sc in scenes], axis=0)  # dB, per pixel
            if nan is not None:
                want[nan] = np.nan
            np.testing.assert_allclose(r.data[i], want.astype(np.float32), rtol=1e-6,
                                       equal_nan=True, err_msg=f"band {i}")
        body = server.pixel_requests()[-1]["body"]
        assert body["bandIds"] == ["VV_asc", "VH_asc", "VV_des", "VH_des", "count_asc",
                                   "count_des"]
        (r,) = read(src, "s1grd-ee", expand("seasonal", "2020-SON")[0])  # no scene
        assert r.status == "nodata" and "no Sentinel-1" in r.error


def test_treecover_and_ghsbuilt_on_their_coarser_rungs():
    mod44b = [Asset({"Percent_Tree_Cover": np.ma.masked_array(
        np.where(RAMP[:56, ::8] < 0.8, np.round(100 * RAMP[:56, ::8]), 200),
        np.zeros((56, 56), bool))}, date="2020-03-05", dtype="|u1"),
        Asset({"Percent_Tree_Cover": np.full((56, 56), 99.0)}, date="2019-03-06", dtype="|u1")]
    ghs = Asset({"built_surface": np.round(4000 * RAMP[:112, ::4])}, dtype="<u2")
    ghs_masked = np.ma.masked_array(np.zeros((112, 112)), np.ones((112, 112), bool))
    assets = {"MODIS/061/MOD44B": mod44b, "JRC/GHSL/P2023A/GHS_BUILT_S/2020": ghs,
              "JRC/GHSL/P2023A/GHS_BUILT_S/2025": Asset({"built_surface": ghs_masked})}
    with EEServer(assets=assets) as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url)
        (r,) = read(src, "treecover", expand("annual", "2020")[0])
        assert r.status == "done" and r.data.shape == (1, 56, 56)
        # the year's own image (not 2019's 99 %), MODIS 200 (water) kept as the product has it
        np.testing.assert_array_equal(r.data[0], mod44b[0].bands["Percent_Tree_Cover"].data)
        body = server.pixel_requests()[-1]["body"]
        assert body["grid"]["affineTransform"]["scaleX"] == 80.0
        assert body["grid"]["affineTransform"]["translateX"] == 100 * 4480.0
        (r,) = read(src, "ghsbuilt", expand("annual", "2020")[0])
        assert r.status == "done" and r.data.shape == (1, 112, 112) and r.data.dtype == np.uint16
        np.testing.assert_array_equal(r.data[0], ghs.bands["built_surface"])
        (r,) = read(src, "ghsbuilt", expand("annual", "2025")[0])  # masked: GHSL's no data
        assert r.status == "nodata" and "no ghsbuilt data" in r.error
        n = len(server.requests)
        (r,) = read(src, "ghsbuilt", expand("annual", "2021")[0])
        assert r.status == "nodata" and "every 5 years" in r.error and len(server.requests) == n
        (r,) = read(src, "treecover", expand("annual", "2026")[0])  # a year MODIS lacks
        assert r.status == "nodata"


def test_refused_credentials_are_an_auth_error_at_check(server):
    server.algorithms_error = (401, "Request had invalid authentication credentials.")
    with pytest.raises(AuthError, match="credentials refused"):
        EarthEngineSource(project="p3", access_token="expired", url=server.url).check()


@pytest.fixture
def one_granule():
    """A loopback holding one clear S2 granule (the same values on every tile's grid)."""
    granule = Asset({**{b: 1234.0 for b in S2}, "SCL": 4.0}, date="2021-07-01", dtype="<u2")
    with EEServer(assets={"COPERNICUS/S2_SR_HARMONIZED": [granule]}) as s:
        yield s


def test_cli_fetch_through_earth_engine_writes_the_store(one_granule, tmp_path, monkeypatch,
                                                         capsys):
    """The whole path from the command line: check, initialise once, one request per
    tile-period, chunks in the store (the granule's values, one clear day), and a rerun that
    asks Earth Engine nothing."""
    import xarray as xr

    from m3leo_tiles.cli import main

    server = one_granule
    monkeypatch.setenv("EE_ACCESS_TOKEN", "test")
    aoi = tmp_path / "a.wkt"
    aoi.write_text("POLYGON((2 48, 2.05 48, 2.05 48.04, 2 48.04, 2 48))")
    store = str(tmp_path / "s.zarr")
    args = ["fetch", "--region", str(aoi), "-m", "s2", "--period", "2021-JJA", "--store", store,
            "--ee-project", "p4", "--source-opt", f"earthengine.url={server.url}", "--json"]
    with pytest.raises(SystemExit) as e:
        main(args)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert e.value.code == 0 and out["failed"] == 0 and out["done"] >= 1
    assert len(server.pixel_requests()) == out["done"]
    ds = xr.open_zarr(store, group="s2", consolidated=False, mask_and_scale=False)
    assert list(ds["period"].values) == ["2021-JJA"]
    assert (ds["s2"].isel(tile=0, period=0).sel(band="B2").values == 1234).all()
    assert (ds["s2"].isel(tile=0, period=0).sel(band="count").values == 1).all()
    with pytest.raises(SystemExit):
        main(args)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["already_done"] == \
        out["done"]
    assert len(server.pixel_requests()) == out["done"]  # the rerun fetched no pixels


def _ramp(scale: float, offset: float = 0.0):
    """A band for any grid: offset + scale * x / width."""
    return lambda shape: offset + scale * np.linspace(0, 1, shape[1])[None, :].repeat(
        shape[0], 0)


@pytest.fixture
def optional():
    """A loopback holding descending S1 scenes of summer 2020 (no ascending one), a MOD44B
    and a GHS-BUILT-S image, their bands given for any grid."""
    des = {"instrumentMode": "IW", "transmitterReceiverPolarisation": ["VV", "VH"],
           "orbitProperties_pass": "DESCENDING"}
    assets = {
        "COPERNICUS/S1_GRD": [Asset({"VV": _ramp(10, -20), "VH": _ramp(10, -26)}, des,
                                    date=f"2020-0{m}-15") for m in (6, 7, 8)],
        "MODIS/061/MOD44B": [Asset({"Percent_Tree_Cover": lambda shape: np.where(
            _ramp(1)(shape) < 0.8, np.round(_ramp(100)(shape)), 200)}, date="2020-03-05",
            dtype="|u1")],
        "JRC/GHSL/P2023A/GHS_BUILT_S/2020": Asset({"built_surface": _ramp(5000)},
                                                  dtype="<u2")}
    with EEServer(assets=assets) as server:
        yield server


def test_optional_modalities_into_a_store_and_a_quicklook(optional, tmp_path, monkeypatch,
                                                          capsys):
    """s1grd-ee with no ascending pass, treecover and ghsbuilt through `fetch`, then one
    quicklook with a panel each (the s1grd-ee panel shows the pass that has data)."""
    import matplotlib.image

    from m3leo_tiles.cli import main
    from m3leo_tiles.quicklook import quicklook_tile

    monkeypatch.setenv("EE_ACCESS_TOKEN", "test")
    server = optional
    aoi = tmp_path / "a.wkt"
    aoi.write_text("POLYGON((2 48, 2.02 48, 2.02 48.02, 2 48.02, 2 48))")
    store = str(tmp_path / "s.zarr")
    for mod, period in (("s1grd-ee", "2020-JJA"), ("treecover", "2020"), ("ghsbuilt", "2020")):
        with pytest.raises(SystemExit) as e:
            main(["fetch", "--region", str(aoi), "-m", mod, "--period", period, "--store", store,
                  "--ee-project", "p5", "--source-opt", f"earthengine.url={server.url}",
                  "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert e.value.code == 0 and out["done"] >= 1 and out["failed"] == 0, (mod, out)
    import xarray as xr

    ds = xr.open_zarr(store, group="s1grd-ee", consolidated=False)
    grd = ds["s1grd-ee"].isel(tile=0, period=0)
    assert np.isnan(grd.sel(band="VV_asc")).all() and np.isfinite(grd.sel(band="VV_des")).all()
    tile = str(ds["tile"].values[0])
    png = quicklook_tile(store, tile, tmp_path / "ql.png")
    img = matplotlib.image.imread(png)
    assert img.shape[0] > 200 and img.shape[1] > 600 and img[..., :3].std() > 0.05


def test_a_tile_cut_at_the_antimeridian_filters_on_both_sides(server):
    """An RFC 7946 MultiPolygon footprint gives two small rectangles, not the whole globe."""
    tile = tile_from_id("01S-0039-1832")  # straddles 180 near Fiji
    ref = TileRef.of(tile)
    assert ref.polygon.geom_type == "MultiPolygon"
    src = EarthEngineSource(project="p", access_token="test", url=server.url)
    m = get_modality("dem")
    (r,) = src.read(WorkUnit(m.name, "static", (tile.id,)), {tile.id: ref}, m, STATIC)
    assert r.status == "done"
    graph = json.dumps(server.pixel_requests()[-1]["body"]["expression"])
    assert "GeometryConstructors.MultiPolygon" in graph
    body = server.pixel_requests()[-1]["body"]["expression"]
    lons: list[float] = []

    def walk(v) -> None:  # every [lon, lat] constant of the graph (and its value table)
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            if len(v) == 2 and all(isinstance(x, float) for x in v) and -17 < v[1] < -15:
                lons.append(v[0])
            for x in v:
                walk(x)

    walk(body)
    assert lons and min(lons) == -180.0 and max(lons) == 180.0
    assert all(abs(abs(v) - 180.0) < 0.1 for v in lons)  # no rectangle spans the globe
