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
from typing import Any, Literal

import numpy as np
import shapely

from ..grid.geobox import GridSpec
from ..modalities import Modality
from ..periods import Period


@dataclass(frozen=True)
class TileRef:
    """What a source needs to know about a tile: its id, its 10 m grid, its lon/lat footprint."""

    id: str
    grid: GridSpec
    polygon: shapely.Geometry

    def grid_at(self, res: float) -> GridSpec:
        """The tile's grid at a modality's resolution (UTM tiles: res metres)."""
        n = int(round(self.grid.width * self.grid.dx / res)) if self.grid.epsg != 4326 else \
            int(round(self.grid.width * 10 / res))
        return self.grid.with_shape(n, n)


@dataclass(frozen=True)
class WorkUnit:
    """Tiles of one modality and period that one source item serves; picklable."""

    modality: str
    period: str
    tiles: tuple[str, ...]
    key: str = ""
    items: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class TileResult:
    """A source's answer for one tile of a unit."""

    tile: str
    status: Literal["done", "nodata", "failed"]
    data: np.ndarray | None = None  # (band, y, x) in the modality's dtype
    items: tuple[str, ...] = ()
    error: str | None = None
    transient: bool = False


class Source(ABC):
    """A plug-in backend. Subclasses set `name` and `modalities` and implement `read`."""

    name: str = ""
    modalities: tuple[str, ...] = ()

    def periods(self, modality: Modality, request: Sequence[Period],
                tiles: Sequence[TileRef]) -> list[Period]:
        """Concrete periods for a request; pair sources replace the window with found pairs."""
        return list(request)

    def plan(self, modality: Modality, period: Period, tiles: Sequence[TileRef]) -> list[WorkUnit]:
        """Group tiles into work units; the default is one unit per tile."""
        return [WorkUnit(modality.name, period.label, (t.id,)) for t in tiles]

    @abstractmethod
    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        """Yield one TileResult per tile of the unit (arrays on tile.grid_at(modality.res))."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and caches."""
