"""The simulator's own radar geometry: orbit fit, zero-Doppler solver, annotation timing.

Kept independent of `m3leo_tiles.sar` on purpose, so that one bug cannot hide in both the
simulator and the processor: here the orbit is a least-squares polynomial in time per ECEF
component (the processor interpolates state vectors piecewise), the zero-Doppler equation is
solved by a Numba Newton iteration started from a linear guess, and the timing is read
straight from the annotation XML with ElementTree (the processor goes through
xarray-sentinel). Both are checked against ESA's geolocation grid.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

import numba
import numpy as np

C = 299_792_458.0
WGS84_A = 6_378_137.0
WGS84_E2 = 6.69437999014e-3


def text(el: ET.Element, path: str) -> str:
    """The text at `path` under `el` ("" when empty); a template without it is a broken one."""
    value = el.findtext(path)
    if value is None:
        raise ValueError(f"annotation element <{el.tag}> has no {path}")
    return value


def child(el: ET.Element, path: str) -> ET.Element:
    """The element at `path` under `el`, which the template must have."""
    found = el.find(path)
    if found is None:
        raise ValueError(f"annotation element <{el.tag}> has no {path}")
    return found


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.strip())


def geodetic_to_ecef(lon: np.ndarray, lat: np.ndarray, h: np.ndarray) -> np.ndarray:
    """ECEF (x, y, z) in metres, stacked on the last axis, of WGS84 geodetic points."""
    lon, lat = np.radians(lon), np.radians(lat)
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    x = (n + h) * np.cos(lat) * np.cos(lon)
    y = (n + h) * np.cos(lat) * np.sin(lon)
    z = (n * (1 - WGS84_E2) + h) * np.sin(lat)
    return np.stack([x, y, z], axis=-1)


@dataclass
class OrbitFit:
    """ECEF position as a polynomial of time (seconds from `t0`), fitted to state vectors."""

    t0: datetime
    scale: float
    coef: np.ndarray  # (3, degree + 1), highest power first, in scaled time

    @classmethod
    def fit(cls, times: list[datetime], pos: np.ndarray, degree: int = 8) -> OrbitFit:
        t0 = times[len(times) // 2]
        t = np.array([(x - t0).total_seconds() for x in times])
        scale = float(np.abs(t).max()) or 1.0
        coef = np.stack([np.polyfit(t / scale, pos[:, k], degree) for k in range(3)])
        return cls(t0, scale, coef)

    def seconds(self, when: datetime) -> float:
        return (when - self.t0).total_seconds()

    def position(self, t: np.ndarray) -> np.ndarray:
        s = np.asarray(t, float) / self.scale
        return np.stack([np.polyval(self.coef[k], s) for k in range(3)], axis=-1)

    def velocity(self, t: np.ndarray) -> np.ndarray:
        s = np.asarray(t, float) / self.scale
        return np.stack([np.polyval(np.polyder(self.coef[k]), s) / self.scale
                         for k in range(3)], axis=-1)


@numba.njit(parallel=True, cache=True)
def _zero_doppler(px: np.ndarray, py: np.ndarray, pz: np.ndarray, coef: np.ndarray,
                  scale: float, t_guess: np.ndarray, out_t: np.ndarray,
                  out_r: np.ndarray) -> None:
    """Newton on (P - S(t)) . V(t) = 0 per point, from `t_guess`; writes t and |P - S|."""
    deg = coef.shape[1] - 1
    for i in numba.prange(px.shape[0]):
        t = t_guess[i]
        r = 0.0
        for _ in range(12):
            s = t / scale
            # Horner for position, velocity and acceleration at once
            sx = coef[0, 0]
            sy = coef[1, 0]
            sz = coef[2, 0]
            vx = vy = vz = 0.0
            ax = ay = az = 0.0
            for k in range(1, deg + 1):
                ax = ax * s + 2 * vx
                ay = ay * s + 2 * vy
                az = az * s + 2 * vz
                vx = vx * s + sx
                vy = vy * s + sy
                vz = vz * s + sz
                sx = sx * s + coef[0, k]
                sy = sy * s + coef[1, k]
                sz = sz * s + coef[2, k]
            vx /= scale
            vy /= scale
            vz /= scale
            ax /= scale * scale
            ay /= scale * scale
            az /= scale * scale
            dx, dy, dz = px[i] - sx, py[i] - sy, pz[i] - sz
            f = dx * vx + dy * vy + dz * vz
            fp = -(vx * vx + vy * vy + vz * vz) + dx * ax + dy * ay + dz * az
            step = f / fp
            t -= step
            r = (dx * dx + dy * dy + dz * dz) ** 0.5
            if abs(step) < 1e-10:
                break
        out_t[i] = t
        out_r[i] = r


def zero_doppler(orbit: OrbitFit, points: np.ndarray, t_mid: float) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Zero-Doppler time (s from orbit.t0) and slant range (m) of ECEF points (N, 3)."""
    p = np.ascontiguousarray(points, dtype=np.float64)
    s0 = orbit.position(np.array([t_mid]))[0]
    v0 = orbit.velocity(np.array([t_mid]))[0]
    guess = t_mid + (p - s0) @ v0 / (v0 @ v0)
    t = np.empty(len(p))
    r = np.empty(len(p))
    _zero_doppler(p[:, 0].copy(), p[:, 1].copy(), p[:, 2].copy(), orbit.coef, orbit.scale,
                  guess, t, r)
    return t, r


@dataclass
class Timing:
    """What the simulator needs from one swath annotation."""

    first_line: list[datetime]  # per burst
    lines_per_burst: int
    samples: int
    dt: float  # azimuth time interval
    tau0: float  # slant range time of sample 0
    fs: float  # range sampling rate
    wavelength: float
    steering_rate: float  # rad/s
    range_bw: float
    azimuth_bw: float
    range_window: float
    azimuth_window: float
    fm_rates: list[tuple[datetime, float, np.ndarray]]  # (time, t0, poly)
    dc: list[tuple[datetime, float, np.ndarray]]
    orbit_times: list[datetime]
    orbit_pos: np.ndarray
    orbit_vel: np.ndarray


def read_timing(root: ET.Element) -> Timing:
    """The swath's timing, orbit and processing parameters from its annotation."""
    def f(path: str) -> float:
        return float(text(root, path))

    bursts = root.findall("swathTiming/burstList/burst")
    sp = child(root, "imageAnnotation/processingInformation/swathProcParamsList/swathProcParams")
    orbits = root.findall("generalAnnotation/orbitList/orbit")
    return Timing(
        first_line=[parse_time(text(b, "azimuthTime")) for b in bursts],
        lines_per_burst=int(text(root, "swathTiming/linesPerBurst")),
        samples=int(text(root, "imageAnnotation/imageInformation/numberOfSamples")),
        dt=f("imageAnnotation/imageInformation/azimuthTimeInterval"),
        tau0=f("imageAnnotation/imageInformation/slantRangeTime"),
        fs=f("generalAnnotation/productInformation/rangeSamplingRate"),
        wavelength=C / f("generalAnnotation/productInformation/radarFrequency"),
        steering_rate=np.radians(f("generalAnnotation/productInformation/azimuthSteeringRate")),
        range_bw=float(text(sp, "rangeProcessing/processingBandwidth")),
        azimuth_bw=float(text(sp, "azimuthProcessing/processingBandwidth")),
        range_window=float(text(sp, "rangeProcessing/windowCoefficient")),
        azimuth_window=float(text(sp, "azimuthProcessing/windowCoefficient")),
        fm_rates=[(parse_time(text(e, "azimuthTime")), float(text(e, "t0")),
                   np.array(text(e, "azimuthFmRatePolynomial").split(), float))
                  for e in root.findall("generalAnnotation/azimuthFmRateList/azimuthFmRate")],
        dc=[(parse_time(text(e, "azimuthTime")), float(text(e, "t0")),
             np.array(text(e, "dataDcPolynomial").split(), float))
            for e in root.findall("dopplerCentroid/dcEstimateList/dcEstimate")],
        orbit_times=[parse_time(text(o, "time")) for o in orbits],
        orbit_pos=np.array([[float(text(o, f"position/{c}")) for c in "xyz"] for o in orbits]),
        orbit_vel=np.array([[float(text(o, f"velocity/{c}")) for c in "xyz"] for o in orbits]),
    )


def nearest_poly(entries: list[tuple[datetime, float, np.ndarray]], when: datetime
                 ) -> tuple[float, np.ndarray]:
    """(t0, coefficients) of the polynomial whose reference time is nearest `when`."""
    best = min(entries, key=lambda e: abs((e[0] - when).total_seconds()))
    return best[1], best[2]


def grid_points(root: ET.Element) -> dict[str, np.ndarray]:
    """ESA's geolocation grid: line, pixel, azimuth time, slant range time, lat, lon, height."""
    pts = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    out = {k: np.array([float(text(p, k)) for p in pts])
           for k in ("line", "pixel", "slantRangeTime", "latitude", "longitude", "height")}
    out["azimuthTime"] = np.array([parse_time(text(p, "azimuthTime")) for p in pts])
    return out
