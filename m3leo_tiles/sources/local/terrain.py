"""Terrain derivatives of an elevation grid: central differences (numpy.gradient), degrees."""

from __future__ import annotations

import numpy as np


def slope_aspect(elev: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect in degrees (aspect clockwise from north, downslope direction)."""
    gy, gx = np.gradient(elev.astype(np.float64), dy, dx)
    # rows run south, so north-facing gradient is -gy
    dzdx, dzdy = gx, -gy
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    aspect = (np.degrees(np.arctan2(-dzdx, -dzdy)) + 360.0) % 360.0
    return slope.astype(np.float32), aspect.astype(np.float32)
