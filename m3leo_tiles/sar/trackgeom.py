"""Per-track geometry on the tile grid: incidence angles and a layover/shadow mask.

Computed once per track (any product of it) from the orbit and the DEM, with the same
zero-Doppler solution as the processor, and like it (radargrid.GridPoints) solved exactly on
nodes every NODE_STEP pixels at N_LEVELS heights and interpolated in between: against exact
geocoding of every pixel the incidences move by < 1e-4 deg and the layover/shadow bits by a
handful of pixels on a 2.5 km mountain (tests/sar/test_trackgeom.py; `exact=True` solves every
pixel):
- ellipsoid incidence: angle between the target->satellite vector and the ellipsoid normal
  (checked against the `incidenceAngle` of ESA's geolocation grid);
- local incidence: the same against the DEM surface normal (DEM gradients on the UTM grid);
- layover/shadow (along each azimuth line ordered by ground range from the track): layover
  where the slant range is not larger than that of some pixel nearer the track (active) or
  not smaller than that of some farther pixel (passive: terrain beyond folds onto it),
  shadow where the look angle from the satellite is not larger than that of some nearer
  pixel (the ray to it grazes nearer terrain). Bits: 1 layover, 2 shadow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DemError
from ..grid.geobox import GeoBox
from .geocode import geodetic_to_ecef, grid_lonlat, swath_mid_time, zero_doppler
from .product import Product, open_product
from .radargrid import NODE_STEP, DemFn, grid_points, pick_bursts, zero_doppler_points
from .safe import C, Swath


def _ellipsoid_normal(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.deg2rad(lon), np.deg2rad(lat)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _enu_to_ecef(lon: np.ndarray, lat: np.ndarray, e: np.ndarray, n: np.ndarray,
                 u: np.ndarray) -> np.ndarray:
    lo, la = np.deg2rad(lon), np.deg2rad(lat)
    east = np.stack([-np.sin(lo), np.cos(lo), np.zeros_like(lo)], axis=-1)
    north = np.stack([-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)], axis=-1)
    up = _ellipsoid_normal(lon, lat)
    return east * e[..., None] + north * n[..., None] + up * u[..., None]


def _segment_cummax(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running maximum of `values` restarted at every new group (groups sorted)."""
    out = np.empty_like(values)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for a, b in zip(starts, ends, strict=True):
        out[a:b] = np.maximum.accumulate(values[a:b])
    return out


def _layover_shadow(ls: np.ndarray, gs: np.ndarray, rs: np.ndarray, looks: np.ndarray,
                    margin: float) -> np.ndarray:
    """Layover/shadow bits for pixels sorted by (azimuth line, ground distance).

    A pixel is compared only with pixels of its line at least `margin` nearer or farther:
    pixels of one line bin lie up to a line's length apart along track, so two at almost the
    same ground distance differ in height by the along-track slope, not by layover (on gentle
    terrain that gave false flags on ~0.05% of pixels). Real layover and shadow extend over
    slopes longer than a pixel and are still found.
    """
    n = len(ls)
    key = (ls - ls.min()).astype(np.float64) * 1e8 + gs  # sorted; ground < 1e8 m
    seg_start = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
    start_of = np.repeat(seg_start, np.diff(np.r_[seg_start, n]))
    cummax_r = _segment_cummax(rs, ls)
    cummax_look = _segment_cummax(looks, ls)
    sufmin_r = -_segment_cummax(-rs[::-1], ls[::-1])[::-1]
    # the last pixel at least `margin` nearer, and the first at least `margin` farther
    near = np.searchsorted(key, key - margin, side="right") - 1
    far = np.searchsorted(key, key + margin, side="left")
    has_near = near >= start_of
    has_far = (far < n) & (ls[np.minimum(far, n - 1)] == ls)
    near_c, far_c = np.clip(near, 0, n - 1), np.minimum(far, n - 1)
    bits = np.zeros(n, np.float32)
    active = has_near & (rs <= cummax_r[near_c])  # a nearer pixel is as far in range
    passive = has_far & (rs >= sufmin_r[far_c])  # a farther pixel folds back onto this one
    bits[active | passive] += 1
    bits[has_near & (looks <= cummax_look[near_c])] += 2  # the ray grazes nearer terrain
    return bits


def incidence(sat: np.ndarray, xyz: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Angle (degrees) between the target->satellite direction and a surface normal."""
    look = sat - xyz
    look /= np.linalg.norm(look, axis=-1, keepdims=True)
    c = np.clip(np.sum(look * normal, axis=-1), -1, 1)
    return np.degrees(np.arccos(c))


def _radar_times(prod: Product, grid: GeoBox, h: np.ndarray, xyz: np.ndarray,
                 exact: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-Doppler time, slant range and coverage of every pixel in the first swath's
    timing: exact per pixel, or exact at GridPoints nodes and interpolated."""
    geo0 = prod.geometry[0]
    if exact or min(grid.shape) < 4 * NODE_STEP:
        t, r = zero_doppler(geo0.orbit, xyz, swath_mid_time(geo0))
    else:
        t, r = zero_doppler_points(geo0.orbit, grid_points(grid, h), swath_mid_time(geo0))
    return t, r, pick_bursts(prod, t, r).covered


def track_geometry(safe: str, tiles: Sequence, dem: DemFn, orbit_dir: str | None = None,
                   polarisation: str = "VV", exact: bool = False, bits_only: bool = False
                   ) -> dict[str, np.ndarray]:
    """Per covered tile: float32 (3, H, W) = ellipsoid incidence (deg), local incidence
    (deg), layover/shadow bits (0 none, 1 layover, 2 shadow, 3 both); NaN where no swath.

    Radar times by node interpolation as the other layers (`exact=True`: every pixel solved).
    `bits_only`: the incidence bands are NaN, not computed (s1unw's mask needs only the bits;
    a fifth of the time)."""
    prod = open_product(safe, [polarisation], orbit_dir)
    geo0 = prod.geometry[0]
    out: dict[str, np.ndarray] = {}
    try:
        for tile in tiles:
            g = tile.grid
            h = np.asarray(dem(g), np.float64)
            if not np.isfinite(h).all():
                raise DemError(f"DEM does not cover tile {tile.id}")
            lon, lat = grid_lonlat(g)
            xyz = geodetic_to_ecef(lon, lat, h)
            t, r, cover = _radar_times(prod, g, h, xyz, exact)
            if not cover.any():
                continue
            sat, _, _ = geo0.orbit.interpolate(t)
            if bits_only:
                inc_e = inc_l = np.full(g.shape, np.nan, np.float32)
            else:
                inc_e = incidence(sat, xyz, _ellipsoid_normal(lon, lat))
                gy = np.gradient(h, g.dy, axis=0)  # rows go south: d/dy_north = -gy
                gx = np.gradient(h, g.dx, axis=1)
                normal = _enu_to_ecef(lon, lat, -gx, gy, np.ones_like(h))
                normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
                inc_l = incidence(sat, xyz, normal)
            # layover / shadow along azimuth lines, ordered by ground distance from the track
            line = np.round(t / geo0.dt).astype(np.int64).ravel()
            nadir = sat / np.linalg.norm(sat, axis=-1, keepdims=True)
            ground = np.linalg.norm(xyz - nadir * np.sum(xyz * nadir, axis=-1, keepdims=True),
                                    axis=-1).ravel()
            rng = r.ravel()
            look = np.degrees(np.arccos(np.clip(
                np.sum(-nadir * (xyz - sat), axis=-1) / r, -1, 1))).ravel()
            order = np.lexsort((ground, line))
            bits = _layover_shadow(line[order], ground[order], rng[order], look[order],
                                   margin=g.dx)
            mask = np.empty_like(bits)
            mask[order] = bits
            res = np.stack([inc_e, inc_l, mask.reshape(g.shape)]).astype(np.float32)
            res[:, ~cover] = np.nan
            out[tile.id] = res
        return out
    finally:
        prod.close()


def gcp_incidence_residual(sw: Swath) -> float:
    """Max |our ellipsoid incidence - ESA's geolocation-grid incidenceAngle| (degrees)."""
    gc = sw.gcp
    lon, lat, hgt = gc.longitude.values, gc.latitude.values, gc.height.values
    xyz = geodetic_to_ecef(lon, lat, hgt)
    t, _ = zero_doppler(sw.orbit, xyz, swath_mid_time(sw), seed_step=0)
    sat, _, _ = sw.orbit.interpolate(t)
    ours = incidence(sat, xyz, _ellipsoid_normal(lon, lat))
    return float(np.abs(ours - gc.incidenceAngle.values).max())


__all__ = ["C", "gcp_incidence_residual", "incidence", "track_geometry"]
