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
(`runner/inputs.py`), and counts the bytes each node downloads. It follows the real cache's
rule (`s1.download.DownloadCache`), per burst: a burst is pinned while its unit runs; a
burst is held while the node's clock (the highest seq started) is before `until`, the last
seq of the node's units that read that burst (`last_reads`, which also makes the engine's
hints); eviction takes the least recently used of the bursts not held first, then the
least recently used held ones. Policy "lru" is recency only (today's cache without hints).
The engine's workers find their bursts at read time; `CacheHint.until_of` gives each burst
the same `until` from the later units' hulls, which is what their one burst search per unit
covers. The multi-node rehearsal test checks the replay against real downloads.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from ..sources.base import CacheHint, TileRef, WorkUnit
from .inputs import UnitInputs

#: longitude bands of each node's sweep: on the conus season at 200 GB per node (replayed,
#: frame-level holds) 1 band read 1.43x the distinct bytes, 2-3 bands 1.03, 5 1.07, 20 1.16
BANDS = 3


@dataclass(frozen=True)
class Schedule:
    """Per node (a cache and the workers sharing it), the units it runs, in order."""

    nodes: tuple[tuple[int, ...], ...]

    @property
    def order(self) -> list[tuple[int, int]]:
        """(unit, node) in submission order: the nodes' queues interleaved, so every node
        gets its first units first (Dask runs earlier submissions first)."""
        out: list[tuple[int, int]] = []
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
    out: list[np.ndarray] = []
    k = 0
    for n in per:
        column = idx[cuts[k][0]:cuts[k + n - 1][1]]
        k += n
        column = column[np.argsort(centres[column, 1], kind="stable")]
        out.extend(column[a:b] for a, b in split([weights[i] for i in column], n))
    return out


def components(units: Sequence[WorkUnit]) -> list[list[int]]:
    """Units connected by shared items (an S1 frame read by neighbouring blocks), each
    component in plan order; units sharing nothing are components of their own."""
    parent = list(range(len(units)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, u in enumerate(units):
        for item in u.items:
            j = first.setdefault(item, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    out: dict[int, list[int]] = {}
    for i in range(len(units)):
        out.setdefault(root(i), []).append(i)
    return list(out.values())


def schedule(units: Sequence[WorkUnit], refs: Mapping[str, TileRef], weights: Sequence[float],
             nodes: int = 1) -> Schedule:
    """The locality schedule (module docstring): groups of units sharing inputs, longest
    group first; a group heavier than a node's share is cut into compact regions of equal
    weight, groups and regions dealt to the least loaded node; each swept in a serpentine."""
    centres = unit_centres(units, refs)
    total = float(sum(weights)) or 1.0
    nodes = max(1, nodes)
    pieces: list[np.ndarray] = []
    for comp in components(units):
        idx = np.asarray(comp, dtype=np.int64)
        w = sum(weights[i] for i in comp)
        k = max(1, round(nodes * w / total))
        pieces.extend(_regions(idx, centres, weights, k) if k > 1 else [idx])
    pw = [sum(weights[i] for i in p.tolist()) for p in pieces]
    load = [(0.0, n) for n in range(nodes)]
    queues: list[list[int]] = [[] for _ in range(nodes)]
    for k in sorted(range(len(pieces)), key=lambda k: -pw[k]):  # LPT, stable
        t, n = heapq.heappop(load)
        p = pieces[k]
        queues[n].extend(int(p[i]) for i in sweep(centres[p]))
        heapq.heappush(load, (t + pw[k], n))
    return Schedule(tuple(tuple(q) for q in queues))


def last_reads(queue: Sequence[int], reads: Sequence[Iterable[str]]) -> dict[str, int]:
    """Per key (an item, or a burst), the last seq of the node's `queue` whose unit reads it
    (`reads[i]`: what unit i reads): the cache holds the key until the node's clock gets
    there. One rule for the engine's hints and the replay."""
    last: dict[str, int] = {}
    for seq, i in enumerate(queue):
        for key in reads[i]:
            last[key] = seq
    return last


def hinted(units: Sequence[WorkUnit], plan: Schedule,
           refs: Mapping[str, TileRef] | None = None) -> list[tuple[int, int, WorkUnit]]:
    """(plan index, node, unit with its CacheHint) in submission order: a unit's seq is its
    place in its node's queue, and per item the last seq of the node reading it too; with
    `refs`, per item the later units reading it and their tiles' hulls (per-burst holds)."""
    hints: dict[int, CacheHint] = {}
    items = [u.items for u in units]
    for queue in plan.nodes:
        last = last_reads(queue, items)
        hulls: dict[int, bytes] = {}
        readers: dict[str, list[int]] = {}
        if refs is not None:
            polys = [[refs[t].polygon for t in units[i].all_tiles] for i in queue]
            hulls = dict(enumerate(shapely.to_wkb(shapely.convex_hull(
                shapely.GeometryCollection(p))) for p in polys))
            for seq, i in enumerate(queue):
                for item in units[i].items:
                    readers.setdefault(item, []).append(seq)
        for seq, i in enumerate(queue):
            later = tuple(tuple((s, hulls[s]) for s in readers[item] if s > seq)
                          for item in units[i].items) if refs is not None else ()
            hints[i] = CacheHint(seq, tuple(last[item] for item in units[i].items), later)
    return [(i, n, dataclasses.replace(units[i], hint=hints[i])) for i, n in plan.order]


def longest_first(weights: Sequence[float], nodes: int = 1) -> Schedule:
    """Today's order: the heaviest unit first, plan order among equals, one shared queue per
    node (whoever is free takes the next), units dealt to nodes in turn."""
    order = sorted(range(len(weights)), key=lambda i: -weights[i])
    return Schedule(tuple(tuple(order[k::nodes]) for k in range(nodes)))


class _Cache:
    """The replayed cache of one node: pinned (in use), held (a later unit of the node reads
    it: `until` past the clock), free; held and free each least recently used first."""

    def __init__(self, cap: int, until: dict[str, int], policy: str,
                 counts: Counter | None = None) -> None:
        self.cap, self.until, self.policy = cap, until, policy
        self.counts = Counter() if counts is None else counts
        self.clock = -1
        self.size = 0
        self.bytes: dict[str, int] = {}
        self.pins: dict[str, int] = {}
        self.free: OrderedDict[str, None] = OrderedDict()
        self.kept: OrderedDict[str, None] = OrderedDict()
        self.downloaded = 0

    def _park(self, b: str) -> None:
        if self.policy == "refs" and self.until.get(b, -1) > self.clock:
            self.kept[b] = None
        else:
            self.free[b] = None

    def start(self, seq: int, bursts: Mapping[str, int]) -> None:
        self.clock = max(self.clock, seq)
        for b, nbytes in bursts.items():
            if b in self.bytes:
                self.free.pop(b, None)
                self.kept.pop(b, None)
            else:
                self.bytes[b] = nbytes
                self.size += nbytes
                self.downloaded += nbytes
                self.counts[b] += 1
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
        # a held burst's last reader pins it when it starts, so `kept` never holds one whose
        # `until` the clock has passed: the two queues are the real cache's sort order
        while self.size > self.cap and (self.free or self.kept):
            b, _ = (self.free or self.kept).popitem(last=False)
            self.size -= self.bytes.pop(b)


def replay(plan: Schedule, inputs: Sequence[UnitInputs], weights: Sequence[float],
           cache_bytes: int, workers: int, policy: str = "refs",
           counts: Counter | None = None) -> int:
    """Bytes downloaded by all nodes playing `plan`, each node's `workers` taking its units
    in turn, a unit lasting its weight (see the module docstring); `counts` gets the
    downloads of each burst."""
    total = 0
    for queue in plan.nodes:
        cache = _Cache(cache_bytes, last_reads(queue, [x.bursts for x in inputs]), policy,
                       counts)
        running: list[tuple[float, int]] = []  # (end time, unit)
        free_at = [0.0] * max(1, workers)
        for seq, i in enumerate(queue):
            t = heapq.heappop(free_at)
            while running and running[0][0] <= t:
                cache.end(inputs[heapq.heappop(running)[1]].bursts)
            cache.start(seq, inputs[i].bursts)
            end = t + max(float(weights[i]), 1e-9)
            heapq.heappush(running, (end, i))
            heapq.heappush(free_at, end)
        total += cache.downloaded
    return total


__all__ = ["BANDS", "Schedule", "components", "hinted", "last_reads", "longest_first", "replay",
           "schedule", "split", "sweep", "unit_centres"]
