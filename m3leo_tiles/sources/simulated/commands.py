"""`simulate`."""

from __future__ import annotations

import click


@click.command()
@click.option("--size", type=click.Choice(["small", "tile", "burst"]), default="small",
              show_default=True, help="small: 2 cropped bursts, a few tiles, seconds; tile: "
              "3 bursts, more tiles; burst: one full-size burst (benchmarks).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for s1/, rasters/, truth/, aoi.geojson and simulation.json.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Equal seeds give byte-identical files.")
@click.option("--dates", "n_dates", type=int, default=2, show_default=True,
              help="Acquisitions, 12 days apart (2-8).")
@click.option("--force", is_flag=True, help="Overwrite an existing simulation.")
@click.option("-v", "--verbose", is_flag=True, help="Progress on stderr.")
def simulate(size, out_dir, seed, n_dates, force, verbose):
    """Simulate Sentinel-1 IW SLC products (real SAFE layout) over a known scene.

    Also writes the scene's ground truth per tile, Sentinel-2 L2A-like COGs, a DEM and a
    WorldCover map (indexed by rasters/items.json), and the AOI: everything the offline chain
    needs.
    """
    from . import simulate as run

    m = run(out_dir, size=size, seed=seed, n_dates=n_dates, force=force,
            progress=(lambda msg: click.echo(msg, err=True)) if verbose else None)
    click.echo(f"simulated {len(m['products'])} products, {len(m['tiles'])} tiles, "
               f"{m['lines']} x {m['samples']} samples per swath in {m['seconds']} s -> {out_dir}")


COMMANDS = [simulate]
