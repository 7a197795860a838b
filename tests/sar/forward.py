"""A small forward model: ground scatterers -> SLC windows of both dates of a real-geometry pair.

Test-only, and not independent of the processor's geometry (it places scatterers with the
same zero-Doppler geocoder and TOPS carrier): it checks that the pair machinery (per-date
geometry, burst matching, deramp/reramp, flattening, estimator) turns a scene of known
coherence and deformation into that coherence and phase, without burst-edge jumps. The
project's simulator (m3leo_tiles.simulator) is the independent check.

Each scatterer k has reflectivity a_k (circular Gaussian; the secondary's is
gamma a_k + sqrt(1 - gamma^2) n_k) and appears in every burst whose valid block holds its
image time, as a band-limited response sinc(0.7 dl) sinc(0.8 ds) modulated by the burst's
local Doppler kt (eta_k - eta_ref) and with phase -4 pi R_k / lambda; the secondary's range
is R_k + d (a uniform line-of-sight range increase d).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from pyproj import Transformer

from m3leo_tiles.grid.geobox import GeoBox
from m3leo_tiles.sar.geocode import geodetic_to_ecef, image_time, zero_doppler
from m3leo_tiles.sar.safe import C
from m3leo_tiles.sar.tops import burst_carrier, poly_at

HALF = 6


@numba.njit(cache=True)
def _splat(out, r0, c0, lk, sk, fk, phk, ak, dt):
    nr, nc = out.shape
    for k in range(lk.shape[0]):
        il = int(math.floor(lk[k]))
        js = int(math.floor(sk[k]))
        for a in range(-HALF + 1, HALF + 1):
            row = il + a - r0
            if row < 0 or row >= nr:
                continue
            dl = il + a - lk[k]
            x = 0.7 * dl
            wl = 1.0 if x == 0 else math.sin(math.pi * x) / (math.pi * x)
            ph = 2 * math.pi * fk[k] * dl * dt + phk[k]
            base = ak[k] * wl * complex(math.cos(ph), math.sin(ph))
            for b in range(-HALF + 1, HALF + 1):
                col = js + b - c0
                if col < 0 or col >= nc:
                    continue
                y = 0.8 * (js + b - sk[k])
                ws = 1.0 if y == 0 else math.sin(math.pi * y) / (math.pi * y)
                out[row, col] += base * ws


def scatterers(grid: GeoBox, height: float, spacing: float, margin: float, seed: int):
    """ECEF positions and unit reflectivities of a jittered scatterer lattice over a grid."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = grid.bounds
    xs = np.arange(xmin - margin, xmax + margin, spacing)
    ys = np.arange(ymin - margin, ymax + margin, spacing)
    x, y = np.meshgrid(xs, ys)
    x = x + rng.uniform(-spacing / 2, spacing / 2, x.shape)
    y = y + rng.uniform(-spacing / 2, spacing / 2, y.shape)
    lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(x, y)
    xyz = geodetic_to_ecef(np.ravel(lon), np.ravel(lat), np.full(x.size, height))
    a = (rng.normal(size=x.size) + 1j * rng.normal(size=x.size)) / math.sqrt(2)
    return xyz, a


def render(sw, xyz: np.ndarray, refl: np.ndarray, d_range: float = 0.0):
    """SLC patches [(row0, col0, data)] of one swath for scatterers (one patch per burst)."""
    t, r = zero_doppler(sw.orbit, xyz, float(sw.bursts[len(sw.bursts) // 2].t0))
    r = r + d_range
    tau = 2 * r / C
    t = image_time(sw, t, tau)
    samp = (tau - sw.tau0) * sw.fs
    patches = []
    for b in sw.bursts:
        line = (t - b.t0) / sw.dt
        sel = (line >= b.valid_lines[0]) & (line <= b.valid_lines[1])
        if not sel.any():
            continue
        bc = burst_carrier(sw, b.index)
        tk = sw.tau0 + samp[sel] / sw.fs
        ka = np.array([poly_at(v, bc.fm_t0, bc.fm_c) for v in tk])
        fdc = np.array([poly_at(v, bc.dc_t0, bc.dc_c) for v in tk])
        kt = bc.ks * ka / (ka - bc.ks)
        f = kt * ((line[sel] - sw.lines_per_burst // 2) * sw.dt - (bc.eta_ref0 - fdc / ka))
        r0 = max(int(line[sel].min()) - HALF - 2, b.valid_lines[0])
        r1 = min(int(line[sel].max()) + HALF + 3, b.valid_lines[1] + 1)
        c0 = int(samp[sel].min()) - HALF - 2
        c1 = int(samp[sel].max()) + HALF + 3
        out = np.zeros((r1 - r0, c1 - c0), np.complex128)
        _splat(out, r0, c0, line[sel], samp[sel], f, -4 * math.pi * r[sel] / sw.wavelength,
               refl[sel], sw.dt)
        patches.append((b.first_line + r0, c0, (out * 40).astype(np.complex64)))
    return patches
