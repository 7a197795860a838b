"""Radar coordinates of a tile grid in one product: (swath, burst, line, sample, range).

Every output pixel (UTM grid, ellipsoidal DEM heights) goes ECEF -> zero-Doppler time and
slant range on the product's own orbit (float64 Newton, geocode.py) -> (swath, burst,
fractional line, fractional sample). A burst overlap is split at its middle; a later date
takes the burst matching the first date's, so all dates see a pixel through the same
Doppler history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..errors import DemError
from ..grid.geobox import GridSpec
from .geocode import grid_ecef, swath_mid_time, zero_doppler
from .product import Product
from .safe import C

#: heights (m above WGS84) on a grid; NaN where the DEM does not reach
DemFn = Callable[[GridSpec], np.ndarray]


@dataclass
class TileGeometry:
    """Per pixel of a grid: sub-swath index (-1: not covered), burst, line, sample, range."""

    swath: np.ndarray  # int8
    burst: np.ndarray  # int16
    line: np.ndarray  # float64, within the burst
    sample: np.ndarray  # float64
    rng: np.ndarray  # float64 slant range (m)

    @property
    def covered(self) -> np.ndarray:
        return self.swath >= 0


@numba.njit(cache=True, parallel=True)
def _pick_bursts(t_zd, tau, shift, tau0, fs, dt, t0s, vl0, vl1, vs0, vs1, k, use_match,  # type: ignore[no-untyped-def]
                 m_swath, m_line, sw_idx, burst, line, sample, best):
    """Per point: keep this swath's burst if it beats the current best (see geocode_grid)."""
    for p in numba.prange(t_zd.shape[0]):
        if use_match and m_swath[p] != k:
            continue
        t = t_zd[p] + shift - (tau[p] - tau0) / 2  # image time (geocode.image_time)
        smp = (tau[p] - tau0) * fs
        m_rg = min(smp - vs0, vs1 - smp) / 8.0
        for bi in range(t0s.shape[0]):
            ln = (t - t0s[bi]) / dt
            m = min(min(ln - vl0[bi], vl1[bi] - ln), m_rg)
            if use_match:
                if m <= -0.5:
                    continue
                m = -abs(ln - m_line[p])
            if m > best[p]:
                best[p] = m
                sw_idx[p] = k
                burst[p] = bi
                line[p] = ln
                sample[p] = smp


def geocode_grid(prod: Product, xyz: np.ndarray,
                 match: TileGeometry | None = None) -> TileGeometry:
    """Radar coordinates of ECEF points (..., 3) in one product.

    Without `match` the (swath, burst) with the largest margin to its valid block wins
    (lines; range margin counted as samples / 8), so overlaps are split in the middle. With
    `match` (the first date's geometry) a later date keeps that swath and takes the burst
    whose line is closest to the first date's, so both dates see a pixel through the same
    Doppler history.
    """
    geo = prod.geometry
    t_first, r = zero_doppler(geo[0].orbit, xyz, swath_mid_time(geo[0]))
    return pick_bursts(prod, t_first, r, match)


def pick_bursts(prod: Product, t_first: np.ndarray, r: np.ndarray,
                match: TileGeometry | None = None) -> TileGeometry:
    """geocode_grid from zero-Doppler times (s since the first swath's t_ref) and ranges."""
    geo = prod.geometry
    shape = t_first.shape
    tau = (2 * r / C).ravel()
    n = tau.size
    sw_idx = np.full(n, -1, np.int8)
    burst = np.full(n, -1, np.int16)
    line = np.full(n, np.nan)
    sample = np.full(n, np.nan)
    best = np.full(n, -np.inf)
    m_sw = match.swath.ravel() if match is not None else np.zeros(1, np.int8)
    m_ln = match.line.ravel() if match is not None else np.zeros(1)
    for k, sw in enumerate(geo):
        shift = (geo[0].t_ref - sw.t_ref) / np.timedelta64(1, "ns") * 1e-9
        bs = sw.bursts
        vs0 = max(b.valid_samples[0] for b in bs)
        vs1 = min(b.valid_samples[1] for b in bs)
        _pick_bursts(np.ascontiguousarray(t_first).ravel(), tau, shift, sw.tau0, sw.fs, sw.dt,
                     np.array([b.t0 for b in bs]), np.array([b.valid_lines[0] for b in bs], float),
                     np.array([b.valid_lines[1] for b in bs], float), float(vs0), float(vs1), k,
                     match is not None, m_sw, m_ln, sw_idx, burst, line, sample, best)
    if match is None:
        sw_idx[best < 0] = -1
    return TileGeometry(sw_idx.reshape(shape), burst.reshape(shape), line.reshape(shape),
                        sample.reshape(shape), r)


def tile_xyz(grid: GridSpec, dem: DemFn) -> np.ndarray:
    """ECEF (H, W, 3) of a grid's pixel centres at the DEM's heights (DemError if not covered)."""
    h = np.asarray(dem(grid), dtype=np.float64)
    if h.shape != grid.shape:
        raise DemError(f"DEM gave {h.shape} for a {grid.shape} grid")
    if not np.isfinite(h).all():
        raise DemError("DEM does not cover the tile (NaN heights)")
    return grid_ecef(grid, h)


def grid_at(tile: Any, res: float) -> GridSpec:
    """The tile's grid at another resolution (a TileRef, or anything with a 10 m `grid`)."""
    if hasattr(tile, "grid_at"):
        return tile.grid_at(res)  # type: ignore[no-any-return]
    g = tile.grid
    return g.with_shape(int(round(g.width * g.dx / res)), int(round(g.height * g.dy / res)))
