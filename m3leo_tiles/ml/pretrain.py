"""One MAE pretraining run from a Hydra config: compose, build, fit (resuming), evaluate, write.

Configs ship as `conf/mae-s1.yaml` (fdlsar's S1 recipe) and `conf/mae-s1s2.yaml`; their size
group (`size=vit-b16`, `size=tiny`) sets the encoder, decoder and trainer. The run directory
holds `pretrain.yaml` (what was composed), `checkpoints/last.ckpt` (replaced atomically every
`trainer.checkpoint_every` steps and at the end) and `results.json`. Rerunning into the same
directory continues from `last.ckpt`; a directory holding a different model or data refuses.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from ..errors import BadInput
from .datamodule import TileDataModule
from .mae import MAETask
from .train import data_spec, datamodule
from .vit import ViTShape

log = logging.getLogger(__name__)
CONFIG_FILE = "pretrain.yaml"
# config keys that define what is learned: a run directory resumes only when they agree
IDENTITY = ("inputs", "res", "patch", "time_dim", "store", "stores", "split", "model", "mae",
            "seed")


class PretrainDataModule(TileDataModule):
    """TileDataModule that also hands the model `present` (finite before normalisation, per
    element), and tests on `eval_split`: the MAE's loss needs no label, any held-out tiles do."""

    eval_split = "test"

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        batch["present"] = torch.isfinite(batch["image"])
        return super().on_after_batch_transfer(batch, dataloader_idx)

    def test_dataloader(self) -> Any:
        return self._loader(self.eval_split, False, epochs=False)


class AtomicLast(Callback):
    """checkpoints/last.ckpt every `every` steps and at the end, via a temporary file and
    os.replace: a run killed while writing keeps the previous checkpoint whole."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = path, max(1, every)

    def save(self, trainer: L.Trainer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        trainer.save_checkpoint(tmp)
        os.replace(tmp, self.path)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step % self.every == 0:
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)


def build(cfg: Any) -> tuple[PretrainDataModule, MAETask]:
    spec = data_spec(cfg)
    if spec.target is not None:
        raise BadInput("config: pretraining takes no target (remove target)")
    dm = datamodule(cfg, spec, PretrainDataModule)
    assert isinstance(dm, PretrainDataModule)
    dm.eval_split = "val" if "val" in dm.datasets else "test"
    if not len(dm.datasets[dm.eval_split]):  # results.json's loss would be nobody's
        raise BadInput(f"no held-out tiles to score the pretraining on: split.val and "
                       f"split.test ({dm.splits['test']}) select none (split.test=null "
                       "scores every tile)")
    shape = ViTShape.from_config(len(dm.channels), cfg.model.vit)
    patch = dm.datasets["train"].patch
    if patch % shape.patch:
        raise BadInput(f"data patch {patch} px is not a multiple of model.vit.patch "
                       f"{shape.patch}")
    m = cfg.mae
    if not 0.0 < float(m.mask_ratio) < 1.0:
        raise BadInput(f"mae.mask_ratio {m.mask_ratio} must lie strictly between 0 and 1")
    task = MAETask(shape.as_dict(), list(dm.channels), int(m.dec_dim), int(m.dec_depth),
                   int(m.dec_heads), float(m.mask_ratio), float(cfg.optim.lr),
                   float(cfg.optim.weight_decay), bool(m.get("norm_pix", True)))
    return dm, task


def _identity(cfg: Any) -> str:
    from omegaconf import OmegaConf

    return json.dumps({k: OmegaConf.to_container(cfg[k], resolve=True)
                       if OmegaConf.is_config(cfg[k]) else cfg[k]
                       for k in IDENTITY if k in cfg}, sort_keys=True)


def _resume_point(out: Path, cfg: Any) -> Path | None:
    """last.ckpt when this directory holds the same pretraining; BadInput when another."""
    from omegaconf import OmegaConf

    last = out / "checkpoints" / "last.ckpt"
    saved = out / CONFIG_FILE
    if saved.is_file():
        before = OmegaConf.load(saved)
        if _identity(before) != _identity(cfg):
            raise BadInput(f"{out} holds a different pretraining ({saved}); choose another --out")
    return last if last.is_file() else None


def pretrain(cfg: Any, out: Path | None = None) -> dict[str, Any]:
    """Fit the MAE (continuing a killed run), score held-out tiles, write results.json."""
    from omegaconf import OmegaConf

    name = str(cfg.get("name") or "mae")
    out = Path(out or cfg.out or Path("runs") / name)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm, task = build(cfg)  # bad input raises here, before anything is written
    resume = _resume_point(out, cfg)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (CONFIG_FILE + ".tmp")
    tmp.write_text(OmegaConf.to_yaml(cfg))
    os.replace(tmp, out / CONFIG_FILE)
    start_step = int(torch.load(resume, map_location="cpu", weights_only=False)["global_step"]
                     ) if resume else 0
    tcfg = cfg.trainer
    for name_ in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name_).setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    last = AtomicLast(out / "checkpoints" / "last.ckpt", int(tcfg.checkpoint_every))
    has_val = "val" in dm.datasets
    trainer = L.Trainer(
        max_epochs=int(tcfg.max_epochs), max_steps=int(tcfg.max_steps),
        limit_train_batches=tcfg.limit_train_batches,
        limit_val_batches=tcfg.limit_val_batches if has_val else 0,
        limit_test_batches=tcfg.limit_test_batches, accelerator=str(tcfg.accelerator),
        devices=1, logger=False, enable_checkpointing=False, callbacks=[last],
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        default_root_dir=str(out))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        for pattern in (".*does not have many workers.*", ".*LeafSpec.*",
                        ".*smaller than the logging interval.*", ".*across ranks is zero.*"):
            warnings.filterwarnings("ignore", pattern)
        trainer.fit(task, datamodule=dm, ckpt_path=str(resume) if resume else None)
        fit_s = time.perf_counter() - t0
        trainer.test(task, datamodule=dm, verbose=False)
    steps = int(trainer.global_step)
    ev = dm.eval_split
    loss, base = task.results.get("test_loss"), task.results.get("test_mean_loss")
    res: dict[str, Any] = {
        "name": name, "kind": "mae", "inputs": str(cfg.get("inputs_name", "")),
        "channels": list(dm.channels), "vit": task.shape.as_dict(),
        "decoder": {k: int(cfg.mae[k]) for k in ("dec_dim", "dec_depth", "dec_heads")},
        "mask_ratio": float(cfg.mae.mask_ratio), "norm_pix": bool(task.hparams["norm_pix"]),
        "patch_px": dm.datasets["train"].patch,
        "stores": [str(s) for s in dm.stores], "regions": dm.datasets["train"].regions,
        "train_samples": len(dm.datasets["train"]), "eval_split": ev,
        "eval_samples": len(dm.datasets[ev]), "steps": steps, "resumed_from_step": start_step,
        "epochs": int(trainer.current_epoch), "fit_s": round(fit_s, 2),
        "samples_s": round((steps - start_step) * int(cfg.loader.batch_size) / fit_s, 2)
        if fit_s > 0 else None,
        "eval_loss": loss, "eval_visible_mean_loss": base,
        "loss_ratio": (loss / base) if loss is not None and base else None,
        "checkpoint": str(out / "checkpoints" / "last.ckpt"),
        "params": sum(p.numel() for p in task.mae.encoder.parameters()),
        "device": str(trainer.strategy.root_device),
    }
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    os.replace(tmp, out / "results.json")
    res["_model"], res["_datamodule"] = task, dm
    return res
