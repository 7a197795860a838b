"""Geocoding a tile by interpolation between exact nodes vs exact geocoding of every pixel.

The processor solves zero-Doppler exactly on nodes every NODE_STEP pixels at N_LEVELS heights
and interpolates (bilinear in the grid, Lagrange across heights); here both are run on a
full 448 x 448 tile with rough relief (1.4 km peak to peak plus 30 m noise) and compared:
the same burst choice, line and sample within 0.001 px, and the range error common to both
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

from m3leo_tiles.grid.geobox import GeoBox
from m3leo_tiles.grid.tiles import tile_from_id
from m3leo_tiles.sar.geocode import grid_ecef
from m3leo_tiles.sar.product import open_product
from m3leo_tiles.sar.radargrid import NODE_STEP, GridPoints, geocode_grid, grid_points
from m3leo_tiles.sar.safe import open_swath

from ..conftest import S1DATA
from .synth import PAIR


def _grid_at(lon: float, lat: float) -> GeoBox:
    epsg = (32600 if lat >= 0 else 32700) + int((lon + 180) // 6) + 1
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    return GeoBox(epsg, x - 2240, y + 2240, 10, 10, 448, 448)


@pytest.fixture(scope="module")
def case(request) -> tuple[list[str], list[GeoBox]]:
    """Two dates of one track and two tile grids they cover: the real pair's annotations at
    two points of ESA's IW2 geolocation grid, else the simulator's products and tiles."""
    if S1DATA.is_dir():
        paths = [str(p) for p in sorted((S1DATA / PAIR).glob("*.SAFE"))]
        g = open_swath(paths[0], "IW2", "VV").gcp
        pts = [(4, 10), (2, 3)]
        return paths, [_grid_at(float(g.longitude.values[a, r]), float(g.latitude.values[a, r]))
                       for a, r in pts]
    sim = request.getfixturevalue("small_sim")
    m = json.loads((sim / "simulation.json").read_text())
    return [str(sim / p) for p in m["products"]], [tile_from_id(t).grid(10)
                                                    for t in m["tiles"][:2]]


def _rough(grid: GeoBox) -> np.ndarray:
    yy, xx = np.mgrid[0:grid.height, 0:grid.width]
    noise = np.random.default_rng(0).normal(0, 30, grid.shape)
    return 800 + 700 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + noise


@pytest.mark.parametrize("which", [0, 1])
def test_node_interpolation_matches_exact_geocoding(case, which):
    pair, grids = case
    ref = open_product(pair[0], ["VV"])
    sec = open_product(pair[1], ["VV"])
    try:
        grid = grids[which]
        h = _rough(grid)
        pts = grid_points(grid, h)
        assert isinstance(pts, GridPoints) and pts.xyz.shape[1] == math.ceil(448 / NODE_STEP) + 1
        xyz = grid_ecef(grid, h)
        ex_r = geocode_grid(ref, xyz)
        ap_r = geocode_grid(ref, pts)
        ex_s = geocode_grid(sec, xyz, match=ex_r)
        ap_s = geocode_grid(sec, pts, match=ap_r)
        for ex, ap in ((ex_r, ap_r), (ex_s, ap_s)):
            assert ex.covered.mean() > 0.5
            # the same burst (a pixel within 1e-3 px of an overlap's middle may flip: harmless)
            c = ex.covered & (ex.swath == ap.swath) & (ex.burst == ap.burst)
            assert (ex.covered & ~c).sum() <= 20 and (ap.covered != ex.covered).sum() <= 20
            err = max(np.abs(ex.line - ap.line)[c].max(), np.abs(ex.sample - ap.sample)[c].max())
            assert err <= 1e-3, err
            assert np.abs(ex.rng - ap.rng).max() < 5e-3  # m, the same for both dates...
        # ...so the interferometric phase 4 pi / lambda (dR_ref - dR_sec) hardly moves
        wavelength = ref.geometry[0].wavelength
        d = (ap_r.rng - ex_r.rng) - (ap_s.rng - ex_s.rng)
        both = ex_r.covered & ex_s.covered & (ex_r.burst == ap_r.burst) & (ex_s.burst == ap_s.burst)
        assert 4 * math.pi / wavelength * np.abs(d[both]).max() < 0.01
    finally:
        ref.close()
        sec.close()
