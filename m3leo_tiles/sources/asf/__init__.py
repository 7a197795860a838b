"""Sentinel-1 IW SLC pairs from ASF (or a local archive), processed by m3leo_tiles.sar.

`AsfSource` turns a request into interferometric pairs (periods labelled YYYYMMDD_YYYYMMDD),
one work unit per pair holding every requested tile the pair fully covers, and at read time
downloads both products into a shared cache before handing them to the archive source's
SAR processor. With `archive=DIR` nothing touches the network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import shapely

from ...errors import BadInput
from ...modalities import Modality
from ...periods import Period, period_from_label
from ..base import Source, TileRef, TileResult, WorkUnit
from ..s1types import S1Pair, S1Product
from .pairing import POLICIES, SEASONAL_DT, form_pairs, tiles_for_pair

log = logging.getLogger(__name__)

PAIR_MODALITIES = ("s1coh", "s1ifg")


def product_record(p: S1Product) -> dict:
    """What a worker needs to fetch a product (picklable, no geometry)."""
    return {"name": p.name, "url": p.url, "path": p.path, "size": p.size, "md5": p.md5,
            "platform": p.platform, "start": p.start.isoformat(), "stop": p.stop.isoformat()}


def unit_key(pair: S1Pair) -> str:
    """The pair label, plus the burst for burst pairs (several bursts share one date pair)."""
    common = sorted(set(pair.reference.burst_ids) & set(pair.secondary.burst_ids))
    if len(pair.reference.burst_ids) == 1 and common:
        return f"{pair.label}-{common[0]}"
    return pair.label


class AsfSource(Source):
    """s1coh / s1ifg from ASF IW SLC (or burst) pairs, or from a local SAFE archive."""

    name = "asf"
    modalities = PAIR_MODALITIES
    version = "asf-1"

    def __init__(self, cache: str | None = None, archive: str | None = None,
                 pairs: str = "sequential", max_dt: int | None = None, burst: bool = False,
                 host: str | None = None, orbits: str | None = None, season: str | None = None,
                 cache_gb: float | None = None, max_downloads: int = 2,
                 dem: str | None = None, **processor_options: object) -> None:
        if pairs not in POLICIES:
            raise BadInput(f"unknown pair policy {pairs!r}: use one of {', '.join(POLICIES)}")
        if archive is not None and not Path(archive).is_dir():
            raise BadInput(f"S1 archive {archive!r} is not a directory")
        self.cache = str(cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                         / "m3leo-tiles" / "asf")
        self.archive = archive
        self.pair_policy = pairs
        self.max_dt = int(max_dt) if max_dt is not None else None
        self.burst = bool(burst)
        self.host = host
        self.orbits = orbits
        self.season = season
        self.cache_bytes = int(float(cache_gb) * 2**30) if cache_gb else None
        self.max_downloads = int(max_downloads)
        self.dem = dem
        self.processor_options = dict(processor_options)
        self._pairs: list[S1Pair] | None = None
        self._procs: dict[str, Source] = {}  # processors by directory (keep their pair cache)
        self.skipped: list[tuple[str, str]] = []

    # --- search and pairing -----------------------------------------------------------
    def products(self, aoi: shapely.Geometry | None, start, end) -> list[S1Product]:
        """Archive products, or ASF search results for the AOI and window."""
        if self.archive:
            from .archive import scan_archive

            found = scan_archive(self.archive)
            self.skipped = list(found.skipped)
            return [p for p in found if start <= p.date < end and
                    (aoi is None or p.footprint.intersects(aoi))]
        if aoi is None:
            raise BadInput("an ASF search needs tiles or an AOI")
        from .search import search_products

        return search_products(aoi, start, end, burst=self.burst, host=self.host)

    def find_pairs(self, request: Sequence[Period], tiles: Sequence[TileRef],
                   aoi: shapely.Geometry | None = None) -> list[S1Pair]:
        """Pairs inside the request whose common footprint fully covers at least one tile."""
        if not request:
            return []
        start, end = min(r.start for r in request), max(r.end for r in request)
        seasonal = self.pair_policy == "seasonal"
        if seasonal:  # GSSIC: the mid-date is in the period, the dates may lie outside
            import datetime as dt

            half = dt.timedelta(days=max(SEASONAL_DT) // 2)
            start, end = start - half, end + half
        if aoi is None and tiles:  # many tiles: their hull is search area enough
            polys = [t.polygon for t in tiles]
            aoi = shapely.union_all(polys) if len(polys) <= 2000 else \
                shapely.MultiPolygon(list(shapely.get_parts(polys))).convex_hull
        prods = self.products(aoi, start, end)
        out = []
        for pair in form_pairs(prods, self.pair_policy, self.max_dt, self.season):
            mid = pair.reference.date + (pair.secondary.date - pair.reference.date) / 2
            inside = any(r.contains(mid) if seasonal else
                         r.contains(pair.reference.date) and r.contains(pair.secondary.date)
                         for r in request)
            if not inside:
                continue
            covered = tiles_for_pair(pair, tiles) if tiles else ()
            if tiles and not covered:
                continue
            out.append(S1Pair(pair.reference, pair.secondary, covered))
        self._pairs = out
        return out

    # --- Source interface -------------------------------------------------------------
    def periods(self, modality: Modality, request: Sequence[Period],
                tiles: Sequence[TileRef]) -> list[Period]:
        if modality.name not in PAIR_MODALITIES:
            return list(request)
        labels = sorted({p.label for p in self.find_pairs(request, tiles)})
        return [period_from_label(lb) for lb in labels]

    def plan(self, modality: Modality, period: Period, tiles: Sequence[TileRef]) -> list[WorkUnit]:
        if self._pairs is None:
            self.find_pairs([period], tiles)
        wanted = {t.id for t in tiles}
        units = []
        for pair in self._pairs or []:
            if pair.label != period.label:
                continue
            sel = tuple(t for t in (pair.tiles or tiles_for_pair(pair, tiles)) if t in wanted)
            if not sel:
                continue
            units.append(WorkUnit(
                modality.name, period.label, sel, key=unit_key(pair),
                items=(pair.reference.name, pair.secondary.name),
                payload={"reference": product_record(pair.reference),
                         "secondary": product_record(pair.secondary), "tiles": list(sel)}))
        return units

    # --- downloads and processing -----------------------------------------------------
    def local_paths(self, unit: WorkUnit) -> tuple[str, str]:
        """Both products on disk: archive paths as they are, else fetched into the cache."""
        recs = [unit.payload["reference"], unit.payload["secondary"]]
        if all(r.get("path") and Path(r["path"]).exists() for r in recs):
            return recs[0]["path"], recs[1]["path"]
        import datetime as dt

        from .download import DownloadCache, fetch_all, make_session

        prods = [S1Product(r["name"], r["platform"], dt.datetime.fromisoformat(r["start"]),
                           dt.datetime.fromisoformat(r["stop"]), 0, 0, "", (),
                           shapely.Point(0, 0), url=r["url"], size=r["size"], md5=r["md5"])
                 for r in recs]
        cache = DownloadCache(self.cache, self.cache_bytes)
        paths = fetch_all(prods, cache, make_session(), max_workers=self.max_downloads)
        return str(paths[0]), str(paths[1])

    def _orbit_dir(self, unit: WorkUnit) -> str | None:
        """Where precise/restituted orbits are (fetched and cached if a fetcher is installed)."""
        import datetime as dt

        from .orbits import fetch_orbit, find_orbit

        d = self.orbits or str(Path(self.cache) / "orbits")
        for r in (unit.payload["reference"], unit.payload["secondary"]):
            p = S1Product(r["name"], r["platform"], dt.datetime.fromisoformat(r["start"]),
                          dt.datetime.fromisoformat(r["stop"]), 0, 0, "", (), shapely.Point(0, 0))
            if find_orbit(p, d) is None and not self.archive:
                fetch_orbit(p, d)
        return d if Path(d).is_dir() else None

    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        try:
            from ..s1 import S1ArchiveSource
        except ImportError as e:
            for t in unit.tiles:
                yield TileResult(t, "failed", items=unit.items,
                                 error=f"S1 processor unavailable ({e}); products were not fetched")
            return
        ref, sec = self.local_paths(unit)  # AuthError / TransientError go to the runner
        orbit_dir = self._orbit_dir(unit)
        key = f"{Path(ref).parent}|{orbit_dir}"
        proc = self._procs.get(key)
        if proc is None:  # one per directory: s1coh and s1ifg of a pair share one processing
            proc = self._procs[key] = S1ArchiveSource(
                archive=str(Path(ref).parent), dem=self.dem, orbits=orbit_dir,
                pairs=self.pair_policy, max_dt=self.max_dt, **self.processor_options)
        local = WorkUnit(unit.modality, unit.period, unit.tiles, key=unit.key, items=unit.items,
                         payload={"reference": ref, "secondary": sec})
        yield from proc.read(local, tiles, modality, period)

    def __getstate__(self) -> dict:
        """Workers get options and found pairs, not processors holding arrays."""
        d = dict(self.__dict__)
        d["_procs"] = {}
        return d

    def close(self) -> None:
        for proc in self._procs.values():
            proc.close()
        self._procs = {}


__all__ = ["AsfSource", "form_pairs", "tiles_for_pair"]
