"""Small stores for runner and store tests, built without the region grid."""

from __future__ import annotations

import geopandas as gpd

from m3leo_tiles.grid.tileref import table_from_grid
from m3leo_tiles.grid.tiles import Tile


def tiles_gdf(n: int = 6, zone: int = 31, col: int = 100, row: int = 1200):
    tiles = [Tile(zone, "N", col + i % 3, row + i // 3) for i in range(n)]
    return gpd.GeoDataFrame({
        "id": [t.id for t in tiles],
        "epsg": [t.epsg for t in tiles],
        "xmin": [t.bounds[0] for t in tiles], "ymin": [t.bounds[1] for t in tiles],
        "xmax": [t.bounds[2] for t in tiles], "ymax": [t.bounds[3] for t in tiles],
        "split": ["train"] * n,
    }, geometry=[t.polygon_lonlat for t in tiles], crs=4326)


def tiles_table(n: int = 6, **kw):
    return table_from_grid(tiles_gdf(n, **kw))
