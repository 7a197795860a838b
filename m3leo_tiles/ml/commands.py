"""CLI verbs of the ML path: `train` (one run), `pretrain` (an MAE) and `baselines` (the grid)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import BadInput


def _need_ml() -> None:
    """The [ml] extra is optional: say how to get it instead of a traceback."""
    import importlib.util

    missing = [m for m in ("torch", "lightning", "torchmetrics", "hydra")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise BadInput(f"the ML path needs {', '.join(missing)}: pip install 'm3leo-tiles[ml]'")


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("config")
@click.argument("overrides", nargs=-1)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: the config's `out`, else runs/<name>).")
def train(config: str, overrides: tuple[str, ...], out: Path | None) -> None:
    """Train one run: CONFIG is a shipped config (train, cross-region) or a YAML file.

    \b
    m3leo-tiles train train store=conus.zarr inputs=s1-vv-vh+s2rgb target=esawc
    m3leo-tiles train train store=demo/out/demo.zarr mode=fast seasons=[2025-MAM] \
        label_year=2021 split.file=demo/out/grid.parquet split.val=null
    """
    _need_ml()
    from .train import compose, set_threads
    from .train import train as run_train

    set_threads()
    cfg = compose(config, overrides)
    res = run_train(cfg, out)
    keys = [k for k in ("miou", "accuracy", "rmse", "mae") if k in res]
    click.echo(f"{res['name']}: " + ", ".join(f"{k} {res[k]:.4f}" for k in keys)
               + f" ({res['steps']} steps, {res['fit_s']:.0f} s) -> "
               f"{Path(out or cfg.out or Path('runs') / res['name']) / 'results.json'}")


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("config")
@click.argument("overrides", nargs=-1)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default: the config's `out`, else runs/<name>); rerun into "
                   "it to continue a killed run from its last checkpoint.")
@click.option("--fast", is_flag=True, help="The tiny CPU size (size=tiny): seconds, not days.")
def pretrain(config: str, overrides: tuple[str, ...], out: Path | None, fast: bool) -> None:
    """Pretrain a masked autoencoder: CONFIG is mae-s1, mae-s1s2 or a YAML file.

    \b
    m3leo-tiles pretrain mae-s1 store=europe.zarr --out runs/mae-europe
    m3leo-tiles pretrain mae-s1 store=demo/out/demo.zarr seasons=[2025-MAM] \
        split.file=demo/out/grid.parquet --fast
    """
    _need_ml()
    from .pretrain import pretrain as run_pretrain
    from .train import compose, set_threads

    set_threads()
    cfg = compose(config, (["size=tiny"] if fast else []) + list(overrides))
    res = run_pretrain(cfg, out)
    own = "; each hidden patch's own mean: 1.0" if res["norm_pix"] else ""
    click.echo(f"{res['name']}: masked-patch loss {res['eval_loss']:.4f} on {res['eval_split']} "
               f"(the visible patches' mean: {res['eval_visible_mean_loss']:.4f}{own}) "
               f"({res['steps']} steps, {res['fit_s']:.0f} s) -> {res['checkpoint']}")


@click.command()
@click.option("--store", "stores", multiple=True, required=True,
              help="Region store to train and test on (repeat for several regions).")
@click.option("--test-store", "test_stores", multiple=True,
              help="Cross-region: test on this store instead (repeatable).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--grid", default="seed", show_default=True,
              help="seed, m3leo, demo, or a grid YAML file.")
@click.option("--fast", is_flag=True, help="A few steps on 64 px patches with a small UNet.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="A config override for every run (repeatable).")
@click.option("--pretrained", multiple=True, metavar="CKPT",
              help="--grid pretrain: a `pretrain` checkpoint to fine-tune (repeatable); input "
                   "sets without one are pretrained on the stores first.")
def baselines(stores: tuple[str, ...], test_stores: tuple[str, ...], out: Path, grid: str,
              fast: bool, overrides: tuple[str, ...], pretrained: tuple[str, ...]) -> None:
    """Run the baseline grid; write results.csv, results.md and predictions-<target>.png."""
    _need_ml()
    from . import pretrain_grid
    from .baselines import run
    from .train import set_threads

    set_threads()
    if pretrain_grid.is_pretrain_grid(grid):
        results = pretrain_grid.run(list(stores), out, grid, fast, list(overrides),
                                    list(test_stores), list(pretrained))
    elif pretrained:
        raise BadInput("--pretrained is for a pretraining grid (--grid pretrain)")
    else:
        results = run(list(stores), out, grid, fast, overrides, list(test_stores))
    for r in results:
        metric = next((f"{k} {r[k]:.4f}" for k in ("miou", "rmse") if k in r), r["status"])
        click.echo(f"{r['run']}: {metric}")
    click.echo(f"-> {out / 'results.md'}")


COMMANDS = [train, pretrain, baselines]
