"""A worker's one store operation, writing a whole chunk, and a loader's, reading one, without
zarr's per-chunk machinery.

zarr's import was ~0.15 s of CPU in every worker (of ~0.4 s for an Earth Engine worker's whole
start), and its chunk path (codec pipeline, event-loop thread, indexing) is general machinery
for one fixed operation. For a local store whose array has exactly the codecs `store.codecs()`
gives (bytes little-endian, blosc, crc32c), regular one-tile x one-period chunks and zarr's
default chunk keys, a chunk is encoded here with the same numcodecs Blosc and google-crc32c
zarr calls, into the same bytes (tests/store/test_chunks.py compares them), and written as
zarr's LocalStore writes: a `.partial` file renamed into place, atomic under kill -9. Any
other array, and object stores, go through zarr. Reading is the inverse (CRC32C checked,
blosc decoded into the chunk's array): ~0.05 ms a chunk where zarr's async getitem spent
~0.45 ms of CPU, which a training loader's worker pays for every chunk of every batch.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .urls import is_local, local_path, zarr_store

if TYPE_CHECKING:
    import zarr

#: numeric zarr v3 data types a chunk is written for here (anything else goes through zarr)
NUMERIC = "uifb"


@dataclass(frozen=True)
class ChunkLayout:
    """Where and how one local array's chunks are stored, read from its `zarr.json`."""

    root: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    blosc: dict[str, Any]
    separator: str

    @classmethod
    def read(cls, root: Path) -> ChunkLayout | None:
        """The layout of the array at `root`, or None where its metadata asks for more than
        this module implements (then zarr writes the chunk)."""
        meta = json.loads((root / "zarr.json").read_text())
        try:
            shape = tuple(int(n) for n in meta["shape"])
            dtype = np.dtype(meta["data_type"])
            chunks = meta["chunk_grid"]
            keys = meta["chunk_key_encoding"]
            codecs = [c["name"] for c in meta["codecs"]]
        except (KeyError, TypeError, ValueError):
            return None
        if (meta.get("zarr_format") != 3 or meta.get("storage_transformers")
                or dtype.kind not in NUMERIC or len(shape) < 3
                or chunks.get("name") != "regular"
                or chunks["configuration"]["chunk_shape"] != [1, 1, *shape[2:]]
                or keys.get("name") != "default" or codecs != ["bytes", "blosc", "crc32c"]
                or meta["codecs"][0].get("configuration", {}).get("endian", "little")
                != "little"):
            return None
        blosc = dict(meta["codecs"][1]["configuration"])
        if blosc.get("shuffle") not in SHUFFLE or blosc.get("typesize") != dtype.itemsize:
            return None
        sep = keys.get("configuration", {}).get("separator", "/")
        return cls(root, shape, dtype, blosc, sep)

    def path(self, tile_i: int, period_i: int) -> Path:
        key = self.separator.join(["c", str(tile_i), str(period_i)]
                                  + ["0"] * (len(self.shape) - 2))
        return self.root / key

    def encode(self, data: np.ndarray) -> bytes:
        """The chunk's stored bytes: little-endian samples, blosc, then their CRC32C."""
        import google_crc32c

        raw = np.ascontiguousarray(data, dtype=self.dtype.newbyteorder("<")).view(np.uint8)
        packed = _blosc(self.blosc).encode(raw.ravel())
        return bytes(packed) + np.array([google_crc32c.value(packed)], "<u4").tobytes()

    def write(self, tile_i: int, period_i: int, data: np.ndarray) -> None:
        """Encode and write one chunk atomically (a `.partial` file renamed into place, as
        zarr's LocalStore does, so `TileStore.cleanup_partials` finds a killed one)."""
        path = self.path(tile_i, period_i)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.partial")
        try:
            with open(tmp, "wb") as f:
                f.write(self.encode(data))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def load(self, tile_i: int, period_i: int) -> np.ndarray | None:
        """One chunk as `write` (or zarr, with this layout) stored it; None where it was never
        written (zarr then gives the fill value). A corrupt chunk raises, never a substitute."""
        import google_crc32c

        path = self.path(tile_i, period_i)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        payload = raw[:-4]
        if len(raw) < 4 or google_crc32c.value(payload) != int.from_bytes(raw[-4:], "little"):
            raise ValueError(f"{path}: CRC32C checksum mismatch, the chunk is corrupt")
        out = np.empty(self.shape[2:], self.dtype.newbyteorder("<"))
        _blosc(self.blosc).decode(payload, out=out)
        return out


#: zarr's blosc shuffle names -> numcodecs' constants
SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_CODECS: dict[str, Any] = {}


def _blosc(config: dict[str, Any]) -> Any:
    """numcodecs' Blosc as zarr's BloscCodec builds it from the same configuration,
    single-threaded as zarr runs it (a worker has one core; blosc's threads would contend)."""
    key = json.dumps(config, sort_keys=True)
    if key not in _CODECS:
        from numcodecs import blosc

        blosc.use_threads = False
        _CODECS[key] = blosc.Blosc(cname=config["cname"], clevel=int(config["clevel"]),
                                   shuffle=SHUFFLE[config["shuffle"]],
                                   blocksize=int(config.get("blocksize", 0)),
                                   typesize=int(config["typesize"]))
    return _CODECS[key]


_LAYOUTS: dict[tuple[str, str], ChunkLayout] = {}
_HANDLES: dict[tuple[str, str], zarr.Array[Any]] = {}


def _layout(url: str, modality: str, tile_i: int, period_i: int) -> ChunkLayout | None:
    """A per-process cached layout, read again when the coordinator has grown the array
    (arrays only grow, their chunk grid never changes); None: zarr writes this array."""
    if not is_local(url):
        return None
    key = (url, modality)
    lay = _LAYOUTS.get(key)
    if lay is None or tile_i >= lay.shape[0] or period_i >= lay.shape[1]:
        lay = ChunkLayout.read(local_path(url) / modality / modality)
        if lay is None:
            return None
        _LAYOUTS[key] = lay
    return lay


def _writable_array(url: str, modality: str, tile_i: int, period_i: int) -> zarr.Array[Any]:
    """A per-process cached zarr handle, reopened when the coordinator has grown the array."""
    import zarr

    key = (url, modality)
    arr = _HANDLES.get(key)
    if arr is None or tile_i >= arr.shape[0] or period_i >= arr.shape[1]:
        arr = zarr.open_array(zarr_store(url), path=f"{modality}/{modality}", mode="r+",
                              config={"write_empty_chunks": True})
        _HANDLES[key] = arr
    return arr


def write_chunk(url: str, modality: str, tile_i: int, period_i: int, data: np.ndarray) -> int:
    """Write one whole chunk (a worker's only store operation); returns bytes written raw."""
    lay = _layout(url, modality, tile_i, period_i)
    shape = lay.shape if lay is not None else _writable_array(url, modality, tile_i,
                                                              period_i).shape
    if data.shape != shape[2:]:
        raise ValueError(f"{modality}: got {data.shape}, store expects {shape[2:]}")
    if tile_i >= shape[0] or period_i >= shape[1]:
        raise IndexError(f"{modality}: chunk ({tile_i}, {period_i}) outside {shape[:2]}")
    if lay is not None:
        lay.write(tile_i, period_i, data.astype(lay.dtype, copy=False))
    else:
        arr = _writable_array(url, modality, tile_i, period_i)
        arr[tile_i, period_i] = data.astype(arr.dtype, copy=False)
    return data.nbytes


def read_chunk(url: str, modality: str, tile_i: int, period_i: int) -> np.ndarray | None:
    """One whole chunk read without zarr, or None: not a local store with this module's
    layout, or a chunk never written (the caller asks zarr, which knows the fill value)."""
    lay = _layout(url, modality, tile_i, period_i)
    if lay is None or tile_i >= lay.shape[0] or period_i >= lay.shape[1]:
        return None
    return lay.load(tile_i, period_i)


__all__ = ["ChunkLayout", "read_chunk", "write_chunk"]
