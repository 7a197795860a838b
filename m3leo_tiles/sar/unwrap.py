"""Phase unwrapping of a block mosaic with SNAPHU (isce-framework's snaphu-py, issue 22).

`s1unw` is unwrapped on the 80 m rung (GUNW's scale): a block unit's tiles share one UTM
lattice, so their 80 m wrapped phase and coherence stitch into one raster (8 x 8 tiles =
448 x 448 px) that SNAPHU unwraps once, in statistical-cost mode, before it is cut back into
tiles. Tiles of one block then share one phase reference per connected component.

Looks: our estimator sums non-overlapping cells of geocoded `slc_res` samples. At 40 m (4 x 4
samples of 10 m) the measured zero-coherence floor gives N_eff = 11 (interferometry.py); the
looks grow with the cell's area, so an 80 m cell has 11 x 4 = 44 (`effective_looks`).

Mask: a cell is not unwrapped (conncomp 0, unw NaN) where it has no phase, where the caller
marks it invalid (layover/shadow from the track geometry), or where the mean coherence of
its 3 x 3 neighbourhood is below `COH_MIN` = 0.25. With 44 looks a cell of true coherence 0
(water) reads 0.886 / sqrt(44) = 0.13 on average with a spread of 0.07 (Touzi et al. 1999;
measured on the simulator: 0.14 +- 0.07), cropland (0.4 at 12 days) 0.40 +- 0.10: one cell
alone would cut 8% of cropland and keep 7% of water; the 3 x 3 mean (spread / 3) separates
them (0.25 is > 4 spreads from both). SNAPHU gets each cell's own coherence for its costs;
its own components (conncomp > 0) do the rest.

Initialisation: SNAPHU's nonlinear solver starts from an MST or an MCF solution and, on our
mosaics, converges to the same answer from either (identical cells and labels on the 36-tile
10 cm bowl and the small pair, tests/sar/unwtruth.py), but MCF's L1 solve took 3.6 s of a
616 x 280 mosaic where MST takes 0.2 s: INIT = "mst" (SNAPHU's own default; snaphu-py's is
MCF).

Reference convention: SNAPHU's output is wrapped phase + 2 pi n, continuous inside each
component, with an arbitrary integer level per component. We shift each component by a
multiple of 2 pi so that its median lies in (-pi, pi]: reproducible, and `wrap(unw_VV)` is
the 80 m wrapped phase wherever a cell is unwrapped. Against any truth, unw_VV - truth is one
constant 2 pi k + c per component (c: the interferogram's own absolute phase).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ..grid.geobox import GeoBox

UNW_RES = 80.0  # metres: the s1unw rung
COH_MIN = 0.25  # see the module docstring
LOOKS_40M = 11.0  # measured N_eff of a 4 x 4 cell of 10 m samples (interferometry.py)
INIT = "mst"  # SNAPHU's initialisation, see the module docstring
MIN_CELLS = 16  # fewer valid cells than this: nothing to unwrap
_QUIET = threading.Lock()


def effective_looks(res: float = UNW_RES, slc_res: float = 10.0) -> float:
    """Independent looks of one `res` cell of geocoded `slc_res` samples (area scaling)."""
    return max(1.0, LOOKS_40M * (res / 40.0) ** 2 * (10.0 / slc_res) ** 2)


@dataclass(frozen=True)
class Unwrapped:
    """SNAPHU's answer on one raster: `unw` (rad, NaN where not unwrapped) and `conncomp`
    (uint32 labels, 0 = not unwrapped)."""

    unw: np.ndarray
    conncomp: np.ndarray


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """SNAPHU writes its progress to the process's stdout (fd 1), which our CLI keeps for
    results: point fd 1 at /dev/null for the call (one call at a time per process)."""
    with _QUIET:
        saved = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)


def unwrap_phase(phase: np.ndarray, coherence: np.ndarray, valid: np.ndarray | None = None,
                 nlooks: float | None = None, coh_min: float = COH_MIN,
                 cost: str = "smooth", init: str = INIT) -> Unwrapped:
    """Unwrap one raster of wrapped phase (rad) with its coherence.

    `valid` (bool, optional) marks cells that may be unwrapped (False: layover/shadow).
    RuntimeError (SNAPHU's own message) when SNAPHU fails; an all-masked raster returns all
    NaN / 0 without calling it.
    """
    import snaphu

    phase = np.asarray(phase, np.float32)
    coh = np.asarray(coherence, np.float32)
    if phase.shape != coh.shape or phase.ndim != 2:
        raise ValueError(f"phase {phase.shape} and coherence {coh.shape} must be one 2-D shape")
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(phase) & np.isfinite(coh) & (local_coherence(coh) >= coh_min)
    if valid is not None:
        mask &= np.asarray(valid, bool)
    unw = np.full(phase.shape, np.nan, np.float32)
    cc = np.zeros(phase.shape, np.uint32)
    if mask.sum() < MIN_CELLS:
        return Unwrapped(unw, cc)
    igram = np.where(mask, np.exp(1j * np.where(mask, phase, 0)), 0).astype(np.complex64)
    corr = np.where(mask, np.clip(coh, 0, 1), 0).astype(np.float32)
    looks = effective_looks() if nlooks is None else float(nlooks)
    with _quiet():
        u, c = snaphu.unwrap(igram, corr, nlooks=looks, cost=cost, init=init,
                             mask=mask.astype(np.uint8), min_conncomp_frac=0.002)
    c = np.where(mask, c, 0).astype(np.uint32)
    for label in np.unique(c[c > 0]).tolist():
        inside = c == label
        vals = u[inside]
        k = np.round(float(np.median(vals)) / (2 * np.pi))
        unw[inside] = vals - 2 * np.pi * k
    return Unwrapped(unw, c)


def local_coherence(coh: np.ndarray, size: int = 3) -> np.ndarray:
    """NaN-aware mean coherence over `size` x `size` cells: the mask's statistic."""
    from scipy import ndimage

    ok = np.isfinite(coh)
    num = ndimage.uniform_filter(np.where(ok, coh, 0).astype(np.float64), size, mode="nearest")
    den = ndimage.uniform_filter(ok.astype(np.float64), size, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok & (den > 0), num / den, np.nan).astype(np.float32)


def wrap(x: np.ndarray) -> np.ndarray:
    """Phase wrapped to (-pi, pi]."""
    return np.angle(np.exp(1j * np.asarray(x, np.float64))).astype(np.float32)


@dataclass(frozen=True)
class TileInput:
    """One tile's unwrapping input on its `UNW_RES` grid: wrapped phase, coherence and the
    cells that may be unwrapped (False: layover/shadow), all (n, n)."""

    grid: GeoBox
    phase: np.ndarray
    coherence: np.ndarray
    valid: np.ndarray | None = None


def mosaic_groups(tiles: Mapping[str, TileInput]) -> list[list[str]]:
    """Tiles that stitch into one raster: those of one projected CRS and pixel size (a block's
    tiles share a UTM lattice); lon/lat tiles (adopted M3LEO grids) stand alone."""
    groups: dict[tuple, list[str]] = {}
    for tid in sorted(tiles):
        g = tiles[tid].grid
        key: tuple = (tid,) if g.epsg == 4326 else (g.epsg, g.dx, g.dy)
        groups.setdefault(key, []).append(tid)
    return [groups[k] for k in sorted(groups, key=str)]


def unwrap_tiles(tiles: Mapping[str, TileInput], nlooks: float | None = None,
                 cost: str = "smooth") -> dict[str, np.ndarray]:
    """Per tile (2, n, n) float32: unwrapped phase (NaN where not unwrapped) and component
    label (0 = not unwrapped), from ONE SNAPHU run per mosaic group (`mosaic_groups`).

    Labels are the mosaic's: a component that crosses a tile seam keeps its label and its
    reference on both sides. RuntimeError when SNAPHU fails.
    """
    out: dict[str, np.ndarray] = {}
    for group in mosaic_groups(tiles):
        grids = [tiles[t].grid for t in group]
        x0 = min(g.x0 for g in grids)
        y0 = max(g.y0 for g in grids)
        dx, dy = grids[0].dx, abs(grids[0].dy)
        at = {t: (int(round((y0 - g.y0) / dy)), int(round((g.x0 - x0) / dx)))
              for t, g in zip(group, grids, strict=True)}
        h = max(r + g.height for (r, _), g in zip(at.values(), grids, strict=True))
        w = max(c + g.width for (_, c), g in zip(at.values(), grids, strict=True))
        ph = np.full((h, w), np.nan, np.float32)
        coh = np.full((h, w), np.nan, np.float32)
        ok = np.zeros((h, w), bool)
        for t in group:
            r, c = at[t]
            ti = tiles[t]
            win = np.s_[r:r + ti.grid.height, c:c + ti.grid.width]
            ph[win], coh[win] = ti.phase, ti.coherence
            ok[win] = True if ti.valid is None else ti.valid
        res = unwrap_phase(ph, coh, ok, nlooks, cost=cost)
        for t in group:
            r, c = at[t]
            g = tiles[t].grid
            win = np.s_[r:r + g.height, c:c + g.width]
            out[t] = np.stack([res.unw[win], res.conncomp[win].astype(np.float32)])
    return out
