"""Point scatterers to TOPS SLC pixels: band-limited, Hamming-weighted, carrier-modulated.

Each scatterer k at zero-Doppler time t_k and slant range R_k adds to the SLC
    a_k exp(-j 4 pi R_k / lambda) h_az(l - l_k) exp(j 2 pi f_k (l - l_k) dt) h_rg(s - s_k)
where h is the impulse response of a Hamming-weighted band (window coefficient and bandwidths
from the annotation) and f_k the TOPS Doppler at the scatterer's burst-relative time:
f_k = kt (eta_k - eta_ref), kt = ks / (1 - ks / ka), ks = 2 v k_psi / lambda.
"""

from __future__ import annotations

import numba
import numpy as np

HALF = 4  # taps each side: 8 x 8 kernel
BINS = 128


def hamming_response(x: np.ndarray, beta: float, alpha: float) -> np.ndarray:
    """Impulse response of a band of normalised width `beta` weighted by
    alpha + (1 - alpha) cos(2 pi f / B): alpha sinc + (1 - alpha) / 2 shifted sincs."""
    bx = beta * x
    return beta * (alpha * np.sinc(bx) + 0.5 * (1 - alpha) * (np.sinc(bx - 1) + np.sinc(bx + 1)))


def kernel_table(beta: float, alpha: float) -> np.ndarray:
    """Taps for fractional offsets in [0, 1): row i is for frac = i / BINS, taps -HALF+1..HALF."""
    frac = np.arange(BINS + 1) / BINS
    taps = np.arange(-HALF + 1, HALF + 1)
    return hamming_response(taps[None, :] - frac[:, None], beta, alpha)


def energy(beta: float, alpha: float) -> float:
    """Integral of |h|^2 over continuous offsets (pixel units)."""
    x = np.linspace(-60, 60, 240001)
    return float(np.trapezoid(hamming_response(x, beta, alpha) ** 2, x))


@numba.njit(cache=True, nogil=True)
def splat(out: np.ndarray, lines: np.ndarray, samples: np.ndarray, amp: np.ndarray,
          freq: np.ndarray, dt: float, taz: np.ndarray, trg: np.ndarray) -> None:
    """Add every scatterer's response to `out` (serial: deterministic, no write races)."""
    nl, ns = out.shape
    bins = taz.shape[0] - 1
    for k in range(lines.shape[0]):
        lk = lines[k]
        sk = samples[k]
        il = int(np.floor(lk))
        js = int(np.floor(sk))
        fl = lk - il
        fs = sk - js
        ra = taz[int(fl * bins + 0.5)]
        rr = trg[int(fs * bins + 0.5)]
        for a in range(2 * HALF):
            row = il - HALF + 1 + a
            if row < 0 or row >= nl:
                continue
            dl = row - lk
            ph = 2.0 * np.pi * freq[k] * dl * dt
            base = amp[k] * ra[a] * complex(np.cos(ph), np.sin(ph))
            for b in range(2 * HALF):
                col = js - HALF + 1 + b
                if col < 0 or col >= ns:
                    continue
                out[row, col] += base * rr[b]
