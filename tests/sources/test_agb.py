"""`agb`: ESA CCI Biomass AGB and its SD from local CCI tiles/NetCDF and from Earth Engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from pyproj import CRS
from rasterio.transform import from_origin

from m3leo_tiles.grid import TileRef, tile_from_id
from m3leo_tiles.grid.tiles import to_lonlat
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.periods import expand
from m3leo_tiles.sources.base import WorkUnit
from m3leo_tiles.sources.earthengine import CCI_AGB_ASSET, EarthEngineSource
from m3leo_tiles.sources.local import LocalRasterSource
from tests.sources.ee_graph import Asset
from tests.sources.ee_server import EEServer

TILE = tile_from_id("31N-0100-1200")
REF = TileRef.of(TILE)
RES = 1 / 1125  # the CCI grid: ~100 m in degrees
Y2020 = expand("annual", "2020")[0]


def read(src, period=Y2020):
    m = get_modality("agb")
    (r,) = src.read(WorkUnit("agb", period.label, (TILE.id,)), {TILE.id: REF}, m, period)
    return r


@pytest.fixture(scope="module")
def cci():
    """A patch of CCI grid around the tile: AGB 0-450 Mg/ha (zeros included), SD ~ AGB/5."""
    lon0, lat0, lon1, lat1 = TILE.polygon_lonlat.bounds
    x0 = np.floor(lon0 / RES) * RES - 10 * RES
    y0 = np.ceil(lat1 / RES) * RES + 10 * RES
    w, h = int((lon1 - x0) / RES) + 20, int((y0 - lat0) / RES) + 20
    rng = np.random.default_rng(11)
    agb = rng.integers(0, 450, (h, w)).astype(np.uint16)
    agb[rng.random((h, w)) < 0.2] = 0  # non-forest
    sd = (agb // 5 + rng.integers(0, 5, (h, w))).astype(np.uint16)
    return x0, y0, agb, sd


def _tif(path, x0, y0, data, nodata=0):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                       count=1, dtype="uint16", crs="EPSG:4326", nodata=nodata,
                       transform=from_origin(x0, y0, RES, RES)) as ds:
        ds.write(data, 1)


def _source_cells(x0, y0, data):
    """The value of the CCI cell holding each 40 m pixel centre of the tile."""
    g = TILE.grid(40)
    cx, cy = np.meshgrid(g.xs(), g.ys())
    lon, lat = to_lonlat(TILE.epsg).transform(cx, cy)
    return data[((y0 - lat) // RES).astype(int), ((lon - x0) // RES).astype(int)]


def test_cci_geotiff_tiles_by_nearest_with_zero_kept(cci, tmp_path):
    x0, y0, agb, sd = cci
    # CEDA's names; a declared nodata of 0 (as some tools write) must not erase 0 Mg/ha
    _tif(tmp_path / "N50E000_ESACCI-BIOMASS-L4-AGB-MERGED-100m-2020-fv6.0.tif", x0, y0, agb)
    _tif(tmp_path / "N50E000_ESACCI-BIOMASS-L4-AGB_SD-MERGED-100m-2020-fv6.0.tif", x0, y0, sd)
    r = read(LocalRasterSource(root=str(tmp_path)))
    assert r.status == "done", r.error
    assert r.data.shape == (2, 112, 112) and r.data.dtype == np.uint16
    for band, src in enumerate((agb, sd)):
        want = _source_cells(x0, y0, src)
        # GDAL's approximate transformer may pick a neighbour within 1/8 pixel of an edge
        assert (r.data[band] == want).mean() > 0.97
    assert (r.data[0] == 0).mean() > 0.1 and (r.data != 65535).all()
    assert r.items == ("ESACCI-AGB-N50E000-2020-fv6.0",)
    # another year, or a tile without its SD file, is nodata
    assert read(LocalRasterSource(root=str(tmp_path)), expand("annual", "2021")[0]).status == \
        "nodata"
    (tmp_path / "N50E000_ESACCI-BIOMASS-L4-AGB_SD-MERGED-100m-2020-fv6.0.tif").unlink()
    assert read(LocalRasterSource(root=str(tmp_path))).status == "nodata"


def test_cci_netcdf_gives_the_geotiff_answer(cci, tmp_path):
    import xarray as xr

    x0, y0, agb, sd = cci
    h, w = agb.shape
    lat = y0 - (np.arange(h) + 0.5) * RES
    lon = x0 + (np.arange(w) + 0.5) * RES
    crs = xr.DataArray(0, attrs={"grid_mapping_name": "latitude_longitude",
                                 "spatial_ref": CRS.from_epsg(4326).to_wkt()})
    ds = xr.Dataset(
        {"agb": (("lat", "lon"), agb.astype(np.int16), {"units": "Mg/ha", "grid_mapping": "crs"}),
         "agb_sd": (("lat", "lon"), sd.astype(np.int16), {"units": "Mg/ha",
                                                          "grid_mapping": "crs"}),
         "crs": crs},
        coords={"lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})})
    for v in ("agb", "agb_sd"):
        ds[v].encoding["_FillValue"] = np.int16(-32768)
    nc = tmp_path / "nc"
    nc.mkdir()
    ds.to_netcdf(nc / "ESACCI-BIOMASS-L4-AGB-MERGED-100m-2020-fv4.0.nc",
                 format="NETCDF3_CLASSIC")
    r = read(LocalRasterSource(root=str(nc)))
    assert r.status == "done", r.error
    tif = tmp_path / "tif"
    tif.mkdir()
    _tif(tif / "N50E000_ESACCI-BIOMASS-L4-AGB-MERGED-100m-2020-fv4.0.tif", x0, y0, agb)
    _tif(tif / "N50E000_ESACCI-BIOMASS-L4-AGB_SD-MERGED-100m-2020-fv4.0.tif", x0, y0, sd)
    np.testing.assert_array_equal(r.data, read(LocalRasterSource(root=str(tif))).data)
    assert (r.data[0] == _source_cells(x0, y0, agb)).mean() > 0.97


@pytest.fixture
def ee_offline(monkeypatch):
    import ee
    import googleapiclient.http

    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda s: None)


def _epoch(year: int, scale: float) -> Asset:
    """A CCI AGB epoch image as the community collection holds it: AGB and SD in Mg/ha,
    0 ingested as no data (masked)."""
    ramp = np.linspace(0, 1, 112)[None, :].repeat(112, 0)
    agb, sd = np.where(ramp < 0.3, 0, np.round(scale * ramp)), np.round(0.1 * scale * ramp)
    return Asset({"AGB": np.ma.masked_equal(agb, 0), "SD": np.ma.masked_equal(sd, 0)},
                 date=f"{year}-01-01", dtype="<u2")


def test_earth_engine_agb_from_the_community_collection(ee_offline):
    """Pixels the loopback evaluates from the recipe on known epochs: the year's AGB and SD,
    no data back to 0 as in the product files; a year with no epoch is nodata."""
    epochs = [_epoch(2018, 300.0), _epoch(2020, 400.0), _epoch(2021, 500.0)]
    with EEServer(assets={CCI_AGB_ASSET: epochs}) as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url)
        r = read(src)
        assert r.status == "done" and r.data.shape == (2, 112, 112)
        assert r.data.dtype == np.uint16 and (r.data[0, :, :30] == 0).all()
        np.testing.assert_array_equal(r.data[0], epochs[1].bands["AGB"].filled(0))
        np.testing.assert_array_equal(r.data[1], epochs[1].bands["SD"].filled(0))
        assert r.data[0, 0, -1] == 400 and r.data[1, 0, -1] == 40
        body = server.pixel_requests()[-1]["body"]
        assert body["bandIds"] == ["agb", "agb_sd", "agb_epoch"]
        assert body["grid"]["affineTransform"]["scaleX"] == 40.0
        assert "Image.resample" not in json.dumps(body)  # nearest, as the local path
        r = read(src, expand("annual", "2013")[0])  # a year the collection has no epoch for
        assert r.status == "nodata" and "no ESA CCI AGB epoch" in r.error


def test_fetch_agb_into_a_store_from_local_files(cci, tmp_path, capsys):
    import xarray as xr

    from m3leo_tiles.cli import main

    x0, y0, agb, sd = cci
    _tif(tmp_path / "N50E000_ESACCI-BIOMASS-L4-AGB-MERGED-100m-2017-fv4.0.tif", x0, y0, agb)
    _tif(tmp_path / "N50E000_ESACCI-BIOMASS-L4-AGB_SD-MERGED-100m-2017-fv4.0.tif", x0, y0, sd)
    c = TILE.polygon_lonlat.centroid
    aoi = tmp_path / "a.wkt"
    aoi.write_text(f"POLYGON(({c.x} {c.y}, {c.x + 0.001} {c.y}, {c.x + 0.001} {c.y + 0.001}, "
                   f"{c.x} {c.y}))")
    store = str(tmp_path / "s.zarr")
    with pytest.raises(SystemExit) as e:
        main(["fetch", "--region", str(aoi), "-m", "agb", "--period", "2017", "--store", store,
              "--source", "local", "--source-opt", f"local.root={tmp_path}", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert e.value.code == 0 and out["done"] == 1, out
    ds = xr.open_zarr(store, group="agb", consolidated=False, mask_and_scale=False)
    assert list(ds["band"].values) == ["agb", "agb_sd"] and ds["agb"].attrs["units"] == "Mg/ha"
    got = ds["agb"].sel(tile=TILE.id, period="2017", band="agb").values
    assert (got == _source_cells(x0, y0, agb)).mean() > 0.97
