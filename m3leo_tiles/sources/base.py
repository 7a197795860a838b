"""The one small interface every source implements.

A source turns (tiles, modality, period) into work units that share a source item (one S1
pair covers hundreds of tiles; one EE request covers one tile), then reads a unit onto the
tiles' grids. Sources never write to the store: workers hand arrays to the store writer, the
coordinator records state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import shapely

from ..errors import BadInput
from ..grid.tileref import TileRef
from ..modalities import Modality
from ..periods import DateWindow, Period


@dataclass(frozen=True)
class Target:
    """One (modality, period) a unit writes, and the tiles it writes it for."""

    modality: str
    period: str
    tiles: tuple[str, ...]


@dataclass(frozen=True)
class CacheHint:
    """Where a unit stands in its node's schedule, for the download cache: it is the
    node's `seq`-th unit, and `until[i]` is the last seq of the node's units that reads
    `items[i]` too (the cache keeps that item's files until the node gets there).

    `later[i]` lists those later units (their seq, the WKB of their tiles' convex hull): an
    item is a whole S1 frame, but a unit downloads only the bursts that meet its hull, so
    `until_of` holds each burst only until the last unit that will read that burst."""

    seq: int
    until: tuple[int, ...]
    later: tuple[tuple[tuple[int, bytes], ...], ...] = ()

    def until_of(self, item: int, footprint: shapely.Geometry) -> int:
        """The last seq of the node's units whose tiles' hull meets `footprint` (a burst of
        item `item`), or this unit's own seq when no later unit reads it."""
        if not self.later:
            return self.until[item]
        hit = [seq for seq, hull in self.later[item]
               if shapely.intersects(shapely.from_wkb(hull), footprint)]
        return max(hit, default=self.seq)


@dataclass(frozen=True)
class WorkUnit:
    """Tiles of one modality and period that one source item serves; picklable.

    A unit that computes several layers from the same inputs (an S1 block: backscatter,
    coherence and interferogram of every pair from one resampling) lists the further
    (modality, period, tiles) it writes in `more`; the engine records each separately. Every
    chunk a unit writes belongs to that unit alone (no two units share a (tile, modality,
    period)), which is what keeps kill -9 and parallel workers safe.
    """

    modality: str
    period: str
    tiles: tuple[str, ...]
    key: str = ""
    items: tuple[str, ...] = ()
    #: what the source planned for the unit, typed by the source (an S1 block: `S1Work`)
    payload: object = field(default=None, hash=False, compare=False)
    more: tuple[Target, ...] = ()
    #: set by the engine's schedule; None when run alone
    hint: CacheHint | None = field(default=None, hash=False, compare=False)

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every (modality, period, tiles) this unit writes, its own first."""
        return (Target(self.modality, self.period, self.tiles),) + self.more

    @property
    def all_tiles(self) -> tuple[str, ...]:
        """The union of the targets' tiles, in first-seen order."""
        return tuple(dict.fromkeys(t for g in self.targets for t in g.tiles))


@dataclass
class TileResult:
    """A source's answer for one tile of a unit."""

    tile: str
    status: Literal["done", "nodata", "failed"]
    data: np.ndarray | None = None  # (band, y, x) in the modality's dtype
    items: tuple[str, ...] = ()
    error: str | None = None
    transient: bool = False
    modality: str = ""  # which target this answers; "" = the unit's own (modality, period)
    period: str = ""


@dataclass(frozen=True)
class PlanRequest:
    """Tiles still to do for one (modality, period) of one source."""

    modality: Modality
    period: Period
    tiles: Sequence[TileRef]


def concrete(source: str, modality: Modality, request: Sequence[DateWindow]) -> list[Period]:
    """The request's periods as they are; a bare window (pairs to find) is one this source
    cannot resolve."""
    out = [r for r in request if isinstance(r, Period)]
    if len(out) != len(request):
        raise BadInput(f"source {source!r} cannot find the {modality.period_kind} periods of "
                       f"{modality.name} in a date window")
    return out


class Source(ABC):
    """A plug-in backend. Subclasses set `name` and `modalities` and implement `read`."""

    name: str = ""
    modalities: tuple[str, ...] = ()
    #: recorded with every unit's items: a new version makes earlier results refetchable
    version: str = "1"
    #: True when the source's client already retries (the runner then tries a unit once a run)
    retries_inside: bool = False
    #: True when a unit costs about a chunk write, locally (no network, no SAR stack): the
    #: coordinator may run some itself while the workers start (runner/executors.py)
    light: bool = False

    def periods(self, modality: Modality, request: Sequence[DateWindow],
                tiles: Sequence[TileRef]) -> list[Period]:
        """Concrete periods for a request; pair sources replace the window with found pairs."""
        return concrete(self.name, modality, request)

    def plan(self, modality: Modality, period: Period, tiles: Sequence[TileRef]) -> list[WorkUnit]:
        """Group tiles into work units; the default is one unit per tile."""
        return [WorkUnit(modality.name, period.label, (t.id,)) for t in tiles]

    def plan_all(self, requests: Sequence[PlanRequest]) -> list[WorkUnit]:
        """Units for every (modality, period) a run asks of this source at once.

        The default plans each request alone; a source whose inputs serve several layers
        (Sentinel-1) overrides it to put them in one unit. A (tile, modality, period) must
        land in exactly one unit.
        """
        return [u for r in requests for u in self.plan(r.modality, r.period, r.tiles)]

    @abstractmethod
    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        """Yield one TileResult per tile of the unit (arrays on tile.grid_at(modality.res));
        for a unit with several targets, one per (target, tile), naming its target."""

    def check(self) -> None:  # noqa: B027 - optional hook
        """Refuse early (e.g. missing credentials), before a run writes anything."""

    def check_for(self, modality: str) -> None:
        """`check` for a run that asks this source for `modality` (a source whose layers
        need different settings, e.g. ASF: a DEM for S1 processing, none for gunw)."""
        self.check()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and caches."""
