"""The region store: Zarr v3 layout, tile table, chunk writes, verification."""

from .store import TileStore, open_store, write_chunk

__all__ = ["TileStore", "open_store", "write_chunk"]
