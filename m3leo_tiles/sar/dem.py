"""A DEM GeoTIFF as the `dem(grid) -> ellipsoidal heights` callable the pipeline takes."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window

from ..grid.geobox import GeoBox
from .geocode import grid_lonlat
from .geoid import undulation

DATUMS = ("ellipsoid", "egm2008")


@dataclass
class GeoTiffDem:
    """Bilinear heights of a DEM file on any grid; NaN where the DEM does not reach.

    `datum="ellipsoid"`: the file holds heights above WGS84 (as sarsen expects).
    `datum="egm2008"`: orthometric heights (Copernicus GLO-30); the geoid undulation from an
    offline grid (geoid.py) is added, and `geoid_model` records which model was used.
    """

    path: str
    datum: str = "ellipsoid"
    geoid_model: str | None = None
    #: the open file per thread, kept between tiles: GDAL's block cache then serves the
    #: blocks a neighbouring tile shares, and no tile pays the open (half the cost per tile,
    #: measured); one per thread, as a GDAL dataset must not be read from two at once
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False,
                                    compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}  # a worker opens its own

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _local=threading.local())

    def _open(self) -> Any:
        ds = getattr(self._local, "ds", None)
        if ds is None or ds.closed:
            ds = self._local.ds = rasterio.open(self.path)
        return ds

    def __post_init__(self) -> None:
        if self.datum not in DATUMS:
            raise ValueError(f"dem_datum must be one of {DATUMS}, got {self.datum!r}")
        with rasterio.open(self.path) as r:
            self.crs = r.crs
            self.bounds = r.bounds
            self.nodata = r.nodata
            self.transform = r.transform
            self.epsg = r.crs.to_epsg() if r.crs is not None else None

    def on_grid(self, grid: GeoBox) -> Window | None:
        """The window of the file whose pixels are exactly the grid's (same CRS and pixel
        size, the grid's corner on a pixel corner), or None.

        There a bilinear warp puts all the weight on one source pixel and returns it as
        stored, so reading the window gives the warp's answer at a fraction of its cost
        (no transformer, no warp buffers): the case of a DEM prepared on the tile lattice."""
        t = self.transform
        if grid.epsg != self.epsg or t.b != 0 or t.d != 0:
            return None
        if not (math.isclose(t.a, grid.dx, rel_tol=1e-9)
                and math.isclose(-t.e, grid.dy, rel_tol=1e-9)):
            return None
        col, row = (grid.x0 - t.c) / t.a, (t.f - grid.y0) / -t.e
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            return None
        return Window(round(col), round(row), grid.width, grid.height)

    def covers(self, grid: GeoBox) -> bool:
        west, south, east, north = transform_bounds(grid.crs, self.crs, *grid.bounds)
        bb = self.bounds
        return west >= bb.left and east <= bb.right and south >= bb.bottom and north <= bb.top

    def __call__(self, grid: GeoBox) -> np.ndarray:
        out = np.full(grid.shape, np.nan, np.float32)
        if not self.covers(grid):  # partial coverage counts as not covered: no extrapolation
            return out.astype(np.float64)
        win = self.on_grid(grid)
        if win is not None:
            out = self._open().read(1, window=win, out_dtype="float32")
            if self.nodata is not None:
                out[out == np.float32(self.nodata)] = np.nan
        else:
            reproject(rasterio.band(self._open(), 1), out, src_nodata=self.nodata,
                      dst_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs,
                      resampling=Resampling.bilinear)
        h = out.astype(np.float64)
        if self.datum == "egm2008":
            lon, lat = grid_lonlat(grid)
            n, model = undulation(lon, lat)
            self.geoid_model = model
            h = h + n
        return h
