"""The TOPS azimuth carrier of IW SLC bursts: parameters, deramping, Doppler.

A TOPS burst's azimuth spectrum sweeps several kHz; before any complex interpolation along
azimuth the window is deramped by exp(-j phi) with phi = pi kt(tau) (eta - eta_ref(tau))^2
(ESA "Definition of the TOPS SLC deramping function", S1-TN-MDA-52-7445; kt = ks ka / (ka - ks),
ks = 2 |V| k_psi / lambda, eta from the burst centre line as s1reader/ISCE do,
eta_ref(tau) = fdc(tau0)/ka(tau0) - fdc(tau)/ka(tau)); resampling reramps with phi at the
fractional position (kernels.interp_complex). Detected power needs none of this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from .safe import Swath


@numba.njit(cache=True, inline="always")
def poly_at(tau: float, t0: float, c: np.ndarray) -> float:
    """c0 + c1 x + c2 x^2 with x = tau - t0 (annotation polynomials in range time)."""
    x = tau - t0
    return c[0] + x * (c[1] + x * c[2])


@numba.njit(cache=True, nogil=True)
def carrier(line: float, sample: float, lpb: int, dt: float, tau0: float, fs: float, ks: float,
            fm_t0: float, fm_c: np.ndarray, dc_t0: float, dc_c: np.ndarray,
            eta_ref0: float) -> float:
    """phi (rad) at a fractional burst line and sample."""
    tau = tau0 + sample / fs
    ka = poly_at(tau, fm_t0, fm_c)
    fdc = poly_at(tau, dc_t0, dc_c)
    kt = ks * ka / (ka - ks)
    eta = (line - (lpb // 2)) * dt  # from the burst centre line, as s1reader/ISCE
    eta_ref = eta_ref0 - fdc / ka
    d = eta - eta_ref
    return math.pi * kt * d * d


@numba.njit(cache=True, nogil=True, parallel=True)
def deramp(wins: np.ndarray, row0: int, col0: int, lpb: int, dt: float, tau0: float, fs: float,
           ks: float, fm_t0: float, fm_c: np.ndarray, dc_t0: float, dc_c: np.ndarray,
           eta_ref0: float) -> None:
    """wins[k] *= exp(-j phi) in place for every polarisation k of windows (npol, rows,
    cols) of one burst, phi = pi kt(tau) (eta - eta_ref(tau))^2.

    Along a column phi is quadratic in the line, so the phasor follows a complex recurrence
    (second difference constant): three complex multiplies per sample instead of a cos/sin,
    and one phasor serves every polarisation (the carrier is the burst's, not the channel's).
    The recurrence is restarted every 64 lines to keep round-off below 1e-12 rad.
    """
    npol, nrow, ncol = wins.shape
    nchunk = (ncol + 255) // 256
    for cb in numba.prange(nchunk):
        j0 = cb * 256
        j1 = min(ncol, j0 + 256)
        m = j1 - j0
        kt = np.empty(m)
        er = np.empty(m)
        z = np.empty(m, np.complex128)
        r = np.empty(m, np.complex128)
        c = np.empty(m, np.complex128)
        for jj in range(m):
            tau = tau0 + (col0 + j0 + jj) / fs
            ka = poly_at(tau, fm_t0, fm_c)
            kt[jj] = math.pi * ks * ka / (ka - ks)
            er[jj] = eta_ref0 - poly_at(tau, dc_t0, dc_c) / ka
            th = -2.0 * kt[jj] * dt * dt
            c[jj] = complex(math.cos(th), math.sin(th))
        for i in range(nrow):
            eta = (row0 + i - (lpb // 2)) * dt
            if i % 64 == 0:
                for jj in range(m):
                    d = eta - er[jj]
                    ph = -kt[jj] * d * d
                    z[jj] = complex(math.cos(ph), math.sin(ph))
                    # phi(i+1) - phi(i) = kt dt (2 d + dt)
                    st = -kt[jj] * dt * (2.0 * d + dt)
                    r[jj] = complex(math.cos(st), math.sin(st))
            for jj in range(m):
                zz = z[jj]
                z32 = np.complex64(zz)
                for k in range(npol):
                    wins[k, i, j0 + jj] = wins[k, i, j0 + jj] * z32
                z[jj] = zz * r[jj]
                r[jj] = r[jj] * c[jj]


#: BurstCarrier.args(): lpb, dt, tau0, fs, ks, fm_t0, fm_c, dc_t0, dc_c, eta_ref0
CarrierArgs = tuple[int, float, float, float, float, float, np.ndarray, float, np.ndarray, float]


@dataclass(frozen=True)
class BurstCarrier:
    """Carrier parameters of one burst, in the order the Numba kernels take them."""

    lpb: int
    dt: float
    tau0: float
    fs: float
    ks: float
    fm_t0: float
    fm_c: np.ndarray
    dc_t0: float
    dc_c: np.ndarray
    eta_ref0: float

    def args(self) -> CarrierArgs:
        return (self.lpb, self.dt, self.tau0, self.fs, self.ks, self.fm_t0, self.fm_c,
                self.dc_t0, self.dc_c, self.eta_ref0)


def burst_carrier(sw: Swath, burst: int) -> BurstCarrier:
    """TOPS carrier parameters of one burst (FM rate and DC records nearest its centre)."""
    tm = sw.burst_mid_time(sw.bursts[burst])
    _, v, _ = sw.orbit.interpolate(np.array([tm]))
    ks = 2 * float(np.linalg.norm(v[0])) * sw.steering_rate / sw.wavelength
    t_fm, t0_fm, c_fm = sw.fm_rate
    t_dc, t0_dc, c_dc = sw.dc
    i = int(np.argmin(np.abs(t_fm - tm)))
    j = int(np.argmin(np.abs(t_dc - tm)))
    fm_c = np.zeros(3)
    fm_c[: min(3, c_fm.shape[1])] = c_fm[i, :3]
    dc_c = np.zeros(3)
    dc_c[: min(3, c_dc.shape[1])] = c_dc[j, :3]
    ka0 = fm_c[0] + (sw.tau0 - t0_fm[i]) * (fm_c[1] + (sw.tau0 - t0_fm[i]) * fm_c[2])
    fdc0 = dc_c[0] + (sw.tau0 - t0_dc[j]) * (dc_c[1] + (sw.tau0 - t0_dc[j]) * dc_c[2])
    return BurstCarrier(sw.lines_per_burst, sw.dt, sw.tau0, sw.fs, ks, float(t0_fm[i]), fm_c,
                        float(t0_dc[j]), dc_c, fdc0 / ka0)


def doppler_centroid(sw: Swath, burst: int, line: float, sample: float) -> float:
    """Azimuth frequency (Hz) of the TOPS carrier at a burst position: kt (eta - eta_ref)."""
    bc = burst_carrier(sw, burst)
    tau = sw.tau0 + sample / sw.fs
    ka = poly_at(tau, bc.fm_t0, bc.fm_c)
    fdc = poly_at(tau, bc.dc_t0, bc.dc_c)
    kt = bc.ks * ka / (ka - bc.ks)
    return float(kt * ((line - sw.lines_per_burst // 2) * sw.dt - (bc.eta_ref0 - fdc / ka)))
