"""Reading one Sentinel-1 block unit (s1blocks.py): tile by tile, every layer from one pass.

Shared by the archive and ASF sources: they differ only in how a unit's products are found
and made local. Per tile, each product pair runs once (`sar.pipeline.iter_pair`), giving
coherence, interferogram and the backscatter of both dates from one resampling; dates that
no pair of the unit covers get `process_grd`; `s1geom` one `track_geometry` per track. Only
per-tile accumulators are held, so memory does not grow with the number of tiles or dates.

`s1grd` is per pass (issue 13 item 1): for each pass, the mean of LINEAR power over the
period's acquisitions of that pass (tracks of one pass pooled by the same rule), in dB, and
the number of valid acquisitions per pixel. Products of one acquisition (slices, bursts) are
merged first-valid before averaging, so an overlap is not counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInput, TransientError
from ..grid.geobox import GridSpec
from .base import TileRef, TileResult, WorkUnit
from .s1blocks import S1Work

DemFn = Callable[[GridSpec], np.ndarray]
POLS = ("VV", "VH")
PASSES = ("asc", "des")
#: s1grd bands in store order
GRD_BANDS = ("VV_asc", "VH_asc", "VV_des", "VH_des", "count_asc", "count_des")


@dataclass(frozen=True)
class Processing:
    """Processor settings of a source (what the sar calls need besides the products)."""

    dem: DemFn
    orbits: str | None = None
    slc_res: float = 10.0
    backscatter: str = "sigma0"  # sigma0 | gamma0 | beta0 (the RTC option plugs in here)
    coh_res: float = 40.0
    ifg_res: float = 40.0


BACKSCATTER = ("sigma0", "gamma0", "beta0")
_DEMS: dict[tuple[str, str], DemFn] = {}  # per worker process: one open DEM per file


@dataclass(frozen=True)
class ProcessorOptions:
    """The processor options both S1 sources take (picklable: paths, not open files)."""

    dem: str | None = None
    dem_datum: str = "ellipsoid"
    slc_res: float = 10.0
    backscatter: str = "sigma0"

    def __post_init__(self) -> None:
        if self.backscatter not in BACKSCATTER:
            raise BadInput(f"backscatter must be {', '.join(BACKSCATTER)}, "
                           f"not {self.backscatter!r}")

    def check(self, source: str) -> None:
        """Before any work: the processor's DEM is given and exists (one clear error)."""
        if not self.dem:
            raise BadInput(f"source {source!r} needs a DEM to process S1: "
                           f"--source-opt {source}.dem=<GeoTIFF or VRT>")
        if "://" not in self.dem and not Path(self.dem).exists():
            raise BadInput(f"DEM {self.dem!r} does not exist")

    def processing(self, orbits: str | None) -> Processing:
        """Settings for one unit, with the DEM opened once per process."""
        if not self.dem:
            raise BadInput("the S1 processor needs dem=<GeoTIFF or VRT>")
        key = (self.dem, self.dem_datum)
        if key not in _DEMS:
            from ..sar.dem import GeoTiffDem

            _DEMS[key] = GeoTiffDem(self.dem, self.dem_datum)
        return Processing(_DEMS[key], orbits, float(self.slc_res), self.backscatter)


@dataclass
class TileInputs:
    """What one tile needs from the processor: product pairs, single dates, geometries."""

    pairs: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)  # backscatter of these product paths
    geoms: list[str] = field(default_factory=list)


@dataclass
class TileOutputs:
    """The processor's answers for one tile, each keyed by its input; errors likewise."""

    pairs: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict)
    dates: dict[str, np.ndarray] = field(default_factory=dict)  # path -> (npol, H, W) dB
    geoms: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[object, str] = field(default_factory=dict)


def compute_tile(tile: TileRef, inputs: TileInputs, proc: Processing) -> TileOutputs:
    """Every processor call for one tile, in one place.

    A pair gives its layers and the backscatter of both dates (layers s1grd_ref/s1grd_sec)
    from one resampling. The sar package's per-date stack API (each date resampled once per
    tile) replaces the body of this function; callers do not change.
    """
    from ..sar.pipeline import iter_pair, process_grd
    from ..sar.trackgeom import track_geometry

    out = TileOutputs()
    for ref, sec, layers in inputs.pairs:
        errors: dict[str, str] = {}
        try:
            for _, res in iter_pair(ref, sec, [tile], proc.dem, polarisations=POLS,
                                    coh_res=proc.coh_res, ifg_res=proc.ifg_res,
                                    slc_res=proc.slc_res, orbit_dir=proc.orbits, errors=errors,
                                    backscatter=proc.backscatter, layers=layers):
                out.pairs[(ref, sec)] = res
                if "s1grd_ref" in res:
                    out.dates[ref] = res["s1grd_ref"]
                if "s1grd_sec" in res:
                    out.dates[sec] = res["s1grd_sec"]
        except (BadInput, TransientError):  # the run's fault, not one product's
            raise
        except Exception as e:  # noqa: BLE001 - one bad product fails its layers, not the unit
            errors[tile.id] = f"{type(e).__name__}: {e}"
        if tile.id in errors:
            out.errors[(ref, sec)] = errors[tile.id]
    for path in inputs.dates:
        errors = {}
        try:
            res = process_grd(path, [tile], proc.dem, polarisations=POLS,
                              orbit_dir=proc.orbits, kind=proc.backscatter, errors=errors)
            if tile.id in res:
                out.dates[path] = res[tile.id]
        except (BadInput, TransientError):  # the run's fault, not one product's
            raise
        except Exception as e:  # noqa: BLE001
            errors[tile.id] = f"{type(e).__name__}: {e}"
        if tile.id in errors:
            out.errors[path] = errors[tile.id]
    for path in inputs.geoms:
        try:
            g = track_geometry(path, [tile], proc.dem, orbit_dir=proc.orbits).get(tile.id)
            if g is not None:
                out.geoms[path] = g
        except (BadInput, TransientError):  # the run's fault, not one product's
            raise
        except Exception as e:  # noqa: BLE001
            out.errors[("geom", path)] = f"{type(e).__name__}: {e}"
    return out


def _fill(acc: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    """First valid wins: NaN pixels of `acc` take `new`."""
    if acc is None:
        return new.copy()
    hole = ~np.isfinite(acc)
    acc[hole] = new[hole]
    return acc


def read_unit(unit: WorkUnit, tiles: Mapping[str, TileRef], paths: Sequence[str],
              proc: Processing) -> Iterator[TileResult]:
    """TileResults of every target of a block unit; `paths[i]` is product i on disk."""
    work: S1Work = unit.payload["s1"]
    wanted = {(t.modality, t.period): set(t.tiles) for t in unit.targets}
    for tid in unit.all_tiles:
        yield from _tile(tiles[tid], work, wanted, paths, proc)


def _tile(tile: TileRef, work: S1Work, wanted: dict[tuple[str, str], set[str]],
          paths: Sequence[str], proc: Processing) -> Iterator[TileResult]:
    tid = tile.id
    cov = set(work.cover.get(tid, ()))
    prods = work.products
    grd = [(lb, [i for i in ps if i in cov]) for lb, ps in work.grd
           if tid in wanted.get(("s1grd", lb), ())]
    need = {i for _, ps in grd for i in ps}
    inputs = TileInputs()
    claimed: set[int] = set()
    pair_plan = []  # (label, product pairs, asked layers)
    for pw in work.pairs:
        asked = [m for m in ("s1coh", "s1ifg") if tid in wanted.get((m, pw.label), ())]
        if tid not in pw.tiles or not asked:
            continue
        prs = [(i, j) for i, j in pw.products if i in cov and j in cov]
        pair_plan.append((pw.label, prs, asked))
        for i, j in prs:
            layers = list(asked)
            for k, name in ((i, "s1grd_ref"), (j, "s1grd_sec")):
                if k in need and k not in claimed:
                    layers.append(name)
                    claimed.add(k)
            inputs.pairs.append((paths[i], paths[j], tuple(layers)))
    inputs.dates = [paths[i] for i in sorted(need - claimed)]
    geom_plan = []
    for track, ps in work.geom:
        if tid in wanted.get(("s1geom", track), ()):
            first = next((i for i in ps if i in cov), None)
            geom_plan.append((track, first))
            if first is not None:
                inputs.geoms.append(paths[first])
    out = compute_tile(tile, inputs, proc)

    for label, prs, asked in pair_plan:
        items = tuple(prods[k].name for pr in prs for k in pr)
        errs = [out.errors[(paths[i], paths[j])] for i, j in prs
                if (paths[i], paths[j]) in out.errors]
        merged: dict[str, np.ndarray | None] = {m: None for m in asked}
        for i, j in prs:
            res = out.pairs.get((paths[i], paths[j]), {})
            for m in asked:
                if m in res:
                    merged[m] = _fill(merged[m], res[m])
        for m in asked:
            yield _result(tid, m, label, merged[m], items, errs)
    for label, used in grd:
        items = tuple(prods[i].name for i in used)
        errs = [out.errors[paths[i]] for i in used if paths[i] in out.errors]
        yield _result(tid, "s1grd", label, per_pass(used, work, paths, out.dates), items, errs)
    for track, first in geom_plan:
        items = (prods[first].name,) if first is not None else ()
        key = ("geom", paths[first]) if first is not None else None
        errs = [out.errors[key]] if key in out.errors else []
        g = out.geoms.get(paths[first]) if first is not None else None
        yield _result(tid, "s1geom", track, g, items, errs)


def per_pass(ps: Sequence[int], work: S1Work, paths: Sequence[str],
             dates: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """(6, H, W): VV/VH mean of linear power per pass in dB, and valid acquisitions per pass."""
    acq: dict[tuple[str, object], np.ndarray] = {}  # (track, date) -> merged dB image
    for i in ps:
        img = dates.get(paths[i])
        if img is not None:
            p = work.products[i]
            acq[(p.track, p.date)] = _fill(acq.get((p.track, p.date)), img)
    if not acq:
        return None
    shape = next(iter(acq.values())).shape[1:]
    out = np.full((len(GRD_BANDS),) + shape, np.nan, np.float32)
    for k, ps_ in enumerate(PASSES):
        imgs = [v for (track, _), v in sorted(acq.items(), key=lambda kv: str(kv[0]))
                if track.endswith(ps_[0].upper())]
        if not imgs:
            out[4 + k] = 0
            continue
        total = np.zeros((len(POLS),) + shape)
        n = np.zeros((len(POLS),) + shape)
        for db in imgs:
            ok = np.isfinite(db)
            total[ok] += np.power(10.0, db[ok].astype(np.float64) / 10)
            n[ok] += 1
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n > 0, 10 * np.log10(np.maximum(total / n, 1e-10)), np.nan)
        out[2 * k:2 * k + 2] = mean
        out[4 + k] = n[0]
    return out


def _result(tid: str, modality: str, period: str, data: np.ndarray | None,
            items: tuple[str, ...], errs: list[str]) -> TileResult:
    if errs:
        return TileResult(tid, "failed", error=errs[0], items=items, modality=modality,
                          period=period)
    valid = data is not None and np.isfinite(data[0 if modality != "s1grd" else slice(0, 4)]).any()
    if not valid:
        return TileResult(tid, "nodata", items=items, modality=modality, period=period)
    return TileResult(tid, "done", data=np.asarray(data, np.float32), items=items,
                      modality=modality, period=period)
