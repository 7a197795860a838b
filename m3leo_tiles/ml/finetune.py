"""Fine-tuning and probing a pretrained encoder, and few-label subsets of the training tiles.

`train ... model.encoder=vit model.init=CKPT` puts a dense head on the encoder of an MAE
checkpoint (`pretrain`'s last.ckpt); `model.freeze=true` trains the head alone (a linear or
shallow probe). A checkpoint is refused, in one line, unless its input channels (names and
order: modality, band, period) and its patch size are the config's. `split.fraction` keeps
that share of the training tiles (at least one), drawn by `split.fraction_seed`: the draw is
a permutation of the sorted tiles, so a smaller fraction's tiles are a subset of a larger's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BadInput
from .dataset import TileDataset
from .module import TileTask
from .vit import ViTShape

ENCODER_PREFIX = "mae.encoder."


@dataclass(frozen=True)
class EncoderCheckpoint:
    path: str
    shape: ViTShape
    channels: tuple[str, ...]
    state: dict[str, torch.Tensor]

    def check(self, channels: list[str], patch: int) -> None:
        """One line when the config's inputs or patch size are not what it was trained on."""
        if patch != self.shape.patch:
            raise BadInput(f"checkpoint {self.path}: patch size {self.shape.patch}, the config "
                           f"has model.vit.patch {patch}")
        if tuple(channels) != self.channels:
            diff = next((i for i, (a, b) in enumerate(zip(channels, self.channels, strict=False))
                         if a != b), min(len(channels), len(self.channels)))
            have = self.channels[diff] if diff < len(self.channels) else "nothing"
            want = channels[diff] if diff < len(channels) else "nothing"
            raise BadInput(f"checkpoint {self.path}: pretrained on {len(self.channels)} "
                           f"channels, the config has {len(channels)} (channel {diff}: "
                           f"{have} vs {want})")


def read_encoder(path: str) -> EncoderCheckpoint:
    """The encoder of a `pretrain` checkpoint: its shape, channels and weights."""
    if not Path(path).is_file():
        raise BadInput(f"model.init: no checkpoint {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a foreign file
        raise BadInput(f"model.init {path}: not a torch checkpoint ({type(e).__name__})") from None
    hp = ck.get("hyper_parameters") if isinstance(ck, dict) else None
    if not isinstance(hp, dict) or "vit" not in hp or "channels" not in hp:
        raise BadInput(f"model.init {path}: not a checkpoint of m3leo-tiles pretrain")
    state = {k[len(ENCODER_PREFIX):]: v for k, v in ck["state_dict"].items()
             if k.startswith(ENCODER_PREFIX)}
    return EncoderCheckpoint(path, ViTShape(**hp["vit"]), tuple(hp["channels"]), state)


def vit_task(cfg: Any, dm: Any, in_ch: int, task: str, num_classes: int, factor: int) -> TileTask:
    """A TileTask with a ViT encoder: from the checkpoint in model.init (every encoder weight
    restored, or a clear error) or from scratch at the size in model.vit."""
    m = cfg.model
    freeze = bool(m.get("freeze", False))
    init = m.get("init")
    shape = ViTShape.from_config(in_ch, m.vit)
    ck = None
    if init:
        ck = read_encoder(str(init))
        ck.check(list(dm.channels), shape.patch)
        shape = ck.shape
    elif freeze:
        raise BadInput("model.freeze=true needs model.init (a pretrained encoder to freeze)")
    patch = dm.datasets["train"].patch
    if patch % shape.patch:
        raise BadInput(f"data patch {patch} px is not a multiple of model.vit.patch {shape.patch}")
    model = TileTask(in_ch, task, num_classes, factor, dm.target_mean, dm.target_std,
                     float(cfg.optim.lr), encoder="vit", vit=shape.as_dict(),
                     head=str(m.get("head", "linear")), freeze=freeze)
    if ck is not None:
        model.encoder.load_state_dict(ck.state, strict=True)
    return model


def label_fraction(ds: TileDataset, fraction: float, seed: int) -> list[str]:
    """Keep `fraction` of the dataset's tiles (all their patches); returns "region/tile" ids
    of the kept tiles, sorted. The same tiles for the same tiles, fraction and seed."""
    if not 0.0 < fraction <= 1.0:
        raise BadInput(f"split.fraction {fraction} must lie in (0, 1]")
    tiles = sorted({(si, t) for si, t, _ in ds.index},
                   key=lambda st: (ds.readers[st[0]].region, _tile_id(ds, *st)))
    k = max(1, int(round(fraction * len(tiles))))
    order = np.random.default_rng(seed).permutation(len(tiles))
    kept = {tiles[i] for i in order[:k]}
    ds.index = [row for row in ds.index if (row[0], row[1]) in kept]
    return sorted(f"{ds.readers[si].region}/{_tile_id(ds, si, t)}" for si, t in kept)


def _tile_id(ds: TileDataset, si: int, t: int) -> str:
    return str(ds.readers[si].table["id"].iloc[t])
