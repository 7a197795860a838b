"""Geocoding a tile by interpolation between exact nodes vs exact geocoding of every pixel.

The processor solves zero-Doppler exactly on nodes every NODE_STEP pixels at N_LEVELS heights
and interpolates (bilinear in the grid, Lagrange across heights); here both are run on a
full 448 x 448 tile with rough relief (1.4 km peak to peak plus 30 m noise) and compared:
burst choice identical, line and sample within 0.001 px, and the range error common to both
dates of a pair (it cancels in the interferogram) to well under a millimetre of difference.
Real geometry (the hyp3-isce2 pair's annotations) where ../shared is present, else the
simulator's products.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pyproj import Transformer

from m3leo_tiles.grid.geobox import GridSpec
from m3leo_tiles.sar.geocode import grid_ecef
from m3leo_tiles.sar.product import open_product
from m3leo_tiles.sar.radargrid import NODE_STEP, GridPoints, geocode_grid, grid_points

from ..conftest import S1DATA
from .synth import PAIR


@pytest.fixture(scope="module")
def pair(request) -> list[str]:
    """Two dates of one track: the real pair's annotations, else the simulator's."""
    if S1DATA.is_dir():
        return [str(p) for p in sorted((S1DATA / PAIR).glob("*.SAFE"))]
    sim = request.getfixturevalue("small_sim")
    return [str(sim / p) for p in json.loads((sim / "simulation.json").read_text())["products"]]


def _rough_tile(prod, frac: tuple[float, float]) -> tuple[GridSpec, np.ndarray]:
    g = prod.geometry[len(prod.geometry) // 2].gcp
    ia = int(frac[0] * (g.latitude.shape[0] - 1))
    ir = int(frac[1] * (g.latitude.shape[1] - 1))
    lon, lat = float(g.longitude.values[ia, ir]), float(g.latitude.values[ia, ir])
    epsg = (32600 if lat >= 0 else 32700) + int((lon + 180) // 6) + 1
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    grid = GridSpec(epsg, x - 2240, y + 2240, 10, 10, 448, 448)
    yy, xx = np.mgrid[0:448, 0:448]
    noise = np.random.default_rng(0).normal(0, 30, grid.shape)
    return grid, 800 + 700 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + noise


@pytest.mark.parametrize("frac", [(0.5, 0.5), (0.3, 0.15)])
def test_node_interpolation_matches_exact_geocoding(pair, frac):
    ref = open_product(pair[0], ["VV"])
    sec = open_product(pair[1], ["VV"])
    try:
        grid, h = _rough_tile(ref, frac)
        pts = grid_points(grid, h)
        assert isinstance(pts, GridPoints) and pts.xyz.shape[1] == math.ceil(448 / NODE_STEP) + 1
        xyz = grid_ecef(grid, h)
        ex_r = geocode_grid(ref, xyz)
        ap_r = geocode_grid(ref, pts)
        ex_s = geocode_grid(sec, xyz, match=ex_r)
        ap_s = geocode_grid(sec, pts, match=ap_r)
        for ex, ap in ((ex_r, ap_r), (ex_s, ap_s)):
            assert ex.covered.mean() > 0.5
            assert np.array_equal(ex.swath, ap.swath) and np.array_equal(ex.burst, ap.burst)
            c = ex.covered
            err = max(np.abs(ex.line - ap.line)[c].max(), np.abs(ex.sample - ap.sample)[c].max())
            assert err <= 1e-3, err
            assert np.abs(ex.rng - ap.rng).max() < 5e-3  # m, the same for both dates...
        # ...so the interferometric phase 4 pi / lambda (dR_ref - dR_sec) hardly moves
        wavelength = ref.geometry[0].wavelength
        d = (ap_r.rng - ex_r.rng) - (ap_s.rng - ex_s.rng)
        assert 4 * math.pi / wavelength * np.abs(d[ex_r.covered]).max() < 0.01
    finally:
        ref.close()
        sec.close()
