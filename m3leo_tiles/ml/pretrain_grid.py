"""`baselines --grid pretrain`: the paper's open questions as rows of one table.

For every input set (e.g. S1 with and without coherence), target, label fraction and seed:
a ViT from scratch, the same ViT fine-tuned from an MAE encoder, and a frozen-encoder probe.
Encoders come from `--pretrained CKPT` (matched to input sets by the inputs they were
pretrained on; one pretrained on other stores makes cross-region rows, as M3LEO pretrained on
Europe) or, where none is given, from a pretraining the grid runs on the training stores'
train tiles first. The `cmp` column groups rows trained on the same labelled tiles and tested
on the same tiles: only rows sharing a letter compare directly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import BadInput
from .baselines import GRID_DIR, write_results
from .train import compose, data_spec, train

log = logging.getLogger(__name__)
VARIANTS = ("scratch", "finetune", "probe")
COLUMNS = ("run", "status", "cmp", "inputs", "target", "variant", "pretrained_on",
           "cross_region", "fraction", "seed", "label_tiles", "test_samples", "test_regions",
           "steps", "trainable_params", "miou", "accuracy", "rmse", "mae", "fit_s", "init")
SHOWN = ("run", "status", "cmp", "variant", "pretrained_on", "cross_region", "fraction",
         "seed", "label_tiles", "test_samples", "miou", "rmse", "fit_s")


@dataclass(frozen=True)
class PretrainGrid:
    pretrain: str
    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Encoder:
    """A pretrained encoder: its checkpoint, the input set and the regions it learned on."""

    ckpt: str
    inputs: str
    regions: tuple[str, ...]


def _path(grid: str) -> Path:
    return Path(grid) if grid.endswith((".yaml", ".yml")) else GRID_DIR / f"{grid}.yaml"


def is_pretrain_grid(grid: str) -> bool:
    path = _path(grid)
    try:
        g = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError:
        return False  # baselines' own loader says what is wrong with it
    return isinstance(g, dict) and "pretrain" in g


def load(grid: str) -> PretrainGrid:
    g = yaml.safe_load(_path(grid).read_text()) or {}
    known = {"pretrain", "inputs", "targets", "fractions", "seeds", "variants", "overrides"}
    bad = sorted(set(g) - known)
    if bad or not g.get("inputs") or not g.get("targets"):
        raise BadInput(f"grid {grid}: needs pretrain, inputs and targets (unknown: {bad})")
    variants = tuple(g.get("variants") or VARIANTS)
    if set(variants) - set(VARIANTS):
        raise BadInput(f"grid {grid}: variants are {', '.join(VARIANTS)}")
    return PretrainGrid(str(g["pretrain"]), tuple(g["inputs"]), tuple(g["targets"]),
                        tuple(float(f) for f in g.get("fractions") or [1.0]),
                        tuple(int(s) for s in g.get("seeds") or [0]), variants,
                        tuple(g.get("overrides") or ()))


def given_encoder(ckpt: str) -> Encoder:
    """A --pretrained checkpoint with the results.json `pretrain` wrote beside it."""
    from .finetune import read_encoder

    read_encoder(ckpt)  # not a pretrain checkpoint: one line now
    res = Path(ckpt).resolve().parent.parent / "results.json"
    if not res.is_file():
        raise BadInput(f"--pretrained {ckpt}: no results.json of its pretraining at {res}")
    r = json.loads(res.read_text())
    return Encoder(ckpt, str(r["inputs"]), tuple(r["regions"]))


def _pretrain_overrides(config: str, base: list[str], overrides: list[str]) -> list[str]:
    """The user's overrides that the pretraining config has keys for (label_year, target...
    belong to fine-tuning only)."""
    cfg = compose(config, base)
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~").split(".")[0] in cfg]


def run(stores: list[str], out: Path, grid: str, fast: bool, overrides: list[str],
        test_stores: list[str], pretrained: list[str]) -> list[dict]:
    g = load(grid)
    encoders = [given_encoder(c) for c in pretrained]
    base = [f"stores=[{','.join(stores)}]", *([f"test_stores=[{','.join(test_stores)}]"]
                                               if test_stores else [])]
    ft = [*base, *(["mode=fast"] if fast else []), *g.overrides, *overrides]
    plans = []
    for t in g.targets:  # every run composed and checked before any training
        for i in g.inputs:
            cfg = compose("train", [f"inputs={i}", f"target={t}", *ft])
            data_spec(cfg)
            plans.append((t, i))
    out.mkdir(parents=True, exist_ok=True)
    problems: dict[str, str] = {}
    for i in g.inputs:
        if any(e.inputs == i for e in encoders) or not set(g.variants) - {"scratch"}:
            continue
        from .pretrain import pretrain

        pbase = [f"inputs={i}", *base, *(["size=tiny"] if fast else [])]
        pcfg = compose(g.pretrain, pbase + _pretrain_overrides(
            g.pretrain, pbase, [*g.overrides, *overrides]))
        try:
            r = pretrain(pcfg, out / "pretrain" / i)
            encoders.append(Encoder(r["checkpoint"], i, tuple(r["regions"])))
        except BadInput as e:
            problems[i] = f"skipped: pretraining failed: {e}"
    results: list[dict] = []
    for t, i in plans:
        mine = [e for e in encoders if e.inputs == i]
        for frac in g.fractions:
            for seed in g.seeds[:1] if fast else g.seeds:  # fast: the first seed only
                for v in g.variants:
                    choices: list[Encoder | None] = [None] if v == "scratch" else [*mine]
                    for enc in choices or [None]:
                        results.append(_one(t, i, frac, seed, v, enc, ft, out, problems))
    if not any(r["status"] == "done" for r in results):
        raise BadInput("no run of the grid could train: " + "; ".join(
            f"{r['run']}: {r['status']}" for r in results[:3]))
    _compare(results)
    write_tables(results, out, fast)
    return results


def _one(target: str, inputs: str, frac: float, seed: int, variant: str, enc: Encoder | None,
         ft: list[str], out: Path, problems: dict[str, str]) -> dict:
    where = "-" if enc is None else "+".join(enc.regions)
    name = f"{inputs}-to-{target}-{variant}" + (f"-{where}" if enc else "") + f"-f{frac:g}-s{seed}"
    row: dict[str, Any] = {"run": name, "inputs": inputs, "target": target, "variant": variant,
                           "pretrained_on": where, "fraction": frac, "seed": seed}
    if variant != "scratch" and enc is None:
        row["status"] = problems.get(inputs, f"skipped: no pretrained encoder for {inputs}")
        return row
    extra = ["model.encoder=vit", f"split.fraction={frac}", f"split.fraction_seed={seed}",
             f"seed={seed}"]
    if enc is not None:
        extra += [f"model.init={enc.ckpt}", f"model.freeze={str(variant == 'probe').lower()}"]
    try:
        cfg = compose("train", [f"inputs={inputs}", f"target={target}", *ft, *extra])
        res = train(cfg, out / "runs" / name)
    except BadInput as e:
        row["status"] = f"skipped: {e}"
        return row
    dm = res["_datamodule"]
    test = dm.datasets["test"]
    row.update({k: v for k, v in res.items() if not k.startswith("_")})
    row.update(run=name, status="done", label_tiles=len(res["label_tiles"] or []),
               cross_region="" if enc is None else
               ("yes" if set(enc.regions).isdisjoint(test.regions + dm.datasets["train"].regions)
                else "no"),
               _key=(target, tuple(res["label_tiles"] or ()), tuple(sorted(
                   (test.readers[si].region, int(t)) for si, t, _ in test.index))))
    return row


def _compare(results: list[dict]) -> None:
    """Same labelled tiles and same test tiles (and target): the same letter."""
    letters: dict[Any, str] = {}
    for r in results:
        if "_key" in r:
            r["cmp"] = letters.setdefault(r.pop("_key"), chr(ord("A") + len(letters) % 26))


def write_tables(results: list[dict], out: Path, fast: bool) -> None:
    note = ("Rows with the same `cmp` letter were trained on the same labelled tiles and tested "
            "on the same tiles: compare metrics only within a letter. `label_tiles` counts the "
            "training tiles whose labels were used (`fraction` of them, drawn by `seed`). "
            "`cross_region` yes: the encoder was pretrained on other regions' stores.")
    if fast:
        note += (" Fast mode: a tiny ViT, a few steps on 64 px patches, the first seed only; "
                 "the numbers check the wiring, they are not results.")
    write_results(results, out, "Pretraining grid", note, COLUMNS, SHOWN)
