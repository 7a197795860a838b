"""The Lightning DataModule: datasets per split, store-kept statistics, batch normalisation.

As TorchGeo's datamodules, normalisation runs on whole batches after they reach the device
(`on_after_batch_transfer`), not per sample in the workers. Workers start with the `spawn`
(or `forkserver`) context and open the stores themselves (zarr-python #2812: a fork taken while
zarr's I/O thread holds a lock can deadlock).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..errors import BadInput
from .dataset import TileDataset, collate, share_by_name
from .reader import Layer, StoreReader, read_split_file
from .spec import DataSpec
from .stats import layer_stats

log = logging.getLogger(__name__)


class Normalize(nn.Module):
    """(x - mean) / std per channel, then NaN -> 0 (the mean) with a `valid` mask of pixels
    where every channel had data; works on a sample [C,H,W] / [T,C,H,W] or a batch.
    `inplace` reuses the image's memory (the DataModule owns its batches): two passes over
    the data instead of five temporaries."""

    scale: torch.Tensor  # register_buffer's, declared so their type is not Module's getattr
    shift: torch.Tensor

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, channel_shape: Sequence[int],
                 inplace: bool = False):
        super().__init__()
        shape = tuple(channel_shape) + (1, 1)
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(shape)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(shape)
        self.register_buffer("scale", 1.0 / std)
        self.register_buffer("shift", -mean / std)
        self.inplace = inplace

    def forward(self, image: torch.Tensor, finite: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """`finite`: torch.isfinite(image) where the caller has it (pretraining does), which
        spares a pass over the batch: every batch of a run crosses here in the main process."""
        # the channel dims (one, or T and C) sit just before y, x: all must be finite
        nchan = self.scale.dim() - 2
        if finite is not None:
            valid = finite.flatten(start_dim=-2 - nchan, end_dim=-3).all(dim=-3)
        else:
            valid = ~torch.isnan(image.flatten(start_dim=-2 - nchan, end_dim=-3)).any(dim=-3)
        x = image if self.inplace else image.clone()
        x.mul_(self.scale).add_(self.shift)
        return torch.nan_to_num_(x, nan=0.0), valid


class EagerLoader(DataLoader):
    """A DataLoader whose persistent workers begin the next epoch the moment one ends.

    torch resets persistent workers only when the next epoch is asked for, so every epoch
    started with an idle worker and a main process waiting a whole batch read (measured: about
    half the pretraining loader's wait on a 2-core CPU). Here the epoch's last batch triggers
    the reset: the sampler draws the next order and the workers prefetch its first batches
    while the last step, validation and checkpointing run. An epoch left early (a step limit)
    starts the next one the ordinary way. Without persistent workers it is a plain DataLoader.
    """

    _ready = False  # the persistent iterator was already reset for the coming epoch

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("num_workers") and kwargs.get("worker_init_fn") is None:
            kwargs["worker_init_fn"] = share_by_name
        super().__init__(*args, **kwargs)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]  # an epoch over torch's
        if not (self.persistent_workers and self.num_workers > 0):
            return super().__iter__()
        it = self._iterator if self._ready else None  # None too after Lightning's teardown
        self._ready = False
        return self._epoch(it if it is not None else super().__iter__())

    def _epoch(self, it: Iterator[Any]) -> Iterator[Any]:
        yield from it
        super().__iter__()  # resets the workers' iterator: they start the next epoch now
        self._ready = True


class TileDataModule(L.LightningDataModule):
    def __init__(self, spec: DataSpec, stores: Sequence[str], test_stores: Sequence[str] | None = None,
                 train_split: str = "train", val_split: str | None = "val",
                 test_split: str | None = "test", batch_size: int = 8, num_workers: int = 0,
                 multiprocessing_context: str = "spawn", keep_stats: bool = True,
                 split_file: str | None = None):
        super().__init__()
        if multiprocessing_context not in ("spawn", "forkserver"):
            raise BadInput(f"multiprocessing_context {multiprocessing_context!r}: use spawn or "
                           "forkserver (forked workers can deadlock on zarr's I/O thread)")
        self.spec = spec
        self.stores = list(stores)
        self.test_stores = list(test_stores) if test_stores else list(self.stores)
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.context = multiprocessing_context
        self.keep_stats = keep_stats
        self.split_file = split_file
        self.datasets: dict[str, TileDataset] = {}
        self.normalize: Normalize | None = None
        self.target_mean, self.target_std = 0.0, 1.0
        self.label_tiles: list[str] | None = None  # few-label runs: the tiles whose labels train

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        readers = [StoreReader(s) for s in self.stores]
        tests = readers if self.test_stores == self.stores else [
            StoreReader(s) for s in self.test_stores]
        if self.split_file:
            splits = read_split_file(self.split_file)
            for r in {id(r): r for r in readers + tests}.values():
                r.apply_splits(splits)
        self.datasets["train"] = TileDataset(readers, self.spec, self.splits["train"])
        if len(self.datasets["train"]) == 0:
            raise BadInput(f"no {self.splits['train']} tiles hold every layer the config names")
        if self.splits["val"] is not None:
            val = TileDataset(self.datasets["train"].readers, self.spec, self.splits["val"])
            if len(val):
                self.datasets["val"] = val
            else:  # said, not hidden: the run then keeps its last weights, not the best
                log.warning("no %s tiles: training without validation", self.splits["val"])
        self.datasets["test"] = TileDataset(tests, self.spec, self.splits["test"])
        tr = self.datasets["train"]
        # per layer [periods, width]: its bands' statistics, validity channels left as 0/1
        per_layer = [channel_stats(x, *layer_stats(tr.readers, x, self.splits["train"],
                                                   self.keep_stats)) for x in tr.inputs]
        if self.spec.time_dim == "stack":  # the stacked image is [T, sum of widths]
            t = len(tr.inputs[0].periods)
            mean = torch.from_numpy(np.stack([np.concatenate([m[j] for m, _ in per_layer])
                                              for j in range(t)]).ravel())
            std = torch.from_numpy(np.stack([np.concatenate([s[j] for _, s in per_layer])
                                             for j in range(t)]).ravel())
            shape: tuple[int, ...] = (t, len(mean) // t)
        else:  # period-major per layer, layers one after the other
            mean = torch.from_numpy(_cat([m.ravel() for m, _ in per_layer]))
            std = torch.from_numpy(_cat([s.ravel() for _, s in per_layer]))
            shape = (len(mean),)
        self.normalize = Normalize(mean, std, shape, inplace=True)
        if tr.target is not None and self.spec.target and self.spec.target.task == "regression":
            tm, ts = layer_stats(tr.readers, tr.target, self.splits["train"], self.keep_stats)
            self.target_mean, self.target_std = float(tm[0]), float(ts[0])

    @property
    def channels(self) -> list[str]:
        return self.datasets["train"].channels

    def _loader(self, name: str, shuffle: bool, epochs: bool = True) -> DataLoader:
        """`epochs`: iterated once per epoch (train, val): workers persist and start each
        epoch early; a single pass (test) lets them go when it ends, with nothing read ahead."""
        ds = self.datasets[name]
        workers = self.num_workers
        return EagerLoader(ds, batch_size=self.batch_size, shuffle=shuffle, num_workers=workers,
                           multiprocessing_context=self.context if workers else None,
                           persistent_workers=workers > 0 and epochs, drop_last=False,
                           collate_fn=collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", False) if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, epochs=False)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        assert self.normalize is not None
        norm = self.normalize.to(batch["image"].device)
        batch["image"], batch["valid"] = norm(batch["image"], batch.get("present"))
        return batch


def channel_stats(layer: Layer, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, ...]:
    """A layer's per-band statistics (period-major) as [periods, width] arrays: validity
    channels get mean 0, std 1 so they reach the model as the 0/1 they are."""
    nper, nb = len(layer.periods), len(layer.band_names)
    m, s = mean.reshape(nper, nb), std.reshape(nper, nb)
    if layer.valid:
        m = np.concatenate([m, np.zeros_like(m)], axis=1)
        s = np.concatenate([s, np.ones_like(s)], axis=1)
    return m.astype(np.float32), s.astype(np.float32)


def _cat(parts: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32)
