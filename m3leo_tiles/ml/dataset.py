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

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import BadInput
from .reader import (
    Layer,
    StoreReader,
    encode_classes,
    replicate,
    resolve_layers,
    select_tiles,
    tile_meta,
    to_float,
)
from .spec import DataSpec


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
        if spec.time_dim == "stack" and len({len(x.periods) for x in self.inputs}) != 1:
            raise BadInput("time_dim=stack needs the same number of periods for every input")

    @property
    def channels(self) -> list[str]:
        """Channel names in image order: modality:band@period, period-major per layer."""
        return [f"{x.modality}:{b}@{p}" for x in self.inputs for p in x.periods
                for b in x.band_names]

    @property
    def regions(self) -> list[str]:
        return [r.region for r in self.readers]

    def __len__(self) -> int:
        return len(self.index)

    def _window(self, k: int) -> tuple[int, int]:
        n = self.tile_px // self.patch
        return (k // n) * self.patch, (k % n) * self.patch

    def _place(self, raw: np.ndarray, layer: Layer, y0: int, x0: int) -> np.ndarray:
        """Crop on the layer's own grid, then replicate to the working grid (exact)."""
        f = layer.factor
        ps = self.patch // f
        sub = raw[list(layer.band_index), y0 // f:y0 // f + ps, x0 // f:x0 // f + ps]
        return sub

    def read_arrays(self, i: int) -> dict:
        """The sample as NumPy arrays (what __getitem__ wraps)."""
        si, t, k = self.index[i]
        r = self.readers[si]
        y0, x0 = self._window(k)
        keys = [(x.modality, t, r.periods[x.modality].index(p))
                for x in self.inputs for p in x.periods]
        if self.target is not None:
            keys.append((self.target.modality, t,
                         r.periods[self.target.modality].index(self.target.periods[0])))
        chunks = iter(r.read_chunks(keys))
        parts: list[list[np.ndarray]] = []
        for x in self.inputs:
            per = []
            for _ in x.periods:
                sub = self._place(next(chunks), x, y0, x0)
                per.append(replicate(to_float(x.modality, sub, physical=True), x.factor))
            parts.append(per)
        if self.spec.time_dim == "stack":
            image = np.stack([np.concatenate([p[j] for p in parts]) for j in
                              range(len(parts[0]))])
        else:
            image = np.concatenate([a for p in parts for a in p])
        tid, crs, tr = tile_meta(r.table, t)
        a, _, c, _, e, f = tr
        res = float(self.spec.res)
        scale = res / 10.0
        out = {"image": np.ascontiguousarray(image, np.float32), "tile": tid,
               "region": r.region, "crs": crs,
               "transform": np.array([a * scale, 0.0, c + x0 * a * scale, 0.0, e * scale,
                                      f + y0 * e * scale], np.float64)}
        if self.target is not None:
            tgt = self.target
            sub = self._place(next(chunks), tgt, y0, x0)[0]
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

    def __getitem__(self, i: int) -> dict:
        a = self.read_arrays(i)
        out = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in a.items()}
        return out

    def plot(self, sample: dict, prediction: torch.Tensor | np.ndarray | None = None,
             suptitle: str | None = None):
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
