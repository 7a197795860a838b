"""`report`: the store and its runs as one self-contained HTML page."""

from __future__ import annotations

import click

from ..options import state_opt, store_opt


@click.command()
@store_opt
@state_opt
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (one file, opens from disk with no network).")
@click.option("--quicklooks", type=click.Path(file_okay=False, exists=True),
              help="A `quicklook --out` folder: its <tile>.png are embedded (up to 16 MiB).")
def report(store, state, out, quicklooks):
    """Write an HTML report: map of tile status, counts, failures, runs, sizes."""
    import os
    from pathlib import Path

    from .data import collect
    from .page import render

    html = render(collect(store, state, quicklooks))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")


COMMANDS = [report]
