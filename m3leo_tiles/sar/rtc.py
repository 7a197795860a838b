"""Radiometric terrain correction to gamma0 by area integration (Small 2011, "Flattening
gamma: radiometric terrain correction for SAR imagery", IEEE TGRS 49(8):3081-3093; the method
of OPERA RTC-S1, HyP3 RTC and sarsen's `gamma_*` corrections).

A radar pixel's beta0 is the power it receives per unit area of the slant-range plane,
A_beta = (slant-range extent) x (azimuth extent). With gamma0 the backscatter per unit area
projected normal to the look direction, every terrain facet f adds gamma0 * A_gamma,f, where
A_gamma,f = A_f cos(psi_f) is its area projected onto the plane perpendicular to the look
vector (psi_f the local incidence angle; facets facing away add nothing). So
    beta0 = gamma0 * sum_f A_gamma,f / A_beta    ->    gamma0_RTC = beta0 * A_beta / A_gamma,
with the sum over all facets that fall into the radar pixel (several in layover). On flat
ground A_gamma / A_beta = cot(theta) and gamma0_RTC = beta0 tan(theta) = sigma0 / cos(theta).

Here the facets are the triangles between the pixel centres of the output map grid (two per
cell), each located by its centroid's zero-Doppler time and slant range, and their A_gamma is
accumulated on a radar grid of `bin_scale` map pixels per bin (bilinear splatting, so every
facet spreads its area over the four nearest bin nodes, whose weights integrate to one bin),
then read back at each map pixel's own radar position (bilinear). A_beta is the bin's
slant-range extent times its along-track ground extent (the beam's ground speed is one over
the horizontal gradient of the zero-Doppler time). The grid is first
extended by a few pixels (edge heights continued flat) so that bins at the tile edge are
complete. Local layover (slant range not increasing with ground range away from the track)
and local shadow (the look vector grazes or is behind the facet) are flagged; cast shadow and
passive layover need the ray tracing of `trackgeom`, whose mask a caller ORs in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geocode import zero_doppler
from .orbit import Orbit

LAYOVER, SHADOW = 1, 2


@dataclass(frozen=True)
class RtcArea:
    """Per map pixel: ratio = A_gamma / A_beta (gamma0 = beta0 / ratio), the local incidence
    angle (degrees), and the layover/shadow flags (bits LAYOVER, SHADOW)."""

    ratio: np.ndarray  # float32 (H, W)
    local_incidence: np.ndarray  # float32 (H, W), degrees
    flags: np.ndarray  # uint8 (H, W)

    def gamma0(self, beta0: np.ndarray, masked: bool = True) -> np.ndarray:
        """gamma0-RTC (linear power) from beta0 (linear power) on the same grid; NaN where
        flagged (unless masked is False) or where no facet is seen."""
        ratio = np.where(self.ratio > 0, self.ratio, np.nan)
        g = np.asarray(beta0, np.float64) / ratio
        if masked:
            g = np.where(self.flags == 0, g, np.nan)
        return g.astype(np.float32)


def _extend(a: np.ndarray, pad: int) -> np.ndarray:
    """Continue a smooth (H, W, ...) field `pad` pixels beyond each edge along the grid's mean
    step, each border row/column keeping its own values (flat continuation of the edge)."""
    for axis in (0, 1):
        step = np.diff(a, axis=axis).mean(axis=axis, keepdims=True)
        shape = [1] * a.ndim
        shape[axis] = pad
        k = np.arange(1, pad + 1, dtype=np.float64).reshape(shape)
        first = np.take(a, [0], axis=axis)
        last = np.take(a, [-1], axis=axis)
        a = np.concatenate([first - k[::-1] * step, a, last + k * step], axis=axis)
    return a


def _splat(u: np.ndarray, v: np.ndarray, w: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear accumulation of weights w at continuous (row v, col u) onto a (rows, cols)
    grid (points outside are dropped)."""
    i0 = np.floor(v).astype(np.int64)
    j0 = np.floor(u).astype(np.int64)
    fv = v - i0
    fu = u - j0
    out = np.zeros(shape[0] * shape[1])
    for di, dj, ww in ((0, 0, (1 - fv) * (1 - fu)), (0, 1, (1 - fv) * fu),
                       (1, 0, fv * (1 - fu)), (1, 1, fv * fu)):
        i, j = i0 + di, j0 + dj
        ok = (i >= 0) & (i < shape[0]) & (j >= 0) & (j < shape[1])
        out += np.bincount(i[ok] * shape[1] + j[ok], weights=(w * ww)[ok],
                           minlength=out.size)
    return out.reshape(shape)


def _gather(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    i0 = np.clip(np.floor(v).astype(np.int64), 0, grid.shape[0] - 2)
    j0 = np.clip(np.floor(u).astype(np.int64), 0, grid.shape[1] - 2)
    fv = np.clip(v - i0, 0, 1)
    fu = np.clip(u - j0, 0, 1)
    return ((1 - fv) * (1 - fu) * grid[i0, j0] + (1 - fv) * fu * grid[i0, j0 + 1]
            + fv * (1 - fu) * grid[i0 + 1, j0] + fv * fu * grid[i0 + 1, j0 + 1])


def rtc_area(xyz: np.ndarray, sat: np.ndarray, azimuth_time: np.ndarray,
             bin_scale: float = 2.0, pad: int | None = None,
             up: np.ndarray | None = None) -> RtcArea:
    """Area normalisation for gamma0-RTC on a map grid.

    xyz: (H, W, 3) Cartesian (ECEF) position of every pixel centre, with terrain heights;
    sat: (H, W, 3) sensor position at each pixel's zero-Doppler time (same frame);
    azimuth_time: (H, W) zero-Doppler time in seconds (any origin);
    up: the local vertical (3,), by default the geocentric direction of the tile's centre
    (right for ECEF input; give it for any other Cartesian frame).
    Radar bins are `bin_scale` map pixels wide in slant range and in azimuth. Returns
    RtcArea (same H, W); gamma0_RTC = beta0 / ratio.
    """
    xyz = np.asarray(xyz, np.float64)
    sat = np.asarray(sat, np.float64)
    t = np.asarray(azimuth_time, np.float64)
    h, w = t.shape
    if xyz.shape != (h, w, 3) or sat.shape != (h, w, 3):
        raise ValueError(f"xyz {xyz.shape} and sat {sat.shape} must be ({h}, {w}, 3)")
    if h < 3 or w < 3:
        raise ValueError(f"grid {h} x {w} is too small for facets")
    pad = int(np.ceil(2 * bin_scale)) + 2 if pad is None else pad
    P = _extend(xyz, pad)
    S = _extend(sat, pad)
    T = _extend(t, pad)
    R = np.linalg.norm(S - P, axis=-1)
    # the beam's along-track ground speed v: the horizontal gradient of T is 1 / v. The grid
    # steps are projected on the horizontal plane (terrain slopes must not stretch them)
    # and the 2 x 2 system (T differences along rows and columns) solved per pixel
    u = np.asarray(up, np.float64) if up is not None else xyz[h // 2, w // 2]
    u = u / np.linalg.norm(u)
    d_c = np.gradient(P, axis=1)
    d_r = np.gradient(P, axis=0)
    h_c = d_c - (d_c @ u)[..., None] * u
    h_r = d_r - (d_r @ u)[..., None] * u
    e1 = h_c.reshape(-1, 3).mean(axis=0)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    m11, m12, m21, m22 = h_c @ e1, h_c @ e2, h_r @ e1, h_r @ e2
    t_c, t_r = np.gradient(T, axis=1), np.gradient(T, axis=0)
    det = m11 * m22 - m12 * m21
    g1 = (t_c * m22 - t_r * m12) / det
    g2 = (m11 * t_r - m21 * t_c) / det
    slowness = float(np.median(np.hypot(g1, g2)))  # seconds per horizontal metre
    px = float(np.median(np.linalg.norm(h_c, axis=-1)))  # horizontal map pixel (m)
    # radar bins: `bin_scale` map pixels of slant range (median steepest change) and of
    # azimuth (bin_scale * px metres along track)
    gr_c, gr_r = np.gradient(R, axis=(1, 0))
    dr = bin_scale * float(np.median(np.hypot(gr_c, gr_r)))  # slant metres per bin
    dt = bin_scale * px * slowness  # seconds per bin
    a_beta = dr * bin_scale * px  # slant-range extent x along-track ground extent (m^2)

    # facets: two triangles per cell of pixel centres, normals towards the sensor side
    p00, p01, p10, p11 = P[:-1, :-1], P[:-1, 1:], P[1:, :-1], P[1:, 1:]
    n1 = 0.5 * np.cross(p10 - p00, p01 - p00)
    n2 = 0.5 * np.cross(p01 - p11, p10 - p11)
    look_c = S[:-1, :-1] - p00
    if np.sum(n1 * look_c) < 0:  # grid rows may run either way: face the sensor
        n1, n2 = -n1, -n2
    facets = []
    for n, verts in ((n1, (p00, p10, p01)), (n2, (p11, p01, p10))):
        cen = (verts[0] + verts[1] + verts[2]) / 3
        if n is n1:
            s_c = (S[:-1, :-1] + S[1:, :-1] + S[:-1, 1:]) / 3
            t_c = (T[:-1, :-1] + T[1:, :-1] + T[:-1, 1:]) / 3
        else:
            s_c = (S[1:, 1:] + S[:-1, 1:] + S[1:, :-1]) / 3
            t_c = (T[1:, 1:] + T[:-1, 1:] + T[1:, :-1]) / 3
        look = s_c - cen
        r_c = np.linalg.norm(look, axis=-1)
        proj = np.sum(n * look, axis=-1) / r_c  # A_f cos(psi)
        facets.append((r_c, t_c, proj, np.linalg.norm(n, axis=-1)))
    r_all = np.concatenate([f[0].ravel() for f in facets])
    t_all = np.concatenate([f[1].ravel() for f in facets])
    a_gamma = np.concatenate([np.maximum(f[2], 0).ravel() for f in facets])
    r0, t0 = float(r_all.min()) - dr, float(t_all.min()) - dt
    shape = (int((t_all.max() - t0) / dt) + 3, int((r_all.max() - r0) / dr) + 3)
    bins = _splat((r_all - r0) / dr, (t_all - t0) / dt, a_gamma, shape)
    inner = np.s_[pad:pad + h, pad:pad + w]
    ratio = _gather(bins, (R[inner] - r0) / dr, (T[inner] - t0) / dt) / a_beta

    # local incidence per pixel from the mean normal of the facets around it
    nsum = np.zeros_like(P)
    for n, sl in ((n1, np.s_[:-1, :-1]), (n1, np.s_[1:, :-1]), (n1, np.s_[:-1, 1:]),
                  (n2, np.s_[1:, 1:]), (n2, np.s_[:-1, 1:]), (n2, np.s_[1:, :-1])):
        nsum[sl] += n
    nrm = nsum[inner] / np.linalg.norm(nsum[inner], axis=-1, keepdims=True)
    look = S[inner] - P[inner]
    look /= np.linalg.norm(look, axis=-1, keepdims=True)
    cos_psi = np.sum(nrm * look, axis=-1)
    inc = np.degrees(np.arccos(np.clip(cos_psi, -1, 1)))
    # local layover: slant range not growing as one walks over the surface away from the
    # track. "Away" is horizontal (normal to `u`, the vertical); the surface step whose
    # horizontal part is that direction is a combination a d_c + b d_r of the grid's central
    # differences, and changes the slant range by a rr_c + b rr_r
    d_c = P[pad:pad + h, pad + 1:pad + w + 1] - P[pad:pad + h, pad - 1:pad + w - 1]
    d_r = P[pad + 1:pad + h + 1, pad:pad + w] - P[pad - 1:pad + h - 1, pad:pad + w]
    rr_c = R[pad:pad + h, pad + 1:pad + w + 1] - R[pad:pad + h, pad - 1:pad + w - 1]
    rr_r = R[pad + 1:pad + h + 1, pad:pad + w] - R[pad - 1:pad + h - 1, pad:pad + w]
    e1 = d_c.reshape(-1, 3).mean(axis=0)
    e1 -= (e1 @ u) * u
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    away = -(look - (look @ u)[..., None] * u)
    m11, m12 = d_c @ e1, d_r @ e1
    m21, m22 = d_c @ e2, d_r @ e2
    g1, g2 = away @ e1, away @ e2
    det = m11 * m22 - m12 * m21
    det = np.where(det != 0, det, np.nan)
    a = (g1 * m22 - g2 * m12) / det
    b = (m11 * g2 - m21 * g1) / det
    dr_away = a * rr_c + b * rr_r
    flags = np.zeros((h, w), np.uint8)
    flags[np.nan_to_num(dr_away, nan=1.0) <= 0] |= LAYOVER
    flags[cos_psi <= 0] |= SHADOW
    return RtcArea(ratio.astype(np.float32), inc.astype(np.float32), flags)


def tile_rtc(orbit: Orbit, xyz: np.ndarray, t_init: float, bin_scale: float = 2.0) -> RtcArea:
    """`rtc_area` for a tile grid from a `sar.orbit.Orbit`: solves each pixel's zero-Doppler
    time (`sar.geocode.zero_doppler`) and takes the sensor position there."""
    t, _ = zero_doppler(orbit, xyz, t_init)
    sat, _, _ = orbit.interpolate(t)
    return rtc_area(xyz, sat, t, bin_scale)


def flat_ratio(xyz: np.ndarray, sat: np.ndarray, up: np.ndarray) -> np.ndarray:
    """cot(theta) of a flat surface with normal `up` (H, W, 3): the ratio rtc_area gives on
    flat ground, so sigma0 = beta0 sin(theta) and gamma0 = beta0 tan(theta) compare to it."""
    look = np.asarray(sat, np.float64) - np.asarray(xyz, np.float64)
    look /= np.linalg.norm(look, axis=-1, keepdims=True)
    u = np.asarray(up, np.float64)
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    c = np.clip(np.sum(look * u, axis=-1), 1e-6, 1)
    return (c / np.sqrt(1 - c * c)).astype(np.float32)


__all__ = ["LAYOVER", "SHADOW", "RtcArea", "flat_ratio", "rtc_area", "tile_rtc"]
