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

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import shapely
from xarray_sentinel import esa_safe

from ..errors import BadInput
from ..modalities import Modality
from ..periods import STATIC, Period, period_from_label
from .base import PlanRequest, Source, TileRef, TileResult, WorkUnit
from .s1blocks import BLOCK, S1_LAYERS, plan_blocks, track_label
from .s1types import S1Pair, S1Product
from .s1work import ProcessorOptions, read_unit

PAIR_MODALITIES = ("s1coh", "s1ifg")


def _track_label(p: S1Product) -> str:
    return track_label(p.relative_orbit, p.pass_direction)


def _footprint(product: str) -> shapely.Geometry:
    """The manifest's footprint polygon (lon/lat), via xarray-sentinel's SAFE helpers."""
    from ..sar.safe import _open_fs

    fs, root, _ = _open_fs(product)
    with fs.open(f"{root}/manifest.safe") as f:
        tree = ET.parse(f).getroot()
    coords = [[float(v) for v in tok.split(",")]
              for tok in esa_safe.findtext(tree, ".//gml:coordinates").split()]
    return shapely.Polygon([(lon, lat) for lat, lon in coords])


def scan_archive_minimal(archive: str | Path) -> list[S1Product]:
    """Every readable IW SLC in a directory (private fallback for the ASF archive scanner)."""
    from ..sar.safe import SafeError, product_attrs

    out = []
    for p in sorted(Path(archive).iterdir()):
        if not (p.suffix.lower() == ".zip" or p.suffix == ".SAFE"):
            continue
        try:
            a = product_attrs(p)
            fp = _footprint(str(p))
        except (SafeError, OSError, ValueError, KeyError):
            continue
        if a.get("product_type") != "SLC" or a.get("mode") != "IW":
            continue
        name = p.name.removesuffix(".zip").removesuffix(".SAFE")
        out.append(S1Product(
            name=name, platform=f"S1{a.get('number', '')}",
            start=dt.datetime.fromisoformat(a["start_time"]),
            stop=dt.datetime.fromisoformat(a["stop_time"]),
            relative_orbit=int(a["relative_orbit_number"]),
            absolute_orbit=int(a["orbit_number"]),
            pass_direction=str(a["pass"]).upper(),
            polarisations=tuple(a.get("transmitter_receiver_polarisations", ())),
            footprint=fp, path=str(p)))
    return out


def form_pairs_minimal(products: Sequence[S1Product], policy: str = "sequential",
                       max_dt: int | None = None) -> list[S1Pair]:
    """Consecutive acquisitions of the same track and pass whose footprints overlap."""
    if policy != "sequential":
        raise BadInput(f"pair policy {policy!r} is not supported by the archive fallback")
    groups: dict[tuple, list[S1Product]] = {}
    for p in products:
        groups.setdefault((p.relative_orbit, p.pass_direction), []).append(p)
    pairs = []
    for prods in groups.values():
        prods = sorted(prods, key=lambda p: p.start)
        for a, b in zip(prods, prods[1:], strict=False):
            if b.date <= a.date or not a.footprint.intersects(b.footprint):
                continue
            if max_dt is not None and (b.date - a.date).days > max_dt:
                continue
            pairs.append(S1Pair(a, b))
    return pairs


def _scanner():
    """The ASF engineer's archive scanner and pairing when present, else the fallbacks."""
    try:
        from .asf.archive import scan_archive
        from .asf.pairing import form_pairs

        return scan_archive, form_pairs
    except ImportError:
        return scan_archive_minimal, form_pairs_minimal


class S1ArchiveSource(Source):
    """Every S1 layer from local IW SLC products, processed on the tile grids in block units."""

    name = "archive"
    modalities = S1_LAYERS
    version = "sar-1"  # bump when the processor's numbers change (the runner re-does stale)

    def __init__(self, archive: str, dem: str | None = None, dem_datum: str = "ellipsoid",
                 orbits: str | None = None, pairs: str = "sequential", max_dt: int | None = None,
                 slc_res: float = 10.0, backscatter: str = "sigma0", block: int = BLOCK,
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
            scan, _ = _scanner()
            self._products = list(scan(self.archive))
        return self._products

    def pairs(self) -> list[S1Pair]:
        if self._pairs is None:
            _, form = _scanner()
            self._pairs = list(form(self.products(), policy=self.pair_policy,
                                    max_dt=self.max_dt))
        return self._pairs

    # --- Source interface -----------------------------------------------------------------
    def periods(self, modality: Modality, request: Sequence[Period],
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
        if modality.name not in PAIR_MODALITIES:
            return list(request)
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
        work = unit.payload["s1"]
        paths = [p.path for p in work.products]
        yield from read_unit(unit, tiles, paths, self.options.processing(self.orbits))

    def __getstate__(self) -> dict:
        """Workers get the options; each unit carries the products it reads."""
        d = dict(self.__dict__)
        d["_products"] = None
        d["_pairs"] = None
        return d
