"""The known scene: land cover, terrain, deformation on a 10 m UTM raster aligned to the tiles.

Every truth the tests score against comes from here: per-class backscatter and 12-day
coherence, ellipsoidal heights, and a line-of-sight deformation bowl growing linearly in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# class code: (name, ESA WorldCover code, sigma0 VV dB, sigma0 VH dB, 12-day coherence,
#              S2 reflectance B2 B3 B4 B5 B6 B7 B8 B8A B11 B12)
CLASSES = {
    1: ("water", 80, -22.0, -28.0, 0.0,
        (500, 600, 450, 350, 300, 280, 250, 240, 150, 120)),
    2: ("forest", 10, -8.0, -13.0, 0.2,
        (300, 500, 300, 800, 2200, 2700, 2900, 3000, 1500, 700)),
    3: ("cropland", 40, -10.0, -16.0, 0.4,
        (450, 750, 600, 1200, 2500, 2900, 3100, 3200, 2300, 1400)),
    4: ("bare", 60, -12.0, -20.0, 0.6,
        (1200, 1500, 1800, 2000, 2200, 2300, 2400, 2450, 3000, 2600)),
    5: ("urban", 50, -3.0, -9.0, 0.9,
        (900, 1000, 1100, 1150, 1250, 1300, 1350, 1400, 1600, 1450)),
}

#: long-term coherence rho per class for the "rho" decay model (0 in the default "ar1" chain)
DECAY_RHO = {1: 0.0, 2: 0.1, 3: 0.15, 4: 0.3, 5: 0.7}
BASELINES = (6, 12, 18, 24, 36, 48)


def decay_params(model: str) -> dict[int, tuple[float, float]]:
    """Class -> (rho, tau in days) of gamma(t) = (1 - rho) exp(-t / tau) + rho.

    tau is chosen so that gamma(12) is the class's 12-day coherence in both models: "ar1" has
    rho = 0 and tau = -12 / ln(gamma12); "rho" has the class's DECAY_RHO. tau = 0 (water,
    gamma12 = rho) means gamma(t) = rho for every t > 0.
    """
    out = {}
    for k, v in CLASSES.items():
        rho = DECAY_RHO[k] if model == "rho" else 0.0
        base = (v[4] - rho) / (1 - rho)  # exp(-12 / tau)
        out[k] = (rho, float(-12.0 / np.log(base)) if base > 0 else 0.0)
    return out


def decay_coherence(rho: float, tau: float, days: float) -> float:
    """gamma(days) of the decay model; gamma(0) = 1."""
    if days == 0:
        return 1.0
    return rho + (1 - rho) * (float(np.exp(-days / tau)) if tau > 0 else 0.0)


def decay_speckle(rng: np.random.Generator, days: Sequence[float], rho: np.ndarray,
                  tau: np.ndarray) -> np.ndarray:
    """Unit circular-Gaussian speckle at `days` (increasing) with the simulator's construction
    (scatterers.py): s_k = sqrt(rho) c + sqrt(1 - rho) a_k, a_k an AR(1) chain with coefficient
    exp(-(t_k - t_(k-1)) / tau), so E[s_j s_k*] = (1 - rho) exp(-|t_k - t_j| / tau) + rho.
    `rho`, `tau` are arrays of one shape (tau 0: no short-term correlation). complex64
    (len(days), *shape)."""
    rho = np.asarray(rho, np.float64)
    tau = np.asarray(tau, np.float64)

    def cn() -> np.ndarray:
        w = rng.standard_normal((2, *rho.shape))
        return (w[0] + 1j * w[1]) / np.sqrt(2)

    c = cn()
    out = np.empty((len(days), *rho.shape), np.complex64)
    a = cn()
    for k, t in enumerate(days):
        if k:
            g = np.where(tau > 0, np.exp(-(t - days[k - 1]) / np.where(tau > 0, tau, 1.0)), 0.0)
            a = g * a + np.sqrt(1 - g**2) * cn()
        out[k] = np.sqrt(rho) * c + np.sqrt(1 - rho) * a
    return out


@dataclass
class Scene:
    epsg: int
    x0: float  # upper-left corner, on the 10 m lattice
    y0: float
    res: float
    classes: np.ndarray  # uint8 class codes (1..5)
    height: np.ndarray  # float32, metres above the WGS84 ellipsoid
    bowl: np.ndarray  # float32, deformation shape in [0, 1]
    los_rate: float  # metres of LOS range increase per 12 days at the bowl centre

    @property
    def shape(self) -> tuple[int, int]:
        return self.classes.shape

    def deformation(self, date_index: float) -> np.ndarray:
        """LOS range change at `date_index` x 12 days (fractional for 6-day spacing)."""
        # rasters.write_truth computes the same product on tile windows (same bytes)
        return self.bowl * self.los_rate * date_index

    def lookup(self, x: np.ndarray, y: np.ndarray, field: np.ndarray, order: int = 1
               ) -> np.ndarray:
        """Sample a field at UTM coordinates (bilinear or nearest)."""
        col = (x - self.x0) / self.res - 0.5
        row = (self.y0 - y) / self.res - 0.5
        return np.asarray(ndimage.map_coordinates(field, [row, col], order=order,
                                                  mode="nearest"))

    def table(self, column: int) -> np.ndarray:
        lut = np.zeros(max(CLASSES) + 1, np.float64)
        for k, v in CLASSES.items():
            lut[k] = v[column]
        return lut


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float
                  ) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return (f - f.mean()) / (f.std() + 1e-12)


def make_scene(rng: np.random.Generator, epsg: int, bounds: tuple[float, float, float, float],
               res: float = 10.0, base_height: float = 150.0, relief: float = 60.0,
               los_rate: float = 0.01) -> Scene:
    """A plausible landscape over `bounds` (UTM, snapped outwards to the 10 m lattice)."""
    xmin, ymin, xmax, ymax = bounds
    x0, y0 = np.floor(xmin / res) * res, np.ceil(ymax / res) * res
    w = int(np.ceil((xmax - x0) / res))
    h = int(np.ceil((y0 - ymin) / res))
    coarse = (max(8, h // 25), max(8, w // 25))
    # land cover from two smooth fields, computed coarse then zoomed (fast for big scenes)
    a = ndimage.zoom(_smooth_noise(rng, coarse, 2.0), (h / coarse[0], w / coarse[1]), order=1)
    b = ndimage.zoom(_smooth_noise(rng, coarse, 1.2), (h / coarse[0], w / coarse[1]), order=1)
    a, b = a[:h, :w], b[:h, :w]
    classes = np.full((h, w), 3, np.uint8)  # cropland by default
    classes[b > 0.5] = 2  # forest
    classes[(a > 0.7)] = 4  # bare
    classes[(a > 0.25) & (a < 0.55) & (b < -0.6)] = 5  # urban patches
    classes[a < -1.1] = 1  # lakes
    hills = ndimage.zoom(_smooth_noise(rng, coarse, 3.0), (h / coarse[0], w / coarse[1]),
                         order=3)[:h, :w]
    height = (base_height + relief * np.clip(hills, -2.5, 2.5)).astype(np.float32)
    # lakes lie flat a little below their surroundings (no cliffs: no layover by accident)
    # the regional level (a 400 m Gaussian) on an 8x coarser grid: 10 s less for a full burst
    f = 8
    coarse_h = ndimage.gaussian_filter(height[::f, ::f], 40 / f)
    regional = ndimage.zoom(coarse_h, (h / coarse_h.shape[0], w / coarse_h.shape[1]), order=1,
                            mode="nearest")[:h, :w]
    height[classes == 1] = regional[classes == 1] - 5.0
    height = ndimage.gaussian_filter(height, 4).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * rng.uniform(0.35, 0.65), w * rng.uniform(0.35, 0.65)
    radius = min(h, w) * 0.25
    bowl = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2)).astype(np.float32)
    return Scene(epsg, float(x0), float(y0), res, classes, height, bowl, los_rate)
