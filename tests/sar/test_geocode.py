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
