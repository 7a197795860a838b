"""A stack, not pairs: each acquisition of one track resampled onto a tile once.

For one tile and N products of one track (time order), every date is geocoded onto the tile
grid once: the first date that covers the tile picks the burst of each pixel (a burst overlap
split at its middle) and every other date takes the matching burst (radargrid.geocode_grid's
`match`), so any two dates see a pixel through the same Doppler history. Per date the stack
holds the flattened complex SLC per polarisation (complex64, at `slc_res`, 10 m by default)
and the calibrated backscatter per polarisation (float32 linear power, at the tile's 10 m).
Any pair (i, j) then gives coherence and wrapped phase by block sums (interferometry.py) with
no further resampling: for 8 dates and every baseline up to 48 days, 8 resamplings serve 22
pairs instead of 44 (issue 13). Memory per tile: dates x pols x 448 x 448 x 12 bytes
(about 19 MB for 8 dates of VV + VH).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from ..errors import DemError, PairError, SarError
from ..grid.geobox import GeoBox
from .interferometry import block_coherence
from .product import Product, check_same_track, open_product
from .radargrid import DemFn, GridPoints, TileGeometry, geocode_grid, grid_at, tile_points
from .resample import geocode_layers
from .tilepool import map_tiles
from .timing import stage

T = TypeVar("T")


@dataclass(frozen=True)
class TileOutput(Generic[T]):
    """One tile's answer: a value, nothing (the products do not cover it), or an error."""

    tile: str
    value: T | None = None
    error: SarError | None = None

    @property
    def message(self) -> str | None:
        """The error as one line, "DemError: ..." (what the runner records), or None."""
        return None if self.error is None else f"{type(self.error).__name__}: {self.error}"

    @property
    def status(self) -> str:
        """"done", "nodata" (not covered) or "failed" (the error says why)."""
        if self.error is not None:
            return "failed"
        return "nodata" if self.value is None else "done"


@dataclass(frozen=True)
class TileStack:
    """Dates of one track on one tile: complex SLC and backscatter per date and polarisation.

    slc: complex64 (dates, len(slc_pols), H, W) on the tile's `slc_res` grid, flattened
    (exp(+j 4 pi R / lambda) applied with each date's own range), or None if not asked for.
    power: float32 linear (dates, len(pols), H10, W10) on the tile's 10 m grid, or None.
    NaN where a date does not cover a pixel. `ref` is the date whose bursts the others match.
    """

    tile: str
    products: tuple[str, ...]
    times: tuple[np.datetime64, ...]
    pols: tuple[str, ...]
    slc_pols: tuple[str, ...]
    slc: np.ndarray | None
    power: np.ndarray | None
    slc_res: float
    power_res: float
    ref: int

    def days(self, i: int, j: int) -> float:
        """Temporal baseline of dates i and j in days (positive when j is later)."""
        return float((self.times[j] - self.times[i]) / np.timedelta64(1, "s")) / 86400.0


def _geocode_on(products: Sequence[Product], grid: GeoBox, dem: DemFn
                ) -> tuple[list[TileGeometry], int | None]:
    """Every date geocoded onto one grid of the tile (its DEM points read once)."""
    with stage("dem"):
        xyz = tile_points(grid, dem)
    with stage("geocode"):
        return _geocode_dates(products, xyz)


def _geocode_dates(products: Sequence[Product], xyz: np.ndarray | GridPoints
                   ) -> tuple[list[TileGeometry], int | None]:
    """Radar coordinates of every date; the first covering date is the burst reference."""
    geoms: list[TileGeometry] = []
    ref: int | None = None
    for k, prod in enumerate(products):
        g = geocode_grid(prod, xyz, match=None if ref is None else geoms[ref])
        if ref is None and g.covered.any():
            ref = k
        geoms.append(g)
    return geoms, ref


def resample_stack(products: Sequence[Product], tile: Any, dem: DemFn,
                   pols: Sequence[str] = ("VV", "VH"), *, slc: bool = True,
                   power: bool = True, slc_pols: Sequence[str] | None = None,
                   slc_res: float = 10.0, kind: str = "sigma0",
                   denoise: bool = True) -> TileStack | None:
    """Resample every date onto one tile once; None when no date covers the tile.

    `tile` is a TileRef (id, 10 m `grid`, `grid_at(res)`); `products` are open products of
    one track in time order (iter_stack checks that). `slc_pols` (default `pols`) limits the
    complex layers, `kind` is the backscatter: "sigma0", "gamma0" (ellipsoid) or "beta0".
    Raises DemError when the DEM does not cover the tile.
    """
    pols = tuple(p.upper() for p in pols)
    cpols = pols if slc_pols is None else tuple(p.upper() for p in slc_pols)
    g10 = tile.grid
    same = slc_res == g10.dx
    want = pols if power else cpols
    cpx10: list[dict[str, np.ndarray]] = []
    ref: int | None = None
    cube = power_cube = None
    if power or (slc and same):
        geoms, ref = _geocode_on(products, g10, dem)
        if ref is None:
            return None
        nd = len(products)
        # the layers are written in place into the stack's arrays when they are exactly them
        direct_c = slc and same and cpols == want
        if direct_c:
            cube = np.full((nd, len(cpols)) + g10.shape, np.nan + 1j * np.nan, np.complex64)
        if power:
            power_cube = np.full((nd, len(pols)) + g10.shape, np.nan, np.float32)
        for d, (prod, geo) in enumerate(zip(products, geoms, strict=True)):
            c, _ = geocode_layers(prod, geo, want, complex_=slc and same, power=power,
                                  res=g10.dx, kind=kind, denoise=denoise,
                                  out_c=None if cube is None else cube[d],
                                  out_p=None if power_cube is None else power_cube[d])
            cpx10.append(c)
    if slc and same:
        if cube is None:  # the complex layers were a different set of polarisations
            cube = np.stack([np.stack([c[p] for p in cpols]) for c in cpx10])
    elif slc:
        gslc = grid_at(tile, slc_res)
        geoms_c, ref_c = _geocode_on(products, gslc, dem)
        if ref_c is None:
            return None
        ref = ref if ref is not None else ref_c
        cube = np.stack([np.stack([geocode_layers(prod, geo, cpols, complex_=True,
                                                  power=False)[0][p] for p in cpols])
                         for prod, geo in zip(products, geoms_c, strict=True)])
    assert ref is not None
    return TileStack(
        tile=tile.id, products=tuple(p.path for p in products),
        times=tuple(p.geometry[0].t_ref for p in products), pols=pols, slc_pols=cpols,
        slc=cube, power=power_cube, slc_res=float(slc_res), power_res=float(g10.dx), ref=ref)


def pair_coherence(stack: TileStack, i: int, j: int, res: float = 40.0,
                   pols: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coherence and wrapped phase arg(g_i conj(g_j)) of dates (i, j) at `res` metres.

    Cells of res / slc_res samples square (4 x 4 at 40 m from 10 m); float32
    (len(pols), n, n) each, NaN where fewer than half a cell's samples are valid in both.
    A range increase d from date i to date j reads +4 pi d / lambda.
    """
    if stack.slc is None:
        raise ValueError("this stack holds no complex layers (resample_stack(slc=False))")
    names = stack.slc_pols if pols is None else tuple(p.upper() for p in pols)
    f = int(round(res / stack.slc_res))
    coh, pha = [], []
    with stage("coherence"):
        for p in names:
            k = stack.slc_pols.index(p)
            c, ph = block_coherence(stack.slc[i, k], stack.slc[j, k], f)
            coh.append(c)
            pha.append(ph)
    return np.stack(coh), np.stack(pha)


def open_stack(paths: Sequence[str], pols: Sequence[str], orbit_dir: str | None = None,
               swaths: Sequence[str] | None = None) -> list[Product]:
    """Open the products of one track; PairError unless they share it and come in time order."""
    prods: list[Product] = []
    try:
        for path in paths:
            prods.append(open_product(path, pols, orbit_dir, swaths))
        for a, b in zip(prods, prods[1:], strict=False):
            check_same_track(prods[0], b)
            if b.geometry[0].t_ref <= a.geometry[0].t_ref:
                raise PairError(f"{b.path}: not after {a.path} (give the dates in time order)")
    except BaseException:
        for p in prods:
            p.close()
        raise
    return prods


def stack_tiles(products: Sequence[Product], tiles: Iterable[Any], dem: DemFn,
                pols: Sequence[str] = ("VV", "VH"), then: Callable[[TileStack], Any] | None = None,
                threads: int | None = None, **kw: Any) -> Iterator[TileOutput[Any]]:
    """resample_stack per tile, one TileOutput each (a DEM gap fails only its tile), in tile
    order; tiles run on `threads` threads (tilepool.map_tiles; default: Numba's count).

    `then(stack)` turns a tile's stack into the value yielded (None: nothing), on the tile's
    thread; the default yields the stack itself. `dem` must take calls from several threads
    (GeoTiffDem does: one open file per thread).
    """
    def one(tile: Any) -> TileOutput[Any]:
        try:
            st = resample_stack(products, tile, dem, pols, **kw)
        except DemError as e:
            return TileOutput(tile.id, error=e)
        return TileOutput(tile.id, st if then is None or st is None else then(st))

    return map_tiles(one, tiles, threads)


def iter_stack(paths: Sequence[str], tiles: Iterable[Any], dem: DemFn,
               pols: Sequence[str] = ("VV", "VH"), orbit_dir: str | None = None,
               swaths: Sequence[str] | None = None, **kw: Any
               ) -> Iterator[TileOutput[TileStack]]:
    """Open the products, then stack_tiles: the few tiles in flight (one per tile thread and
    one ahead) in memory at a time."""
    prods = open_stack(paths, pols, orbit_dir, swaths)
    try:
        yield from stack_tiles(prods, tiles, dem, pols, **kw)
    finally:
        for p in prods:
            p.close()
