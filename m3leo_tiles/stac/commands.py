"""`stac`: describe a store as a STAC Collection."""

from __future__ import annotations

import click

from ..options import store_opt


@click.command()
@store_opt
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for collection.json and tiles.parquet (the grid as GeoParquet).")
def stac(store, out_dir):
    """Write a STAC Collection (datacube, one asset per modality, grid, licences)."""
    from pystac.errors import STACValidationError

    from ..errors import M3leoError
    from .collection import write

    try:
        click.echo(write(store, out_dir))
    except STACValidationError as e:  # ours to fix, never the user's: nothing was written
        raise M3leoError(f"the collection failed STAC validation (a bug): "
                         f"{str(e).splitlines()[0]}") from e


COMMANDS = [stac]
