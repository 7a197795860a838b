"""Back-geocoding against ESA's geolocation grids in real annotations."""

from __future__ import annotations

import pytest

from m3leo_tiles.sar.geocode import gcp_residuals
from m3leo_tiles.sar.safe import list_swaths, open_swath

PRODUCTS = [
    "hyp3-isce2/tests/data/packaging/slc/"
    "S1A_IW_SLC__1SDV_20250406T022008_20250406T022035_058630_07421F_93A7.SAFE",
    "hyp3-isce2/tests/data/packaging/slc/"
    "S1A_IW_SLC__1SDV_20250418T022008_20250418T022035_058805_074946_C7D4.SAFE",
    "sarsen/tests/data/S1A_IW_SLC__1SDV_20220104T170557_20220104T170624_041314_04E951_F1F1.SAFE",
    "xarray-sentinel/tests/data/S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.zip",
    "xarray-sentinel/tests/data/S1A_IW_SLC__1SDH_20220414T102209_20220414T102236_042768_051AA4_E677.SAFE",
]


@pytest.mark.parametrize("rel", PRODUCTS)
def test_geolocation_grid_rms_below_a_tenth_of_a_pixel(s1data, rel):
    seen = set()
    for swath, pol in list_swaths(s1data / rel):
        if swath in seen:
            continue
        seen.add(swath)
        r = gcp_residuals(open_swath(s1data / rel, swath, pol))
        assert r["rms_px"] <= 0.1, (swath, r)
        assert r["sample_rms"] < 0.01, (swath, r)


def test_half_range_delay_term_is_needed(s1data):
    """Pure zero-Doppler time misses the grid by a ramp of ~0.09 line across IW3."""
    sw = open_swath(s1data / PRODUCTS[0], "IW3", "VV")
    with_term, without = gcp_residuals(sw), gcp_residuals(sw, bistatic=False)
    assert with_term["line_max"] < 0.005 < 0.05 < without["line_max"]


def test_fast_grid_lonlat_and_seeded_newton_are_exact(s1data):
    import numpy as np
    from pyproj import Transformer

    from m3leo_tiles.grid.tiles import Tile
    from m3leo_tiles.sar.geocode import geodetic_to_ecef, grid_lonlat, zero_doppler

    g = Tile(9, "N", 127, 1286).grid(10)
    lon, lat = grid_lonlat(g)
    xs, ys = np.meshgrid(g.xs(), g.ys())
    elon, elat = Transformer.from_crs(g.epsg, 4326, always_xy=True).transform(xs, ys)
    # 1e-8 degree is about 1 mm
    assert np.abs(lon - elon).max() < 1e-8 and np.abs(lat - elat).max() < 1e-8
    sw = open_swath(s1data / PRODUCTS[0], "IW2", "VV")
    xyz = geodetic_to_ecef(lon, lat, np.full(lon.shape, 50.0))
    t1, r1 = zero_doppler(sw.orbit, xyz, 10.0)
    t2, r2 = zero_doppler(sw.orbit, xyz, 10.0, seed_step=0)
    assert np.abs(t1 - t2).max() < 1e-8 and np.abs(r1 - r2).max() < 1e-4
