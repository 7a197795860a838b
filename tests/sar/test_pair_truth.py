"""A known scene through the whole pair chain: coherence, phase, and no burst-edge jump.

Scatterers on the ground are rendered into both dates of the real hyp3-isce2 pair geometry
(tests/sar/forward.py), with secondary reflectivity of coherence 0.8 and a uniform 1 cm
line-of-sight range increase; the output grid straddles the IW2 burst 3/4 split.
"""

from __future__ import annotations

import math

import numpy as np

from m3leo_tiles.grid.geobox import GeoBox
from m3leo_tiles.sar.geocode import grid_ecef
from m3leo_tiles.sar.interferometry import block_coherence, expected_abs_coherence
from m3leo_tiles.sar.product import open_product
from m3leo_tiles.sar.radargrid import geocode_grid
from m3leo_tiles.sar.resample import geocode_slc
from m3leo_tiles.sar.safe import open_swath

from .forward import render, scatterers
from .synth import PAIR, copy_safe, gcp_target, write_sparse

GAMMA = 0.8
D_RANGE = 0.01  # m, range increase of the secondary


def _split_grid(safe, lon, lat, h) -> GeoBox:
    """A 1.28 km grid centred where the reference switches from burst 3 to burst 4."""
    from pyproj import Transformer

    zone = int((lon + 180) // 6) + 1
    epsg = 32600 + zone
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    coarse = GeoBox(epsg, x - 4000, y + 4000, 50, 50, 160, 160)
    prod = open_product(str(safe), ["VV"], swaths=["IW2"])
    geo = geocode_grid(prod, grid_ecef(coarse, np.full(coarse.shape, h)))
    col = 80
    rows = np.flatnonzero(np.diff(geo.burst[:, col]) != 0)
    r = int(rows[0])
    cx, cy = coarse.xs()[col], coarse.ys()[r]
    return GeoBox(epsg, cx - 640, cy + 640, 10, 10, 128, 128)


def pair_truth(s1data, tmp_path) -> dict:
    """Render, process and score the known scene; numbers for the test and validate_s1."""
    src = sorted((s1data / PAIR).glob("*.SAFE"))
    safes = [copy_safe(s, tmp_path) for s in src]
    sw0 = open_swath(safes[0], "IW2", "VV")
    lon, lat, h, *_ = gcp_target(sw0, 4, 10)
    grid = _split_grid(safes[0], lon, lat, h)
    xyz, a = scatterers(grid, h, spacing=2.5, margin=80, seed=1)
    rng = np.random.default_rng(2)
    n = (rng.normal(size=a.size) + 1j * rng.normal(size=a.size)) / math.sqrt(2)
    a2 = GAMMA * a + math.sqrt(1 - GAMMA**2) * n
    for safe, refl, d in ((safes[0], a, 0.0), (safes[1], a2, D_RANGE)):
        sw = open_swath(safe, "IW2", "VV")
        write_sparse(safe, "IW2", "VV", render(sw, xyz, refl, d))
    ref = open_product(str(safes[0]), ["VV"], swaths=["IW2"])
    sec = open_product(str(safes[1]), ["VV"], swaths=["IW2"])
    pts = grid_ecef(grid, np.full(grid.shape, h))
    gr = geocode_grid(ref, pts)
    gs = geocode_grid(sec, pts, match=gr)
    g1 = geocode_slc(ref, gr, "VV")
    g2 = geocode_slc(sec, gs, "VV")
    ref.close()
    sec.close()
    coh, ph = block_coherence(g1, g2, 4)
    want = 4 * math.pi * D_RANGE / sw0.wavelength
    z = np.exp(1j * ph)
    b = gr.burst.reshape(32, 4, 32, 4)
    in3 = (b == 3).all(axis=(1, 3))
    in4 = (b == 4).all(axis=(1, 3))
    return {
        "bursts": sorted(int(v) for v in np.unique(gr.burst)),
        "all_finite": bool(np.isfinite(coh).all()),
        "coh_true": GAMMA,
        "coh_mean": float(coh.mean()),
        "phase_err_rad": float(np.angle(np.mean(z) * np.exp(-1j * want))),
        "burst_edge_jump_rad": float(np.angle(np.mean(z[in3]) * np.conj(np.mean(z[in4])))),
    }


def test_pair_coherence_phase_and_burst_edge(s1data, tmp_path):
    r = pair_truth(s1data, tmp_path)
    print(r)
    assert r["bursts"] == [3, 4] and r["all_finite"]
    # coherence 0.8 read through ~8-16 effective looks
    lo, hi = expected_abs_coherence(GAMMA, 64) - 0.05, expected_abs_coherence(GAMMA, 6) + 0.04
    assert lo < r["coh_mean"] < hi
    # phase of g_ref conj(g_sec) = +4 pi d / lambda for a range increase d
    assert abs(r["phase_err_rad"]) < 0.05
    # no jump across the burst split (cells fully in burst 3 vs fully in burst 4)
    assert abs(r["burst_edge_jump_rad"]) < 0.05
