"""The tile lattice, its one tile value (`TileRef`), regions and grid building.

Names load on first use (PEP 562): the CLI reads `grid.lattice` and `grid.summary` without
paying for numpy, shapely and pyproj.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .geobox import GeoBox
    from .tileref import TileRef, grid_table_to_refs, refs_from_table, table_from_grid
    from .tiles import DEFAULT_TILE_SIZE, RESOLUTIONS, Tile, tile_from_id, utm_epsg, zone_band

_WHERE = {"GeoBox": "geobox", "TileRef": "tileref", "grid_table_to_refs": "tileref",
          "refs_from_table": "tileref", "table_from_grid": "tileref",
          "DEFAULT_TILE_SIZE": "tiles", "RESOLUTIONS": "tiles", "Tile": "tiles",
          "tile_from_id": "tiles", "utm_epsg": "tiles", "zone_band": "tiles"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


__all__ = ["DEFAULT_TILE_SIZE", "RESOLUTIONS", "GeoBox", "Tile", "TileRef", "grid_table_to_refs",
           "refs_from_table", "table_from_grid", "tile_from_id", "utm_epsg", "zone_band"]
