"""Sentinel-1 product and pair records shared by search (ASF, archive) and the processor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import shapely

from ..periods import pair_label


@dataclass(frozen=True)
class S1Product:
    """One IW SLC product (or burst product), wherever it lives."""

    name: str  # SAFE name without .SAFE/.zip, e.g. S1A_IW_SLC__1SDV_20250406T022008_...
    platform: str  # S1A | S1B | S1C
    start: dt.datetime  # UTC
    stop: dt.datetime
    relative_orbit: int
    absolute_orbit: int
    pass_direction: str  # ASCENDING | DESCENDING
    polarisations: tuple[str, ...]  # e.g. ("VV", "VH")
    footprint: shapely.Geometry  # lon/lat
    path: str | None = None  # local SAFE folder or zip, once on disk
    url: str | None = None
    size: int | None = None
    md5: str | None = None
    burst_ids: tuple[str, ...] = ()  # ESA burst ids, e.g. "108_230560_IW2"
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def date(self) -> dt.date:
        return self.start.date()


@dataclass(frozen=True)
class S1Pair:
    """An interferometric pair: same track and bursts, reference earlier than secondary."""

    reference: S1Product
    secondary: S1Product
    tiles: tuple[str, ...] = ()  # tile ids the pair fully covers

    @property
    def label(self) -> str:
        return pair_label(self.reference.date, self.secondary.date)

    @property
    def dt_days(self) -> int:
        return (self.secondary.date - self.reference.date).days
