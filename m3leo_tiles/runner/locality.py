"""Locality-aware order of work units, and a replay of the download cache over a schedule.

Units that read the same bursts (neighbouring blocks of a track) should run close together
on the same worker, or the cache evicts a burst between two units that need it and it is
downloaded again. `schedule` cuts the region into one compact group of neighbouring units per
node (equal weight, so the nodes end together), and each node's workers take its group's
units from one shared queue in a serpentine sweep (longitude bands, north-south then back):
the workers of a node move along one front, which is what its cache must hold. (Handing
groups to workers longest group first was tried and measured worse: a node's workers then
work on distant groups at once and the cache holds all their fronts.)

`replay` is a SIMULATION of the cache, not a measurement: it plays a schedule (plan order,
per-node and per-worker assignment, each unit taking time in proportion to its weight)
against a cache of a given capacity per node, with the plan's burst sizes
(`runner/inputs.py`), and counts the bytes each node downloads. A burst is held while its
unit runs; eviction takes least-recently-used bursts no pending unit of the node still needs
first, then (policy "refs") the least recently used of the rest; policy "lru" is today's
cache (recency only). The multi-node rehearsal test checks it against real downloads.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from ..sources.base import TileRef, WorkUnit
from .inputs import UnitInputs

#: bands (of units, along longitude) each node's sweep makes: measured on the conus season
#: (tools in benchmarks/bench_s1_region.py), 10 beat 20-125 at 200 GB per node
BANDS = 10


@dataclass(frozen=True)
class Schedule:
    """Per node (a cache and the workers sharing it), the units it runs, in order."""

    nodes: tuple[tuple[int, ...], ...]

    @property
    def order(self) -> list[tuple[int, int]]:
        """(unit, node) in submission order: the nodes' queues interleaved, so every node
        gets its first units first."""
        out = []
        for k in range(max((len(q) for q in self.nodes), default=0)):
            out.extend((q[k], n) for n, q in enumerate(self.nodes) if k < len(q))
        return out


def unit_centres(units: Sequence[WorkUnit], refs: Mapping[str, TileRef]) -> np.ndarray:
    """(n, 2) lon/lat of each unit's first tile's centre (a block's tiles are neighbours)."""
    polys = [refs[u.all_tiles[0]].polygon for u in units]
    return shapely.get_coordinates(shapely.centroid(polys)) if polys else np.zeros((0, 2))


def sweep(centres: np.ndarray, bands: int = BANDS) -> list[int]:
    """Indices in a serpentine: `bands` longitude bands west to east (equal counts), each
    north to south then south to north: S1 tracks run near north-south, so a band follows
    them and the next band reuses the bursts of its neighbour's sub-swaths."""
    if not len(centres):
        return []
    lon = centres[:, 0]
    bands = max(1, min(bands, len(centres)))
    edges = np.quantile(lon, np.linspace(0, 1, bands + 1)[1:-1]) if bands > 1 else []
    band = np.searchsorted(np.asarray(edges), lon, side="right")
    out: list[int] = []
    for b in range(bands):
        idx = np.flatnonzero(band == b)
        idx = idx[np.argsort(-centres[idx, 1], kind="stable")]
        out.extend((idx if b % 2 == 0 else idx[::-1]).tolist())
    return out


def split(weights: Sequence[float], parts: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges of `weights` with about equal sums."""
    total = float(sum(weights)) or 1.0
    bounds, acc, k = [0], 0.0, 1
    for i, w in enumerate(weights):
        acc += w
        while k < parts and acc >= total * k / parts:
            bounds.append(i + 1)
            k += 1
    bounds += [len(weights)] * (parts + 1 - len(bounds))
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]


def _regions(idx: np.ndarray, centres: np.ndarray, weights: Sequence[float],
             parts: int) -> list[np.ndarray]:
    """`parts` compact regions of about equal weight: about sqrt(parts) columns by
    longitude, each cut by latitude (a node's boundary with others is what it downloads
    twice, so regions should be squat, not strips)."""
    if parts <= 1:
        return [idx]
    cols = max(1, round(math.sqrt(parts)))
    per = [parts // cols + (1 if c < parts % cols else 0) for c in range(cols)]
    idx = idx[np.argsort(centres[idx, 0], kind="stable")]
    cuts = split([weights[i] for i in idx], parts)
    out, k = [], 0
    for n in per:
        column = idx[cuts[k][0]:cuts[k + n - 1][1]]
        k += n
        column = column[np.argsort(centres[column, 1], kind="stable")]
        out.extend(column[a:b] for a, b in split([weights[i] for i in column], n))
    return out


def schedule(units: Sequence[WorkUnit], refs: Mapping[str, TileRef], weights: Sequence[float],
             nodes: int = 1) -> Schedule:
    """The locality schedule (module docstring): `nodes` compact regions of equal weight,
    each swept by its node's workers from one shared queue."""
    centres = unit_centres(units, refs)
    regions = _regions(np.arange(len(units)), centres, weights, max(1, nodes))
    return Schedule(tuple(tuple(int(r[i]) for i in sweep(centres[r])) for r in regions))


def longest_first(weights: Sequence[float], nodes: int = 1) -> Schedule:
    """Today's order: the heaviest unit first, plan order among equals, one shared queue per
    node (whoever is free takes the next), units dealt to nodes in turn."""
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    return Schedule(tuple(tuple(order[k::nodes]) for k in range(nodes)))


class _Cache:
    """The replayed cache of one node: held (in use), kept (a pending unit needs it), free."""

    def __init__(self, cap: int, refs: dict[str, int], policy: str) -> None:
        self.cap, self.refs, self.policy = cap, refs, policy
        self.size = 0
        self.bytes: dict[str, int] = {}
        self.pins: dict[str, int] = {}
        self.free: OrderedDict[str, None] = OrderedDict()
        self.kept: OrderedDict[str, None] = OrderedDict()
        self.downloaded = 0

    def _park(self, b: str) -> None:
        if self.policy == "refs" and self.refs.get(b, 0) > 0:
            self.kept[b] = None
        else:
            self.free[b] = None

    def start(self, bursts: Mapping[str, int]) -> None:
        for b, nbytes in bursts.items():
            self.refs[b] = self.refs.get(b, 0) - 1
            if b in self.bytes:
                self.free.pop(b, None)
                self.kept.pop(b, None)
            else:
                self.bytes[b] = nbytes
                self.size += nbytes
                self.downloaded += nbytes
            self.pins[b] = self.pins.get(b, 0) + 1
        self._evict()

    def end(self, bursts: Mapping[str, int]) -> None:
        for b in bursts:
            self.pins[b] -= 1
            if not self.pins[b]:
                del self.pins[b]
                self._park(b)  # most recently used end
        self._evict()

    def _evict(self) -> None:
        while self.size > self.cap and (self.free or self.kept):
            b, _ = (self.free or self.kept).popitem(last=False)
            self.size -= self.bytes.pop(b)


def replay(plan: Schedule, inputs: Sequence[UnitInputs], weights: Sequence[float],
           cache_bytes: int, workers: int, policy: str = "refs") -> int:
    """Bytes downloaded by all nodes playing `plan`, each node's `workers` taking its units
    in turn, a unit lasting its weight (see the module docstring)."""
    total = 0
    for queue in plan.nodes:
        refs: dict[str, int] = {}
        for i in queue:
            for b in inputs[i].bursts:
                refs[b] = refs.get(b, 0) + 1
        cache = _Cache(cache_bytes, refs, policy)
        running: list[tuple[float, int]] = []  # (end time, unit)
        free_at = [0.0] * max(1, workers)
        for i in queue:
            t = heapq.heappop(free_at)
            while running and running[0][0] <= t:
                cache.end(inputs[heapq.heappop(running)[1]].bursts)
            cache.start(inputs[i].bursts)
            end = t + max(float(weights[i]), 1e-9)
            heapq.heappush(running, (end, i))
            heapq.heappush(free_at, end)
        total += cache.downloaded
    return total


__all__ = ["BANDS", "Schedule", "longest_first", "replay", "schedule", "split", "sweep",
           "unit_centres"]
