"""What each work unit reads: the S1 bursts it downloads and the SLC bytes its tiles need.

Bytes come from the search metadata: a frame record's `size` (CMR's BYTES) spread over its
bursts. The plan knows frames, not bursts (a region-season's ~100k bursts are searched per
unit at read time, in the worker), so a frame's bursts are modelled from its footprint: its
rotated bounding rectangle cut into 3 sub-swaths across track and one burst per IW burst
cycle (2.758 s, ESA S1-TN-MDA-52-7445) along it; the along-track axis is the rectangle's axis
nearer north-south (S1's orbit is near-polar). A unit downloads the cells of its frames that
meet the convex hull of its tiles, which is what the worker's one burst search per unit
returns (`AsfSource.burst_search`). The bytes a tile needs are its share of the frame's area.
A product already on local disk (an archive) is downloaded by nobody.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from ..sources.base import TileRef, WorkUnit
from ..sources.s1blocks import ProductRecord, S1Work

#: IW burst cycle (s): one burst per sub-swath per cycle (ESA S1-TN-MDA-52-7445)
IW_BURST_CYCLE = 2.758273
IW_SUBSWATHS = 3


@dataclass(frozen=True)
class UnitInputs:
    """A unit's reads: burst key -> bytes to download, SLC bytes its tiles need, and per
    modality the chunks it writes and the tile-dates (tile x acquisition reads) behind them."""

    key: str
    bursts: Mapping[str, int] = field(default_factory=dict)
    needed_bytes: int = 0
    chunks: Mapping[str, int] = field(default_factory=dict)
    tile_dates: Mapping[str, int] = field(default_factory=dict)

    @property
    def download_bytes(self) -> int:
        return sum(self.bursts.values())


def bursts_along(record: ProductRecord) -> int:
    """Bursts per sub-swath of a frame: its duration over the IW burst cycle."""
    span = (dt.datetime.fromisoformat(record.stop) -
            dt.datetime.fromisoformat(record.start)).total_seconds()
    return max(1, int(span / IW_BURST_CYCLE + 0.5))


def burst_cells(footprint: shapely.Geometry, along: int) -> np.ndarray:
    """The frame's footprint cut into `along` x 3 burst cells (polygons, along-track major)."""
    rect = shapely.oriented_envelope(footprint)
    xy = np.asarray(rect.exterior.coords)[:4]
    e1, e2 = xy[1] - xy[0], xy[3] - xy[0]
    # along track: the edge nearer north-south (larger latitude change per length)
    if abs(e1[1]) / (np.hypot(*e1) or 1) < abs(e2[1]) / (np.hypot(*e2) or 1):
        e1, e2 = e2, e1
    a = np.arange(along + 1) / along
    c = np.arange(IW_SUBSWATHS + 1) / IW_SUBSWATHS
    grid = xy[0] + a[:, None, None] * e1 + c[None, :, None] * e2  # (along+1, 4, 2)
    quads = np.stack([grid[:-1, :-1], grid[1:, :-1], grid[1:, 1:], grid[:-1, 1:]], axis=2)
    return shapely.polygons(quads.reshape(-1, 4, 2))


class BurstModel:
    """Burst cells per frame, built once per frame and reused by every unit reading it."""

    def __init__(self, footprints: Mapping[str, shapely.Geometry]) -> None:
        self.footprints = footprints
        self._cells: dict[str, tuple[np.ndarray, int]] = {}

    def cells(self, record: ProductRecord) -> tuple[np.ndarray, int] | None:
        """(cell polygons, bytes per cell) of a frame, or None without a footprint."""
        got = self._cells.get(record.name)
        if got is None:
            fp = self.footprints.get(record.name)
            if fp is None or fp.is_empty:
                return None
            cells = burst_cells(fp, bursts_along(record))
            shapely.prepare(cells)
            shapely.prepare(fp)  # `unit_inputs` asks which tiles it covers whole
            got = self._cells[record.name] = (cells, (record.size or 0) // len(cells))
        return got


def _local(record: ProductRecord) -> bool:
    return bool(record.path and Path(record.path).exists())


def tile_dates(unit: WorkUnit) -> dict[str, int]:
    """Per modality, tile x acquisition reads: what a unit's processing time scales with.

    An S1 block's backscatter reads every product touching a tile in its period, a pair
    layer its two dates, geometry one product; other sources read one item per chunk."""
    work = unit.payload
    if not isinstance(work, S1Work):
        return {t.modality: len(t.tiles) for t in unit.targets}
    out: dict[str, int] = {}
    grd = dict(work.grd)
    for t in unit.targets:
        if t.modality in ("s1grd",) and t.period in grd:
            prods = set(grd[t.period])
            n = sum(sum(1 for i in work.cover.get(tile, ()) if i in prods) for tile in t.tiles)
        elif t.modality in ("s1coh", "s1ifg", "s1cohs"):
            n = 2 * len(t.tiles)
        else:
            n = len(t.tiles)
        out[t.modality] = out.get(t.modality, 0) + n
    return out


def unit_inputs(unit: WorkUnit, refs: Mapping[str, TileRef], model: BurstModel | None
                ) -> UnitInputs:
    """What one unit downloads and needs (see the module docstring)."""
    chunks: dict[str, int] = {}
    for t in unit.targets:
        chunks[t.modality] = chunks.get(t.modality, 0) + len(t.tiles)
    work = unit.payload
    if not isinstance(work, S1Work):
        return UnitInputs(unit.key, {}, 0, chunks, tile_dates(unit))
    tiles = [refs[t] for t in unit.all_tiles if t in refs]
    hull = shapely.GeometryCollection([t.polygon for t in tiles]).convex_hull
    bursts: dict[str, int] = {}
    needed = 0.0
    for i, rec in enumerate(work.products):
        if _local(rec):
            continue
        cells = model.cells(rec) if model is not None else None
        if cells is None:  # no footprint: the whole product, once
            bursts[rec.name] = rec.size or 0
            needed += rec.size or 0
            continue
        polys, each = cells
        hit = np.flatnonzero(shapely.intersects(polys, hull))
        for k in hit.tolist():
            bursts[f"{rec.name}#{k}"] = each
        fp = model.footprints[rec.name] if model is not None else None
        mine = np.asarray([t.polygon for t in tiles if i in work.cover.get(t.id, ())],
                          dtype=object)
        if len(mine) and fp is not None and rec.size:
            # most tiles lie inside the frame: only those on its edge need an intersection
            area = np.asarray(shapely.area(mine), dtype=float)
            edge = ~shapely.covers(fp, mine)
            if edge.any():
                area[edge] = shapely.area(shapely.intersection(fp, mine[edge]))
            needed += rec.size * float(area.sum()) / max(fp.area, 1e-12)
    return UnitInputs(unit.key, bursts, int(needed), chunks, tile_dates(unit))


def plan_inputs(units: Sequence[WorkUnit], refs: Sequence[TileRef],
                footprints: Mapping[str, shapely.Geometry]) -> list[UnitInputs]:
    """`unit_inputs` of every unit of a plan, burst cells shared across units."""
    by_id = {r.id: r for r in refs}
    model = BurstModel(footprints) if footprints else None
    return [unit_inputs(u, by_id, model) for u in units]


def distinct_bytes(inputs: Sequence[UnitInputs]) -> int:
    """Bytes of the distinct bursts a plan touches: what a run downloads at best."""
    seen: dict[str, int] = {}
    for u in inputs:
        seen.update(u.bursts)
    return sum(seen.values())


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover - the loop returns


__all__ = ["IW_BURST_CYCLE", "BurstModel", "UnitInputs", "burst_cells", "bursts_along",
           "distinct_bytes", "human_bytes", "plan_inputs", "tile_dates", "unit_inputs"]
