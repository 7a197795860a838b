"""One training run from a Hydra config: compose, build, fit, test, write results.

Configs ship under `m3leo_tiles/ml/conf` and are composed with hydra-core's compose API (no
Hydra app, no working-directory change): `train` is the default; `CONFIG` may also be a YAML
file of the user's, which may build on the shipped groups. Bad keys, a missing store and an
unknown modality are `BadInput` (exit 2, one line) before any training.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import BadInput
from ..store.store import TileStore
from .spec import DataSpec, spec_from_config

if TYPE_CHECKING:  # torch and Lightning load on first use, not on import
    from .datamodule import TileDataModule
    from .module import TileTask

log = logging.getLogger(__name__)
CONF_MODULE = "m3leo_tiles.ml.conf"


def compose(config: str = "train", overrides: Sequence[str] = ()) -> Any:
    """The composed DictConfig; Hydra's errors become one-line BadInput."""
    from hydra import compose as hcompose
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    ctx: initialize_config_dir | initialize_config_module
    path = Path(config)
    overrides = list(overrides)
    try:
        if config.endswith((".yaml", ".yml")):
            if not path.is_file():
                raise BadInput(f"no config file {config}")
            ctx = initialize_config_dir(str(path.resolve().parent), version_base="1.3")
            name = path.stem
            overrides = [f"hydra.searchpath=[pkg://{CONF_MODULE}]"] + overrides
        else:
            ctx = initialize_config_module(CONF_MODULE, version_base="1.3")
            name = config
        with ctx:
            cfg = hcompose(config_name=name, overrides=overrides)
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException, yaml.YAMLError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(f"config {config}: {first}") from None
    finally:
        GlobalHydra.instance().clear()
    return cfg


def run_name(cfg: Any) -> str:
    return f"{cfg.get('inputs_name', 'inputs')}-to-{cfg.get('target_name', 'target')}"


def _mapping(node: Any, problem: str) -> dict[str, Any]:
    """A config node as a plain dict; a scalar or a list there is BadInput, not a traceback."""
    from omegaconf import OmegaConf

    value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if not isinstance(value, dict):
        raise BadInput(f"config: {problem}")
    return {str(k): v for k, v in value.items()}


def data_spec(cfg: Any) -> DataSpec:
    inputs = _mapping(cfg.inputs, "inputs must map modality -> {bands, periods}")
    target = (_mapping(cfg.target, "target must map modality, task, band, period, classes")
              if cfg.get("target") else None)
    return spec_from_config(inputs, target, cfg.res, cfg.patch, cfg.time_dim)


def _stores(cfg: Any) -> tuple[list[str], list[str]]:
    stores = ([str(cfg.store)] if cfg.store else []) + [str(s) for s in cfg.stores]
    if not stores:
        raise BadInput("config: no store (set store=PATH)")
    tests = [str(s) for s in cfg.test_stores]
    for s in stores + tests:
        TileStore.open(s, mode="r")  # "no store at ..." / "not an m3leo-tiles store"
    return stores, tests


def datamodule(cfg: Any, spec: DataSpec, cls: type[TileDataModule] | None = None
               ) -> TileDataModule:
    """The config's stores and splits as a set-up DataModule (`cls`: a subclass, for
    pretraining)."""
    from .datamodule import TileDataModule

    stores, tests = _stores(cfg)
    dm = (cls or TileDataModule)(
        spec, stores, tests or None, cfg.split.train, cfg.split.val, cfg.split.test,
        cfg.loader.batch_size, cfg.loader.num_workers, cfg.loader.multiprocessing_context,
        split_file=str(cfg.split.file) if cfg.split.get("file") else None)
    dm.setup()
    return dm


def _unet_task(cfg: Any, dm: TileDataModule, in_ch: int, task: str, num_classes: int,
               factor: int) -> TileTask:
    from .module import TileTask
    from .unet import padding_mode

    base, depth = int(cfg.model.base), int(cfg.model.depth)
    if base < 1 or depth < 1:
        raise BadInput(f"model.base {base}, model.depth {depth}: both must be at least 1")
    if cfg.model.get("init") or cfg.model.get("freeze"):
        raise BadInput("model.init and model.freeze need model.encoder=vit (a pretrained ViT)")
    return TileTask(in_ch, task, num_classes, factor, dm.target_mean, dm.target_std,
                    float(cfg.optim.lr), base, depth, padding_mode(str(cfg.model.padding_mode)))


def _vit_task(cfg: Any, dm: TileDataModule, in_ch: int, task: str, num_classes: int,
              factor: int) -> TileTask:
    from .finetune import vit_task

    return vit_task(cfg, dm, in_ch, task, num_classes, factor)


ENCODERS = {"unet": _unet_task, "vit": _vit_task}


def build(cfg: Any) -> tuple[TileDataModule, TileTask]:
    """DataModule and LightningModule for a composed config (data set up, stats ready)."""

    spec = data_spec(cfg)
    encoder = str(cfg.model.get("encoder", "unet"))
    if encoder not in ENCODERS:
        raise BadInput(f"model.encoder {encoder!r}: use one of {', '.join(ENCODERS)}")
    dm = datamodule(cfg, spec)
    ds = dm.datasets["train"]
    fraction = cfg.split.get("fraction")
    if fraction is not None:  # few-label runs: these tiles' labels, every tile's statistics
        from .finetune import label_fraction

        dm.label_tiles = label_fraction(ds, float(fraction),
                                        int(cfg.split.get("fraction_seed", 0)))
    in_ch = len(ds.channels)
    tspec = spec.target
    if tspec is None:
        raise BadInput("config: no target")
    assert ds.target is not None
    model = ENCODERS[encoder](cfg, dm, in_ch, tspec.task, tspec.num_classes, ds.target.factor)
    return dm, model


def train(cfg: Any, out: Path | None = None) -> dict[str, Any]:
    """Fit, test (best checkpoint on val/loss when there is validation), write results.json."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    from .unet import n_parameters

    name = run_name(cfg)
    out = Path(out or cfg.out or Path("runs") / name)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    t0 = time.perf_counter()
    dm, model = build(cfg)  # bad input raises here, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    has_val = "val" in dm.datasets
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", monitor="val/loss", mode="min",
                           save_top_k=1) if has_val else None
    tcfg = cfg.trainer
    for name_ in ("lightning.pytorch", "lightning.fabric"):  # its tips and banners are noise
        logging.getLogger(name_).setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    trainer = L.Trainer(
        max_epochs=int(tcfg.max_epochs), max_steps=int(tcfg.max_steps),
        limit_train_batches=tcfg.limit_train_batches,
        limit_val_batches=tcfg.limit_val_batches if has_val else 0,
        limit_test_batches=tcfg.limit_test_batches, accelerator=str(tcfg.accelerator),
        devices=1, logger=False, enable_checkpointing=has_val,
        callbacks=[ckpt] if ckpt else [], enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(out),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        warnings.filterwarnings("ignore", ".*across ranks is zero.*")
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        trainer.fit(model, datamodule=dm)
        fit_s = time.perf_counter() - t0
        best = ckpt.best_model_path if ckpt and ckpt.best_model_path else None
        if best:
            model = type(model).load_from_checkpoint(best, weights_only=False)
        trainer.test(model, datamodule=dm, verbose=False)
    test = dict(model.results.get("test", {}))
    res: dict[str, Any] = {
        "name": name, "inputs": str(cfg.get("inputs_name", "")),
        "target": str(cfg.get("target_name", "")), "task": cfg.target.task,
        "channels": len(dm.channels), "train_samples": len(dm.datasets["train"]),
        "val_samples": len(dm.datasets["val"]) if has_val else 0,
        "test_samples": len(dm.datasets["test"]), "test_regions": dm.datasets["test"].regions,
        "params": n_parameters(model.model), "steps": int(trainer.global_step),
        "encoder": str(cfg.model.get("encoder", "unet")), "init": cfg.model.get("init"),
        "freeze": bool(cfg.model.get("freeze", False)),
        "trainable_params": sum(p.numel() for p in model.model.parameters() if p.requires_grad),
        "label_fraction": cfg.split.get("fraction"),
        "label_tiles": dm.label_tiles,
        "epochs": int(trainer.current_epoch), "checkpoint": "best val/loss" if best else "last",
        "fit_s": round(fit_s, 2), "device": str(torch.device(trainer.strategy.root_device)),
        **test,
    }
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    res["_model"], res["_datamodule"] = model, dm
    return res


def set_threads() -> None:
    """Respect OMP_NUM_THREADS when given; torch otherwise takes every core."""
    import torch

    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit():
        torch.set_num_threads(int(n))
