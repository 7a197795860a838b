"""Resampling kernels (Numba): tabulated windowed sinc for complex SLC, bilinear for power.

Complex samples are interpolated with a separable Kaiser-windowed sinc, tabulated per 1/2048
of a pixel (8 taps in range, 6 in azimuth), from windows deramped by tops.deramp, then
reramped with the carrier at the fractional position and multiplied by exp(+j 4 pi R / lambda)
with that date's geometric range R: flat earth and topography removed, since the SLC phase of
a target is -4 pi R / lambda plus its scattering phase.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .tops import CarrierArgs, carrier

HALF = 4  # sinc taps either side in range (8-tap kernel)
KAISER_BETA = 4.0


def kernel_table(half: int = HALF, beta: float = KAISER_BETA, bins: int = 2048) -> np.ndarray:
    """Normalised Kaiser-windowed sinc weights (bins + 1, 2 half) for fractions 0..1.

    Row b holds the weights of taps floor(x) - half + 1 ... floor(x) + half for
    x - floor(x) = b / bins; tabulating to 1/2048 px keeps the position error below 2.5e-4 px
    (< 1e-3 rad of phase for a signal at the band edge) and turns the kernel into a lookup.
    """
    f = np.arange(bins + 1)[:, None] / bins
    d = f + half - 1 - np.arange(2 * half)[None, :]
    w = np.sinc(d) * np.i0(beta * np.sqrt(np.clip(1 - (d / half) ** 2, 0, None))) / np.i0(beta)
    w[np.abs(d) >= half] = 0
    return w / w.sum(axis=1, keepdims=True)


#: range: 8 taps (IW1 range bandwidth is 0.88 of the sampling rate); azimuth: 6 taps (the
#: deramped azimuth spectrum fills ~0.66 of the line rate; error -35 dB at 0.7, measured).
#: Both tables are float32, so that the sums run in float32 on the complex64 samples
#: (relative change 1e-7, below complex64's own rounding of the output).
TABLE_RG = kernel_table().astype(np.float32)
TABLE_AZ = kernel_table(half=3, beta=3.0).astype(np.float32)
TWO_PI = 2.0 * math.pi


@numba.njit(cache=True, inline="always", fastmath=True)
def sincos(x: float) -> tuple[float, float]:
    """(sin x, cos x) for x in [-pi, pi], within 2e-9: Taylor series of the half angle (to
    h^13 and h^14, |h| <= pi/2) and the double-angle formulas. Inline arithmetic, where libm's
    cosf and sinf were two calls a point (~15% of the kernel)."""
    h = 0.5 * x
    h2 = h * h
    sh = h * (1.0 + h2 * (-1.0 / 6 + h2 * (1.0 / 120 + h2 * (-1.0 / 5040 + h2 * (
        1.0 / 362880 + h2 * (-1.0 / 39916800 + h2 * (1.0 / 6227020800)))))))
    ch = 1.0 + h2 * (-0.5 + h2 * (1.0 / 24 + h2 * (-1.0 / 720 + h2 * (1.0 / 40320 + h2 * (
        -1.0 / 3628800 + h2 * (1.0 / 479001600 + h2 * (-1.0 / 87178291200)))))))
    return 2.0 * sh * ch, ch * ch - sh * sh


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def _interp_complex(wins: np.ndarray, row0: int, col0: int, lines: np.ndarray,
                    samples: np.ndarray, rng: np.ndarray, idx: np.ndarray, out: np.ndarray,
                    lpb: int, dt: float, tau0: float, fs: float, ks: float, fm_t0: float,
                    fm_c: np.ndarray, dc_t0: float, dc_c: np.ndarray, eta_ref0: float,
                    two_over_lambda: float, table_y: np.ndarray, table_x: np.ndarray) -> None:
    """interp_complex on the float32 view (npol, rows, 2 cols) of the windows."""
    npol, nrow, ncol2 = wins.shape
    ncol = ncol2 // 2
    ny = table_y.shape[1]
    nx = table_x.shape[1]
    hy = ny // 2
    hx = nx // 2
    bins = table_x.shape[0] - 1
    for q in numba.prange(idx.shape[0]):
        p = idx[q]
        y = lines[p] - row0
        x = samples[p] - col0
        iy = int(math.floor(y))
        ix = int(math.floor(x))
        if iy - hy + 1 < 0 or ix - hx + 1 < 0 or iy + hy >= nrow or ix + hx >= ncol:
            continue
        wy = table_y[int((y - iy) * bins + 0.5)]
        wx = table_x[int((x - ix) * bins + 0.5)]
        cyc = rng[p] * two_over_lambda
        cyc -= math.floor(cyc)
        ph = carrier(lines[p], samples[p], lpb, dt, tau0, fs, ks, fm_t0, fm_c, dc_t0, dc_c,
                     eta_ref0) + TWO_PI * cyc
        # reduced to [-pi, pi) in float64 (libm's own reduction of ~1e3 rad cost a third
        # of the kernel), then sincos
        s64, c64 = sincos(ph - TWO_PI * math.floor(ph / TWO_PI + 0.5))
        c = np.float32(c64)
        s = np.float32(s64)
        j0 = 2 * (ix - hx + 1)
        for k in range(npol):
            accr = np.float32(0.0)
            acci = np.float32(0.0)
            for a in range(ny):
                row = wins[k, iy - hy + 1 + a, j0:j0 + 2 * nx]
                rr = np.float32(0.0)
                ri = np.float32(0.0)
                for b in range(nx):
                    rr += wx[b] * row[2 * b]
                    ri += wx[b] * row[2 * b + 1]
                accr += wy[a] * rr
                acci += wy[a] * ri
            out[k, p] = complex(accr * c - acci * s, accr * s + acci * c)


def interp_complex(wins: np.ndarray, row0: int, col0: int, lines: np.ndarray,
                   samples: np.ndarray, rng: np.ndarray, idx: np.ndarray, out: np.ndarray,
                   carrier_args: CarrierArgs, wavelength: float,
                   table_y: np.ndarray = TABLE_AZ, table_x: np.ndarray = TABLE_RG) -> None:
    """Tabulated separable sinc (table_y taps in azimuth, table_x in range) of deramped
    complex64 windows (npol, rows, cols) at points idx, reramped and flattened, into
    out[:, idx]; the weights and the carrier + 4 pi R / lambda phase are shared by the
    polarisations.

    4 pi R / lambda (~2e8 rad) is reduced to one cycle before cos/sin: 2 R / lambda minus
    its floor, exact in float64 to ~3e-9 cycles; libm's own reduction of such large
    arguments cost more than the rest of the phase.
    """
    _interp_complex(wins.view(np.float32), row0, col0, lines, samples, rng, idx, out,
                    *carrier_args, 2.0 / wavelength,
                    np.ascontiguousarray(table_y, dtype=np.float32),
                    np.ascontiguousarray(table_x, dtype=np.float32))


@numba.njit(cache=True, nogil=True, parallel=True)
def interp_bilinear(win: np.ndarray, row0: float, col0: float, lines: np.ndarray,
                    samples: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
    """out[p] = bilinear value of win at (lines[p] - row0, samples[p] - col0), p in idx."""
    nrow, ncol = win.shape
    for q in numba.prange(idx.shape[0]):
        p = idx[q]
        y = lines[p] - row0
        x = samples[p] - col0
        iy = int(math.floor(y))
        ix = int(math.floor(x))
        if iy < 0 or ix < 0 or iy + 1 >= nrow or ix + 1 >= ncol:
            continue
        fy = y - iy
        fx = x - ix
        out[p] = ((1 - fy) * ((1 - fx) * win[iy, ix] + fx * win[iy, ix + 1])
                  + fy * ((1 - fx) * win[iy + 1, ix] + fx * win[iy + 1, ix + 1]))


@numba.njit(cache=True, nogil=True)
def span_at(lines: np.ndarray, samples: np.ndarray,
            idx: np.ndarray) -> tuple[float, float, float, float]:
    """(min, max) of lines and of samples over the points idx, NaN ignored: the window a
    burst's points need, without gathering them into new arrays first."""
    lo_l = lo_s = np.inf
    hi_l = hi_s = -np.inf
    for q in range(idx.shape[0]):
        p = idx[q]
        a = lines[p]
        b = samples[p]
        if a == a:
            lo_l = min(lo_l, a)
            hi_l = max(hi_l, a)
        if b == b:
            lo_s = min(lo_s, b)
            hi_s = max(hi_s, b)
    return lo_l, hi_l, lo_s, hi_s
