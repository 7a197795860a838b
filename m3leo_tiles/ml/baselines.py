"""The M3LEO baseline grid in one command: runs, a results table (CSV + Markdown), a figure.

A grid file (conf/grid/*.yaml, or the user's) lists input sets and targets; every pair is one
`train` run with the grid's and the user's overrides. Every run is composed and checked before
the first one trains, so a bad key or an unknown modality costs nothing. A run whose layers the
store does not hold is reported as skipped with the reason, not silently dropped.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import BadInput
from .train import _stores, compose, data_spec, run_name, train

log = logging.getLogger(__name__)
GRID_DIR = Path(__file__).parent / "conf" / "grid"
COLUMNS = ("run", "status", "inputs", "target", "task", "channels", "train_samples",
           "val_samples", "test_samples", "test_regions", "steps", "checkpoint", "miou",
           "accuracy", "rmse", "mae", "fit_s", "per_class_iou")
N_FIGURE_ROWS = 3


def load_grid(grid: str) -> dict:
    path = Path(grid) if grid.endswith((".yaml", ".yml")) else GRID_DIR / f"{grid}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in GRID_DIR.glob("*.yaml")))
        raise BadInput(f"no grid {grid!r} (shipped: {known}; or a .yaml file)")
    try:
        g = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise BadInput(f"grid {path}: not YAML ({str(e).splitlines()[0]})") from None
    bad = set(g) - {"inputs", "targets", "overrides"}
    if bad or not g.get("inputs") or not g.get("targets"):
        raise BadInput(f"grid {path}: needs inputs and targets lists (unknown: {sorted(bad)})")
    return g


def plan(stores: Sequence[str], grid: str = "seed", fast: bool = False,
         overrides: Sequence[str] = (), test_stores: Sequence[str] = ()) -> list[Any]:
    """Composed, checked configs of every run (BadInput before any training)."""
    g = load_grid(grid)
    base = [f"stores=[{','.join(stores)}]"]
    if test_stores:
        base.append(f"test_stores=[{','.join(test_stores)}]")
    if fast:
        base.append("mode=fast")
    cfgs = []
    for t in g["targets"]:
        for i in g["inputs"]:
            cfg = compose("train", [f"inputs={i}", f"target={t}", *base,
                                    *g.get("overrides", []), *overrides])
            data_spec(cfg)  # unknown modality / band / bad patch: exit 2 now
            cfgs.append(cfg)
    _stores(cfgs[0])
    return cfgs


def _figure_rows(results: list[dict]) -> tuple[list[dict], list[str]]:
    """The same test samples under every run: input, label, each run's prediction."""
    import torch

    done = [r for r in results if "_model" in r]
    if not done:
        return [], []
    first = done[0]["_datamodule"].datasets["test"]
    n = len(first)
    if n == 0:
        return [], []
    picks = sorted({int(x) for x in np.linspace(0, n - 1, min(N_FIGURE_ROWS, n))})
    keys = []
    rows = []
    for i in picks:
        s = first.read_arrays(i)
        si, _, k = first.index[i]
        keys.append((first.readers[si].region, s["tile"], k))
        rows.append({"title": f"{s['tile']} #{k}", "input": s["image"].reshape(
            -1, *s["image"].shape[-2:])[0], "input_name": first.channels[0],
            "label": s["mask"] if "mask" in s else np.where(s["target_valid"], s["target"],
                                                             np.nan), "pred": {}})
    for r in done:
        ds, model, dm = r["_datamodule"].datasets["test"], r["_model"], r["_datamodule"]
        where = {(ds.readers[si].region, ds.readers[si].table["id"].iloc[t], k): j
                 for j, (si, t, k) in enumerate(ds.index)}
        model.eval()
        for row, key in zip(rows, keys, strict=True):
            j = where.get(key)
            if j is None:
                continue
            x = torch.from_numpy(ds.read_arrays(j)["image"])[None]
            with torch.no_grad():
                xn, _ = dm.normalize(x)
                row["pred"][r["name"]] = model.predict_target(xn)[0].numpy()
    return rows, [r["name"] for r in done]


def run(stores: Sequence[str], out: Path, grid: str = "seed", fast: bool = False,
        overrides: Sequence[str] = (), test_stores: Sequence[str] = ()) -> list[dict]:
    """Train every run of the grid; write results.csv, results.md and predictions*.png."""
    cfgs = plan(stores, grid, fast, overrides, test_stores)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    for cfg in cfgs:
        name = run_name(cfg)
        log.info("baseline run %s", name)
        try:
            res = train(cfg, out / "runs" / name)
            res["run"], res["status"] = name, "done"
        except BadInput as e:  # a layer this store does not hold: said in the table
            res = {"run": name, "name": name, "status": f"skipped: {e}",
                   "inputs": str(cfg.inputs_name), "target": str(cfg.target_name),
                   "task": str(cfg.target.task)}
        results.append(res)
    if not any(r["status"] == "done" for r in results):
        raise BadInput("no run of the grid could train: " + "; ".join(
            f"{r['run']}: {r['status']}" for r in results))
    write_tables(results, out, fast)
    for task in ("segmentation", "regression"):
        for target in dict.fromkeys(r["target"] for r in results if r.get("task") == task):
            sub = [r for r in results if r.get("target") == target]
            rows, runs = _figure_rows(sub)
            if rows:
                from .plot import predictions_figure

                spec = data_spec(next(c for c in cfgs if c.target_name == target))
                fig = predictions_figure(rows, runs, spec)
                fig.savefig(out / f"predictions-{target}.png", dpi=90)
                import matplotlib.pyplot as plt

                plt.close(fig)
    return results


def _fmt(v: Any, key: str = "") -> str:
    if isinstance(v, float):
        return (f"{v:.1f}" if key == "fit_s" else f"{v:.4f}") if np.isfinite(v) else ""
    if isinstance(v, list):
        return " ".join(f"{x:.4f}" if isinstance(x, float) and np.isfinite(x)
                        else "nan" if x is None or isinstance(x, float) else str(x) for x in v)
    return "" if v is None else str(v)


def write_results(results: list[dict], out: Path, title: str, note: str,
                  columns: Sequence[str], shown: Sequence[str]) -> None:
    """A grid's results.csv (every column) and results.md (the shown ones, under a note)."""
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in results:
            w.writerow([_fmt(r.get(c), c) for c in columns])
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(_fmt(r.get(c), c) for c in shown) + " |" for r in results]
    (out / "results.md").write_text("\n".join([f"# {title}", "", note, "", *lines, ""]))


def write_tables(results: list[dict], out: Path, fast: bool) -> None:
    shown = ("run", "status", "channels", "train_samples", "test_samples", "steps", "miou",
             "accuracy", "rmse", "fit_s")
    note = ("fast mode: a few steps on 64 px patches with a small UNet; these numbers check "
            "that inputs, labels and metrics are wired right, they are not baselines."
            if fast else "fdlsar's protocol (UNet 32-512, Adam 1e-4, best checkpoint on "
            "validation loss); mIoU is one confusion matrix over the whole test split.")
    write_results(results, out, "Baselines", note, COLUMNS, shown)
