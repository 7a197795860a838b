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
from pyproj import Transformer

from ..errors import DemError
from ..grid.geobox import GeoBox
from .geocode import geodetic_to_ecef, grid_ecef, swath_mid_time, zero_doppler
from .orbit import Orbit
from .product import Product
from .safe import C

#: heights (m above WGS84) on a grid; NaN where the DEM does not reach
DemFn = Callable[[GeoBox], np.ndarray]


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


@numba.njit(cache=True, nogil=True, parallel=True)
def _pick_bursts(t_zd: np.ndarray, tau: np.ndarray, shift: float, tau0: float, fs: float,
                 dt: float, t0s: np.ndarray, vl0: np.ndarray, vl1: np.ndarray, vs0: float,
                 vs1: float, k: int, use_match: bool, m_swath: np.ndarray, m_line: np.ndarray,
                 sw_idx: np.ndarray, burst: np.ndarray, line: np.ndarray, sample: np.ndarray,
                 best: np.ndarray) -> None:
    """Per point: keep this swath's burst if it beats the current best (see geocode_grid).

    The first swath (k == 0) sets every point's outputs first: one pass over the arrays
    where five fills took five more."""
    for p in numba.prange(t_zd.shape[0]):
        if k == 0:
            sw_idx[p] = -1
            burst[p] = -1
            line[p] = np.nan
            sample[p] = np.nan
            best[p] = -np.inf
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


@dataclass(frozen=True)
class GridPoints:
    """A grid's pixels on the Earth, for geocoding by interpolation between exact nodes.

    ECEF of coarse nodes (grid rows `iy` x columns `ix`: every `step` pixels and the last)
    at a few heights `levels` spanning the grid's heights, and every pixel's height.
    """

    height: np.ndarray  # (H, W) m above WGS84
    iy: np.ndarray  # node rows
    ix: np.ndarray  # node columns
    levels: np.ndarray  # (L,) node heights
    xyz: np.ndarray  # (L, len(iy), len(ix), 3) ECEF of nodes x levels

    @property
    def shape(self) -> tuple[int, int]:
        ny, nx = self.height.shape
        return ny, nx


#: node spacing (pixels) and height levels of GridPoints; tests/sar/test_radargrid.py
#: measures the interpolation error against exact geocoding (<= 0.001 px)
NODE_STEP = 8
N_LEVELS = 4


def _nodes(n: int, step: int) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, n, step), n - 1])


def grid_points(grid: GeoBox, height: np.ndarray, step: int = NODE_STEP,
                n_levels: int = N_LEVELS) -> GridPoints:
    """GridPoints of a grid with ellipsoidal heights on it (lon/lat by PROJ at the nodes)."""
    h = np.asarray(height, np.float64)
    iy, ix = _nodes(grid.height, step), _nodes(grid.width, step)
    xs, ys = np.meshgrid(grid.xs()[ix], grid.ys()[iy])
    lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(xs, ys)
    lo, hi = float(np.min(h)), float(np.max(h))
    if hi - lo < 2.0:
        lo, hi = lo - 1.0, hi + 1.0
    levels = np.linspace(lo, hi, n_levels)
    xyz = np.stack([geodetic_to_ecef(np.asarray(lon), np.asarray(lat), np.full(xs.shape, v))
                    for v in levels])
    return GridPoints(h, iy, ix, levels, xyz)


@numba.njit(cache=True, nogil=True, parallel=True)
def _interp_nodes(tn: np.ndarray, rn: np.ndarray, jy: np.ndarray, wy: np.ndarray, jx: np.ndarray,
                  wx: np.ndarray, levels: np.ndarray, height: np.ndarray, t_out: np.ndarray,
                  r_out: np.ndarray) -> None:
    """Bilinear between nodes per height level, then Lagrange across the levels.

    Per grid row the two node rows are blended first (one value per node column and level),
    so a pixel costs a linear step per level; the Lagrange weights come from products of the
    height differences (all levels but one), with no branch per pixel."""
    n_lev = levels.shape[0]
    nxn = tn.shape[2]
    inv = np.empty(n_lev)  # 1 / prod_{m != k} (levels[k] - levels[m])
    for k in range(n_lev):
        d = 1.0
        for m in range(n_lev):
            if m != k:
                d *= levels[k] - levels[m]
        inv[k] = 1.0 / d
    for i in numba.prange(height.shape[0]):
        a = jy[i]
        fy = wy[i]
        tr = np.empty((n_lev, nxn))  # node rows a, a + 1 blended at this row's fy
        rr_ = np.empty((n_lev, nxn))
        for k in range(n_lev):
            for b in range(nxn):
                tr[k, b] = (1 - fy) * tn[k, a, b] + fy * tn[k, a + 1, b]
                rr_[k, b] = (1 - fy) * rn[k, a, b] + fy * rn[k, a + 1, b]
        dh = np.empty(n_lev)
        left = np.empty(n_lev + 1)  # prod of dh[:k]
        for j in range(height.shape[1]):
            b = jx[j]
            fx = wx[j]
            h = height[i, j]
            left[0] = 1.0
            for m in range(n_lev):
                dh[m] = h - levels[m]
                left[m + 1] = left[m] * dh[m]
            right = 1.0  # prod of dh[k + 1:]
            tt = 0.0
            rr = 0.0
            for k in range(n_lev - 1, -1, -1):
                w = inv[k] * left[k] * right
                right *= dh[k]
                tt += w * ((1 - fx) * tr[k, b] + fx * tr[k, b + 1])
                rr += w * ((1 - fx) * rr_[k, b] + fx * rr_[k, b + 1])
            t_out[i, j] = tt
            r_out[i, j] = rr


def _cells(nodes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n)
    j = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, len(nodes) - 2)
    return j.astype(np.int64), (x - nodes[j]) / (nodes[j + 1] - nodes[j])


def zero_doppler_points(orbit: Orbit, pts: GridPoints,
                        t_init: float) -> tuple[np.ndarray, np.ndarray]:
    """zero_doppler of every pixel: exact at nodes x levels, interpolated in between."""
    n_lev, ny, nx, _ = pts.xyz.shape
    tn, rn = zero_doppler(orbit, pts.xyz.reshape(n_lev * ny, nx, 3), t_init, seed_step=0)
    jy, wy = _cells(pts.iy, pts.shape[0])
    jx, wx = _cells(pts.ix, pts.shape[1])
    t = np.empty(pts.shape)
    r = np.empty(pts.shape)
    _interp_nodes(tn.reshape(n_lev, ny, nx), rn.reshape(n_lev, ny, nx), jy, wy, jx, wx,
                  pts.levels, pts.height, t, r)
    return t, r


def geocode_grid(prod: Product, xyz: np.ndarray | GridPoints,
                 match: TileGeometry | None = None) -> TileGeometry:
    """Radar coordinates of ECEF points (..., 3), or of GridPoints, in one product.

    ECEF points are solved one by one (float64 Newton); GridPoints exactly at their nodes and
    interpolated in between (radar coordinates vary smoothly over a few pixels and heights).
    Without `match` the (swath, burst) with the largest margin to its valid block wins
    (lines; range margin counted as samples / 8), so overlaps are split in the middle. With
    `match` (the first date's geometry) a later date keeps that swath and takes the burst
    whose line is closest to the first date's, so both dates see a pixel through the same
    Doppler history.
    """
    geo = prod.geometry
    if isinstance(xyz, GridPoints):
        t_first, r = zero_doppler_points(geo[0].orbit, xyz, swath_mid_time(geo[0]))
    else:
        t_first, r = zero_doppler(geo[0].orbit, xyz, swath_mid_time(geo[0]))
    return pick_bursts(prod, t_first, r, match)


def pick_bursts(prod: Product, t_first: np.ndarray, r: np.ndarray,
                match: TileGeometry | None = None) -> TileGeometry:
    """geocode_grid from zero-Doppler times (s since the first swath's t_ref) and ranges."""
    geo = prod.geometry
    shape = t_first.shape
    tau = (2 * r / C).ravel()
    n = tau.size
    sw_idx = np.empty(n, np.int8)  # set by the first swath's pass (_pick_bursts, k == 0)
    burst = np.empty(n, np.int16)
    line = np.empty(n)
    sample = np.empty(n)
    best = np.empty(n)
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


def tile_height(grid: GeoBox, dem: DemFn) -> np.ndarray:
    """The DEM's ellipsoidal heights on a grid (DemError if it does not cover it)."""
    h = np.asarray(dem(grid), dtype=np.float64)
    if h.shape != grid.shape:
        raise DemError(f"DEM gave {h.shape} for a {grid.shape} grid")
    if not np.isfinite(h).all():
        raise DemError("DEM does not cover the tile (NaN heights)")
    return h


def tile_xyz(grid: GeoBox, dem: DemFn) -> np.ndarray:
    """ECEF (H, W, 3) of a grid's pixel centres at the DEM's heights (DemError if not covered)."""
    return grid_ecef(grid, tile_height(grid, dem))


def tile_points(grid: GeoBox, dem: DemFn) -> GridPoints | np.ndarray:
    """What geocode_grid needs for a tile grid: GridPoints, or exact ECEF on small grids."""
    h = tile_height(grid, dem)
    if min(grid.shape) < 4 * NODE_STEP:
        return grid_ecef(grid, h)
    return grid_points(grid, h)


def grid_at(tile: Any, res: float) -> GeoBox:
    """The tile's grid at another resolution (a TileRef, or anything with a 10 m `grid`)."""
    if hasattr(tile, "grid_at"):
        return tile.grid_at(res)  # type: ignore[no-any-return]
    g = tile.grid
    return g.with_shape(int(round(g.width * g.dx / res)), int(round(g.height * g.dy / res)))
