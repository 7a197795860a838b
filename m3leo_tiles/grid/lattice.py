"""The lattice's tile edge, in a module with no imports: the CLI's shared options read it
without loading numpy, shapely and pyproj (`grid.tiles` re-exports it)."""

DEFAULT_TILE_SIZE = 4480
