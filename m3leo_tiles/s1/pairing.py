"""Interferometric pairs from S1 products: same pass, same track, same bursts.

`sequential` pairs each acquisition with the next one of its track (nearest repeat, 6 or 12
days); `seasonal` follows GSSIC: every pair with dt in {6, 12, 18, 24, 36, 48} days whose
mid-date falls in the season window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import shapely

from ..errors import BadInput
from ..periods import SEASONS, parse_window
from .products import S1Pair, S1Product

POLICIES = ("sequential", "seasonal")
SEASONAL_DT = (6, 12, 18, 24, 36, 48)
SEQUENTIAL_MAX_DT = 12


class TileLike(Protocol):
    """What pairing needs of a tile (sources.base.TileRef has it)."""

    id: str
    polygon: shapely.Geometry


def _group_key(p: S1Product) -> tuple:
    return (p.pass_direction, p.relative_orbit, tuple(sorted(p.polarisations)))


def common_bursts(a: S1Product, b: S1Product) -> tuple[str, ...]:
    """Burst ids both products image (empty when either lacks burst ids)."""
    return tuple(sorted(set(a.burst_ids) & set(b.burst_ids)))


def _compatible(a: S1Product, b: S1Product) -> bool:
    """Same bursts when both know them (frames may differ by a burst), else overlapping frames."""
    if a.burst_ids and b.burst_ids:
        return bool(common_bursts(a, b))
    return a.footprint.intersects(b.footprint)


def _season_window(season_window: object) -> tuple[dt.date, dt.date] | None:
    """(start, end) dates, or a season label 'DJF' / '2020-DJF' / any parse_window spec."""
    if season_window is None:
        return None
    if isinstance(season_window, tuple) and len(season_window) == 2:
        a, b = season_window
        return (a.date() if isinstance(a, dt.datetime) else a,
                b.date() if isinstance(b, dt.datetime) else b)
    if isinstance(season_window, str):
        if season_window.upper() in SEASONS:
            return ("season", season_window.upper())  # type: ignore[return-value]
        return parse_window(season_window)
    raise BadInput(f"bad season window {season_window!r}")


def _in_season(day: dt.date, window: Any) -> bool:
    if window is None:
        return True
    if window[0] == "season":
        return day.month in SEASONS[window[1]]
    return window[0] <= day < window[1]


def form_pairs(products: Sequence[S1Product], policy: str = "sequential",
               max_dt: int | None = None, season_window: object = None) -> list[S1Pair]:
    """Pairs (reference earlier than secondary) by policy; products of different days only."""
    if policy not in POLICIES:
        raise BadInput(f"unknown pair policy {policy!r}: use one of {', '.join(POLICIES)}")
    if max_dt is not None and max_dt < 1:
        raise BadInput(f"--max-dt must be at least 1 day, not {max_dt}")
    window = _season_window(season_window)
    groups: dict[tuple, list[S1Product]] = {}
    for p in products:
        groups.setdefault(_group_key(p), []).append(p)
    pairs: list[S1Pair] = []
    for prods in groups.values():
        prods = sorted(prods, key=lambda p: (p.start, p.name))
        for i, a in enumerate(prods):
            later = [b for b in prods[i + 1:] if b.date > a.date and _compatible(a, b)]
            if policy == "sequential":
                limit = max_dt if max_dt is not None else SEQUENTIAL_MAX_DT
                if not later:
                    continue
                first = min(b.date for b in later)
                for b in later:
                    if b.date == first and (b.date - a.date).days <= limit and \
                            _in_season(a.date + (b.date - a.date) / 2, window):
                        pairs.append(S1Pair(a, b))
            else:
                for b in later:
                    d = (b.date - a.date).days
                    if d not in SEASONAL_DT or (max_dt is not None and d > max_dt):
                        continue
                    if _in_season(a.date + dt.timedelta(days=d / 2), window):
                        pairs.append(S1Pair(a, b))
    pairs.sort(key=lambda q: (q.reference.start, q.secondary.start, q.reference.name))
    return pairs


def pair_footprint(pair: S1Pair) -> shapely.Geometry:
    """Where both products image the common bursts (per-burst footprints when known)."""
    ra = pair.reference.extra.get("burst_footprints") or {}
    sa = pair.secondary.extra.get("burst_footprints") or {}
    common = common_bursts(pair.reference, pair.secondary)
    if ra and sa and common and all(b in ra and b in sa for b in common):
        return shapely.union_all([ra[b].intersection(sa[b]) for b in common])
    return pair.reference.footprint.intersection(pair.secondary.footprint)


def tiles_for_pair(pair: S1Pair, tiles: Sequence[TileLike]) -> tuple[str, ...]:
    """Ids of the tiles the pair fully covers (inside both products' footprints)."""
    fp = pair_footprint(pair)
    if fp.is_empty:
        return ()
    if not tiles:
        return ()
    tree = shapely.STRtree([t.polygon for t in tiles])
    hits = sorted(int(i) for i in tree.query(fp, predicate="covers"))
    return tuple(tiles[i].id for i in hits)
