"""Reading one Sentinel-1 block unit (s1blocks.py): tile by tile, every layer from one pass.

Shared by the archive and ASF sources: they differ only in how a unit's products are found
and made local. Per tile, the products the tile's pairs link form a stack (sar/stack.py):
each date is resampled onto the tile once and serves every pair it is in (coherence and
interferogram, `sar.pipeline.pair_layers`) and its own backscatter; dates of no pair are
stacks of one (s1stack.py); `s1geom` one `track_geometry` per track. A unit's tiles run on the
worker's Numba threads (sar/tilepool.py; one in a run's workers) and their results are
emitted in tile order; a few tiles' stacks are held at a time (one per thread and one
ahead), so memory does not grow with the number of tiles.

`s1grd` is per pass (issue 13 item 1): for each pass, the mean of LINEAR power over the
period's acquisitions of that pass (tracks of one pass pooled by the same rule), in dB, and
the number of valid acquisitions per pixel. Products of one acquisition (slices, bursts) are
merged first-valid before averaging, so an overlap is not counted twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..sar.tilepool import map_tiles
from .base import TileRef, TileResult, WorkUnit
from .s1blocks import PAIR_LAYERS, S1Work, unit_work
from .s1stack import POLS, DemFn, Processing, ProductPool, TileInputs, TileOutputs, compute_tile
from .s1unw import BlockUnwrapper

__all__ = ["BACKSCATTER", "GRD_BANDS", "ProcessorOptions", "TileInputs", "TileOutputs",
           "compute_tile", "per_pass", "read_unit", "seasonal"]
PASSES = ("asc", "des")
#: s1grd bands in store order
GRD_BANDS = ("VV_asc", "VH_asc", "VV_des", "VH_des", "count_asc", "count_des")
BACKSCATTER = ("sigma0", "gamma0-rtc", "gamma0", "beta0")
_DEMS: dict[tuple[str, str], DemFn] = {}  # per worker process: one open DEM per file


@dataclass(frozen=True)
class ProcessorOptions:
    """The processor options both S1 sources take (picklable: paths, not open files)."""

    dem: str | None = None
    dem_datum: str = "ellipsoid"
    slc_res: float = 10.0
    backscatter: str = "gamma0-rtc"  # README "Sentinel-1 layers for ML" says why

    def __post_init__(self) -> None:
        if self.backscatter not in BACKSCATTER:
            raise BadInput(f"backscatter must be {', '.join(BACKSCATTER)}, "
                           f"not {self.backscatter!r}")

    def check(self, source: str) -> None:
        """Before any work: the processor's DEM is given and exists (one clear error), and
        its Numba kernels are compiled (sar/warm.py)."""
        if not self.dem:
            raise BadInput(f"source {source!r} needs a DEM to process S1: "
                           f"--source-opt {source}.dem=<GeoTIFF or VRT>")
        if "://" not in self.dem and not Path(self.dem).exists():
            raise BadInput(f"DEM {self.dem!r} does not exist")
        from ..sar.warm import warm

        warm()  # a fresh install compiles the kernels here once, not in every worker's unit

    def processing(self, orbits: str | None) -> Processing:
        """Settings for one unit, with the DEM opened once per process."""
        if not self.dem:
            raise BadInput("the S1 processor needs dem=<GeoTIFF or VRT>")
        key = (self.dem, self.dem_datum)
        if key not in _DEMS:
            from ..sar.dem import GeoTiffDem

            _DEMS[key] = GeoTiffDem(self.dem, self.dem_datum)
        return Processing(_DEMS[key], orbits, float(self.slc_res), self.backscatter)


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
    work = unit_work(unit)
    wanted = {(t.modality, t.period): set(t.tiles) for t in unit.targets}
    unwrapper = BlockUnwrapper(proc)  # s1unw: 80 m inputs held per block, unwrapped at the end
    with ProductPool(proc.orbits) as pool:  # each product opened once per unit, not per tile

        def compute(tid: str) -> tuple[_TilePlan, TileOutputs]:
            plan = _plan(tiles[tid], work, wanted, paths)
            return plan, compute_tile(tiles[tid], plan.inputs, proc, pool)

        # tiles on the worker's Numba threads (one in a run's workers), emitted in order
        for plan, out in map_tiles(compute, unit.all_tiles):
            yield from _emit(plan, out, work, paths, unwrapper)
    yield from unwrapper.results()


@dataclass(frozen=True)
class _TilePlan:
    """What one tile of a unit asks the processor for, and how its answers become results."""

    tile: TileRef
    inputs: TileInputs
    pairs: list[tuple[str, list[tuple[int, int]], list[str], str]]  # label, pairs, asked, track
    grd: list[tuple[str, list[int]]]  # label, products
    cohs: list[tuple[str, list[tuple[int, int]]]]  # season, product pairs
    geom: list[tuple[str, int | None]]  # track, its first covering product


def _plan(tile: TileRef, work: S1Work, wanted: dict[tuple[str, str], set[str]],
          paths: Sequence[str]) -> _TilePlan:
    tid = tile.id
    cov = set(work.cover.get(tid, ()))
    grd = [(lb, [i for i in ps if i in cov]) for lb, ps in work.grd
           if tid in wanted.get(("s1grd", lb), ())]
    need = {i for _, ps in grd for i in ps}
    inputs = TileInputs(dates=[paths[i] for i in sorted(need)])
    pair_plan: list[tuple[str, list[tuple[int, int]], list[str], str]] = []
    for pw in work.pairs:
        asked = [m for m in PAIR_LAYERS if tid in wanted.get((m, pw.label), ())]
        if tid not in pw.tiles or not asked:
            continue
        prs = [(i, j) for i, j in pw.products if i in cov and j in cov]
        pair_plan.append((pw.label, prs, asked, pw.track))
        inputs.pairs.extend((paths[i], paths[j], tuple(asked)) for i, j in prs)
    cohs_plan: list[tuple[str, list[tuple[int, int]]]] = []
    for label, prs_ in work.cohs:
        if tid in wanted.get(("s1cohs", label), ()):
            prs = [(i, j) for i, j in prs_ if i in cov and j in cov]
            cohs_plan.append((label, prs))
            inputs.pairs.extend((paths[i], paths[j], ("s1coh",)) for i, j in prs)
    geom_plan: list[tuple[str, int | None]] = []
    for track, ps in work.geom:
        if tid in wanted.get(("s1geom", track), ()):
            first = next((i for i in ps if i in cov), None)
            geom_plan.append((track, first))
            if first is not None and paths[first] not in inputs.geoms:
                inputs.geoms.append(paths[first])
    return _TilePlan(tile, inputs, pair_plan, grd, cohs_plan, geom_plan)


def _emit(plan: _TilePlan, out: TileOutputs, work: S1Work, paths: Sequence[str],
          unwrapper: BlockUnwrapper) -> Iterator[TileResult]:
    """The tile's TileResults from the processor's answers (s1unw inputs go to the block's
    unwrapper, in tile order)."""
    tile, tid, prods = plan.tile, plan.tile.id, work.products
    for label, prs, asked, track in plan.pairs:
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
            if m == "s1unw":
                path = paths[prs[0][0]] if prs else None
                geom = out.geoms.get(path) if path is not None else None
                unwrapper.add(tile, label, track, merged[m], geom, items,
                              errs[0] if errs else None, mask_from=path if geom is None else None)
                continue
            yield _result(tid, m, label, merged[m], items, errs)
    for label, used in plan.grd:
        items = tuple(prods[i].name for i in used)
        errs = [out.errors[paths[i]] for i in used if paths[i] in out.errors]
        yield _result(tid, "s1grd", label, per_pass(used, work, paths, out.dates), items, errs)
    for label, prs in plan.cohs:
        items = tuple(dict.fromkeys(prods[k].name for pr in prs for k in pr))
        errs = [out.errors[(paths[i], paths[j])] for i, j in prs
                if (paths[i], paths[j]) in out.errors]
        yield _result(tid, "s1cohs", label, seasonal(label, prs, work, paths, out.pairs),
                      items, errs)
    for track, first in plan.geom:
        items = (prods[first].name,) if first is not None else ()
        key = ("geom", paths[first]) if first is not None else None
        errs = [out.errors[key]] if key in out.errors else []
        g = out.geoms.get(paths[first]) if first is not None else None
        yield _result(tid, "s1geom", track, g, items, errs)


def seasonal(label: str, prs: Sequence[tuple[int, int]], work: S1Work, paths: Sequence[str],
             pairs: Mapping[tuple[str, str], Mapping[str, np.ndarray]]) -> np.ndarray | None:
    """(18, n, n) `s1cohs` bands of one season (sar/seasonal.py): product pairs of one
    acquisition pair (slices, bursts) merged first-valid, then one median per baseline."""
    from ..sar.seasonal import SeasonalCoherence

    merged: dict[tuple[str, dt.date, dt.date], np.ndarray] = {}
    for i, j in prs:
        coh = pairs.get((paths[i], paths[j]), {}).get("s1coh")
        if coh is not None:
            a, b = work.products[i], work.products[j]
            merged[(a.track, a.date, b.date)] = _fill(merged.get((a.track, a.date, b.date)), coh)
    if not merged:
        return None
    acc = SeasonalCoherence(next(iter(merged.values())).shape[1:])
    for (track, d1, d2), coh in sorted(merged.items(), key=lambda kv: str(kv[0])):
        acc.add(d1, d2, coh, key=track)
    return acc.finalize(label)


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
    look = {"s1grd": slice(0, 4), "s1cohs": slice(0, 12)}.get(modality, 0)  # not counts/fits
    valid = data is not None and np.isfinite(data[look]).any()
    if not valid:
        return TileResult(tid, "nodata", items=items, modality=modality, period=period)
    return TileResult(tid, "done", data=np.asarray(data, np.float32), items=items,
                      modality=modality, period=period)
