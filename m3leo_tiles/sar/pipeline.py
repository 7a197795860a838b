"""Pair and single-date products onto tile grids: the thin orchestrator.

The processor, in the order data flows (each module cites what it implements):
- product: open an IW SLC (safe.py metadata, windowed pixel reads), check a pair;
- radargrid: tile grid -> (swath, burst, line, sample, range) by zero-Doppler geocoding;
- tops: the TOPS carrier (deramp / reramp); kernels: the resampling kernels;
- radiometry + calibrate: sigma0 / gamma0 / beta0 with thermal-noise removal;
- resample: one date onto one tile (complex SLC and backscatter from the same windows);
- stack: every date of a track onto a tile once, coherence / phase of any pair from it.

This module turns a stack into the pair layers (s1grd_ref, s1grd_sec, s1coh, s1ifg) and the
single-date backscatter, one `TileOutput` per tile. `process_pair`, `iter_pair`,
`process_grd` and `open_product` are the pair-level convenience API the sources call; their
signatures stay (an `errors` dict, when given, is filled from the per-tile outputs).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import DemError, PairError, SafeError
from .product import Product, check_pair, open_product
from .radargrid import DemFn, TileGeometry, geocode_grid
from .radiometry import to_db_nan
from .resample import geocode_backscatter, geocode_layers, geocode_slc
from .stack import TileOutput, TileStack, pair_coherence, stack_tiles
from .timing import STAGES

__all__ = ["LAYERS", "STAGES", "DemError", "DemFn", "PairError", "Product", "SafeError",
           "TileGeometry", "TileOutput", "check_pair", "geocode_backscatter", "geocode_grid",
           "geocode_layers", "geocode_slc", "grd_tiles", "iter_pair", "open_product",
           "pair_layers", "pair_tiles", "process_grd", "process_pair", "to_db_nan"]

LAYERS = ("s1grd_ref", "s1grd_sec", "s1coh", "s1ifg")
#: asked for by name only: `s1unw` is the 80 m unwrapping input (wrapped phase, coherence of
#: the first polarisation) that sources/s1unw.py mosaics per block and unwraps (issue 22)
EXTRA_LAYERS = ("s1unw",)


def pair_layers(stack: TileStack, layers: Sequence[str] = LAYERS, coh_res: float = 40,
                ifg_res: float = 40, i: int = 0, j: int = 1) -> dict[str, np.ndarray]:
    """The pair layers of dates (i, j) of a stack.

    s1grd_ref / s1grd_sec: (npol, 448, 448) dB; s1coh: (npol, n, n); s1ifg: (1, n, n) rad
    of the first polarisation, arg(g_i conj(g_j)): a range increase d from date i to date j
    (motion away from the satellite) reads +4 pi d / lambda.
    """
    out: dict[str, np.ndarray] = {}
    for name, k in (("s1grd_ref", i), ("s1grd_sec", j)):
        if name in layers:
            assert stack.power is not None
            out[name] = np.stack([to_db_nan(x) for x in stack.power[k]])
    if "s1ifg" in layers or "s1coh" in layers:
        cpols = stack.slc_pols if "s1coh" in layers else stack.slc_pols[:1]
        coh, ph = pair_coherence(stack, i, j, coh_res, cpols)
        if "s1ifg" in layers:
            ifg = ph[0] if ifg_res == coh_res else \
                pair_coherence(stack, i, j, ifg_res, cpols[:1])[1][0]
            out["s1ifg"] = ifg[None].astype(np.float32)
        if "s1coh" in layers:
            out["s1coh"] = coh
    if "s1unw" in layers:
        from .unwrap import UNW_RES

        coh1, ph1 = pair_coherence(stack, i, j, UNW_RES, stack.slc_pols[:1])
        out["s1unw"] = np.stack([ph1[0], coh1[0]]).astype(np.float32)
    return out


def _resample_kw(layers: Sequence[str], pols: Sequence[str], slc_res: float,
                 kind: str) -> dict[str, Any]:
    want_c = "s1coh" in layers or "s1ifg" in layers or "s1unw" in layers
    return {"slc": want_c, "power": "s1grd_ref" in layers or "s1grd_sec" in layers,
            "slc_pols": list(pols) if "s1coh" in layers else list(pols[:1]),
            "slc_res": slc_res, "kind": kind}


def pair_tiles(ref: Product, sec: Product, tiles: Iterable[Any], dem: DemFn,
               polarisations: Sequence[str] = ("VV", "VH"), coh_res: float = 40,
               ifg_res: float = 40, slc_res: float = 10, backscatter: str = "sigma0",
               layers: Sequence[str] = LAYERS) -> Iterator[TileOutput[dict[str, np.ndarray]]]:
    """Pair layers of two open products, one TileOutput per tile (a 2-date stack each).

    value None: the reference does not cover the tile; error: e.g. the DEM does not cover it.
    """
    bad = set(layers) - set(LAYERS + EXTRA_LAYERS)
    if bad:
        raise ValueError(f"unknown layers {sorted(bad)}; use {LAYERS}")
    pols = [p.upper() for p in polarisations]
    kw = _resample_kw(layers, pols, slc_res, backscatter)

    def then(st: TileStack) -> dict[str, np.ndarray] | None:
        if st.ref != 0:  # the pair needs the reference to cover the tile
            return None
        return pair_layers(st, layers, coh_res, ifg_res)

    yield from stack_tiles([ref, sec], tiles, dem, pols, then=then, **kw)


def grd_tiles(prod: Product, tiles: Iterable[Any], dem: DemFn,
              polarisations: Sequence[str] = ("VV", "VH"), kind: str = "sigma0",
              denoise: bool = True) -> Iterator[TileOutput[np.ndarray]]:
    """Backscatter (npol, 448, 448) dB of one open product, one TileOutput per tile."""
    pols = [p.upper() for p in polarisations]

    def then(st: TileStack) -> np.ndarray | None:
        return None if st.power is None else np.stack([to_db_nan(x) for x in st.power[0]])

    yield from stack_tiles([prod], tiles, dem, pols, then=then, slc=False, power=True,
                           kind=kind, denoise=denoise)


def _unwrap(outs: Iterable[TileOutput[Any]], errors: dict[str, str] | None) -> Iterator[Any]:
    """(tile_id, value) of covered tiles; a failure goes to `errors` or is raised."""
    for o in outs:
        if o.error is not None:
            if errors is None:
                raise o.error
            errors[o.tile] = o.message or ""
        elif o.value is not None:
            yield o.tile, o.value


# --- the pair-level convenience API (sources call these; signatures kept) -------------------
def process_pair(reference_safe: str, secondary_safe: str, tiles: Sequence[Any], dem: DemFn,
                 polarisations: Sequence[str] = ("VV", "VH"), coh_res: float = 40,
                 ifg_res: float = 40, slc_res: float = 10, orbit_dir: str | None = None,
                 errors: dict[str, str] | None = None, swaths: Sequence[str] | None = None,
                 backscatter: str = "sigma0",
                 layers: Sequence[str] = LAYERS) -> dict[str, dict[str, np.ndarray]]:
    """Per covered tile: s1grd_ref / s1grd_sec (npol, 448, 448) dB, s1coh (npol, n, n),
    s1ifg (1, n, n) rad (first polarisation), from an IW SLC pair.

    Pair-level convenience API over pair_tiles. `backscatter` is "sigma0" (default),
    "gamma0" (ellipsoid) or "beta0"; `layers` picks which of LAYERS to compute. Tiles not
    covered at all are absent from the result; partly covered tiles carry NaN. Per-tile
    failures (the DEM not covering a tile) go to `errors[tile_id]` when a dict is given, else
    they raise. Results of all tiles are held at once (~3.3 MB per tile with every layer);
    `iter_pair` yields them one tile at a time.
    """
    return dict(iter_pair(reference_safe, secondary_safe, tiles, dem, polarisations, coh_res,
                          ifg_res, slc_res, orbit_dir, errors, swaths, backscatter, layers))


def iter_pair(reference_safe: str, secondary_safe: str, tiles: Sequence[Any], dem: DemFn,
              polarisations: Sequence[str] = ("VV", "VH"), coh_res: float = 40,
              ifg_res: float = 40, slc_res: float = 10, orbit_dir: str | None = None,
              errors: dict[str, str] | None = None, swaths: Sequence[str] | None = None,
              backscatter: str = "sigma0", layers: Sequence[str] = LAYERS
              ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """process_pair as a generator of (tile_id, layers): memory bounded by the few tiles in
    flight (one per tile thread, tilepool.py, and one ahead)."""
    bad = set(layers) - set(LAYERS + EXTRA_LAYERS)
    if bad:
        raise ValueError(f"unknown layers {sorted(bad)}; use {LAYERS}")
    pols = [p.upper() for p in polarisations]
    ref = open_product(reference_safe, pols, orbit_dir, swaths)
    sec = open_product(secondary_safe, pols, orbit_dir, swaths)
    try:
        check_pair(ref, sec)
        yield from _unwrap(pair_tiles(ref, sec, tiles, dem, pols, coh_res, ifg_res, slc_res,
                                      backscatter, layers), errors)
    finally:
        ref.close()
        sec.close()


def process_grd(safe: str, tiles: Sequence[Any], dem: DemFn,
                polarisations: Sequence[str] = ("VV", "VH"), orbit_dir: str | None = None,
                kind: str = "sigma0", errors: dict[str, str] | None = None,
                swaths: Sequence[str] | None = None,
                denoise: bool = True) -> dict[str, np.ndarray]:
    """Per covered tile: backscatter (npol, 448, 448) in dB from one IW SLC.

    Pair-level convenience API over grd_tiles (errors as in process_pair).
    """
    pols = [p.upper() for p in polarisations]
    prod = open_product(safe, pols, orbit_dir, swaths)
    try:
        return dict(_unwrap(grd_tiles(prod, tiles, dem, pols, kind, denoise), errors))
    finally:
        prod.close()
