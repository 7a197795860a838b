"""ARIA Sentinel-1 GUNW standard products: names, and the search through `asf_search`.

A GUNW (Geocoded UNWrapped interferogram, JPL's ISCE2 topsApp + SNAPHU, ASF collection
SENTINEL-1_INTERFEROGRAMS, processing level GUNW_STD) is named like
`S1-GUNW-A-R-064-tops-20200702_20200620-140101-00120W_00040N-PP-1a2b-v2_0_4`: direction
(A/D), look (R), track, `tops`, the date pair LATER date first (its reference is the later
acquisition), the reference's UTC time, the product's corner, then a hash and version.
Our pair labels put the earlier date first (`periods.pair_label`): GUNW's
`20200702_20200620` is our `20200620_20200702`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import requests
import shapely

from ..errors import BadInput
from ..periods import pair_label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GunwProduct:
    """One GUNW granule as search finds it (picklable apart from the footprint)."""

    name: str
    later: dt.date  # GUNW's reference date
    earlier: dt.date  # GUNW's secondary date
    direction: str  # ASCENDING | DESCENDING
    track: int
    footprint: shapely.Geometry
    url: str | None = None
    size: int | None = None
    md5: str | None = None

    @property
    def label(self) -> str:
        """Our pair label: earlier date first."""
        return pair_label(self.earlier, self.later)


def parse_gunw_name(name: str) -> tuple[dt.date, dt.date, str, int]:
    """(later, earlier, direction, track) from a GUNW name; BadInput if it is not one."""
    parts = name.split("-")
    try:
        if parts[:2] != ["S1", "GUNW"] or parts[2] not in ("A", "D"):
            raise ValueError("not S1-GUNW-A|D")
        later_s, earlier_s = parts[6].split("_")
        later = dt.datetime.strptime(later_s, "%Y%m%d").date()
        earlier = dt.datetime.strptime(earlier_s, "%Y%m%d").date()
        track = int(parts[4])
    except (IndexError, ValueError) as e:
        raise BadInput(f"{name!r} is not an ARIA GUNW product name ({e})") from None
    if earlier >= later:
        raise BadInput(f"{name!r}: GUNW names put the later date first")
    return later, earlier, "ASCENDING" if parts[2] == "A" else "DESCENDING", track


def gunw_from_result(r: Any) -> GunwProduct:
    """A GunwProduct from an asf_search ARIAS1GUNWProduct."""
    p = r.properties
    name = str(p.get("sceneName") or p.get("fileID"))
    later, earlier, direction, track = parse_gunw_name(name)
    fp = shapely.geometry.shape(r.geometry)
    if fp.is_empty or not fp.is_valid:
        raise ValueError("unusable footprint")
    size = p.get("bytes")
    return GunwProduct(name, later, earlier, direction, track, fp, p.get("url"),
                       int(float(size)) if size is not None else None, p.get("md5sum"))


def search_gunw(aoi: shapely.Geometry, start: dt.date, end: dt.date, host: str | None = None,
                session: requests.Session | None = None) -> list[GunwProduct]:
    """GUNW_STD products intersecting `aoi` whose two dates lie in [start, end)."""
    import asf_search

    from .search import search_pages, search_session

    if end <= start:
        raise BadInput(f"search window ends ({end}) before it starts ({start})")
    asf_search.REPORT_ERRORS = False
    kw: dict[str, object] = {"session": session or search_session(host)}
    if host:
        kw["host"] = host
    args = dict(start=f"{start}T00:00:00Z", end=f"{end}T00:00:00Z",
                dataset=asf_search.DATASET.ARIA_S1_GUNW,
                processingLevel=asf_search.PRODUCT_TYPE.GUNW_STD,
                intersectsWith=shapely.to_wkt(shapely.orient_polygons(aoi.simplify(0.01)),
                                              rounding_precision=6),
                opts=asf_search.ASFSearchOptions(**kw))
    results = search_pages(asf_search, args, "ASF GUNW search")
    out = []
    for r in results:
        try:
            g = gunw_from_result(r)
        except (BadInput, KeyError, TypeError, ValueError, AttributeError,
                shapely.errors.ShapelyError) as e:
            log.warning("ignoring unreadable GUNW result %s: %s", r.properties.get("fileID"), e)
            continue
        if start <= g.earlier and g.later < end:
            out.append(g)
    out.sort(key=lambda g: (g.earlier, g.later, g.name))
    return out
