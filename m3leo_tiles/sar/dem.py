"""A DEM GeoTIFF as the `dem(grid) -> ellipsoidal heights` callable the pipeline takes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject, transform_bounds

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

    def covers(self, grid: GeoBox) -> bool:
        west, south, east, north = transform_bounds(grid.crs, self.crs, *grid.bounds)
        bb = self.bounds
        return west >= bb.left and east <= bb.right and south >= bb.bottom and north <= bb.top

    def __call__(self, grid: GeoBox) -> np.ndarray:
        out = np.full(grid.shape, np.nan, np.float32)
        if not self.covers(grid):  # partial coverage counts as not covered: no extrapolation
            return out.astype(np.float64)
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
