"""A deterministic synthetic source for runner and store tests (not offered to users).

Import this module (or name it in M3LEO_TILES_PLUGINS) to register the `synthetic` source and
the `synth` modality: 12 bands of smooth uint16 "reflectance" per tile and year.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from m3leo_tiles.errors import PermanentError, TransientError
from m3leo_tiles.modalities import Modality, register
from m3leo_tiles.periods import Period
from m3leo_tiles.sources import register_source
from m3leo_tiles.sources.base import Source, Target, TileRef, TileResult, WorkUnit

SYNTH = Modality("synth", tuple(f"b{i:02d}" for i in range(12)), "uint16", 10, "annual",
                 "synthetic", "synthetic", units="1", scale=1e-4, nodata=0,
                 description="synthetic smooth test layer", composite=True)
register(SYNTH)
register_source("synthetic", "tests.runner.synthetic:SyntheticSource")


def synth_tile(tile: str, period: str, nbands: int = 12, n: int = 448) -> np.ndarray:
    """Smooth, realistic-looking (not random) uint16 bands: a few low-frequency waves."""
    seed = int.from_bytes(hashlib.sha256(f"{tile}|{period}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    base = np.zeros((n, n), np.float32)
    for _ in range(4):
        fx, fy, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 6.28)
        base += np.cos(2 * np.pi * (fx * x + fy * y) + ph).astype(np.float32)
    out = np.empty((nbands, n, n), np.uint16)
    for b in range(nbands):
        level = 800 + 250 * b + rng.uniform(-50, 50)
        out[b] = np.clip(level + 300 * base * (1 + 0.1 * b), 1, 65535).astype(np.uint16)
    return out


class SyntheticSource(Source):
    name = "synthetic"
    modalities = ("synth",)

    def __init__(self, fail: dict[str, str] | None = None, nodata: list[str] | None = None,
                 delay: float = 0.0, transient_times: int = 0, counter_dir: str | None = None,
                 group: int = 1):
        self.fail = dict(fail or {})
        self.nodata = set(nodata or [])
        self.delay = float(delay)
        self.transient_times = int(transient_times)
        self.counter_dir = counter_dir
        self.group = int(group)

    def plan(self, modality, period, tiles):
        ids = [t.id for t in tiles]
        return [WorkUnit(modality.name, period.label, tuple(ids[i:i + self.group]),
                         key=f"g{i}") for i in range(0, len(ids), self.group)]

    def _bump(self, tile: str) -> int:
        """Cross-process attempt counter (workers are separate processes)."""
        p = Path(self.counter_dir) / tile
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        return n

    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        for t in unit.tiles:
            if self.delay:
                time.sleep(self.delay)
            kind = self.fail.get(t)
            if kind == "permanent":
                raise PermanentError(f"synthetic permanent failure for {t}")
            if kind == "transient":
                if self.counter_dir and self._bump(t) > self.transient_times:
                    pass
                else:
                    raise TransientError(f"synthetic HTTP 503 for {t}")
            if t in self.nodata:
                yield TileResult(t, "nodata")
                continue
            n = tiles[t].grid_at(modality.res).width
            yield TileResult(t, "done", synth_tile(t, period.label, len(modality.bands), n),
                             items=(f"synthetic:{t}:{period.label}",))


class ArraySource(Source):
    """Serves tiles from a pre-computed .npy stack (benchmarks: no generation cost)."""

    name = "arrays"
    modalities = ("synth",)
    light = True

    def __init__(self, path: str, ids: list[str]):
        self.path = path
        self.index = {t: i for i, t in enumerate(ids)}

    def read(self, unit, tiles, modality, period):
        stack = np.load(self.path, mmap_mode="r")
        for t in unit.tiles:
            yield TileResult(t, "done", np.array(stack[self.index[t]]))


SYNTH40 = Modality("synth40", ("a", "b", "c"), "float32", 40, "annual", "joint", "joint",
                   description="synthetic 40 m layer computed with synth in one unit")
register(SYNTH40)


class JointSource(SyntheticSource):
    """Plans synth and synth40 of a period into the same units (like an S1 block unit), and
    counts its reads per tile in `counter_dir` (one read must serve both layers)."""

    name = "joint"
    modalities = ("synth", "synth40")

    def plan_all(self, requests):
        by_period: dict[str, list] = {}
        for r in requests:
            by_period.setdefault(r.period.label, []).append(r)
        units = []
        for label, reqs in sorted(by_period.items()):
            ids = sorted({t.id for r in reqs for t in r.tiles})
            for i in range(0, len(ids), self.group):
                group = set(ids[i:i + self.group])
                targets = [Target(r.modality.name, label,
                                  tuple(t.id for t in r.tiles if t.id in group)) for r in reqs]
                targets = [t for t in targets if t.tiles]
                first, *rest = targets
                units.append(WorkUnit(first.modality, first.period, first.tiles, key=f"j{i}",
                                      more=tuple(rest)))
        return units

    def read(self, unit, tiles, modality, period):
        for tg in unit.targets:
            if not set(tg.tiles) <= set(unit.all_tiles):
                raise AssertionError("a target tile outside the unit")
        for t in unit.all_tiles:
            if self.counter_dir:
                self._bump(t)
            if self.fail.get(t) == "permanent":
                raise PermanentError(f"synthetic permanent failure for {t}")
            for tg in unit.targets:
                if t not in tg.tiles:
                    continue
                m = SYNTH if tg.modality == "synth" else SYNTH40
                n = tiles[t].grid_at(m.res).width
                data = synth_tile(t, tg.period, len(m.bands), n).astype(m.dtype)
                if t in self.nodata and m is SYNTH40:
                    yield TileResult(t, "nodata", modality=tg.modality, period=tg.period)
                else:
                    yield TileResult(t, "done", data, modality=tg.modality, period=tg.period)
