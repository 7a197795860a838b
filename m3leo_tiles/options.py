"""Options several verbs share, defined once (as rasterio's `rio/options.py` does), so their
names, defaults and help read the same everywhere."""

from __future__ import annotations

import click

from .grid.lattice import DEFAULT_TILE_SIZE

STORE_HELP = "The region's Zarr store: a path (ending .zarr) or an fsspec URL."

#: --store URL (required): the region's Zarr store
store_opt = click.option("--store", required=True, help=STORE_HELP)

#: --state PATH: the run's SQLite state database
state_opt = click.option("--state", help="SQLite state path (default: beside the store).")

#: --tile-size METRES: the lattice's tile edge
tile_size_opt = click.option("--tile-size", type=int, default=DEFAULT_TILE_SIZE, show_default=True,
                             help="Tile edge in metres; a positive multiple of 10.")
