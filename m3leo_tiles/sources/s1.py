"""Sentinel-1 from a local SAFE archive: s1grd, s1coh, s1ifg, s1geom computed by m3leo_tiles.sar.

The archive is a directory of IW SLC products (`.SAFE` folders or `.zip`). Pair modalities
get their periods from the archive: each interferometric pair found (sequential by default:
consecutive acquisitions of one track) becomes a period labelled `YYYYMMDD_YYYYMMDD`.
Planning and reading are shared with the ASF source: bounded block units (s1blocks.py), each
computing every requested S1 layer from the same resampling (s1work.py); `s1grd` is per pass.

Failures are per tile and layer and explicit: pairs from different tracks/polarisations/bursts,
products that do not overlap, a missing calibration file, a corrupt zip or truncated TIFF, a
DEM that does not reach a tile -> TileResult(status="failed", error=...); the run goes on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import shapely

from ..errors import BadInput, PermanentError
from ..modalities import Modality
from ..periods import STATIC, DateWindow, Period, period_from_label
from ..s1.archive import scan_archive
from ..s1.pairing import form_pairs
from ..s1.products import S1Pair, S1Product
from .base import PlanRequest, Source, TileRef, TileResult, WorkUnit, concrete
from .s1blocks import BLOCK, PAIR_LAYERS, S1_LAYERS, plan_blocks, track_label, unit_work
from .s1work import ProcessorOptions, read_unit


def _track_label(p: S1Product) -> str:
    return track_label(p.relative_orbit, p.pass_direction)


class S1ArchiveSource(Source):
    """Every S1 layer from local IW SLC products, processed on the tile grids in block units."""

    name = "archive"
    modalities = S1_LAYERS
    version = "sar-2"  # bump when the processor's numbers change (the runner re-does stale)

    def __init__(self, archive: str, dem: str | None = None, dem_datum: str = "ellipsoid",
                 orbits: str | None = None, pairs: str = "sequential", max_dt: int | None = None,
                 slc_res: float = 10.0, backscatter: str = "gamma0-rtc", block: int = BLOCK,
                 **_: object) -> None:
        if not archive or not Path(archive).is_dir():
            raise BadInput(f"S1 archive {archive!r} is not a directory")
        self.archive = str(archive)
        self.orbits = orbits
        self.pair_policy = pairs
        self.max_dt = max_dt
        self.block = int(block)
        self.options = ProcessorOptions(dem, dem_datum, float(slc_res), backscatter)
        self._products: list[S1Product] | None = None
        self._pairs: list[S1Pair] | None = None

    # --- archive --------------------------------------------------------------------------
    def products(self) -> list[S1Product]:
        if self._products is None:
            self._products = list(scan_archive(self.archive))
        return self._products

    def pairs(self) -> list[S1Pair]:
        if self._pairs is None:
            self._pairs = list(form_pairs(self.products(), policy=self.pair_policy,
                                          max_dt=self.max_dt))
        return self._pairs

    # --- Source interface -----------------------------------------------------------------
    def periods(self, modality: Modality, request: Sequence[DateWindow],
                tiles: Sequence[TileRef]) -> list[Period]:
        tree = shapely.STRtree([t.polygon for t in tiles]) if tiles else None  # once per call
        if modality.name == "s1geom":  # one static layer per track the tiles see
            tracks: dict[str, Period] = {}
            for p in self.products():
                if tree is not None and not len(tree.query(p.footprint, predicate="intersects")):
                    continue
                label = _track_label(p)
                tracks.setdefault(label, Period(STATIC.start, STATIC.end, label, "static"))
            return [tracks[k] for k in sorted(tracks)]
        if modality.name not in PAIR_LAYERS:
            return concrete(self.name, modality, request)
        out: dict[str, Period] = {}
        for pair in self.pairs():
            inside = any(r.contains(pair.reference.date) and r.contains(pair.secondary.date)
                         for r in request)
            if not inside:
                continue
            common = pair.reference.footprint.intersection(pair.secondary.footprint)
            if tree is not None and not len(tree.query(common, predicate="covers")):
                continue  # no tile inside both footprints
            out[pair.label] = period_from_label(pair.label)
        return [out[k] for k in sorted(out)]

    def plan(self, modality: Modality, period: Period, tiles: Sequence[TileRef]) -> list[WorkUnit]:
        return self.plan_all([PlanRequest(modality, period, tiles)])

    def plan_all(self, requests: Sequence[PlanRequest]) -> list[WorkUnit]:
        """Block units holding every requested S1 layer (see s1blocks.py)."""
        return plan_blocks(requests, self.products(), self.pairs(), self.block)

    def check(self) -> None:
        """Called by fetch before any work."""
        self.options.check(self.name)

    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        work = unit_work(unit)
        missing = [p.name for p in work.products if not p.path]
        if missing:  # the archive plans only products it found on disk
            raise PermanentError(f"{missing[0]}: the archive plan has no path for it")
        paths = [str(p.path) for p in work.products]
        yield from read_unit(unit, tiles, paths, self.options.processing(self.orbits))

    def __getstate__(self) -> dict:
        """Workers get the options; each unit carries the products it reads."""
        d = dict(self.__dict__)
        d["_products"] = None
        d["_pairs"] = None
        return d
