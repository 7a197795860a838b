"""Tile system, regions and grid building."""

from .geobox import RESOLUTIONS, GridSpec
from .tiles import DEFAULT_TILE_SIZE, Tile, tile_from_id, utm_epsg, zone_band

__all__ = ["DEFAULT_TILE_SIZE", "RESOLUTIONS", "GridSpec", "Tile", "tile_from_id", "utm_epsg",
           "zone_band"]
