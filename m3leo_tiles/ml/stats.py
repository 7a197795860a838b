"""Per-band normalisation statistics over a whole training split, kept in the store.

fdlsar estimates mean/std from 1,000 random training tiles and counts NaN pixels in the
denominator; here every training tile holding the chunk counts, NaN/nodata pixels are left
out, and partial results merge exactly (Chan et al.'s pairwise update of count, mean and the
sum of squared deviations, in float64). The result sits in the store's root attributes under
`ml_stats`, one entry per (modality, period), with a fingerprint of the data it describes: the
tile ids and each chunk's CRC32C trailer. A changed, added or removed chunk changes the
fingerprint and the statistics are recomputed on next use.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import zarr
from zarr.core.common import JSON

from ..store.urls import zarr_store
from .reader import Layer, StoreReader, to_float

log = logging.getLogger(__name__)
ATTR = "ml_stats"
BATCH = 16  # chunks fetched concurrently while computing


@dataclass
class Moments:
    """count, mean and M2 (sum of squared deviations) per band, mergeable."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, nbands: int) -> Moments:
        z = np.zeros(nbands, np.float64)
        return cls(z.copy(), z.copy(), z.copy())

    @classmethod
    def of(cls, x: np.ndarray) -> Moments:
        """Moments of (band, y, x) float data, NaN left out."""
        flat = x.reshape(x.shape[0], -1).astype(np.float64)
        valid = np.isfinite(flat)
        n = valid.sum(axis=1).astype(np.float64)
        s = np.where(valid, flat, 0.0).sum(axis=1)
        mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        dev = np.where(valid, flat - mean[:, None], 0.0)
        return cls(n, mean, (dev * dev).sum(axis=1))

    def merge(self, o: Moments) -> Moments:
        n = self.count + o.count
        d = o.mean - self.mean
        w = np.divide(o.count, n, out=np.zeros_like(n), where=n > 0)
        mean = self.mean + d * w
        m2 = self.m2 + o.m2 + d * d * self.count * w
        return Moments(n, mean, m2)

    @property
    def std(self) -> np.ndarray:
        """Population std; a flat or empty band gets 1 so normalising never divides by 0."""
        var = np.divide(self.m2, self.count, out=np.zeros_like(self.m2), where=self.count > 0)
        sd = np.sqrt(var)
        return np.where(sd > 0, sd, 1.0)

    def to_json(self) -> dict[str, JSON]:
        return {"count": self.count.tolist(), "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> Moments:
        return cls(*(np.asarray(d[k], np.float64) for k in ("count", "mean", "m2")))


def _split_tiles(reader: StoreReader, modality: str, period: str, split: str | None) -> list[int]:
    """Tiles of the split (None: every tile) that hold the modality-period's chunk."""
    pi = reader.periods[modality].index(period)
    have = reader.present(modality)
    rows = (np.arange(len(reader.table)) if split is None
            else np.flatnonzero(reader.table["split"].to_numpy() == split))
    return [int(t) for t in rows if (int(t), pi) in have]


def fingerprint(reader: StoreReader, modality: str, period: str, tiles: Sequence[int]) -> str:
    """Tile ids and chunk CRC32Cs of the data a statistic describes."""
    pi = reader.periods[modality].index(period)
    crcs = reader.chunk_crcs([(modality, t, pi) for t in tiles])
    h = hashlib.sha256(f"{modality}|{period}".encode())
    ids = reader.table["id"].to_numpy()
    for t, c in zip(tiles, crcs, strict=True):
        h.update(f"|{ids[t]}:".encode() + (c or b"-"))
    return h.hexdigest()


def compute(reader: StoreReader, modality: str, period: str, tiles: Sequence[int]) -> Moments:
    """Moments of every band of one modality-period over the given tiles (NumPy, exact)."""
    pi = reader.periods[modality].index(period)
    nb = reader.array(modality).shape[2]
    total = Moments.empty(nb)
    for i in range(0, len(tiles), BATCH):
        keys = [(modality, t, pi) for t in tiles[i:i + BATCH]]
        for raw in reader.read_chunks(keys):
            total = total.merge(Moments.of(to_float(modality, raw, physical=True)))
    return total


def split_moments(reader: StoreReader, modality: str, period: str, split: str | None = "train",
                  write: bool = True) -> Moments:
    """The stored statistic when its fingerprint still matches, else computed (and stored)."""
    tiles = _split_tiles(reader, modality, period, split)
    fp = fingerprint(reader, modality, period, tiles)
    root = zarr.open_group(zarr_store(reader.url, read_only=True), mode="r")
    key = "*" if split is None else split
    entry = _child(_child(_child(root.attrs, ATTR), modality), period).get(key)
    if isinstance(entry, Mapping) and entry.get("fingerprint") == fp:
        return Moments.from_json(entry)
    log.info("computing %s %s statistics over %d %s tiles of %s", modality, period, len(tiles),
             split, reader.url)
    mom = compute(reader, modality, period, tiles)
    if write:
        _store(reader.url, modality, period, key,
               {"fingerprint": fp, "tiles": len(tiles), **mom.to_json()})
    return mom


def _child(node: Mapping[str, JSON], key: str) -> dict[str, JSON]:
    """node[key] as a fresh dict; {} where it is absent (or not a mapping: recomputed then)."""
    value = node.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _store(url: str, modality: str, period: str, split: str,
           entry: dict[str, JSON]) -> None:
    try:
        root = zarr.open_group(zarr_store(url), mode="r+")
        allstats = _child(root.attrs, ATTR)
        by_modality = _child(allstats, modality)
        by_period = _child(by_modality, period)
        by_period[split] = entry
        by_modality[period] = by_period
        allstats[modality] = by_modality
        root.attrs[ATTR] = allstats
    except (OSError, PermissionError, ValueError) as e:  # a read-only store: use, don't keep
        log.warning("could not keep statistics in %s: %s", url, e)


def layer_stats(readers: Sequence[StoreReader], layer: Layer, split: str | None = "train",
                write: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """mean and std per channel of a layer (period-major, its selected bands), all stores."""
    means, stds = [], []
    for p in layer.periods:
        mom: Moments | None = None
        for r in readers:
            m = split_moments(r, layer.modality, p, split, write)
            mom = m if mom is None else mom.merge(m)
        assert mom is not None
        idx = list(layer.band_index)
        means.append(mom.mean[idx])
        stds.append(mom.std[idx])
    return np.concatenate(means).astype(np.float32), np.concatenate(stds).astype(np.float32)
