"""The dates of a simulated stack and their orbits.

Date k is the template product shifted by `spacing` k days (templates.py: 12 days is S1's
repeat cycle, so the Earth-fixed orbit repeats; 6 days the sibling platform on the same
track), its state vectors displaced by a perpendicular baseline that stays inside a +-45 m
tube, as Sentinel-1's orbit control keeps the satellite in a tube of about 50 m RMS (Torres
et al. 2012, "GMES Sentinel-1 mission", Remote Sensing of Environment 120).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from . import geometry as geo
from .templates import Track

BASELINE_M = 45.0  # orbit offset of date 1; later dates stay within +-BASELINE_M (baseline_factor)


@dataclass
class DateGeom:
    """One date of the stack: its index, day, product name and (displaced) orbit."""

    index: int
    date: dt.date
    name: str
    orbit: geo.OrbitFit
    orbit_pos: np.ndarray
    orbit_vel: np.ndarray


def baseline_factor(k: int) -> float:
    """Date k's orbit offset in units of BASELINE_M: 0, 1, then bounded (cos of a golden-angle
    sequence), so a long stack stays inside a +-45 m tube as S1's (50 m RMS) does, instead of
    drifting to baselines whose geometric decorrelation would bias the temporal decay."""
    return float(k) if k < 2 else float(np.cos(2.39996323 * k))


def baseline_orbit(timing: geo.Timing, k: int) -> tuple[np.ndarray, np.ndarray]:
    """State vectors displaced perpendicular to the velocity, in the radial plane.

    The velocities get the displacement's own rate of change: an interpolator that uses them
    (Hermite, as the processor's) must see a consistent orbit, or millimetres of range error
    become a phase error.
    """
    pos = timing.orbit_pos.copy()
    vel = timing.orbit_vel.copy()
    if k == 0:
        return pos, vel
    radial = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    v = vel / np.linalg.norm(vel, axis=1, keepdims=True)
    cross = np.cross(v, radial)  # horizontal, across track
    cross /= np.linalg.norm(cross, axis=1, keepdims=True)
    # mostly across-track, tilted so the baseline is close to perpendicular to the look
    d = BASELINE_M * baseline_factor(k) * (0.8 * cross + 0.6 * radial)
    fit = geo.OrbitFit.fit(timing.orbit_times, d)
    t = np.array([fit.seconds(x) for x in timing.orbit_times])
    return pos + d, vel + fit.velocity(t)


def stack_dates(track: Track, tm: geo.Timing, n_dates: int, spacing: int
                ) -> list[tuple[DateGeom, dict[str, str]]]:
    """Each date's geometry and the text substitutions that name its product."""
    dates = []
    for k in range(n_dates):
        name, subs, day = track.product(k, spacing)
        pos, vel = baseline_orbit(tm, k)
        orbit = geo.OrbitFit.fit(tm.orbit_times, pos)  # times as the reference: repeat orbit
        dates.append((DateGeom(k, day, name, orbit, pos, vel), subs))
    return dates
