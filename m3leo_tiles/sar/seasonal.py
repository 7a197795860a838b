"""Seasonal coherence layers as GSSIC makes them (Kellndorfer et al. 2022, Sci. Data 9:73;
EarthBigData openSAR `code/global_coherence/step-3-1-compositing.py`), on our 40 m grid.

Per season (DJF/MAM/JJA/SON, `m3leo_tiles.periods`) and polarisation:
- the median coherence of all pairs whose mid-date falls in the season, per temporal
  baseline in {6, 12, 18, 24, 36, 48} days (NaN where the season has no pair of a baseline);
- the exponential decay model gamma(t) = (1 - rho) exp(-t / tau) + rho fitted per pixel to
  those medians by bounded least squares (0 <= rho <= 1, 1 <= tau <= 1000 days), with the
  fit's rmse.

The fit is exact variable projection: for a fixed tau the model is linear in rho, so the
best rho is the clipped 1-D least-squares solution; tau is then found by a log-spaced scan
over [1, 1000] days refined by golden-section search around the best scan point (Numba,
parallel over pixels). Optionally (`looks`) the medians are first corrected for the sample
coherence's bias (Touzi et al. 1999: E|g^| for N looks, inverted by table), which the decay
parameters otherwise absorb: a bias floor of ~0.886/sqrt(N) reads as long-term coherence.

API, tile by tile: `SeasonalCoherence(shape)`; `.add(date1, date2, coh)` (or
`.add_label("20200604_20200616", coh)`) with `coh` the (2, H, W) VV/VH coherence of the
pair; `.labels()`; `.finalize(label)` -> float32
(len(COHS_BANDS), H, W) in `COHS_BANDS` order (the `s1cohs` modality's bands).
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Sequence

import numba
import numpy as np

from ..periods import Period, period_from_label
from .interferometry import expected_abs_coherence

BASELINES = (6, 12, 18, 24, 36, 48)
POLS = ("VV", "VH")
COHS_BANDS = tuple(f"{p}_{b}" for p in POLS for b in BASELINES) + tuple(
    f"{q}_{p}" for p in POLS for q in ("rho", "tau", "rmse"))
TAU_BOUNDS = (1.0, 1000.0)
_SEASON_OF_MONTH = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM",
                    6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}


def mid_date(d1: dt.date, d2: dt.date) -> dt.date:
    """The pair's mid-date (rounded down for odd day counts; S1 baselines are even)."""
    a, b = min(d1, d2), max(d1, d2)
    return a + dt.timedelta(days=(b - a).days // 2)


def season_of(day: dt.date) -> Period:
    """The seasonal period holding `day` (December belongs to the next year's DJF)."""
    name = _SEASON_OF_MONTH[day.month]
    year = day.year + 1 if day.month == 12 else day.year
    return period_from_label(f"{year:04d}-{name}")


# ---- decay fit ----------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _sse(tau: float, t: np.ndarray, y: np.ndarray, n: int) -> tuple[float, float]:
    """Best rho in [0, 1] for this tau and the sum of squared residuals."""
    suu = 0.0
    suv = 0.0
    for i in range(n):
        e = math.exp(-t[i] / tau)
        u = 1.0 - e
        suu += u * u
        suv += u * (y[i] - e)
    rho = suv / suu if suu > 1e-15 else 0.0
    rho = min(max(rho, 0.0), 1.0)
    s = 0.0
    for i in range(n):
        e = math.exp(-t[i] / tau)
        r = y[i] - e - rho * (1.0 - e)
        s += r * r
    return s, rho


@numba.njit(cache=True, nogil=True, parallel=True)
def _fit_decay(t: np.ndarray, y: np.ndarray, min_points: int, lo: float, hi: float,
               n_grid: int, out: np.ndarray) -> None:
    nb, npx = y.shape
    lg_lo = math.log(lo)
    lg_hi = math.log(hi)
    step = (lg_hi - lg_lo) / (n_grid - 1)
    g = 0.5 * (math.sqrt(5.0) - 1.0)
    for p in numba.prange(npx):
        tt = np.empty(nb)
        yy = np.empty(nb)
        n = 0
        for i in range(nb):
            v = y[i, p]
            if v == v:  # finite
                tt[n] = t[i]
                yy[n] = v
                n += 1
        if n < min_points:
            out[0, p] = np.nan
            out[1, p] = np.nan
            out[2, p] = np.nan
            continue
        best = 1e300
        best_k = 0
        for k in range(n_grid):
            s, _ = _sse(math.exp(lg_lo + k * step), tt, yy, n)
            if s < best:
                best = s
                best_k = k
        a = lg_lo + max(best_k - 1, 0) * step
        b = lg_lo + min(best_k + 1, n_grid - 1) * step
        c = b - g * (b - a)
        d = a + g * (b - a)
        fc, _ = _sse(math.exp(c), tt, yy, n)
        fd, _ = _sse(math.exp(d), tt, yy, n)
        for _ in range(40):
            if fc < fd:
                b, d, fd = d, c, fc
                c = b - g * (b - a)
                fc, _ = _sse(math.exp(c), tt, yy, n)
            else:
                a, c, fc = c, d, fd
                d = a + g * (b - a)
                fd, _ = _sse(math.exp(d), tt, yy, n)
        lg = 0.5 * (a + b)
        s, rho = _sse(math.exp(lg), tt, yy, n)
        if best < s:  # the scan point itself was better (flat or edge minimum)
            lg = lg_lo + best_k * step
            s, rho = _sse(math.exp(lg), tt, yy, n)
        out[0, p] = rho
        out[1, p] = math.exp(lg)
        out[2, p] = math.sqrt(s / n)


def fit_decay(days: Sequence[float], coh: np.ndarray, min_points: int = 3,
              tau_bounds: tuple[float, float] = TAU_BOUNDS,
              n_grid: int = 48) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel (rho, tau days, rmse) of gamma(t) = (1 - rho) exp(-t / tau) + rho.

    `coh` is (len(days), ...) with NaN for missing baselines; pixels with fewer than
    `min_points` finite values get NaN. Returns three float32 arrays shaped like coh[0].
    """
    t = np.asarray(days, np.float64)
    y = np.asarray(coh, np.float64)
    if y.shape[0] != len(t):
        raise ValueError(f"{len(t)} baselines but coherence has {y.shape[0]} planes")
    shape = y.shape[1:]
    flat = np.ascontiguousarray(y.reshape(len(t), -1))
    out = np.empty((3, flat.shape[1]), np.float64)
    _fit_decay(t, flat, int(min_points), float(tau_bounds[0]), float(tau_bounds[1]),
               int(n_grid), out)
    rho, tau, rmse = (out[i].reshape(shape).astype(np.float32) for i in range(3))
    return rho, tau, rmse


_DEBIAS_CACHE: dict[float, tuple[np.ndarray, np.ndarray]] = {}


def debias(coh: np.ndarray, looks: float) -> np.ndarray:
    """Invert E|g^|(gamma, looks) (Touzi 1999): the true coherence whose expected estimate is
    `coh`; values at or below the zero-coherence floor become 0. NaN stays NaN."""
    key = round(float(looks), 6)
    if key not in _DEBIAS_CACHE:
        g = np.linspace(0.0, 1.0, 1001)
        e = np.array([expected_abs_coherence(float(x), key) for x in g])
        _DEBIAS_CACHE[key] = (np.maximum.accumulate(e), g)
    e, g = _DEBIAS_CACHE[key]
    x = np.asarray(coh, np.float64)
    out = np.interp(np.nan_to_num(x, nan=0.0), e, g, left=0.0, right=1.0)
    return np.where(np.isfinite(x), out, np.nan).astype(np.float32)


# ---- accumulation -------------------------------------------------------------------------
class SeasonalCoherence:
    """Pairs in, seasonal `s1cohs` bands out, for one tile of shape (H, W).

    Each accepted pair's (2, H, W) coherence is kept (float32) until its season is
    finalised: a season holds at most a few dozen pairs per track, ~0.1 MB each at 40 m.
    Pairs whose baseline is not one of BASELINES are refused (add returns False).
    """

    def __init__(self, shape: tuple[int, int], looks: float | None = None,
                 min_points: int = 3) -> None:
        self.shape = tuple(shape)
        self.looks = looks
        self.min_points = min_points
        self._pairs: dict[str, dict[int, list[np.ndarray]]] = {}
        self._seen: set[tuple[str, dt.date, dt.date]] = set()

    def add(self, d1: dt.date, d2: dt.date, coh: np.ndarray, key: str = "") -> bool:
        """Add a pair's coherence (VV, VH) on the tile grid; `key` tells apart equal dates
        of different tracks (a pair added twice with one key counts once)."""
        a, b = min(d1, d2), max(d1, d2)
        days = (b - a).days
        if days not in BASELINES:
            return False
        arr = np.asarray(coh, np.float32)
        if arr.ndim == 2:
            arr = np.stack([arr, np.full(self.shape, np.nan, np.float32)])
        if arr.shape != (len(POLS), *self.shape):
            raise ValueError(f"coherence of {a}/{b} has shape {arr.shape}, expected "
                             f"{(len(POLS), *self.shape)}")
        if (key, a, b) in self._seen:
            return False
        self._seen.add((key, a, b))
        label = season_of(mid_date(a, b)).label
        self._pairs.setdefault(label, {}).setdefault(days, []).append(arr)
        return True

    def add_label(self, pair_label: str, coh: np.ndarray, key: str = "") -> bool:
        """`add` for an `s1coh` pair label such as `20200604_20200616`."""
        p = period_from_label(pair_label)
        if p.kind != "pair":
            raise ValueError(f"{pair_label!r} is not a pair label")
        return self.add(p.start, p.end - dt.timedelta(days=1), coh, key)

    def labels(self) -> list[str]:
        """Seasons with at least one pair, sorted."""
        return sorted(self._pairs)

    def counts(self, label: str) -> dict[int, int]:
        """Pairs per baseline in a season."""
        return {d: len(v) for d, v in sorted(self._pairs.get(label, {}).items())}

    def medians(self, label: str) -> np.ndarray:
        """(2, len(BASELINES), H, W) median coherence per polarisation and baseline."""
        per = self._pairs.get(label, {})
        out = np.full((len(POLS), len(BASELINES), *self.shape), np.nan, np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
            for j, days in enumerate(BASELINES):
                if days in per:
                    out[:, j] = np.nanmedian(np.stack(per[days]), axis=0)
        return out

    def finalize(self, label: str, drop: bool = True) -> np.ndarray:
        """float32 (len(COHS_BANDS), H, W) in COHS_BANDS order; frees the season's pairs
        unless `drop` is False."""
        med = self.medians(label)
        fits: list[np.ndarray] = []
        for i in range(len(POLS)):
            y = debias(med[i], self.looks) if self.looks else med[i]
            fits.extend(fit_decay(BASELINES, y, self.min_points))
        if drop:
            self._pairs.pop(label, None)
        return np.concatenate([med.reshape(-1, *self.shape), np.stack(fits)]).astype(
            np.float32)


__all__ = ["BASELINES", "COHS_BANDS", "POLS", "SeasonalCoherence", "debias", "fit_decay",
           "mid_date", "season_of"]
