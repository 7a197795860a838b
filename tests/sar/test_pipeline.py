"""The geocoded-SLC chain on real annotations with a synthetic point target and speckle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Transformer

from m3leo_tiles.errors import PairError, PermanentError, SafeError
from m3leo_tiles.grid.geobox import GeoBox
from m3leo_tiles.sar.geocode import grid_ecef
from m3leo_tiles.sar.product import check_pair, open_product
from m3leo_tiles.sar.radargrid import geocode_grid
from m3leo_tiles.sar.resample import geocode_backscatter, geocode_slc

from .synth import PAIR, copy_safe, gcp_target, point_target, write_sparse


@pytest.fixture(scope="module")
def pair_dir(s1data):
    return sorted((s1data / PAIR).glob("*.SAFE"))


def _grid_at(lon, lat, n=9, res=10.0):
    zone = int((lon + 180) // 6) + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    return GeoBox(epsg, x - res * (n // 2 + 0.5), y + res * (n // 2 + 0.5), res, res, n, n)


@pytest.mark.parametrize("ia,ir", [(4, 10), (2, 3), (7, 18)])
def test_point_target_geocodes_with_flat_phase(pair_dir, tmp_path, ia, ir):
    safe = copy_safe(pair_dir[0], tmp_path)
    from m3leo_tiles.sar.safe import open_swath

    sw = open_swath(safe, "IW2", "VV")
    lon, lat, h, burst, line, sample, rng = gcp_target(sw, ia, ir)
    write_sparse(safe, "IW2", "VV", [point_target(sw, burst, line, sample, rng)])
    prod = open_product(str(safe), ["VV"], swaths=["IW2"])
    grid = _grid_at(lon, lat)
    xyz = grid_ecef(grid, np.full(grid.shape, h))
    geo = geocode_grid(prod, xyz)
    c = grid.height // 2
    assert geo.burst[c, c] == burst
    assert abs(geo.line[c, c] - line) < 0.01 and abs(geo.sample[c, c] - sample) < 0.01
    g = geocode_slc(prod, geo, "VV")
    v = g[c, c]
    assert abs(abs(v) / 1000 - 1) < 0.02, abs(v)
    assert abs(np.angle(v)) < 0.05, np.angle(v)  # flattened: -4 pi R / lambda removed
    prod.close()


def test_speckle_backscatter_and_coverage(pair_dir, tmp_path):
    safe = copy_safe(pair_dir[0], tmp_path)
    from m3leo_tiles.sar.safe import open_swath

    sw = open_swath(safe, "IW2", "VV")
    lon, lat, h, burst, line, sample, _ = gcp_target(sw, 4, 10)
    rng = np.random.default_rng(0)
    b = sw.bursts[burst]
    r0, c0 = int(line) - 200, int(sample) - 600
    dn = 100 * (rng.normal(size=(400, 1200)) + 1j * rng.normal(size=(400, 1200))) / math.sqrt(2)
    write_sparse(safe, "IW2", "VV", [(b.first_line + r0, c0, dn)])
    prod = open_product(str(safe), ["VV"], swaths=["IW2"])
    grid = _grid_at(lon, lat, n=40)
    geo = geocode_grid(prod, grid_ecef(grid, np.full(grid.shape, h)))
    assert geo.covered.all()
    s0 = geocode_backscatter(prod, geo, "VV", 10.0, denoise=False)
    from m3leo_tiles.sar.calibrate import calibration_lut

    a = calibration_lut(sw, np.array([b.first_line + int(line)]), np.array([int(sample)]))[0, 0]
    expect = 100**2 / a**2
    assert abs(np.nanmean(s0) / expect - 1) < 0.05
    prod.close()


def test_pair_checks(pair_dir, s1data):
    ref = open_product(str(pair_dir[0]), ["VV"], swaths=["IW2"])
    sec = open_product(str(pair_dir[1]), ["VV"], swaths=["IW2"])
    check_pair(ref, sec)
    with pytest.raises(PairError) as err:
        check_pair(sec, ref)  # secondary earlier
    # the runner records it as a permanent failure of the unit, not a retry
    assert isinstance(err.value, PermanentError) and "after the reference" in str(err.value)
    other = open_product(str(s1data / "sarsen/tests/data/"
                             "S1A_IW_SLC__1SDV_20220104T170557_20220104T170624_041314_04E951_F1F1.SAFE"),
                         ["VV"])
    with pytest.raises(PairError):
        check_pair(ref, other)
    with pytest.raises(SafeError):
        open_product(str(s1data / "sarsen/tests/data/"
                         "S1A_IW_SLC__1SDV_20220104T170557_20220104T170624_041314_04E951_F1F1.SAFE"),
                     ["VH"])


def test_truncated_measurement_is_a_clear_error(pair_dir, tmp_path):
    safe = copy_safe(pair_dir[0], tmp_path)
    from m3leo_tiles.sar.safe import open_swath

    sw = open_swath(safe, "IW2", "VV")
    rng = np.random.default_rng(0)
    dn = (rng.normal(size=(2000, 3000)) * 100).astype(np.complex64)
    write_sparse(safe, "IW2", "VV", [(5000, 8000, dn)])
    path = next((safe / "measurement").glob("*-iw2-slc-vv-*.tiff"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    prod = open_product(str(safe), ["VV"], swaths=["IW2"])
    with pytest.raises(SafeError, match="truncated or corrupt|measurement"):
        prod.read(sw, 6500, 6600, 10000, 10100)
    prod.close()


def test_geoid_offline(tmp_path):
    """The bundled 0.5-degree EGM96 (or a PROJ grid found on the machine) gives N offline."""
    from m3leo_tiles.sar.dem import GeoTiffDem
    from m3leo_tiles.sar.geoid import undulation

    n, model = undulation(np.array([0.0, 86.925, 12.5]), np.array([0.0, 27.988, 41.9]))
    # EGM96 undulation: (0, 0) 17.16 m; near Everest -28.7 m; Rome ~48.5 m
    assert abs(n[0] - 17.16) < 0.5 and abs(n[1] + 28.7) < 1.5 and abs(n[2] - 48.5) < 1.0, n
    assert "EGM" in model
    # a DEM in EGM2008 heights is lifted by N onto the ellipsoid
    import rasterio

    g = GeoBox(32633, 290000, 4650000, 10, 10, 8, 8)
    dem = tmp_path / "d.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=40, height=40, count=1,
                       dtype="float32", crs=g.crs,
                       transform=rasterio.Affine(10, 0, g.x0 - 100, 0, -10, g.y0 + 100)) as r:
        r.write(np.full((40, 40), 100, np.float32), 1)
    h_ell = GeoTiffDem(str(dem), "egm2008")(g)
    h_raw = GeoTiffDem(str(dem), "ellipsoid")(g)
    assert np.allclose(h_raw, 100) and 140 < float(h_ell.mean()) < 155


def test_deramp_recurrence_equals_the_carrier_formula(pair_dir):
    """The fast deramp vs pi kt (eta - eta_ref)^2 evaluated directly (s1reader's form)."""
    from m3leo_tiles.sar.safe import open_swath
    from m3leo_tiles.sar.tops import burst_carrier, deramp

    sw = open_swath(pair_dir[0], "IW2", "VV")
    bc = burst_carrier(sw, 4)
    w2 = np.ones((2, 700, 600), np.complex64)
    w2[1] *= 3j  # a second polarisation: the same phasor
    deramp(w2, 100, 3000, *bc.args())
    assert np.allclose(w2[1], 3j * w2[0])
    w = w2[0]
    ii, jj = np.meshgrid(np.arange(100, 800), np.arange(3000, 3600), indexing="ij")
    tau = sw.tau0 + jj / sw.fs
    ka = np.polyval(bc.fm_c[::-1], tau - bc.fm_t0)
    fdc = np.polyval(bc.dc_c[::-1], tau - bc.dc_t0)
    tau0 = sw.tau0
    eta_ref = (np.polyval(bc.dc_c[::-1], tau0 - bc.dc_t0) / np.polyval(bc.fm_c[::-1], tau0 - bc.fm_t0)
               - fdc / ka)
    kt = bc.ks / (1 - bc.ks / ka)
    eta = (ii - sw.lines_per_burst // 2) * sw.dt
    phi = np.pi * kt * (eta - eta_ref) ** 2
    assert np.abs(np.angle(w * np.exp(1j * phi))).max() < 1e-5
    # a TOPS burst sweeps a few kHz of Doppler: kt ~ 1.5-2 kHz/s for IW2
    assert 1000 < float(kt.mean()) < 2500


def test_pixels_read_from_a_zip(s1data):
    """Windowed reads through /vsizip/ (the xarray-sentinel test zip holds constant DN)."""
    from m3leo_tiles.sar.safe import open_swath

    z = s1data / ("xarray-sentinel/tests/data/"
                  "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.zip")
    sw = open_swath(z, "IW1", "VV")
    assert sw.measurement.startswith("/vsizip/")
    a = sw.read(4000, 4010, 12000, 12020)
    assert a.shape == (10, 20) and np.all(a == 2)
    prod = open_product(str(z), ["VH"], swaths=["IW2"])
    b = prod.read(prod.swaths["IW2"]["VH"], 100, 104, 5000, 5003)
    assert np.all(b == 1j)
    prod.close()


def test_real_dem_on_a_tile(s1data):
    """The Rome 30 m DEM (compound CRS WGS84 + EGM96 height) read onto a UTM tile grid."""
    from m3leo_tiles.grid.tiles import Tile
    from m3leo_tiles.sar.dem import GeoTiffDem

    dem = GeoTiffDem(str(s1data / "sarsen/tests/data/Rome-30m-DEM.tif"), "ellipsoid")
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32633, always_xy=True).transform(12.50, 42.00)
    t = Tile(33, "N", int(x // 4480), int(y // 4480))
    g = t.grid(10)
    assert dem.covers(g)
    h = dem(g)
    assert np.isfinite(h).all() and 0 < float(h.mean()) < 120
    off = Tile(33, "N", t.col + 5, t.row)
    assert not dem.covers(off.grid(10)) and np.isnan(dem(off.grid(10))).all()


def test_process_grd_on_a_real_format_zip(s1data):
    """End to end on the xarray-sentinel zip (real strips/zstd measurement, constant DN 2):
    the geocoded sigma0 equals |2|^2 / A^2 from the real LUT at each pixel's radar position."""
    from m3leo_tiles.grid.tiles import Tile
    from m3leo_tiles.sar.calibrate import calibration_lut
    from m3leo_tiles.sar.pipeline import process_grd
    from m3leo_tiles.sources.base import TileRef

    z = s1data / ("xarray-sentinel/tests/data/"
                  "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.zip")
    from m3leo_tiles.sar.safe import open_swath

    sw = open_swath(z, "IW1", "VV")
    lon, lat, h, burst, line, sample, _ = gcp_target(sw, 5, 10)
    ref = TileRef("small", _grid_at(lon, lat, n=64), Tile(32, "N", 0, 0).polygon_lonlat)
    out = process_grd(str(z), [ref], lambda g: np.full(g.shape, h), ["VV"], swaths=["IW1"],
                      denoise=False)
    db = out["small"][0]
    assert np.isfinite(db).mean() > 0.95
    prod = open_product(str(z), ["VV"], swaths=["IW1"])
    geo = geocode_grid(prod, grid_ecef(ref.grid, np.full(ref.grid.shape, h)))
    rng = np.random.default_rng(0)
    for _ in range(20):
        i, j = rng.integers(0, 64, 2)
        b = sw.bursts[int(geo.burst[i, j])]
        a = calibration_lut(sw, np.array([b.first_line + geo.line[i, j]]),
                            np.array([geo.sample[i, j]]))[0, 0]
        assert abs(db[i, j] - 10 * np.log10(4 / a**2)) < 0.01
    prod.close()
