"""One tile's processor calls for an S1 block unit: a stack, not pairs (issue 13 item 3).

The products the tile's pairs link form a stack per track and footprint (sar/stack.py): each
date is resampled onto the tile once and serves every pair it is in (coherence and
interferogram, `sar.pipeline.pair_layers`) and its own backscatter; dates of no pair are
stacks of one. For 8 dates and every GSSIC baseline up to 48 days that is 8 resamplings for
22 pairs instead of 44. A stack that cannot be formed (two products of one date) or whose
products fail to read falls back to pair by pair, so a bad product fails only what it is in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BadInput, TransientError
from ..grid.geobox import GeoBox
from ..sar.radiometry import to_db_nan
from .base import TileRef
from .s1blocks import PAIR_LAYERS

DemFn = Callable[[GeoBox], np.ndarray]
POLS = ("VV", "VH")
RTC = "gamma0-rtc"  # terrain-flattened gamma0 (sar/rtc.py): beta0 from the calibration, / area


def _kind(proc: Processing) -> str:
    """What the calibration computes: beta0 for gamma0-RTC (the area ratio does the rest)."""
    return "beta0" if proc.backscatter == RTC else proc.backscatter


@dataclass(frozen=True)
class Processing:
    """Processor settings of a source (what the sar calls need besides the products)."""

    dem: DemFn
    orbits: str | None = None
    slc_res: float = 10.0
    backscatter: str = "gamma0-rtc"  # gamma0-rtc | sigma0 | gamma0 (ellipsoid) | beta0
    coh_res: float = 40.0
    ifg_res: float = 40.0


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


class ProductPool:
    """Products opened once for a unit's tiles (their metadata, footprints and open TIFF
    readers serve every tile); closed when the unit ends."""

    def __init__(self, orbits: str | None) -> None:
        self.orbits = orbits
        self._open: dict[str, Any] = {}
        self._lock = threading.Lock()  # a unit's tiles may run on several threads

    def get(self, path: str) -> Any:
        with self._lock:
            if path not in self._open:
                from ..sar.product import open_product

                self._open[path] = open_product(path, POLS, self.orbits)
            return self._open[path]

    def close(self) -> None:
        for p in self._open.values():
            p.close()
        self._open.clear()

    def __enter__(self) -> ProductPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compute_tile(tile: TileRef, inputs: TileInputs, proc: Processing,
                 pool: ProductPool | None = None) -> TileOutputs:
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
    areas: dict[tuple, object] = {}  # RTC areas of this tile, one per track
    own = pool is None
    pool = ProductPool(proc.orbits) if pool is None else pool
    try:
        for paths, prs in _stacks(wanted, grd):
            _stack_or_pairs(tile, paths, {k: wanted[k] for k in prs}, grd, proc, out, areas,
                            pool)
    finally:
        if own:
            pool.close()
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


def _rtc_area(tile: TileRef, prod: Any, proc: Processing, areas: dict[tuple, Any]) -> Any:
    """The tile's gamma0-RTC area ratio (sar/rtc.py), once per track: repeat passes fly the
    same orbit tube, so one date's orbit serves the track's dates."""
    key = (prod.attrs.get("relative_orbit_number"), prod.attrs.get("pass"))
    if key not in areas:
        from ..sar.geocode import grid_ecef, swath_mid_time
        from ..sar.radargrid import tile_height
        from ..sar.rtc import tile_rtc

        g0 = prod.geometry[0]
        xyz = grid_ecef(tile.grid, tile_height(tile.grid, proc.dem))
        areas[key] = tile_rtc(g0.orbit, xyz, swath_mid_time(g0))
    return areas[key]


def _to_rtc(db: np.ndarray, area: Any) -> np.ndarray:
    """beta0 (dB) -> gamma0-RTC (dB); layover/shadow pixels NaN, so never averaged."""
    with np.errstate(invalid="ignore"):
        return np.stack([to_db_nan(area.gamma0(np.power(10.0, x / 10))) for x in db])


def _stack_or_pairs(tile: TileRef, paths: list[str], pairs: Mapping[tuple[str, str], set[str]],
                    grd: set[str], proc: Processing, out: TileOutputs,
                    areas: dict[tuple, Any], pool: ProductPool) -> None:
    """One stack for `paths`; on a product's failure, the old pair-by-pair path instead."""
    from ..errors import DemError
    from ..sar.stack import resample_stack

    prods: list = []
    try:
        for p in paths:
            prods.append(pool.get(p))
        order = [paths[k] for k in np.argsort([p.geometry[0].t_ref for p in prods],
                                                kind="stable")]
        prods = [prods[paths.index(p)] for p in order]
        track = {(p.attrs.get("relative_orbit_number"), p.attrs.get("pass"),
                  tuple(sorted(p.swaths))) for p in prods}
        for a, b in zip(prods, prods[1:], strict=False):
            if len(track) > 1 or b.geometry[0].t_ref <= a.geometry[0].t_ref:
                # not one track's dates in time order: the pair path says exactly why
                raise ValueError("not a stack")
    except (BadInput, TransientError):
        raise
    except Exception:  # noqa: BLE001 - no stack (e.g. two products of one date): pairwise
        _pairwise(tile, pairs, grd & set(paths), proc, out, areas)
        return
    index = {p: k for k, p in enumerate(order)}
    cplx = [ls for ls in pairs.values() if ls & set(PAIR_LAYERS)]
    try:
        st = resample_stack(prods, tile, proc.dem, POLS, slc=bool(cplx),
                            power=bool(grd & set(order)),
                            slc_pols=POLS if any("s1coh" in ls for ls in cplx) else POLS[:1],
                            slc_res=proc.slc_res, kind=_kind(proc))
        area = _rtc_area(tile, prods[st.ref], proc, areas) if st is not None and \
            st.power is not None and proc.backscatter == RTC else None
    except (BadInput, TransientError):
        raise
    except DemError as e:  # the tile's fault: every input of the stack fails alike
        msg = f"{type(e).__name__}: {e}"
        out.errors.update({k: msg for k in pairs})
        out.errors.update({p: msg for p in order if p in grd})
        return
    except Exception:  # noqa: BLE001 - a product that fails to read: find which, pairwise
        _pairwise(tile, pairs, grd & set(paths), proc, out, areas)
        return
    if st is None:
        return
    from ..sar.pipeline import pair_layers

    for (ref, sec), layers in pairs.items():
        i, j = index[ref], index[sec]
        cov = st.slc[i, 0] if st.slc is not None else st.power[i, 0]  # type: ignore[index]
        asked = [m for m in PAIR_LAYERS if m in layers]
        if asked and np.isfinite(cov).any():  # as a pair: the reference must cover the tile
            out.pairs[(ref, sec)] = pair_layers(st, asked, proc.coh_res, proc.ifg_res, i, j)
    if st.power is not None:
        for p in order:
            k = index[p]
            if p in grd and np.isfinite(st.power[k]).any():
                if area is not None:
                    with np.errstate(invalid="ignore"):
                        out.dates[p] = np.stack([to_db_nan(area.gamma0(x))
                                                 for x in st.power[k]])
                else:
                    out.dates[p] = np.stack([to_db_nan(x) for x in st.power[k]])


def _pairwise(tile: TileRef, pairs: Mapping[tuple[str, str], set[str]], dates: set[str],
              proc: Processing, out: TileOutputs, areas: dict[tuple, Any]) -> None:
    """Each pair as a two-date stack, each remaining date alone: errors per pair / product."""
    from ..sar.pipeline import iter_pair, process_grd
    from ..sar.product import open_product

    done: set[str] = set()
    for (ref, sec), layers in pairs.items():
        errors: dict[str, str] = {}
        names = list(layers) + [n for p, n in ((ref, "s1grd_ref"), (sec, "s1grd_sec"))
                                if p in dates and p not in done and n not in layers]
        try:
            for _, res in iter_pair(ref, sec, [tile], proc.dem, polarisations=POLS,
                                    coh_res=proc.coh_res, ifg_res=proc.ifg_res,
                                    slc_res=proc.slc_res, orbit_dir=proc.orbits, errors=errors,
                                    backscatter=_kind(proc), layers=names):
                out.pairs[(ref, sec)] = {m: res[m] for m in PAIR_LAYERS if m in res}
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
                               orbit_dir=proc.orbits, kind=_kind(proc), errors=errors)
            if tile.id in res1:
                out.dates[path] = res1[tile.id]
        except (BadInput, TransientError):  # the run's fault, not one product's
            raise
        except Exception as e:  # noqa: BLE001
            errors[tile.id] = f"{type(e).__name__}: {e}"
        if tile.id in errors:
            out.errors[path] = errors[tile.id]
    if proc.backscatter == RTC:
        for path in [p for p in dates if p in out.dates]:
            prod = open_product(path, POLS[:1], proc.orbits)
            try:
                out.dates[path] = _to_rtc(out.dates[path], _rtc_area(tile, prod, proc, areas))
            finally:
                prod.close()
