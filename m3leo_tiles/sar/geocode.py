"""Back-geocoding in float64: ground point -> zero-Doppler azimuth time and slant range.

For a target X (Earth-fixed) the zero-Doppler time t solves f(t) = (P(t) - X) . V(t) = 0 with
P, V, A the interpolated orbit; Newton's step is dt = -f / (V.V + (P - X).A). The slant range
is R = |P(t) - X|; two-way range time tau = 2R/c. Then, with the annotation's timing, the
fractional sample is (tau - tau0) * fs and the fractional line in burst b is
(t - t0_b) / azimuthTimeInterval. Tolerance 1e-9 s (8 micrometres along track); the check
against ESA's geolocation grid is in tests/sar/test_geocode.py.
"""

from __future__ import annotations

import numba
import numpy as np
from pyproj import Transformer

from ..grid.geobox import GeoBox
from .orbit import Orbit, horner3, to_seconds
from .safe import C, Swath

WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)


def geodetic_to_ecef(lon: np.ndarray, lat: np.ndarray, h: np.ndarray) -> np.ndarray:
    """WGS84 lon/lat (degrees) and ellipsoidal height (m) -> ECEF (..., 3) metres."""
    lon = np.deg2rad(np.asarray(lon, np.float64))
    lat = np.deg2rad(np.asarray(lat, np.float64))
    h = np.asarray(h, np.float64)
    s = np.sin(lat)
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * s * s)
    x = (n + h) * np.cos(lat) * np.cos(lon)
    y = (n + h) * np.cos(lat) * np.sin(lon)
    z = (n * (1 - WGS84_E2) + h) * s
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def _coarse_index(n: int, step: int) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, n, step), n - 1])


def upsample_bilinear(coarse: np.ndarray, iy: np.ndarray, ix: np.ndarray, ny: int,
                      nx: int) -> np.ndarray:
    """Bilinear values on the full (ny, nx) index grid from values at rows iy x cols ix."""
    y = np.arange(ny)
    x = np.arange(nx)
    jy = np.clip(np.searchsorted(iy, y, side="right") - 1, 0, len(iy) - 2)
    jx = np.clip(np.searchsorted(ix, x, side="right") - 1, 0, len(ix) - 2)
    wy = ((y - iy[jy]) / (iy[jy + 1] - iy[jy]))[:, None]
    wx = ((x - ix[jx]) / (ix[jx + 1] - ix[jx]))[None, :]
    rows = coarse[jy] * (1 - wy) + coarse[jy + 1] * wy  # (ny, len(ix))
    return rows[:, jx] * (1 - wx) + rows[:, jx + 1] * wx


def grid_lonlat(grid: GeoBox, step: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre lon/lat of a grid, (height, width) each.

    PROJ runs on every `step`-th pixel only and the rest is bilinear: the map projection's
    curvature over 16 x 10 m leaves < 1 mm of error (tests/sar/test_geocode.py).
    """
    tr = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
    if min(grid.shape) < 4 * step:
        xs, ys = np.meshgrid(grid.xs(), grid.ys())
        lon, lat = tr.transform(xs, ys)
        return np.asarray(lon), np.asarray(lat)
    iy = _coarse_index(grid.height, step)
    ix = _coarse_index(grid.width, step)
    xs, ys = np.meshgrid(grid.xs()[ix], grid.ys()[iy])
    lon, lat = tr.transform(xs, ys)
    lon = np.rad2deg(np.unwrap(np.deg2rad(np.asarray(lon)), axis=1))
    return (upsample_bilinear(lon, iy, ix, grid.height, grid.width),
            upsample_bilinear(np.asarray(lat), iy, ix, grid.height, grid.width))


def grid_ecef(grid: GeoBox, height: np.ndarray) -> np.ndarray:
    """ECEF of every pixel centre of a grid, given ellipsoidal heights on it."""
    lon, lat = grid_lonlat(grid)
    return geodetic_to_ecef(lon, lat, height)


@numba.njit(cache=True, nogil=True, parallel=True)
def _zero_doppler(tn: np.ndarray, h: np.ndarray, coef: np.ndarray, xyz: np.ndarray,
                  t_init: np.ndarray, tol: float,
                  max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    m = xyz.shape[0]
    t_out = np.empty(m)
    r_out = np.empty(m)
    nseg = h.shape[0]
    for q in numba.prange(m):
        t = t_init[q]
        px = py = pz = 0.0
        for _ in range(max_iter):
            i = np.searchsorted(tn, t) - 1
            i = min(max(i, 0), nseg - 1)
            u = (t - tn[i]) / h[i]
            pv = np.empty(3)
            vv = np.empty(3)
            av = np.empty(3)
            for ax in range(3):
                s0, s1, s2 = horner3(coef[i, ax], u)
                pv[ax] = s0
                vv[ax] = s1 / h[i]
                av[ax] = s2 / (h[i] * h[i])
            dx = pv[0] - xyz[q, 0]
            dy = pv[1] - xyz[q, 1]
            dz = pv[2] - xyz[q, 2]
            f = dx * vv[0] + dy * vv[1] + dz * vv[2]
            fp = (vv[0] * vv[0] + vv[1] * vv[1] + vv[2] * vv[2]
                  + dx * av[0] + dy * av[1] + dz * av[2])
            step = -f / fp
            t += step
            px, py, pz = dx, dy, dz
            if abs(step) < tol:
                break
        # range at the converged time (one more orbit evaluation would move it < 1e-5 m)
        t_out[q] = t
        r_out[q] = np.sqrt(px * px + py * py + pz * pz)
    return t_out, r_out


def zero_doppler(orbit: Orbit, xyz: np.ndarray, t_init: float | np.ndarray,
                 tol: float = 1e-9, max_iter: int = 30,
                 seed_step: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Zero-Doppler time (s since orbit.t_ref) and slant range (m) of ECEF points (..., 3).

    On a large 2-D grid (H, W, 3) the solution on every `seed_step`-th point seeds the
    others, which then converge in one or two Newton steps to the same tolerance.
    """
    shape = xyz.shape[:-1]
    if seed_step > 0 and len(shape) == 2 and min(shape) >= 4 * seed_step \
            and np.ndim(t_init) == 0:
        iy = _coarse_index(shape[0], seed_step)
        ix = _coarse_index(shape[1], seed_step)
        tc, _ = zero_doppler(orbit, np.ascontiguousarray(xyz[np.ix_(iy, ix)]), t_init, tol,
                             max_iter, seed_step=0)
        t_init = upsample_bilinear(tc, iy, ix, shape[0], shape[1])
    pts = np.ascontiguousarray(xyz.reshape(-1, 3), dtype=np.float64)
    t0 = np.broadcast_to(np.asarray(t_init, np.float64), shape).reshape(-1).copy()
    t, r = _zero_doppler(orbit.t, orbit.h, orbit.coef, pts, t0, tol, max_iter)
    return t.reshape(shape), r.reshape(shape)


def swath_mid_time(sw: Swath) -> float:
    return sw.bursts[len(sw.bursts) // 2].t0 + sw.dt * sw.lines_per_burst / 2


def image_time(sw: Swath, t_zd: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Image azimuth time of a target from its zero-Doppler time: t_zd - (tau - tau0) / 2.

    ESA's geolocation grids are consistent with this half-range-delay (bistatic) term taken
    relative to the swath's first sample: fitting (t_zd - t_grid) against tau on the
    hyp3-isce2 pair gives a slope of 0.5000 and a zero at tau0 in every swath, and removes the
    0-0.09 line ramp across the swath (tests/sar/test_geocode.py). It is the same for both
    dates of a pair, so it hardly touches interferometric coregistration.
    """
    return t_zd - (tau - sw.tau0) / 2


def geocode_ecef(sw: Swath, xyz: np.ndarray, t_init: float | np.ndarray | None = None,
                 bistatic: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image azimuth time s since sw.t_ref, two-way range time s, slant range m) of ECEF."""
    t, r = zero_doppler(sw.orbit, xyz, swath_mid_time(sw) if t_init is None else t_init)
    tau = 2 * r / C
    return (image_time(sw, t, tau) if bistatic else t), tau, r


def geocode_lonlat(sw: Swath, lon: np.ndarray, lat: np.ndarray, h: np.ndarray,
                   bistatic: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(image azimuth time s since sw.t_ref, two-way slant range time s) of lon/lat/h."""
    t, tau, _ = geocode_ecef(sw, geodetic_to_ecef(lon, lat, h), bistatic=bistatic)
    return t, tau


def gcp_residuals(sw: Swath, bistatic: bool = True) -> dict[str, float]:
    """Geocode every point of the annotation's geolocation grid; residuals in lines/samples.

    ESA's grid gives lat/lon/height with its azimuth time and slant range time: the truth any
    geocoder must reproduce. Line residual = azimuth-time error / azimuthTimeInterval; sample
    residual = range-time error * rangeSamplingRate.
    """
    g = sw.gcp
    lat, lon, hgt = g.latitude.values, g.longitude.values, g.height.values
    t_true = to_seconds(g.azimuth_time.values, sw.t_ref)[:, None] * np.ones_like(lat)
    tau_true = g.slant_range_time.values[None, :] * np.ones_like(lat)
    t, tau = geocode_lonlat(sw, lon, lat, hgt, bistatic=bistatic)
    dl = (t - t_true) / sw.dt
    dp = (tau - tau_true) * sw.fs
    return {
        "n": int(dl.size),
        "line_rms": float(np.sqrt(np.mean(dl**2))),
        "sample_rms": float(np.sqrt(np.mean(dp**2))),
        "rms_px": float(np.sqrt(np.mean(dl**2 + dp**2))),
        "line_max": float(np.abs(dl).max()),
        "sample_max": float(np.abs(dp).max()),
        "line_mean": float(dl.mean()),
        "sample_mean": float(dp.mean()),
    }

