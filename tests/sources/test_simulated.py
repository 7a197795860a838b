"""The simulator: real SAFE layout, ESA geometry, calibrated amplitudes, determinism."""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from importlib import resources

import numpy as np
import pytest
import rasterio
import xarray_sentinel

from m3leo_tiles.errors import BadInput
from m3leo_tiles.sources.simulated import geometry as geo
from m3leo_tiles.sources.simulated import simulate
from m3leo_tiles.sources.simulated.scene import CLASSES


def _annotation(p: str = "vv") -> ET.Element:
    data = resources.files("m3leo_tiles.sources.simulated") / "data" / f"annotation-iw2-{p}.xml.gz"
    return ET.fromstring(gzip.decompress(data.read_bytes()))


def test_own_geometry_reproduces_esa_geolocation_grid():
    root = _annotation()
    tm = geo.read_timing(root)
    orbit = geo.OrbitFit.fit(tm.orbit_times, tm.orbit_pos)
    fitted = orbit.position(np.array([orbit.seconds(t) for t in tm.orbit_times]))
    assert np.abs(fitted - tm.orbit_pos).max() < 1e-3  # state vectors to the millimetre
    g = geo.grid_points(root)
    pts = geo.geodetic_to_ecef(g["longitude"], g["latitude"], g["height"])
    t, r = geo.zero_doppler(orbit, pts, orbit.seconds(tm.first_line[4]))
    t_esa = np.array([orbit.seconds(x) for x in g["azimuthTime"]])
    line_err = (t - t_esa) / tm.dt
    pixel_err = (2 * r / geo.C - g["slantRangeTime"]) * tm.fs
    assert np.sqrt(np.mean(line_err**2 + pixel_err**2)) < 0.1
    assert np.abs(line_err).max() < 0.1 and np.abs(pixel_err).max() < 0.1


def test_products_open_with_xarray_sentinel_and_match_their_annotation(small_sim):
    m = json.loads((small_sim / "simulation.json").read_text())
    assert len(m["products"]) == 2 and len(m["tiles"]) >= 4
    for prod in m["products"]:
        safe = small_sim / prod
        top = xarray_sentinel.open_sentinel1_dataset(safe)
        assert "IW2/VV" in top.attrs["subgroups"] and "IW2/VH" in top.attrs["subgroups"]
        ds = xarray_sentinel.open_sentinel1_dataset(safe, group="IW2/VV")
        assert ds.measurement.shape == (m["lines"], m["samples"])
        assert ds.attrs["relative_orbit_number"] == 108
        with rasterio.open(next((safe / "measurement").glob("*vv*.tiff"))) as f:
            assert f.dtypes[0] == "complex_int16" and f.block_shapes[0] == (1, m["samples"])
    d0, d1 = (xarray_sentinel.open_sentinel1_dataset(small_sim / p) for p in m["products"])
    assert (np.datetime64(d1.attrs["start_time"]) - np.datetime64(d0.attrs["start_time"])
            ).astype("timedelta64[D]").astype(int) == 12


def test_calibrated_intensity_matches_the_scene(small_sim):
    """Mean sigma0 of a burst (noise removed, xarray-sentinel's LUTs) vs the scene's classes."""
    m = json.loads((small_sim / "simulation.json").read_text())
    safe = small_sim / m["products"][0]
    ds = xarray_sentinel.open_sentinel1_dataset(safe, group="IW2/VV")
    cal = xarray_sentinel.open_sentinel1_dataset(safe, group="IW2/VV/calibration")
    noise = xarray_sentinel.open_sentinel1_dataset(safe, group="IW2/VV/noise_range")
    burst = xarray_sentinel.crop_burst_dataset(ds, burst_index=1).measurement.compute()
    s0 = xarray_sentinel.calibrate_intensity(burst, cal.sigmaNought)
    nz = noise.noiseRangeLut.isel(line=0).interp(pixel=burst.pixel).values
    lut = cal.sigmaNought.interp(line=burst.line, pixel=burst.pixel).values
    clean = s0.values - nz[None, :] / lut**2
    # away from burst and swath edges; ESA's valid samples start at 970 in these bursts
    core = clean[100:-100, 1100:-50]
    # the scene's classes under the tiles (the same landscape the burst sees)
    classes = np.concatenate([np.load(small_sim / f)["classes"].ravel() for f in m["truth"]])
    expect = np.mean([10 ** (CLASSES[c][2] / 10) for c in classes[::97]])
    assert abs(10 * np.log10(core.mean()) - 10 * np.log10(expect)) < 1.0


def test_truth_and_rasters_are_on_the_tile_grids(small_sim):
    from m3leo_tiles.grid import tile_from_id

    m = json.loads((small_sim / "simulation.json").read_text())
    t = np.load(small_sim / m["truth"][0])
    assert t["classes"].shape == (448, 448) and t["deformation"].shape == (2, 448, 448)
    assert set(np.unique(t["classes"])) <= set(CLASSES)
    tile = tile_from_id(m["tiles"][0])
    with rasterio.open(small_sim / m["dem"]) as dem:
        assert dem.crs.to_epsg() == tile.epsg and dem.res == (10.0, 10.0)
        assert (dem.transform.c - tile.bounds[0]) % 10 == 0  # the 10 m lattice: no resampling
        win = dem.window(*tile.bounds)
        np.testing.assert_allclose(dem.read(1, window=win), t["height"])
    items = json.loads((small_sim / m["rasters"]).read_text())["features"]
    assert {i["collection"] for i in items} == {"sentinel-2-l2a", "cop-dem-glo-30",
                                                "esa-worldcover"}


def test_bad_arguments(tmp_path, small_sim):
    with pytest.raises(BadInput):
        simulate(tmp_path, size="huge")
    with pytest.raises(BadInput, match="already holds"):
        simulate(small_sim)


@pytest.mark.slow
def test_equal_seeds_give_identical_files(tmp_path, small_sim):
    simulate(tmp_path / "again", size="small", seed=0)
    for f in sorted(small_sim.rglob("*")):
        if f.is_file() and f.name != "simulation.json":
            assert (tmp_path / "again" / f.relative_to(small_sim)).read_bytes() == f.read_bytes()
