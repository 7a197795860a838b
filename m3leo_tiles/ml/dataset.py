"""A map-style PyTorch dataset over one or more region stores, in TorchGeo's sample convention.

A sample is a dict: `image` float32 [C, H, W] (or [T, C, H, W] with time_dim="stack") in
physical units with NaN where a layer has no data, `mask` int64 [H, W] with nodata at
IGNORE_INDEX (segmentation) or `target` float32 [h, w] plus `target_valid` bool (regression,
on the target's own nested grid), and `tile`, `region`, `crs`, `transform`. Normalisation is
not done here: TorchGeo normalises whole batches after transfer (see datamodule.Normalize), so
a worker only reads and places chunks. Nothing is ever substituted: a chunk that cannot be
read raises, a pixel without data stays NaN / ignored.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..errors import BadInput
from ..modalities import get_modality
from .reader import (
    Layer,
    StoreReader,
    encode_classes,
    resolve_layers,
    select_tiles,
    to_float,
)
from .spec import DataSpec

POOL = 4  # batch arrays kept for reuse per dataset (a DataLoader holds at most a few)


class Batch(list):
    """Samples of one batch (views into `collated`, the batch already stacked)."""

    collated: dict


def collate(samples: list) -> dict:
    """DataLoader collate_fn: the batch __getitems__ built, else torch's default_collate."""
    if isinstance(samples, Batch):
        return samples.collated
    return default_collate(samples)


def share_by_name(worker_id: int) -> None:
    """Worker start: send batches as named shared memory (torch's `file_system` strategy).

    The default passes each tensor's file descriptor through a socket to a thread of the
    worker, which must win the worker's GIL from the thread reading the next batch: measured,
    2 to 12 ms per batch in the main process on 2 cores; by name it is one shm_open (0.6 ms).
    torch's shm manager unlinks the segments, also after a crash. It lives here, not in the
    datamodule, because a worker imports the module of its init function (not Lightning).
    """
    torch.multiprocessing.set_sharing_strategy("file_system")


class TileDataset(Dataset):
    """Samples of `spec` from the tiles of `split` (None: all) in every store given."""

    def __init__(self, stores: Sequence[str | StoreReader], spec: DataSpec,
                 split: str | None = "train"):
        if not stores:
            raise BadInput("no stores given")
        self.spec = spec
        self.split = split
        self.readers = [s if isinstance(s, StoreReader) else StoreReader(str(s)) for s in stores]
        sizes = {r.tile_size for r in self.readers}
        if len(sizes) != 1:
            raise BadInput(f"stores have different tile sizes {sorted(sizes)}")
        self.tile_px = sizes.pop() // spec.res
        self.inputs, self.target = resolve_layers(spec, self.readers)
        layers = self.inputs + ([self.target] if self.target else [])
        patch = spec.patch or self.tile_px
        if patch > self.tile_px or self.tile_px % patch:
            raise BadInput(f"data.patch {patch} does not divide the {self.tile_px} px tile")
        self.patch = patch
        per_tile = (self.tile_px // patch) ** 2
        self.index: list[tuple[int, int, int]] = []  # (store, tile row, patch number)
        for si, r in enumerate(self.readers):
            for t in select_tiles(r, layers, split):
                self.index.extend((si, int(t), k) for k in range(per_tile))
        self._pool: list[np.ndarray] = []
        if spec.time_dim == "stack" and len({len(x.periods) for x in self.inputs}) != 1:
            raise BadInput("time_dim=stack needs the same number of periods for every input")

    @property
    def channels(self) -> list[str]:
        """Channel names in image order: modality:band@period, period-major per layer; an
        input with `valid` adds modality:band@period:valid after each period's bands."""
        return [n for x in self.inputs for p in x.periods for n in x.channel_names(p)]

    @property
    def regions(self) -> list[str]:
        return [r.region for r in self.readers]

    def __len__(self) -> int:
        return len(self.index)

    def _window(self, k: int) -> tuple[int, int]:
        n = self.tile_px // self.patch
        return (k // n) * self.patch, (k % n) * self.patch

    def _crop(self, raw: np.ndarray, layer: Layer, y0: int, x0: int) -> np.ndarray:
        """The patch on the layer's own grid (bands selected), before any replication."""
        f = layer.factor
        ps = self.patch // f
        return raw[list(layer.band_index), y0 // f:y0 // f + ps, x0 // f:x0 // f + ps]

    def _fill(self, out: np.ndarray, sub: np.ndarray, layer: Layer) -> None:
        """Write a cropped chunk into its channels of `out` as float32 in physical units,
        nodata as NaN, a coarser layer replicated k x k (exact: the grids nest). One
        broadcast write replaces np.repeat's temporaries; the values are the same."""
        m = get_modality(layer.modality)
        k = layer.factor
        c, h, w = sub.shape
        view = out.reshape(c, h, k, w, k) if k > 1 else out
        src = sub[:, :, None, :, None] if k > 1 else sub
        if m.scale != 1.0:  # cast and scale in one pass
            np.multiply(src, np.float32(m.scale), out=view, casting="unsafe")
        else:
            np.copyto(view, src, casting="unsafe")
        if m.offset != 0.0:
            out += np.float32(m.offset)
        if m.nodata is not None:
            bad = sub == np.array(m.nodata, dtype=sub.dtype)
            if bad.any():
                np.copyto(view, np.float32("nan"), where=bad[:, :, None, :, None] if k > 1
                          else bad)

    def _keys(self, i: int) -> list[tuple[str, int, int]]:
        si, t, _ = self.index[i]
        r = self.readers[si]
        keys = [(x.modality, t, r.periods[x.modality].index(p))
                for x in self.inputs for p in x.periods]
        if self.target is not None:
            keys.append((self.target.modality, t,
                         r.periods[self.target.modality].index(self.target.periods[0])))
        return keys

    def image_shape(self) -> tuple[int, ...]:
        ps = self.patch
        if self.spec.time_dim == "stack":
            nch = sum(x.width for x in self.inputs)
            return (len(self.inputs[0].periods), nch, ps, ps)
        return (len(self.channels), ps, ps)

    def _assemble(self, i: int, chunks: list[np.ndarray], image: np.ndarray) -> dict:
        """Place sample i's chunks into `image` (preallocated); returns the rest as NumPy."""
        si, t, k = self.index[i]
        r = self.readers[si]
        y0, x0 = self._window(k)
        it = iter(chunks)
        c0 = 0
        for x in self.inputs:
            nb, w, nper = len(x.band_names), x.width, len(x.periods)
            for j in range(nper):
                if self.spec.time_dim == "stack":
                    dst = image[j, c0:c0 + w]
                else:
                    dst = image[c0 + j * w:c0 + (j + 1) * w]
                self._fill(dst[:nb], self._crop(next(it), x, y0, x0), x)
                if x.valid:  # 1 where the band has data, 0 where it is NaN (no pass, gap)
                    np.copyto(dst[nb:], np.isfinite(dst[:nb]))
            c0 += w if self.spec.time_dim == "stack" else w * nper
        a, _, c, _, e, f = r.meta.transforms[t]
        scale = self.spec.res / 10.0
        out = {"tile": r.meta.ids[t], "region": r.region, "crs": r.meta.crs[t],
               "transform": np.array([a * scale, 0.0, c + x0 * a * scale, 0.0, e * scale,
                                      f + y0 * e * scale], np.float64)}
        if self.target is not None:
            tgt = self.target
            sub = self._crop(next(it), tgt, y0, x0)[0]
            ts = self.spec.target
            assert ts is not None
            if ts.task == "segmentation":
                out["mask"] = encode_classes(sub, ts.class_codes)
            else:
                val = to_float(tgt.modality, sub, physical=False)
                for bad in ts.invalid:
                    val[sub == bad] = np.nan
                val = to_float_scaled(tgt.modality, val)
                out["target_valid"] = np.isfinite(val)
                out["target"] = np.nan_to_num(val, nan=0.0).astype(np.float32)
        return out

    def read_arrays(self, i: int) -> dict:
        """The sample as NumPy arrays (what __getitem__ wraps)."""
        si = self.index[i][0]
        image = np.empty(self.image_shape(), np.float32)
        out = self._assemble(i, self.readers[si].read_chunks(self._keys(i)), image)
        return {"image": image, **out}

    def __getitem__(self, i: int) -> dict:
        a = self.read_arrays(i)
        out = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in a.items()}
        return out

    def _batch_array(self, n: int) -> np.ndarray:
        """A batch image array, recycled once nothing references it any more.

        A fresh batch (8 x 20 x 448 x 448 float32 = 128 MB) is above malloc's mmap threshold,
        so every batch would fault in and zero new pages: measured here, that alone made a
        batch cost 1.5-2x its chunk reads. A pooled array is handed out again only when its
        reference count says no tensor, view or sample still uses it.
        """
        shape = (n,) + self.image_shape()
        for a in self._pool:
            if a.shape == shape and sys.getrefcount(a) == 3:  # the pool, `a`, this call
                return a
        a = np.empty(shape, np.float32)
        if len(self._pool) < POOL:
            self._pool.append(a)
        return a

    def __getstate__(self) -> dict:
        d = self.__dict__.copy()
        d["_pool"] = []  # buffers stay in the process that made them
        return d

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """A whole batch at once (torch's DataLoader calls this when it exists): every chunk
        of the batch fetched in one concurrent read per store, each sample written straight
        into one (recycled) batch array, so collating copies nothing. The result is a list of
        sample dicts (views into the batch) for any collate_fn; `collate` takes the batch."""
        image = self._batch_array(len(indices))
        chunks: dict[int, list[np.ndarray]] = {}
        by_store: dict[int, list[int]] = {}
        for b, i in enumerate(indices):
            by_store.setdefault(self.index[i][0], []).append(b)
        for si, members in by_store.items():
            keys = [self._keys(indices[b]) for b in members]
            flat = self.readers[si].read_chunks([k for ks in keys for k in ks])
            pos = 0
            for b, ks in zip(members, keys, strict=True):
                chunks[b] = flat[pos:pos + len(ks)]
                pos += len(ks)
        rest = [self._assemble(i, chunks[b], image[b]) for b, i in enumerate(indices)]
        batch: dict = {"image": torch.from_numpy(image)}
        for key in rest[0] if rest else ():
            vals = [r[key] for r in rest]
            batch[key] = torch.from_numpy(np.stack(vals)) if isinstance(vals[0], np.ndarray) \
                else vals
        samples = Batch({k: (v[b] if isinstance(v, torch.Tensor) else v[b])
                         for k, v in batch.items()} for b in range(len(indices)))
        samples.collated = batch
        return samples

    def plot(self, sample: dict, prediction: torch.Tensor | np.ndarray | None = None,
             suptitle: str | None = None) -> Any:
        """A matplotlib Figure of the sample's channels, label and (optional) prediction."""
        from .plot import plot_sample

        return plot_sample(sample, self.channels, self.spec, prediction, suptitle)


def to_float_scaled(modality: str, val: np.ndarray) -> np.ndarray:
    """Apply a modality's CF scale/offset to float values whose nodata is already NaN."""
    from ..modalities import get_modality

    m = get_modality(modality)
    if m.scale != 1.0 or m.offset != 0.0:
        return val * np.float32(m.scale) + np.float32(m.offset)
    return val
