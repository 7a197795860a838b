"""Sentinel-1 product, pair and burst references shared by search, archive, pairing and the
processor: what a product is, wherever it lives (ASF, a local SAFE, an ASF burst product).

Naming follows the Sentinel-1 Product Specification (S1-RS-MDA-52-7441): SAFE names, IW
swaths, polarisations; burst ids follow `burst_id.BurstId`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import shapely

from ..periods import pair_label
from .burst_id import BurstId


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

    @property
    def bursts(self) -> tuple[BurstId, ...]:
        """The burst ids as values."""
        return tuple(BurstId.parse(b) for b in self.burst_ids)


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


@dataclass(frozen=True)
class BurstRef:
    """One ASF burst product: a measurement TIFF and the metadata XML of its SLC/polarisation.

    ASF's burst extractor serves `https://sentinel1-burst.asf.alaska.edu/{slc}/{swath}/{pol}/
    {index}.tiff` and `.xml`; `index` is the burst's position in the SLC's swath.
    """

    burst_id: BurstId
    slc: str  # the SLC product the burst was cut from
    swath: str
    polarisation: str
    index: int
    start: dt.datetime  # first line of the burst (UTC)
    tiff_url: str | None = None
    xml_url: str | None = None
    tiff_size: int | None = None
    tiff_md5: str | None = None

    @property
    def name(self) -> str:
        """ASF's burst granule name, e.g. S1_230560_IW2_20250406T022011_VV_93A7-BURST."""
        return (f"S1_{self.burst_id.number:06d}_{self.swath}_{self.start:%Y%m%dT%H%M%S}_"
                f"{self.polarisation}_"
                f"{self.slc[-4:]}-BURST")


def burst_refs(p: S1Product) -> tuple[BurstRef, ...]:
    """The burst files (one per polarisation) of a burst search result: `extra["burst"]` as
    `s1.search` writes it."""
    b = p.extra.get("burst")
    if not b or len(p.burst_ids) != 1:
        raise ValueError(f"{p.name}: not a burst product")
    bid = BurstId.parse(p.burst_ids[0])
    return tuple(BurstRef(bid, b["slc"], b["swath"].upper(), pol, int(b["index"]), p.start,
                          f.get("url"), f.get("xml_url"), f.get("size"), f.get("md5"))
                 for pol, f in b["files"].items())
