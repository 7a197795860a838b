"""Sentinel-1 from ASF (or a local archive): every S1 layer, processed by m3leo_tiles.sar.

`AsfSource` searches CMR through `asf_search` for the run's IW SLC frames over the whole
window, pairs them (periods of s1coh/s1ifg are pair labels YYYYMMDD_YYYYMMDD), and plans the
same bounded block units as the archive source (sources/s1blocks.py) from the frames'
footprints: a region-season is a few thousand frames, where its bursts are ~100k granules
that asf_search would parse at ~4 ms each. Bursts by default (issue 12 item 3: a few hundred
MB per burst, not 4-8 GB per SLC; `burst=false` for full SLCs): the frames are marked to be
fetched as bursts, and at read time, in the worker, ONE CMR burst search per unit (the hull
of its tiles, its frames' time span) finds each frame's bursts there (UMM InputGranules
name their SLC); they are downloaded into the shared, verified cache and assembled into one
SAFE per frame (a run of consecutive bursts per swath, `s1.bursts.assemble_safe`), handed to
the same processor (sources/s1work.py) as SLC zips are. A frame CMR lists no burst of fails
only the layers that use it. With `archive=DIR` nothing touches the network.
`gunw` (ARIA GUNW products, not SLCs) is searched, planned and read by gunw.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import shapely

from ...errors import BadInput
from ...modalities import Modality
from ...periods import STATIC, DateWindow, Period, period_from_label
from ...s1.pairing import POLICIES, SEASONAL_DT, form_pairs, pair_footprint, tiles_for_pair
from ...s1.products import S1Pair, S1Product
from ..base import PlanRequest, Source, TileRef, TileResult, WorkUnit, concrete
from ..s1blocks import (
    BLOCK,
    PAIR_LAYERS,
    S1_LAYERS,
    plan_blocks,
    track_label,
    unit_work,
)
from ..s1work import ProcessorOptions, read_unit
from .fetching import AsfDownloads, UnitProducts, _as_product

log = logging.getLogger(__name__)

#: the search window of s1geom when the run asks for no dated S1 layer: one full repeat cycle
GEOM_DAYS = 24
#: s1cohs of a season reads dates up to half the longest GSSIC baseline outside it
SEASONAL_PAD = max(SEASONAL_DT) // 2


def _flag(value: object, name: str) -> bool:
    """A yes/no option as Python or as `--source-opt` text."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise BadInput(f"{name} must be true or false, not {value!r}")


class AsfSource(AsfDownloads, Source):
    """Every S1 layer from ASF IW SLC (or burst) products, or from a local SAFE archive."""

    name = "asf"
    modalities = S1_LAYERS + ("gunw",)
    version = "asf-2"  # gamma0-rtc by default

    def __init__(self, cache: str | None = None, archive: str | None = None,
                 pairs: str = "sequential", max_dt: int | None = None, burst: bool | str = True,
                 host: str | None = None, orbits: str | None = None, season: str | None = None,
                 cache_gb: float | None = None, max_downloads: int = 2,
                 dem: str | None = None, dem_datum: str = "ellipsoid", slc_res: float = 10.0,
                 backscatter: str = "gamma0-rtc", block: int = BLOCK,
                 pair_bursts: bool | str = False, **_: object) -> None:
        if pairs not in POLICIES:
            raise BadInput(f"unknown pair policy {pairs!r}: use one of {', '.join(POLICIES)}")
        if archive is not None and not Path(archive).is_dir():
            raise BadInput(f"S1 archive {archive!r} is not a directory")
        self.cache = str(cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                         / "m3leo-tiles" / "asf")
        self.archive = archive
        self.pair_policy = pairs
        self.max_dt = int(max_dt) if max_dt is not None else None
        self.burst = _flag(burst, "asf.burst")  # bursts by default (issue 12 item 3)
        self.pair_bursts = _flag(pair_bursts, "asf.pair_bursts")
        self.host = host
        self.orbits = orbits
        self.season = season
        self.cache_bytes = int(float(cache_gb) * 2**30) if cache_gb else None
        self.max_downloads = int(max_downloads)
        self.block = int(block)
        self.options = ProcessorOptions(dem, dem_datum, float(slc_res), backscatter)
        self._pairs: list[S1Pair] | None = None
        self._pairs_memo: tuple | None = None
        self._found: dict[tuple, list[S1Product]] = {}  # (aoi wkb, start, end) -> products
        self._window: tuple[dt.date, dt.date] | None = None  # the dated layers' search window
        self._gunw: dict[tuple, list] = {}  # (aoi wkb, start, end) -> GUNW products
        self.skipped: list[tuple[str, str]] = []

    # --- search and pairing -----------------------------------------------------------
    def products(self, aoi: shapely.Geometry | None, start, end) -> list[S1Product]:
        """Archive products, or ASF search results for the AOI and window (cached per run)."""
        key = (None if aoi is None else shapely.to_wkb(aoi), start, end)
        if key in self._found:
            return self._found[key]
        if self.archive:
            from ...s1.archive import scan_archive

            found = scan_archive(self.archive)
            self.skipped = list(found.skipped)
            out = [p for p in found if start <= p.date < end and
                   (aoi is None or p.footprint.intersects(aoi))]
        else:
            if aoi is None:
                raise BadInput("an ASF search needs tiles or an AOI")
            from ...s1.search import search_products

            # frames plan and pair; in burst mode each is fetched as its bursts over a unit.
            # `pair_bursts` pairs single bursts instead (`s1 search --burst`): one CMR record
            # per burst and polarisation, so ~4 ms each in the client: for small areas only
            out = search_products(aoi, start, end, burst=self.pair_bursts, host=self.host)
            if self.burst and not self.pair_bursts:
                out = [dataclasses.replace(p, extra={**p.extra, "as_bursts": True})
                       for p in out]
        self._found[key] = out
        return out

    @staticmethod
    def _aoi(tiles: Sequence[TileRef]) -> shapely.Geometry | None:
        """The tiles' union, or their hull when there are many (search area enough)."""
        if not tiles:
            return None
        polys = [t.polygon for t in tiles]
        return shapely.union_all(polys) if len(polys) <= 2000 else \
            shapely.MultiPolygon(list(shapely.get_parts(polys))).convex_hull

    def _pair_window(self, request: Sequence[DateWindow]) -> tuple[dt.date, dt.date]:
        start, end = min(r.start for r in request), max(r.end for r in request)
        if self.pair_policy == "seasonal":  # GSSIC: mid-date in the period, dates may lie out
            half = dt.timedelta(days=max(SEASONAL_DT) // 2)
            start, end = start - half, end + half
        return start, end

    def find_pairs(self, request: Sequence[DateWindow], tiles: Sequence[TileRef],
                   aoi: shapely.Geometry | None = None, exact: bool = True) -> list[S1Pair]:
        """Pairs inside the request whose common footprint fully covers at least one tile.

        `exact=False` (planning a region) keeps a pair when a tile centre lies in its common
        footprint and leaves `S1Pair.tiles` empty: the block planner decides the tiles.
        """
        if not request:
            return []
        memo = (tuple((r.start, r.end) for r in request), id(tiles), len(tiles), exact,
                None if aoi is None else shapely.to_wkb(aoi))
        if self._pairs is not None and self._pairs_memo == memo:
            return self._pairs
        start, end = self._pair_window(request)
        seasonal = self.pair_policy == "seasonal"
        prods = self.products(aoi if aoi is not None else self._aoi(tiles), start, end)
        out = []
        polys = np.array([t.polygon for t in tiles], dtype=object)
        tree = shapely.STRtree(polys) if tiles else None  # once, not per pair
        centres = shapely.get_coordinates(shapely.centroid(polys))
        for pair in form_pairs(prods, self.pair_policy, self.max_dt, self.season):
            mid = pair.reference.date + (pair.secondary.date - pair.reference.date) / 2
            inside = any(r.contains(mid) if seasonal else
                         r.contains(pair.reference.date) and r.contains(pair.secondary.date)
                         for r in request)
            if not inside:
                continue
            covered: tuple[str, ...] = ()
            if tree is not None:
                fp = pair_footprint(pair)
                if exact:
                    hits = np.sort(tree.query(fp, predicate="covers"))
                    covered = tuple(tiles[i].id for i in hits.tolist())
                    if not covered:
                        continue
                else:
                    near = tree.query(fp)
                    if not shapely.contains_xy(fp, centres[near, 0], centres[near, 1]).any():
                        continue
            out.append(S1Pair(pair.reference, pair.secondary, covered))
        self._pairs, self._pairs_memo = out, memo
        return out

    def _remember(self, start: dt.date, end: dt.date) -> None:
        w = self._window
        self._window = (start, end) if w is None else (min(w[0], start), max(w[1], end))

    def _geom_window(self) -> tuple[dt.date, dt.date]:
        if self._window is not None:
            return self._window
        end = dt.date.today()
        return end - dt.timedelta(days=GEOM_DAYS), end

    def gunw_products(self, request: Sequence[DateWindow], tiles: Sequence[TileRef]) -> list:
        """GUNW_STD products over the tiles with both dates in the request (one search per
        window and area, remembered for planning)."""
        from ...s1.gunw import search_gunw

        aoi = self._aoi(tiles)
        if aoi is None or not request:
            return []
        start, end = min(r.start for r in request), max(r.end for r in request)
        key = (shapely.to_wkb(aoi), start, end)
        if key not in self._gunw:
            self._gunw[key] = search_gunw(aoi, start, end, self.host)
        return [g for g in self._gunw[key]
                if any(r.contains(g.earlier) and r.contains(g.later) for r in request)]

    # --- Source interface -------------------------------------------------------------
    def periods(self, modality: Modality, request: Sequence[DateWindow],
                tiles: Sequence[TileRef]) -> list[Period]:
        if modality.name == "gunw":  # pair labels of the GUNW products there, earlier first
            labels = sorted({g.label for g in self.gunw_products(request, tiles)})
            return [period_from_label(lb) for lb in labels]
        if modality.name == "s1geom":  # one static layer per track over the tiles
            prods = self.products(self._aoi(tiles), *self._geom_window())
            labels = sorted({track_label(p.relative_orbit, p.pass_direction) for p in prods})
            return [Period(STATIC.start, STATIC.end, lb, "static") for lb in labels]
        if modality.name not in PAIR_LAYERS:
            if request:
                pad = dt.timedelta(days=SEASONAL_PAD if modality.name == "s1cohs" else 0)
                self._remember(min(r.start for r in request) - pad,
                               max(r.end for r in request) + pad)
            return concrete(self.name, modality, request)
        if request:
            self._remember(*self._pair_window(request))
        labels = sorted({p.label for p in self.find_pairs(request, tiles, exact=False)})
        return [period_from_label(lb) for lb in labels]

    def plan(self, modality: Modality, period: Period, tiles: Sequence[TileRef]) -> list[WorkUnit]:
        return self.plan_all([PlanRequest(modality, period, tiles)])

    def plan_all(self, requests: Sequence[PlanRequest]) -> list[WorkUnit]:
        """One search over the run's window, then the shared block planner."""
        gunw = [r for r in requests if r.modality.name == "gunw"]
        if gunw:
            from .gunw import plan_gunw

            rest = [r for r in requests if r.modality.name != "gunw"]
            units = plan_gunw(gunw, [g for r in gunw for g in self.gunw_products(
                [r.period], r.tiles) if g.label == r.period.label], self.block)
            return units + (self.plan_all(rest) if rest else [])
        if not requests:
            return []
        dated = [r.period for r in requests if r.period.kind != "static"]
        if dated:
            pad = dt.timedelta(days=SEASONAL_PAD if any(r.modality.name == "s1cohs"
                                                        for r in requests) else 0)
            start, end = min(p.start for p in dated) - pad, max(p.end for p in dated) + pad
            w = self._window  # the run's window from periods(): one search serves every layer
            if w is not None and w[0] <= start and end <= w[1]:
                start, end = w
        else:
            start, end = self._geom_window()
        lists = {id(r.tiles): r.tiles for r in requests}  # requests often share one list
        tiles = list({t.id: t for ts in lists.values() for t in ts}.values())
        aoi = self._aoi(tiles)
        if self._pairs is None and any(r.modality.name in PAIR_LAYERS for r in requests):
            self.find_pairs([r.period for r in requests if r.modality.name in PAIR_LAYERS],
                            tiles, aoi, exact=False)
        prods = {p.name: p for p in self.products(aoi, start, end)}
        for q in self._pairs or []:  # pair dates may lie outside (seasonal policy)
            prods.setdefault(q.reference.name, q.reference)
            prods.setdefault(q.secondary.name, q.secondary)
        ordered = sorted(prods.values(), key=lambda p: (p.start, p.name))
        return plan_blocks(requests, ordered, self._pairs or [], self.block)

    def footprints(self) -> dict[str, shapely.Geometry]:
        """Footprints of the products this source found (by name): the estimator cuts them
        into bursts (runner/inputs.py)."""
        out = {p.name: p.footprint for found in self._found.values() for p in found}
        for q in self._pairs or []:
            out.setdefault(q.reference.name, q.reference.footprint)
            out.setdefault(q.secondary.name, q.secondary.footprint)
        return out

    def check(self) -> None:
        """Called by fetch before any work."""
        self.options.check(self.name)

    def check_for(self, modality: str) -> None:
        """gunw reads products, it does not process SLCs: no DEM needed."""
        if modality != "gunw":
            self.check()

    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        if modality.name == "gunw":
            yield from self._read_gunw(unit, tiles)
            return
        work = unit_work(unit)
        records = work.products
        # AuthError / TransientError go to the runner; one product's failure fails its layers
        got = self.fetch_unit(records, [tiles[t] for t in unit.all_tiles], unit.hint)
        if got.unused:  # frames whose bursts miss every tile: they image none of them
            cover = {t: tuple(i for i in c if i not in got.unused) for t, c in work.cover.items()}
            unit = dataclasses.replace(unit, payload=dataclasses.replace(work, cover=cover))
        proc = self.options.processing(self._orbit_dir(
            [r for i, r in enumerate(records) if i not in got.failed and i not in got.unused]))
        failed = {records[i].name: why for i, why in got.failed.items()}
        for res in read_unit(unit, tiles, got.paths, proc):
            why = next((failed[n] for n in res.items if n in failed), None)
            yield res if why is None else dataclasses.replace(res, status="failed", data=None,
                                                              error=why)


    def __getstate__(self) -> dict:
        """Workers get options; each unit carries the products it reads."""
        d = dict(self.__dict__)
        d["_pairs"] = None
        d["_found"] = {}
        d["_gunw"] = {}
        return d


__all__ = ["AsfSource", "UnitProducts", "_as_product", "form_pairs", "tiles_for_pair"]
