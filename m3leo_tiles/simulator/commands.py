"""`simulate`: the simulator as a CLI verb (click), options mapped one to one onto
`m3leo_tiles.simulator.simulate`."""

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
              help="Acquisitions, --spacing days apart (2-16).")
@click.option("--spacing", type=click.Choice(["6", "12"]), default="12", show_default=True,
              help="Days between dates: 12 (one platform) or 6 (two, alternating).")
@click.option("--pass", "passage", type=click.Choice(["asc", "des"]), default="asc",
              show_default=True, help="Geometry: asc (S1A track 108 IW2) or des (S1B track "
              "168 IW1), both from real ESA annotations.")
@click.option("--decay", type=click.Choice(["ar1", "rho"]), default="ar1", show_default=True,
              help="Temporal coherence: ar1 gamma(t) = gamma12^(t/12); rho adds a long-term "
              "coherence per class: gamma(t) = (1-rho) exp(-t/tau) + rho (same gamma12).")
@click.option("--radiometry", type=click.Choice(["flat", "terrain"]), default="flat",
              show_default=True, help="flat: class sigma0 on every slope; terrain: class "
              "gamma0 (sigma0 / cos theta) on every slope, as gamma0-RTC should recover.")
@click.option("--relief", type=float, default=60.0, show_default=True,
              help="Amplitude of the hills in metres (0-500).")
@click.option("--deformation-cm", type=float, default=None,
              help="LOS range increase per 12 days at the deformation bowl's centre, cm "
              "(default 1; 10 gives several fringes per pair, to test unwrapping).")
@click.option("--force", is_flag=True, help="Overwrite an existing simulation.")
@click.option("-v", "--verbose", is_flag=True, help="Progress on stderr.")
def simulate(size: str, out_dir: str, seed: int, n_dates: int, spacing: str, passage: str,
             decay: str, radiometry: str, relief: float, deformation_cm: float | None,
             force: bool, verbose: bool) -> None:
    """Simulate Sentinel-1 IW SLC products (real SAFE layout) over a known scene.

    Also writes the scene's ground truth per tile, Sentinel-2 L2A-like COGs, a DEM and a
    WorldCover map (indexed by rasters/items.json), and the AOI: everything the offline chain
    needs.
    """
    from . import simulate as run

    m = run(out_dir, size=size, seed=seed, n_dates=n_dates, force=force, spacing=int(spacing),
            passage=passage, decay=decay, radiometry=radiometry, relief=relief,
            deformation_cm=deformation_cm,
            progress=(lambda msg: click.echo(msg, err=True)) if verbose else None)
    click.echo(f"simulated {len(m['products'])} products, {len(m['tiles'])} tiles, "
               f"{m['lines']} x {m['samples']} samples per swath in {m['seconds']} s -> {out_dir}")


COMMANDS = [simulate]
