"""Score `s1unw` against the simulator's unwrapped-phase truth (issue 22 item 2).

The simulator (m3leo_tiles.simulator, `deformation_cm`) makes a deformation bowl with several
fringes per pair; its truth holds the unwrapped LOS phase 4 pi (d2 - d1) / lambda per
consecutive pair on each tile's 10 m grid, averaged here onto the 80 m cells. `s1unw` comes
from the archive source's block units (the production path: one SNAPHU run per block). Per
connected component (labels are the block mosaic's, so a component crossing a tile seam is
one component):
- after removing the component's median offset (2 pi k + c), RMS <= 0.3 rad over cells of
  true coherence >= 0.4 that are not unwrapping errors;
- cells off by more than pi from their component's offset (unwrapping errors) <= 1% of the
  labelled cells;
- >= 95% of the cells wholly of a coherent class (bare, urban, cropland) are labelled.
Components are per SNAPHU run, i.e. per block. Seams: the largest offset jump across a tile
seam inside one block, cells of one component on both sides (`unw_seam_offset_rad`, ~0 when
one reference holds); the jumps across block seams (`unw_block_seam_offsets_rad`,
2 pi k + c); and, unwrapping every tile alone (block = 1 tile), the jumps across every seam
(`unw_tile_alone_seam_offsets_rad`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from m3leo_tiles.grid.tileref import TileRef
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.periods import request
from m3leo_tiles.simulator import simulate
from m3leo_tiles.sources.base import PlanRequest
from m3leo_tiles.sources.s1 import S1ArchiveSource
from m3leo_tiles.sources.s1blocks import BLOCK, block_of

COHERENT = (3, 4, 5)  # cropland, bare, urban
N80 = 56


def simulate_defo(out: Path, size: str = "small", deformation_cm: float = 10.0,
                  seed: int = 0) -> Path:
    simulate(out, size=size, seed=seed, deformation_cm=deformation_cm, force=True)
    return out


def unwrapped(sim: Path, block: int = 8) -> dict[str, np.ndarray]:
    """tile -> (2, 56, 56) s1unw of the simulation's first pair, from the archive source."""
    m = json.loads((sim / "simulation.json").read_text())
    refs = [TileRef.from_id(t) for t in m["tiles"]]
    src = S1ArchiveSource(archive=str(sim / "s1"), dem=str(sim / "rasters" / "dem.tif"),
                          block=block)
    mod = get_modality("s1unw")
    first = src.pairs()[0].label
    period = next(p for p in src.periods(mod, request("pair", m["dates"][0][:4]), refs)
                  if p.label == first)
    out = {}
    by_id = {t.id: t for t in refs}
    for unit in src.plan_all([PlanRequest(mod, period, refs)]):
        for r in src.read(unit, by_id, mod, period):
            if r.modality == "s1unw" and r.status == "done" and r.data is not None:
                out[r.tile] = r.data
            elif r.modality == "s1unw" and r.status == "failed":
                raise RuntimeError(f"s1unw failed on {r.tile}: {r.error}")
    return out


def _cells(x: np.ndarray, how: str = "mean") -> np.ndarray:
    c = x.reshape(N80, x.shape[0] // N80, N80, x.shape[1] // N80)
    return c.mean(axis=(1, 3)) if how == "mean" else c.all(axis=(1, 3))


def score(sim: Path, res: dict[str, np.ndarray], alone: dict[str, np.ndarray] | None = None,
          block: int = BLOCK) -> dict:
    m = json.loads((sim / "simulation.json").read_text())
    resid, comp, cohs, coherent, tiles, truths, blocks = [], [], [], [], [], [], []
    for t in m["tiles"]:
        tr = np.load(sim / "truth" / f"{t}.npz")
        if t not in res:
            continue
        truth = _cells(tr["unw_phase"][0])
        u, cc = res[t]
        resid.append(u - truth)
        truths.append(truth)
        comp.append(cc)
        blocks.append(block_of(t, block))
        cohs.append(_cells(tr["coherence"]))
        coherent.append(_cells(np.isin(tr["classes"], COHERENT), "all"))
        tiles.append(t)
    if not tiles:
        return {"unw_truth_ok": False, "unw_note": "no tile unwrapped"}
    r, c = np.stack(resid), _global_labels(np.stack(comp), blocks)
    coh, coherent_ = np.stack(cohs), np.stack(coherent)
    offsets = {}
    err = np.zeros(r.shape, bool)
    dev = np.full(r.shape, np.nan)
    for label in np.unique(c[c > 0]).tolist():
        inside = c == label
        off = float(np.median(r[inside]))
        offsets[label] = off
        d = r[inside] - off
        dev[inside] = d
        err[inside] = np.abs(d) > np.pi
    labelled = c > 0
    good = labelled & ~err & (coh >= 0.4)
    rms = float(np.sqrt(np.mean(dev[good] ** 2))) if good.any() else float("inf")
    err_frac = float(err[labelled].mean()) if labelled.any() else 1.0
    cover = float(labelled[coherent_].mean()) if coherent_.any() else 0.0
    out = {
        "unw_tiles": len(tiles), "unw_components": len(offsets),
        "unw_rms_rad": round(rms, 4), "unw_error_frac": round(err_frac, 5),
        "unw_coherent_labelled_frac": round(cover, 4),
        "unw_cells_scored": int(good.sum()),
        "unw_truth_range_rad": round(float(np.ptp(np.stack(truths))), 2),
        "unw_seam_offset_rad": _seams(tiles, r, c, blocks, True),
        "unw_block_seam_offsets_rad": _seams(tiles, r, c, blocks, False),
    }
    if alone is not None:
        pick = [k for k, t in enumerate(tiles) if t in alone]
        out["unw_tile_alone_seam_offsets_rad"] = _tile_offsets(
            [tiles[k] for k in pick], [alone[tiles[k]][0] - truths[k] for k in pick])
    out["unw_truth_ok"] = bool(good.sum() >= 100 and rms <= 0.3 and err_frac <= 0.01
                               and cover >= 0.95)
    return out


def _neighbours(tiles: list[str]) -> list[tuple[int, int, str]]:
    """(k, k2, side) of tiles k, k2 that touch: k2 east ("x") or south ("y") of k."""
    pos = {}
    for k, t in enumerate(tiles):
        z, col, row = t.split("-")[:3]
        pos[(z, int(col), int(row))] = k
    out = []
    for (z, col, row), k in pos.items():
        if (z, col + 1, row) in pos:
            out.append((k, pos[(z, col + 1, row)], "x"))
        if (z, col, row - 1) in pos:  # rows count northwards: row - 1 is south
            out.append((k, pos[(z, col, row - 1)], "y"))
    return out


def _edge(a: np.ndarray, side: str, first: bool) -> np.ndarray:
    if side == "x":
        return a[..., :, -1] if first else a[..., :, 0]
    return a[..., -1, :] if first else a[..., 0, :]


def _global_labels(c: np.ndarray, blocks: list[tuple]) -> np.ndarray:
    """Component labels unique across blocks: each block is its own SNAPHU run."""
    out = np.zeros(c.shape, np.int64)
    ids: dict[tuple, int] = {}
    for k, b in enumerate(blocks):
        for label in np.unique(c[k][c[k] > 0]).tolist():
            out[k][c[k] == label] = ids.setdefault((b, label), len(ids) + 1)
    return out


def _seams(tiles: list[str], r: np.ndarray, c: np.ndarray, blocks: list[tuple],
           inside: bool) -> float | list[float] | None:
    """Offset jumps (rad, median over the seam's cells) across tile seams: inside blocks,
    between cells of one component, the largest |jump|; between blocks, every jump."""
    jumps = []
    for k, k2, side in _neighbours(tiles):
        if (blocks[k] == blocks[k2]) != inside:
            continue
        a, b = _edge(r[k], side, True), _edge(r[k2], side, False)
        ca, cb = _edge(c[k], side, True), _edge(c[k2], side, False)
        ok = (ca > 0) & (cb > 0) & np.isfinite(a) & np.isfinite(b)
        if inside:
            ok &= ca == cb
        if ok.sum() >= 5:
            jumps.append(round(float(np.median(b[ok] - a[ok])), 4))
    if inside:
        return float(np.max(np.abs(jumps))) if jumps else None
    return jumps


def _tile_offsets(tiles: list[str], r: list[np.ndarray]) -> list[float]:
    """Offset jumps (rad) across seams when every tile is unwrapped alone."""
    out = []
    for k, k2, side in _neighbours(tiles):
        a, b = _edge(r[k], side, True), _edge(r[k2], side, False)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 5:
            out.append(round(float(np.median(b[ok] - a[ok])), 3))
    return out


def unw_truth_checks(sim: Path | None = None, size: str = "small",
                     deformation_cm: float = 10.0) -> dict:
    """Simulate (seeded, with `deformation_cm`) unless given, then score s1unw."""
    if sim is not None:
        return score(sim, unwrapped(sim), unwrapped(sim, block=1))
    with tempfile.TemporaryDirectory() as d:
        s = simulate_defo(Path(d) / "defo", size, deformation_cm)
        return score(s, unwrapped(s), unwrapped(s, block=1))
