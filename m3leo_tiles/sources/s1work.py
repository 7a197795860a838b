"""Reading one Sentinel-1 block unit (s1blocks.py): tile by tile, every layer from one pass.

Shared by the archive and ASF sources: they differ only in how a unit's products are found
and made local. Per tile, the products the tile's pairs link form a stack (sar/stack.py):
each date is resampled onto the tile once and serves every pair it is in (coherence and
interferogram, `sar.pipeline.pair_layers`) and its own backscatter; dates of no pair are
stacks of one; `s1geom` one `track_geometry` per track. One tile's stack and per-tile
accumulators are held at a time, so memory does not grow with the number of tiles.

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
from ..sar.radiometry import to_db_nan
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
    """Every processor call for one tile, in one place: a stack, not pairs (issue 13 item 3).

    The products linked by the tile's pairs form stacks (one per track and footprint, dates
    in time order); each date is resampled onto the tile once (`sar.stack.resample_stack`)
    and serves every pair it is in (`pair_layers`) and its own backscatter. Dates no pair
    uses are one-date stacks. A stack that cannot be formed (two products of one date, or a
    product that fails to read) falls back to pair by pair, so a bad product fails only the
    pairs and dates it is in. Memory: one stack of one tile at a time.
    """
    from ..sar.trackgeom import track_geometry

    out = TileOutputs()
    wanted: dict[tuple[str, str], set[str]] = {}
    for ref, sec, layers in inputs.pairs:
        wanted.setdefault((ref, sec), set()).update(layers)
    grd = set(inputs.dates) | {p for (r, s), ls in wanted.items()
                               for p, name in ((r, "s1grd_ref"), (s, "s1grd_sec")) if name in ls}
    for paths, prs in _stacks(wanted, grd):
        _stack_or_pairs(tile, paths, {k: wanted[k] for k in prs}, grd, proc, out)
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


def _stacks(pairs: Mapping[tuple[str, str], object], dates: set[str]
            ) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """Products linked by pairs (connected components), each with its pairs; then every
    date of no pair alone."""
    parent: dict[str, str] = {}

    def root(p: str) -> str:
        while parent.setdefault(p, p) != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for r, s in pairs:
        parent[root(r)] = root(s)
    groups: dict[str, list[str]] = {}
    for p in parent:
        groups.setdefault(root(p), []).append(p)
    out = [(ps, [k for k in pairs if root(k[0]) == g]) for g, ps in groups.items()]
    out += [([p], []) for p in sorted(dates - set(parent))]
    return out


def _stack_or_pairs(tile: TileRef, paths: list[str], pairs: Mapping[tuple[str, str], set[str]],
                    grd: set[str], proc: Processing, out: TileOutputs) -> None:
    """One stack for `paths`; on a product's failure, the old pair-by-pair path instead."""
    from ..errors import DemError
    from ..sar.product import check_same_track, open_product
    from ..sar.stack import resample_stack

    prods: list = []
    try:
        for p in paths:
            prods.append(open_product(p, POLS, proc.orbits))
        order = [paths[k] for k in np.argsort([p.geometry[0].t_ref for p in prods],
                                                kind="stable")]
        prods = [prods[paths.index(p)] for p in order]
        for a, b in zip(prods, prods[1:], strict=False):
            check_same_track(prods[0], b)
            if b.geometry[0].t_ref <= a.geometry[0].t_ref:
                raise ValueError("two products of one date")
    except (BadInput, TransientError):
        for p in prods:
            p.close()
        raise
    except Exception:  # noqa: BLE001 - no stack (e.g. two products of one date): pairwise
        for p in prods:
            p.close()
        _pairwise(tile, pairs, grd & set(paths), proc, out)
        return
    index = {p: k for k, p in enumerate(order)}
    cplx = [ls for ls in pairs.values() if ls & {"s1coh", "s1ifg"}]
    try:
        st = resample_stack(prods, tile, proc.dem, POLS, slc=bool(cplx),
                            power=bool(grd & set(order)),
                            slc_pols=POLS if any("s1coh" in ls for ls in cplx) else POLS[:1],
                            slc_res=proc.slc_res, kind=proc.backscatter)
    except (BadInput, TransientError):
        raise
    except DemError as e:  # the tile's fault: every input of the stack fails alike
        msg = f"{type(e).__name__}: {e}"
        out.errors.update({k: msg for k in pairs})
        out.errors.update({p: msg for p in order if p in grd})
        return
    except Exception:  # noqa: BLE001 - a product that fails to read: find which, pairwise
        _pairwise(tile, pairs, grd & set(paths), proc, out)
        return
    finally:
        for p in prods:
            p.close()
    if st is None:
        return
    from ..sar.pipeline import pair_layers

    for (ref, sec), layers in pairs.items():
        i, j = index[ref], index[sec]
        cov = st.slc[i, 0] if st.slc is not None else st.power[i, 0]  # type: ignore[index]
        asked = [m for m in ("s1coh", "s1ifg") if m in layers]
        if asked and np.isfinite(cov).any():  # as a pair: the reference must cover the tile
            out.pairs[(ref, sec)] = pair_layers(st, asked, proc.coh_res, proc.ifg_res, i, j)
    if st.power is not None:
        for p in order:
            k = index[p]
            if p in grd and np.isfinite(st.power[k]).any():
                out.dates[p] = np.stack([to_db_nan(x) for x in st.power[k]])


def _pairwise(tile: TileRef, pairs: Mapping[tuple[str, str], set[str]], dates: set[str],
              proc: Processing, out: TileOutputs) -> None:
    """Each pair as a two-date stack, each remaining date alone: errors per pair / product."""
    from ..sar.pipeline import iter_pair, process_grd

    done: set[str] = set()
    for (ref, sec), layers in pairs.items():
        errors: dict[str, str] = {}
        names = list(layers) + [n for p, n in ((ref, "s1grd_ref"), (sec, "s1grd_sec"))
                                if p in dates and p not in done and n not in layers]
        try:
            for _, res in iter_pair(ref, sec, [tile], proc.dem, polarisations=POLS,
                                    coh_res=proc.coh_res, ifg_res=proc.ifg_res,
                                    slc_res=proc.slc_res, orbit_dir=proc.orbits, errors=errors,
                                    backscatter=proc.backscatter, layers=names):
                out.pairs[(ref, sec)] = {m: res[m] for m in ("s1coh", "s1ifg") if m in res}
                for p, n in ((ref, "s1grd_ref"), (sec, "s1grd_sec")):
                    if n in res and p in dates:
                        out.dates[p] = res[n]
                        done.add(p)
        except (BadInput, TransientError):  # the run's fault, not one product's
            raise
        except Exception as e:  # noqa: BLE001 - one bad product fails its layers, not the unit
            errors[tile.id] = f"{type(e).__name__}: {e}"
        if tile.id in errors:
            out.errors[(ref, sec)] = errors[tile.id]
    for path in sorted(dates - done):
        errors = {}
        try:
            res1 = process_grd(path, [tile], proc.dem, polarisations=POLS,
                               orbit_dir=proc.orbits, kind=proc.backscatter, errors=errors)
            if tile.id in res1:
                out.dates[path] = res1[tile.id]
        except (BadInput, TransientError):  # the run's fault, not one product's
            raise
        except Exception as e:  # noqa: BLE001
            errors[tile.id] = f"{type(e).__name__}: {e}"
        if tile.id in errors:
            out.errors[path] = errors[tile.id]


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
    inputs = TileInputs(dates=[paths[i] for i in sorted(need)])
    pair_plan = []  # (label, product pairs, asked layers)
    for pw in work.pairs:
        asked = [m for m in ("s1coh", "s1ifg") if tid in wanted.get((m, pw.label), ())]
        if tid not in pw.tiles or not asked:
            continue
        prs = [(i, j) for i, j in pw.products if i in cov and j in cov]
        pair_plan.append((pw.label, prs, asked))
        inputs.pairs.extend((paths[i], paths[j], tuple(asked)) for i, j in prs)
    cohs_plan = []  # (season, product pairs)
    for label, prs_ in work.cohs:
        if tid in wanted.get(("s1cohs", label), ()):
            prs = [(i, j) for i, j in prs_ if i in cov and j in cov]
            cohs_plan.append((label, prs))
            inputs.pairs.extend((paths[i], paths[j], ("s1coh",)) for i, j in prs)
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
    for label, prs in cohs_plan:
        items = tuple(dict.fromkeys(prods[k].name for pr in prs for k in pr))
        errs = [out.errors[(paths[i], paths[j])] for i, j in prs
                if (paths[i], paths[j]) in out.errors]
        yield _result(tid, "s1cohs", label, seasonal(label, prs, work, paths, out.pairs),
                      items, errs)
    for track, first in geom_plan:
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

    merged: dict[tuple[str, object, object], np.ndarray] = {}
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
