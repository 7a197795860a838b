"""Adopt a published M3LEO / geetiles tile file, so users can add modalities to M3LEO tiles.

Those tiles are lon/lat squares with opaque `identifier`s, each fetched as a 448 x 448 pixel
grid in EPSG:4326. We keep their ids and footprints as they are and give each a 448 x 448
lon/lat pixel grid, so every modality lands on the pixels the published chips use.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Geod

from ..errors import BadInput
from .build import COLUMNS


def adopt_geojson(path: str | Path) -> gpd.GeoDataFrame:
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        raise BadInput(f"tile file {path} not found or empty")
    try:
        src = gpd.read_file(p)
    except Exception as e:  # noqa: BLE001 - pyogrio raises many kinds
        raise BadInput(f"cannot read tile file {path}: {str(e).splitlines()[0]}") from None
    if "identifier" not in src.columns:
        raise BadInput(f"{path} has no 'identifier' column: not an M3LEO/geetiles tile file")
    if src.empty:
        raise BadInput(f"{path} has no tiles")
    if src.crs is not None and src.crs.to_epsg() != 4326:
        src = src.to_crs(4326)
    if src["identifier"].duplicated().any():
        raise BadInput(f"{path} repeats identifiers")
    b = src.geometry.bounds
    if "area_km2" in src:
        area = src["area_km2"].astype(float).to_numpy()
    else:
        geod = Geod(ellps="WGS84")
        area = np.array([abs(geod.geometry_area_perimeter(g)[0]) / 1e6 for g in src.geometry])
    df = pd.DataFrame({
        "id": src["identifier"].astype(str), "zone": np.int16(0), "hemisphere": "",
        "epsg": np.int32(4326), "col": np.int32(-1), "row": np.int32(-1),
        "xmin": b.minx, "ymin": b.miny, "xmax": b.maxx, "ymax": b.maxy, "area_km2": area,
        "split": src["split"].astype(str) if "split" in src else "",
        "geometry": src.geometry.values,
    })
    return gpd.GeoDataFrame(df[COLUMNS], geometry="geometry", crs=4326)
