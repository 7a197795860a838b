"""The tile lattice, its one tile value (`TileRef`), regions and grid building."""

from .geobox import GeoBox
from .tileref import TileRef, grid_table_to_refs, refs_from_table, table_from_grid
from .tiles import DEFAULT_TILE_SIZE, RESOLUTIONS, Tile, tile_from_id, utm_epsg, zone_band

__all__ = ["DEFAULT_TILE_SIZE", "RESOLUTIONS", "GeoBox", "Tile", "TileRef", "grid_table_to_refs",
           "refs_from_table", "table_from_grid", "tile_from_id", "utm_epsg", "zone_band"]
