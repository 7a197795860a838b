"""Between the grid's GeoDataFrame, the store's tile table and the sources' TileRefs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import shapely

from ..grid.geobox import GridSpec
from ..grid.tiles import DEFAULT_TILE_SIZE, lonlat_centres, tile_polygons_lonlat
from ..sources.base import TileRef

BASE_PX = 448  # a 4480 m tile at 10 m; adopted lon/lat tiles are 448 x 448 too


def table_from_grid(gdf) -> pd.DataFrame:
    """The store's tile table from a grid GeoDataFrame (our UTM tiles or adopted lon/lat ones)."""
    n = len(gdf)
    size = int(round(float(gdf["xmax"].iloc[0] - gdf["xmin"].iloc[0]))) if n else DEFAULT_TILE_SIZE
    epsg = gdf["epsg"].to_numpy(np.int64)
    lonlat = epsg == 4326
    px = np.where(lonlat, BASE_PX, (gdf["xmax"] - gdf["xmin"]).to_numpy() / 10.0)
    lon, lat = lonlat_centres(np.asarray(gdf.geometry.values))
    return pd.DataFrame({
        "id": gdf["id"].astype(str).to_numpy(),
        "epsg": epsg,
        "x0": gdf["xmin"].to_numpy(np.float64),
        "y0": gdf["ymax"].to_numpy(np.float64),
        "dx": (gdf["xmax"] - gdf["xmin"]).to_numpy(np.float64) / px,
        "dy": (gdf["ymax"] - gdf["ymin"]).to_numpy(np.float64) / px,
        "size": np.where(lonlat, DEFAULT_TILE_SIZE, size),
        "split": gdf["split"].astype(str).to_numpy() if "split" in gdf else "",
        "lon": lon,
        "lat": lat,
    })


def refs_from_table(table: pd.DataFrame, ids: Sequence[str] | None = None) -> list[TileRef]:
    """TileRefs (10 m grid + lon/lat footprint) for the rows of a tile table, in table order."""
    t = table if ids is None else table.set_index("id").loc[list(ids)].reset_index()
    refs: list[TileRef] = []
    polys = np.empty(len(t), dtype=object)
    for epsg, idx in t.groupby("epsg").indices.items():
        sub = t.iloc[idx]
        if epsg == 4326:
            polys[idx] = shapely.box(sub.x0, sub.y0 - sub.dy * BASE_PX, sub.x0 + sub.dx * BASE_PX,
                                     sub.y0)
        else:
            size = sub["size"].to_numpy()
            cols = np.round(sub.x0.to_numpy() / size).astype(np.int64)
            rows = np.round(sub.y0.to_numpy() / size).astype(np.int64) - 1
            polys[idx] = tile_polygons_lonlat(int(epsg), cols, rows, int(size[0]))
    for i, r in enumerate(t.itertuples(index=False)):
        npx = int(round(r.size / 10)) if r.epsg != 4326 else BASE_PX
        grid = GridSpec(int(r.epsg), float(r.x0), float(r.y0), float(r.dx), float(r.dy), npx, npx)
        refs.append(TileRef(str(r.id), grid, polys[i]))
    return refs
