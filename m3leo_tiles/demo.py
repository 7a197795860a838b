"""The offline demo: the whole chain on simulated data, through the normal CLI.

    simulate -> grid -> refresh (s2, dem, esawc, s1grd, s1coh, s1ifg) -> status -> quicklooks
    -> report (demo/out/report.html) -> baselines --fast (the seed's three experiments: S1
    VV+VH, S2 RGB, fused -> WorldCover)

Run by `make demo` (or `m3leo-tiles demo`). Everything lands in demo/out/. Running it twice
does no work the second time: the simulator is seeded and skips an existing output, and
refresh only does what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE.parent / "demo" / "m3leo.toml"


def _cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "m3leo_tiles", *args]
    click.secho("$ m3leo-tiles " + " ".join(args), fg="cyan", err=True)
    rc = subprocess.call(cmd)
    if rc not in (0,):
        raise SystemExit(f"demo step failed (exit {rc}): m3leo-tiles {' '.join(args)}")


def run_demo(config: Path = DEFAULT_CONFIG, fresh: bool = False, seed: int = 0) -> Path:
    out = config.parent / "out"
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sim = out / "sim"
    if not (sim / "simulation.json").exists():
        _cli("simulate", "--size", "small", "--seed", str(seed), "--out", str(sim))
    else:
        click.echo(f"simulation exists: {sim}", err=True)
    manifest = json.loads((sim / "simulation.json").read_text())
    aoi = str(sim / "aoi.geojson")
    _cli("grid", "--region", aoi, "--out", str(out / "grid.parquet"),
         "--preview", str(out / "grid.png"))
    _cli("refresh", "--config", str(config))
    store = str(out / "demo.zarr")
    _cli("status", "--store", store)
    tiles = manifest.get("tiles") or []
    args = ["quicklook", "--store", store, "--out", str(out / "quicklook")]
    for t in tiles[:4]:
        args += ["--tile", t]
    _cli(*args)
    _cli("report", "--store", store, "--out", str(out / "report.html"), "--quicklooks",
         str(out / "quicklook"))
    ml = out / "baselines"
    if not (ml / "results.md").exists():
        # the grid's splits: the demo store's region is an AOI file, its tiles carry none;
        # one torch thread: on convolutions this small more threads only spin
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        _cli("baselines", "--store", store, "--out", str(ml), "--grid", "demo", "--fast",
             "--set", f"split.file={out / 'grid.parquet'}")
    else:
        click.echo(f"baselines exist: {ml / 'results.md'}", err=True)
    click.echo(f"\ndemo finished in {time.perf_counter() - t0:.0f} s: store {store}, "
               f"quicklooks in {out / 'quicklook'}, report {out / 'report.html'}, baselines in "
               f"{ml}", err=True)
    return out


@click.command()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_CONFIG, show_default=True)
@click.option("--fresh", is_flag=True, help="Delete demo/out first.")
@click.option("--seed", type=int, default=0, show_default=True)
def demo(config, fresh, seed):
    """Run the whole chain offline on simulated data (what `make demo` does)."""
    run_demo(config, fresh, seed)


COMMANDS = [demo]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    demo.main(prog_name="m3leo-tiles demo")
