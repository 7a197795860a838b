"""Reading samples out of region stores: one chunk per (tile, layer, period), nothing cached.

A store is opened lazily in the process that reads it and never pickled open: zarr-python 3
runs its I/O on a background event-loop thread, and a DataLoader worker forked while that
thread holds a lock can deadlock (zarr-python #2812, fsspec #835). The chunks of one sample
are fetched concurrently on zarr's loop (`AsyncArray.getitem` of each whole chunk), each chunk
read exactly once. The dataset brings coarser layers to the working grid by pixel replication,
which is exact because the 10/20/40/80 m grids of a tile nest (README, "The tile system").
A reader travels to a loader worker without its pandas tile table: what a sample needs of it
(`TileMeta`) is plain arrays, so a spawned worker does not import pandas.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import zarr
from zarr.abc.store import Store
from zarr.core.sync import sync

from ..errors import BadInput
from ..modalities import get_modality
from ..store.chunks import read_chunk
from ..store.store import TileStore
from ..store.urls import zarr_store
from .spec import IGNORE_INDEX, DataSpec, InputSpec, select_pairs

if TYPE_CHECKING:  # the main process's tile table; loader workers never load pandas
    import pandas as pd


@dataclass(frozen=True)
class TileMeta:
    """Each tile's id, CRS and 10 m affine transform (a, b, c, d, e, f), looked up per sample
    without pandas (a DataFrame row lookup cost a loader more than its chunk placement)."""

    ids: tuple[str, ...]
    crs: tuple[str, ...]
    transforms: np.ndarray  # [tiles, 6] float64

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> TileMeta:
        dx, dy = table["dx"].to_numpy(np.float64), table["dy"].to_numpy(np.float64)
        zero = np.zeros(len(table))
        tr = np.stack([dx, zero, table["x0"].to_numpy(np.float64), zero, -dy,
                       table["y0"].to_numpy(np.float64)], axis=1)
        return cls(tuple(table["id"].astype(str)),
                   tuple(f"EPSG:{int(e)}" for e in table["epsg"]), tr)


class StoreReader:
    """One region store's tile table and arrays; the zarr handles open on first read."""

    def __init__(self, url: str) -> None:
        store = TileStore.open(url, mode="r")
        self.url = url
        self.region = store.info.region
        self.tile_size = store.info.tile_size
        self.table: Any = store.tile_table()  # pandas; None in a loader worker
        self.meta = TileMeta.from_table(self.table)
        self.modalities = store.modalities()
        self.periods = {m: store.periods(m) for m in self.modalities}
        self._arrays: dict[str, zarr.Array] = {}
        self._zstore: Store | None = None

    def __getstate__(self) -> dict:
        d = self.__dict__.copy()
        d["_arrays"], d["_zstore"] = {}, None  # reopened in the worker that unpickles us
        d["table"] = None  # splits and statistics are the main process's business
        return d

    def apply_splits(self, splits: dict[str, str]) -> None:
        """Take each listed tile's split from a split file instead of the store's column."""
        ids = self.table["id"].astype(str)
        self.table["split"] = [splits.get(t, "") for t in ids]

    @property
    def zstore(self) -> Store:
        if self._zstore is None:
            self._zstore = zarr_store(self.url, read_only=True)
        return self._zstore

    def array(self, modality: str) -> zarr.Array:
        a = self._arrays.get(modality)
        if a is None:
            a = zarr.open_array(self.zstore, path=f"{modality}/{modality}", mode="r")
            self._arrays[modality] = a
        return a

    def present(self, modality: str) -> set[tuple[int, int]]:
        """(tile index, period index) of every chunk the store holds for a modality."""
        prefix = f"{modality}/{modality}/c/"

        async def keys() -> list[str]:
            return [k async for k in self.zstore.list_prefix(prefix)]

        out: set[tuple[int, int]] = set()
        for k in sync(keys()):
            parts = k[len(prefix):].split("/")
            if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit():
                out.add((int(parts[0]), int(parts[1])))
        return out

    def read_chunks(self, keys: Sequence[tuple[str, int, int]]) -> list[np.ndarray]:
        """Whole chunks (band, y, x); a corrupt chunk raises. A local store's are decoded
        directly (store/chunks.py), the rest (object stores, chunks never written, other
        layouts) fetched concurrently through zarr."""
        out: list[np.ndarray | None] = [read_chunk(self.url, m, t, p) for m, t, p in keys]
        rest = [i for i, x in enumerate(out) if x is None]
        if rest:
            arrays = [self.array(keys[i][0])._async_array for i in rest]

            async def fetch() -> list:
                return await asyncio.gather(*(a.getitem(keys[i][1:])
                                              for a, i in zip(arrays, rest, strict=True)))

            for i, x in zip(rest, sync(fetch()), strict=True):
                out[i] = np.asarray(x)
        return cast(list[np.ndarray], out)  # every None was filled above

    def chunk_crcs(self, keys: Sequence[tuple[str, int, int]]) -> list[bytes | None]:
        """The CRC32C trailer of each stored chunk (None when absent): a cheap content id."""
        from zarr.abc.store import SuffixByteRequest
        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()

        async def fetch() -> list:
            return await asyncio.gather(*(
                self.zstore.get(f"{m}/{m}/c/{t}/{p}/0/0/0", proto, byte_range=SuffixByteRequest(4))
                for m, t, p in keys))

        return [None if b is None else b.to_bytes() for b in sync(fetch())]


def read_split_file(path: str) -> dict[str, str]:
    """tile id -> split from a CSV or (Geo)Parquet with `id` and `split` columns (e.g. the
    `grid` verb's output, or fdlsar-style split CSVs with `identifier`)."""
    import os

    import pandas as pd

    if not os.path.isfile(path):
        raise BadInput(f"no split file {path}")
    try:
        df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    except Exception as e:  # noqa: BLE001 - pandas raises many kinds for a foreign file
        raise BadInput(f"split file {path}: unreadable ({type(e).__name__})") from None
    idcol = "id" if "id" in df else "identifier"
    if idcol not in df or "split" not in df:
        raise BadInput(f"split file {path} needs columns id (or identifier) and split")
    return dict(zip(df[idcol].astype(str), df["split"].astype(str), strict=True))


@dataclass(frozen=True)
class Layer:
    """One modality read for a dataset: which bands (indices) of which periods."""

    modality: str
    band_names: tuple[str, ...]
    band_index: tuple[int, ...]
    periods: tuple[str, ...]
    factor: int  # working pixels per layer pixel
    valid: bool = False  # append a validity channel per band (see `width`)

    @property
    def width(self) -> int:
        """Image channels per period: the bands, then (valid) one 0/1 channel per band."""
        return len(self.band_names) * (2 if self.valid else 1)

    def channel_names(self, period: str) -> list[str]:
        names = [f"{self.modality}:{b}@{period}" for b in self.band_names]
        return names + [f"{n}:valid" for n in names] if self.valid else names


def resolve_layers(spec: DataSpec, readers: Sequence[StoreReader]) -> tuple[list[Layer], Layer | None]:
    """Inputs and target as Layers with concrete periods, identical in every store."""

    def periods_for(modality: str, wanted: tuple[str, ...] | None, single: bool,
                    pick: InputSpec | None = None) -> tuple[str, ...]:
        chosen: tuple[str, ...] | None = None
        for r in readers:
            if modality not in r.modalities:
                raise BadInput(f"store {r.url} has no modality {modality} "
                               f"(it holds {', '.join(r.modalities) or 'none'})")
            have = r.periods[modality]
            if pick is not None and pick.baselines is not None:  # pairs by temporal baseline
                sel = select_pairs(have, pick.baselines, pick.within)
                if isinstance(sel, str):
                    raise BadInput(f"store {r.url}: {modality}: {sel}")
                wanted = sel
            if wanted:
                missing = [p for p in wanted if p not in have]
                if missing:
                    raise BadInput(f"store {r.url} has no period {missing[0]} of {modality}; "
                                   f"it holds {', '.join(have) or 'none'}")
                got = tuple(wanted)
            else:
                got = tuple(sorted(have))
                if single and len(got) != 1:
                    raise BadInput(f"{modality} has periods {', '.join(got) or 'none'} in "
                                   f"{r.url}: choose one with target.period")
            if chosen is not None and got != chosen:
                raise BadInput(f"{modality}: stores disagree on periods ({chosen} vs {got}); "
                               "name them in the config")
            chosen = got
        if not chosen:
            raise BadInput(f"{modality}: no periods in the stores")
        return chosen

    inputs = []
    for i in spec.inputs:
        m, bands = i.resolve()
        inputs.append(Layer(m.name, bands, tuple(m.bands.index(b) for b in bands),
                            periods_for(m.name, i.periods, False, i), spec.factor(m.name),
                            i.valid))
    target = None
    if spec.target is not None:
        m, band = spec.target.resolve()
        per = (spec.target.period,) if spec.target.period else None
        target = Layer(m.name, (band,), (m.bands.index(band),), periods_for(m.name, per, True),
                       spec.factor(m.name))
    return inputs, target


def select_tiles(reader: StoreReader, layers: Sequence[Layer], split: str | None) -> np.ndarray:
    """Store indices of the tiles in `split` (None: all) holding every chunk the layers need."""
    table = reader.table
    ok = np.ones(len(table), bool) if split is None else (table["split"].to_numpy() == split)
    for layer in layers:
        have = reader.present(layer.modality)
        labels = reader.periods[layer.modality]
        for p in layer.periods:
            pi = labels.index(p)
            ok &= np.array([(t, pi) in have for t in range(len(table))], bool)
    return np.flatnonzero(ok)


def to_float(modality: str, raw: np.ndarray, physical: bool) -> np.ndarray:
    """float32 with nodata as NaN; `physical` applies the CF scale/offset as well."""
    m = get_modality(modality)
    x = raw.astype(np.float32)
    if m.nodata is not None:
        x[raw == np.array(m.nodata, dtype=raw.dtype)] = np.nan
    if physical and (m.scale != 1.0 or m.offset != 0.0):
        x = x * np.float32(m.scale) + np.float32(m.offset)
    return x


def encode_classes(raw: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """Class codes -> 0..K-1; nodata and every unknown code -> IGNORE_INDEX (never class 0)."""
    lut = np.full(max(max(codes), int(raw.max(initial=0))) + 1, IGNORE_INDEX, np.int64)
    lut[np.asarray(codes, np.int64)] = np.arange(len(codes))
    return lut[raw.astype(np.int64)]
