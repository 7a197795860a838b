"""Pixel grids as small immutable values (odc-geo's `GeoBox`, north-up and without rotation).

A `GeoBox` is everything a reader needs to put pixels on a tile: CRS, upper-left corner,
pixel size and shape. Every layer of a tile is read onto `ref.grid_at(resolution)`, so layers
align by construction instead of by resampling afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine


@dataclass(frozen=True)
class GeoBox:
    """A north-up pixel grid: `epsg`, upper-left corner (x0, y0), pixel size (dx, dy), shape.

    UTM tiles have square pixels (dx == dy, metres); adopted M3LEO/geetiles tiles are lon/lat
    squares whose pixels are degrees and not square.
    """

    epsg: int
    x0: float
    y0: float
    dx: float
    dy: float
    width: int
    height: int

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"

    @property
    def res(self) -> float:
        """Pixel size; only meaningful for square pixels."""
        return self.dx

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def transform(self) -> Affine:
        return Affine(self.dx, 0.0, self.x0, 0.0, -self.dy, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the grid's CRS."""
        return (self.x0, self.y0 - self.dy * self.height, self.x0 + self.dx * self.width, self.y0)

    def xs(self) -> np.ndarray:
        """Pixel-centre x coordinates."""
        return self.x0 + self.dx * (np.arange(self.width) + 0.5)

    def ys(self) -> np.ndarray:
        """Pixel-centre y coordinates (decreasing: row 0 is north)."""
        return self.y0 - self.dy * (np.arange(self.height) + 0.5)

    def with_shape(self, width: int, height: int) -> GeoBox:
        """The same footprint cut into another number of pixels (nested resolutions)."""
        xmin, ymin, xmax, ymax = self.bounds
        return GeoBox(
            self.epsg, self.x0, self.y0, (xmax - xmin) / width, (ymax - ymin) / height, width, height
        )


__all__ = ["GeoBox"]
