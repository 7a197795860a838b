"""Orbit state-vector interpolation (annotation orbit or a precise/restituted .EOF file).

State vectors come every 10 s in an Earth-fixed frame. Between two vectors we use the degree-7
Hermite polynomial through the positions *and* velocities of the 4 nearest vectors (two either
side): it passes through the given vectors exactly and, left one vector out, predicts it to
well under a millimetre (tests/sar/test_orbit.py on real RESORB/POEORB files), far better than
the 1 m zero-Doppler tolerance sarsen uses by default. Times are float64 seconds from the
orbit's own epoch (`t_ref`, numpy datetime64[ns]); keep them float64: 1 ms is 7.6 m.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from ..errors import OrbitFileError
from ..s1.orbits import EOF_PARSE_ERRORS, eof_error

NS = np.timedelta64(1, "ns")
_NODES = 4  # nodes per Hermite segment (2 either side): 8 constraints -> degree 7


def to_seconds(t: np.ndarray | np.datetime64, t_ref: np.datetime64) -> np.ndarray:
    """datetime64 -> float64 seconds since t_ref (exact to the nanosecond for |dt| < 1e5 s)."""
    return (np.asarray(t, dtype="datetime64[ns]") - t_ref) / NS * 1e-9


@dataclass
class Orbit:
    """Piecewise degree-7 Hermite interpolator of Earth-fixed state vectors."""

    t_ref: np.datetime64  # epoch of the time axis
    t: np.ndarray  # (n,) seconds since t_ref, increasing
    pos: np.ndarray  # (n, 3) m
    vel: np.ndarray  # (n, 3) m/s
    coef: np.ndarray = field(init=False)  # (n-1, 3, 8) coefficients in u = (t - t_i) / h_i
    h: np.ndarray = field(init=False)  # (n-1,) segment lengths

    def __post_init__(self) -> None:
        if len(self.t) < _NODES:
            raise ValueError(f"an orbit needs at least {_NODES} state vectors, got {len(self.t)}")
        if np.any(np.diff(self.t) <= 0):
            raise ValueError("orbit state vector times must increase strictly")
        self.coef, self.h = _hermite_segments(self.t, self.pos, self.vel)

    @classmethod
    def from_vectors(cls, times: np.ndarray, pos: np.ndarray, vel: np.ndarray,
                     t_ref: np.datetime64 | None = None) -> Orbit:
        times = np.asarray(times, dtype="datetime64[ns]")
        order = np.argsort(times)
        times, pos, vel = times[order], np.asarray(pos, float)[order], np.asarray(vel, float)[order]
        keep = np.concatenate([[True], np.diff(times) > np.timedelta64(0, "ns")])
        times, pos, vel = times[keep], pos[keep], vel[keep]
        t_ref = times[0] if t_ref is None else t_ref.astype("datetime64[ns]")
        return cls(t_ref, to_seconds(times, t_ref), pos, vel)

    def crop(self, start: np.datetime64, stop: np.datetime64, margin_s: float = 60.0) -> Orbit:
        """Only the vectors within [start - margin, stop + margin] (at least 4 either side)."""
        a, b = to_seconds(np.array([start, stop]), self.t_ref)
        i0 = max(0, int(np.searchsorted(self.t, a - margin_s)) - _NODES)
        i1 = min(len(self.t), int(np.searchsorted(self.t, b + margin_s)) + _NODES)
        if i1 - i0 < _NODES:
            raise ValueError("orbit does not cover the requested time span")
        times = self.t_ref + (self.t[i0:i1] * 1e9).round().astype("timedelta64[ns]")
        return Orbit.from_vectors(times, self.pos[i0:i1], self.vel[i0:i1])

    def covers(self, start: np.datetime64, stop: np.datetime64) -> bool:
        a, b = to_seconds(np.array([start, stop]), self.t_ref)
        return bool(self.t[0] <= a and b <= self.t[-1])

    def interpolate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, velocity, acceleration at float seconds since t_ref (shape (..., 3))."""
        t = np.asarray(t, dtype=np.float64)
        p, v, a = _eval(self.t, self.h, self.coef, t.ravel())
        return p.reshape(t.shape + (3,)), v.reshape(t.shape + (3,)), a.reshape(t.shape + (3,))

    def at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position and velocity at datetime64 times."""
        p, v, _ = self.interpolate(to_seconds(times, self.t_ref))
        return p, v


def _hermite_segments(t: np.ndarray, pos: np.ndarray,
                      vel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each interval, solve the confluent Vandermonde system of its 4 nearest nodes."""
    n = len(t)
    h = np.diff(t)
    coef = np.empty((n - 1, 3, 2 * _NODES))
    k = np.arange(2 * _NODES)
    for i in range(n - 1):
        j0 = min(max(i - (_NODES // 2 - 1), 0), n - _NODES)
        idx = np.arange(j0, j0 + _NODES)
        u = (t[idx] - t[i]) / h[i]
        a = np.zeros((2 * _NODES, 2 * _NODES))
        a[:_NODES] = u[:, None] ** k
        a[_NODES:, 1:] = k[1:] * u[:, None] ** (k[1:] - 1)
        rhs = np.concatenate([pos[idx], vel[idx] * h[i]], axis=0)  # (8, 3)
        coef[i] = np.linalg.solve(a, rhs).T
    return coef, h


@numba.njit(cache=True, inline="always")
def horner3(c: np.ndarray, u: float) -> tuple[float, float, float]:
    """A segment polynomial (coefficients lowest power first) and its first two derivatives
    at u, by one Horner pass."""
    deg = c.shape[0]
    s0 = c[deg - 1]
    s1 = 0.0
    s2 = 0.0
    for d in range(deg - 2, -1, -1):
        s2 = s2 * u + 2.0 * s1
        s1 = s1 * u + s0
        s0 = s0 * u + c[d]
    return s0, s1, s2


@numba.njit(cache=True, nogil=True)
def _eval(tn: np.ndarray, h: np.ndarray, coef: np.ndarray,
          t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = t.shape[0]
    p = np.empty((m, 3))
    v = np.empty((m, 3))
    acc = np.empty((m, 3))
    nseg = h.shape[0]
    for q in range(m):
        i = np.searchsorted(tn, t[q]) - 1
        i = min(max(i, 0), nseg - 1)
        u = (t[q] - tn[i]) / h[i]
        for ax in range(3):
            s0, s1, s2 = horner3(coef[i, ax], u)
            p[q, ax] = s0
            v[q, ax] = s1 / h[i]
            acc[q, ax] = s2 / (h[i] * h[i])
    return p, v, acc


def _parse_utc(text: str) -> np.datetime64:
    text = text.strip()
    if text.startswith("UTC="):
        text = text[4:]
    return np.datetime64(dt.datetime.fromisoformat(text), "ns")


def read_eof(path: str | Path) -> Orbit:
    """Parse an ESA AUX_POEORB/AUX_RESORB Earth Explorer file (UTC times, Earth-fixed)."""
    try:
        return _read_eof(path)
    except OrbitFileError:
        raise
    except EOF_PARSE_ERRORS as e:
        raise eof_error(path, e) from None


def _field(osv: ET.Element, tag: str) -> str:
    """An OSV's child text; a missing one is a damaged file (read_eof names it in one line)."""
    text = osv.findtext(tag)
    if text is None:
        raise ValueError(f"an OSV record has no {tag}")
    return text


def _read_eof(path: str | Path) -> Orbit:
    root = ET.parse(path).getroot()
    frame = root.findtext(".//Variable_Header/Ref_Frame") or "EARTH_FIXED"
    if frame.strip().upper() != "EARTH_FIXED":
        raise OrbitFileError(f"{Path(path).name}: orbit frame {frame!r} is not EARTH_FIXED")
    times, pos, vel = [], [], []
    for osv in root.iter("OSV"):
        times.append(_parse_utc(_field(osv, "UTC")))
        pos.append([float(_field(osv, a)) for a in ("X", "Y", "Z")])
        vel.append([float(_field(osv, a)) for a in ("VX", "VY", "VZ")])
    if not times:
        raise OrbitFileError(f"{Path(path).name}: no OSV records")
    if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
        raise OrbitFileError(f"{Path(path).name}: state vectors are not finite numbers")
    return Orbit.from_vectors(np.array(times), np.array(pos), np.array(vel))


def find_eof(orbit_dir: str | Path, mission: str, start: np.datetime64,
             stop: np.datetime64) -> Path | None:
    """The EOF in a directory the one selection rule picks for [start, stop] (m3leo_tiles.s1.orbits)."""
    from ..s1.orbits import find_eof as choose_in_dir

    def utc(t: np.datetime64) -> dt.datetime:
        return dt.datetime.fromisoformat(str(t.astype("datetime64[us]")))

    h = choose_in_dir(orbit_dir, mission, utc(start), utc(stop))
    return Path(h.path) if h is not None else None
