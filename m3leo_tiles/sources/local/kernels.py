"""Numba kernels of the local source: separable resampling, the L2A scene mask, a NaN median.

Each is the loop a GDAL warp (bilinear/nearest) or `numpy.nanmedian` would run, written out so
it runs in parallel on native integers without temporaries; `tests/sources/test_local.py`
checks them against GDAL and numpy.
"""

from __future__ import annotations

import numba
import numpy as np

from ..sentinel2 import SCL_INVALID


@numba.njit(parallel=True, cache=True)
def resample_separable(band, nodata, has_nodata, u, v, nearest, out):
    """Bilinear (or nearest) resampling at separable sample positions, straight from the
    native integers: nodata and any NaN neighbour give NaN, as a GDAL warp would skip them.
    Where positions fall on source pixel centres (10 m S2 bands on our grid) the weights are
    zero and this is a strided copy."""
    h, w = v.size, u.size
    one = np.float32(1.0)
    half = 0.5 if nearest else 0.0
    jj = np.empty(w, np.int64)
    wxx = np.empty(w, np.float32)
    for c in range(w):
        jj[c] = int(np.floor(u[c] + half))
        wxx[c] = 0.0 if nearest else np.float32(u[c] - jj[c])
    on_centres = not np.any(wxx != 0)
    for r in numba.prange(h):
        i = int(np.floor(v[r] + half))
        wy = np.float32(0.0) if nearest else np.float32(v[r] - i)
        row = out[r]
        if on_centres and wy == 0:
            for c in range(w):
                x = band[i, jj[c]]
                row[c] = np.nan if has_nodata and x == nodata else np.float32(x)
            continue
        for c in range(w):
            j = jj[c]
            wx = wxx[c]
            a = np.float32(band[i, j])
            if has_nodata and band[i, j] == nodata:
                a = np.float32(np.nan)
            b = np.float32(band[i, j + 1])
            if has_nodata and band[i, j + 1] == nodata:
                b = np.float32(np.nan)
            cc = np.float32(band[i + 1, j])
            if has_nodata and band[i + 1, j] == nodata:
                cc = np.float32(np.nan)
            d = np.float32(band[i + 1, j + 1])
            if has_nodata and band[i + 1, j + 1] == nodata:
                d = np.float32(np.nan)
            left = a * (one - wy) + cc * wy
            right = b * (one - wy) + d * wy
            row[c] = left * (one - wx) + right * wx


@numba.njit(parallel=True, cache=True)
def mask_scene(bands, scl, offset, invalid_classes):
    """Add the L2A offset; NaN where the scene class is not clear ground or the reflectance
    is not positive."""
    nb, n = bands.shape
    bad = np.empty(n, np.bool_)
    for i in numba.prange(n):
        s = scl[i]
        x = s != s
        for c in invalid_classes:
            x |= s == c
        bad[i] = x
    for b in range(nb):
        row = bands[b]
        for i in numba.prange(n):
            v = row[i] + offset
            row[i] = np.nan if bad[i] or not v > 0 else v


@numba.njit(parallel=True, cache=True)
def _nan_median(stack: np.ndarray, out: np.ndarray) -> None:
    d, n = stack.shape
    chunk = 8192
    for c in numba.prange((n + chunk - 1) // chunk):
        buf = np.empty(d, np.float32)  # one buffer per chunk, not per pixel
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            k = 0
            for j in range(d):
                v = stack[j, i]
                if v == v:  # not NaN
                    buf[k] = v
                    k += 1
            if k == 0:
                out[i] = np.nan
            elif k == 1:
                out[i] = buf[0]
            elif k == 2:
                out[i] = np.float32(0.5) * (buf[0] + buf[1])
            elif k == 3:  # branch-free: data-dependent branches dominate otherwise
                lo, hi = min(buf[0], buf[1]), max(buf[0], buf[1])
                out[i] = max(lo, min(hi, buf[2]))
            else:
                for q in range(1, k):  # insertion sort
                    v = buf[q]
                    p = q
                    while p > 0 and buf[p - 1] > v:
                        buf[p] = buf[p - 1]
                        p -= 1
                    buf[p] = v
                if k % 2:
                    out[i] = buf[k // 2]
                else:
                    out[i] = np.float32(0.5) * (buf[k // 2 - 1] + buf[k // 2])


def nan_median(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (few dates, many pixels: a Numba insertion sort)."""
    flat = np.ascontiguousarray(stack.reshape(stack.shape[0], -1), dtype=np.float32)
    out = np.empty(flat.shape[1], np.float32)
    _nan_median(flat, out)
    return out.reshape(stack.shape[1:])


def warm_kernels() -> None:
    """Compile (or load from Numba's cache) the kernels for the band types archives use, so a
    benchmark or a fresh worker does not time the compiler."""
    u = v = np.arange(2, dtype=np.float64) + 0.25
    for dt_ in (np.uint8, np.uint16, np.int16, np.float32):
        band = np.ones((4, 4), dt_)
        resample_separable(band, band.dtype.type(0), True, u, v, False,
                            np.empty((2, 2), np.float32))
    nan_median(np.ones((3, 1, 2), np.float32))
    mask_scene(np.ones((1, 2), np.float32), np.ones(2, np.float32), np.float32(0),
                np.array(SCL_INVALID, np.float32))
