"""Verbs on a store itself: verify (checksums against the run state) and quicklook (PNGs)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import BadInput
from ..options import state_opt, store_opt


@click.command()
@store_opt
@state_opt
@click.option("--repair", is_flag=True, help="Delete bad and orphan chunks and mark their units "
              "for refetch.")
def verify(store, state, repair):
    """Check every done chunk's CRC32C and find chunks no recorded unit owns."""
    from ..runner.state import StateDB
    from .urls import default_state_path
    from .verify import verify as do_verify

    state = state or default_state_path(store)
    if not Path(state).exists():
        raise BadInput(f"no state database at {state}")
    db = StateDB(state, create=False)
    try:
        rep = do_verify(store, db, repair=repair)
    finally:
        db.close()
    click.echo(f"checked {rep.checked} chunks: {len(rep.corrupt)} corrupt, "
               f"{len(rep.missing)} missing, {len(rep.orphans)} orphan")
    for m, p, t, err in rep.corrupt:
        click.echo(f"corrupt {m} {p} {t}: {err}")
    for m, p, t in rep.missing:
        click.echo(f"missing {m} {p} {t}")
    if not rep.ok and not repair:
        sys.exit(1)


@click.command()
@store_opt
@click.option("--tile", "tiles", multiple=True, help="Tile id (repeatable; default: the first "
              "--limit tiles).")
@click.option("--limit", type=int, default=4, show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for <tile>.png and overview.png.")
def quicklook(store, tiles, limit, out_dir):
    """Write a PNG per tile (every modality side by side) and an overview map."""
    from ..quicklook import overview_map, quicklook_tile
    from .store import TileStore

    s = TileStore.open(store, mode="r")
    ids = list(tiles) or list(s.tile_ids[:limit])
    for t in ids:
        click.echo(quicklook_tile(store, t, Path(out_dir) / f"{t}.png"))
    click.echo(overview_map(store, Path(out_dir) / "overview.png"))


COMMANDS = [verify, quicklook]
