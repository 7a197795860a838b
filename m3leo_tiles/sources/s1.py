"""Sentinel-1 from a local SAFE archive: s1grd, s1coh and s1ifg computed by m3leo_tiles.sar.

The archive is a directory of IW SLC products (`.SAFE` folders or `.zip`). Pair modalities
get their periods from the archive: each interferometric pair found (sequential by default:
consecutive acquisitions of one track) becomes a period labelled `YYYYMMDD_YYYYMMDD`, and
one work unit per pair holds every requested tile the pair's footprints cover. `s1grd`
(seasonal) composites the mean linear sigma0 of all products of the period, per tile.

Failures are per unit and explicit: pairs from different tracks/polarisations/bursts, products
that do not overlap, a missing calibration file, a corrupt zip or truncated TIFF, a DEM that
does not reach a tile -> TileResult(status="failed", error=...); the rest of the run goes on.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import shapely
from xarray_sentinel import esa_safe

from ..errors import BadInput, PermanentError
from ..modalities import Modality
from ..periods import STATIC, Period, period_from_label
from .base import Source, TileRef, TileResult, WorkUnit
from .s1types import S1Pair, S1Product

PAIR_MODALITIES = ("s1coh", "s1ifg")


def _track_label(p: S1Product) -> str:
    return f"t{p.relative_orbit:03d}{p.pass_direction[:1]}"


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
    """s1grd / s1coh / s1ifg from local IW SLC products, processed on the tile grids."""

    name = "archive"
    modalities = ("s1grd", "s1coh", "s1ifg", "s1geom")
    version = "sar-1"  # bump when the processor's numbers change (the runner re-does stale)

    def __init__(self, archive: str, dem: str | None = None, dem_datum: str = "ellipsoid",
                 orbits: str | None = None, pairs: str = "sequential", max_dt: int | None = None,
                 slc_res: float = 10.0, backscatter: str = "sigma0", **_: object) -> None:
        if not archive or not Path(archive).is_dir():
            raise BadInput(f"S1 archive {archive!r} is not a directory")
        self.archive = str(archive)
        self.dem_path = dem
        self.dem_datum = dem_datum
        self.orbits = orbits
        self.pair_policy = pairs
        self.max_dt = max_dt
        self.slc_res = float(slc_res)
        if backscatter not in ("sigma0", "gamma0", "beta0"):
            raise BadInput(f"backscatter must be sigma0, gamma0 or beta0, not {backscatter!r}")
        self.backscatter = backscatter
        self._products: list[S1Product] | None = None
        self._pairs: list[S1Pair] | None = None
        self._cache: tuple[tuple, dict] | None = None  # last pair's results (coh + ifg)
        self._dem = None

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

    def _dem_fn(self):
        if self._dem is None:
            if not self.dem_path:
                raise BadInput("the S1 archive source needs dem=<GeoTIFF>")
            from ..sar.dem import GeoTiffDem

            self._dem = GeoTiffDem(self.dem_path, self.dem_datum)
        return self._dem

    @staticmethod
    def _covers(tile: TileRef, fps: Sequence[shapely.Geometry]) -> bool:
        return all(fp.intersects(tile.polygon) for fp in fps)

    # --- Source interface -----------------------------------------------------------------
    def periods(self, modality: Modality, request: Sequence[Period],
                tiles: Sequence[TileRef]) -> list[Period]:
        if modality.name == "s1geom":  # one static layer per track the tiles see
            tracks = {}
            for p in self.products():
                if tiles and not any(p.footprint.intersects(t.polygon) for t in tiles):
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
            fps = (pair.reference.footprint, pair.secondary.footprint)
            if tiles and not any(self._covers(t, fps) for t in tiles):
                continue
            out[pair.label] = period_from_label(pair.label)
        return [out[k] for k in sorted(out)]

    def plan(self, modality: Modality, period: Period, tiles: Sequence[TileRef]) -> list[WorkUnit]:
        if modality.name in PAIR_MODALITIES:
            units = []
            for pair in self.pairs():
                if pair.label != period.label:
                    continue
                fps = (pair.reference.footprint, pair.secondary.footprint)
                sel = tuple(t.id for t in tiles if self._covers(t, fps))
                if sel:
                    units.append(WorkUnit(
                        modality.name, period.label, sel, key=pair.label,
                        items=(pair.reference.name, pair.secondary.name),
                        payload={"reference": pair.reference.path,
                                 "secondary": pair.secondary.path}))
            return units
        if modality.name == "s1geom":
            prods = [p for p in self.products() if _track_label(p) == period.label][:1]
        else:
            prods = [p for p in self.products() if period.contains(p.date)]
        sel = tuple(t.id for t in tiles if any(p.footprint.intersects(t.polygon) for p in prods))
        if not sel:
            return []
        return [WorkUnit(modality.name, period.label, sel, key=period.label,
                         items=tuple(p.name for p in prods),
                         payload={"products": [p.path for p in prods]})]

    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        from ..sar.safe import SafeError

        refs = [tiles[t] for t in unit.tiles]
        pols = tuple(modality.bands)
        try:
            if modality.name in PAIR_MODALITIES:
                results, errors = self._pair(unit, refs)
                key = {"s1coh": "s1coh", "s1ifg": "s1ifg"}[modality.name]
                for t in unit.tiles:
                    if t in errors:
                        yield TileResult(t, "failed", error=errors[t], items=unit.items)
                    elif t in results and np.isfinite(results[t][key]).any():
                        yield TileResult(t, "done", data=results[t][key].astype(modality.dtype),
                                         items=unit.items)
                    else:
                        yield TileResult(t, "nodata", items=unit.items)
                return
            if modality.name == "s1geom":
                yield from self._geom(unit, refs, modality)
                return
            yield from self._grd(unit, refs, modality, pols)
        except SafeError as e:  # a damaged product fails this unit's tiles, as before
            for t in unit.tiles:
                yield TileResult(t, "failed", error=f"SafeError: {e}", items=unit.items)
        except (BadInput, PermanentError):
            raise
        except Exception as e:  # a clear, per-unit error; the run goes on
            msg = f"{type(e).__name__}: {e}"
            for t in unit.tiles:
                yield TileResult(t, "failed", error=msg, items=unit.items)

    def _pair(self, unit: WorkUnit, refs: list[TileRef]):
        from ..sar.pipeline import process_pair

        key = (unit.payload["reference"], unit.payload["secondary"], unit.tiles)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        errors: dict[str, str] = {}
        from ..modalities import get_modality

        res = process_pair(unit.payload["reference"], unit.payload["secondary"], refs,
                           self._dem_fn(), polarisations=get_modality("s1coh").bands,
                           coh_res=get_modality("s1coh").res, ifg_res=get_modality("s1ifg").res,
                           slc_res=self.slc_res, orbit_dir=self.orbits, errors=errors,
                           backscatter=self.backscatter, layers=("s1coh", "s1ifg"))
        self._cache = (key, (res, errors))
        return res, errors

    def _geom(self, unit: WorkUnit, refs: list[TileRef], modality: Modality
              ) -> Iterator[TileResult]:
        from ..sar.trackgeom import track_geometry

        res = track_geometry(unit.payload["products"][0], refs, self._dem_fn(),
                             orbit_dir=self.orbits)
        for t in unit.tiles:
            g = res.get(t)
            if g is not None and np.isfinite(g[0]).any():
                yield TileResult(t, "done", data=g.astype(modality.dtype), items=unit.items)
            else:
                yield TileResult(t, "nodata", items=unit.items)

    def _grd(self, unit: WorkUnit, refs: list[TileRef], modality: Modality,
             pols: tuple[str, ...]) -> Iterator[TileResult]:
        from ..sar.pipeline import process_grd

        acc: dict[str, np.ndarray] = {}
        cnt: dict[str, np.ndarray] = {}
        errors: dict[str, str] = {}
        for path in unit.payload["products"]:
            res = process_grd(path, refs, self._dem_fn(), polarisations=pols,
                              orbit_dir=self.orbits, kind=self.backscatter, errors=errors)
            for tid, db in res.items():
                lin = np.power(10.0, db.astype(np.float64) / 10)
                ok = np.isfinite(lin)
                acc.setdefault(tid, np.zeros(lin.shape))
                cnt.setdefault(tid, np.zeros(lin.shape))
                acc[tid][ok] += lin[ok]
                cnt[tid][ok] += 1
        for t in unit.tiles:
            if t in errors and t not in acc:
                yield TileResult(t, "failed", error=errors[t], items=unit.items)
            elif t in acc and (cnt[t] > 0).any():
                with np.errstate(divide="ignore", invalid="ignore"):
                    mean = acc[t] / cnt[t]
                    db = np.where(cnt[t] > 0, 10 * np.log10(np.maximum(mean, 1e-10)), np.nan)
                yield TileResult(t, "done", data=db.astype(modality.dtype), items=unit.items)
            else:
                yield TileResult(t, "nodata", items=unit.items)

    def __getstate__(self) -> dict:
        """Workers get the options and the scanned archive, not cached arrays or handles."""
        d = dict(self.__dict__)
        d["_cache"] = None
        d["_dem"] = None
        return d

    def close(self) -> None:
        self._cache = None
