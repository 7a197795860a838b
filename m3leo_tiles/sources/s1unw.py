"""`s1unw` of a block unit: the tiles' 80 m phase and coherence, unwrapped once per block.

The block unit (s1work.py) resamples each tile's stack once; the same stack gives `s1coh`,
`s1ifg` and, for `s1unw`, the 80 m wrapped phase and coherence of the pair's first
polarisation (`sar.pipeline.pair_layers`). Those small rasters (56 x 56 per tile) are held
here until the unit's last tile, then each pair label and track is stitched into one mosaic,
unwrapped by SNAPHU (sar/unwrap.py) and cut back into tiles: tiles of a block share one
phase reference per connected component. Layover/shadow cells (the track geometry's bits,
any sample of the 80 m cell: s1geom's at 10 m when the unit makes it, else one
`track_geometry` call per product at MASK_RES for all the unit's tiles) are masked. A SNAPHU
failure fails that pair's tiles only, with its one-line reason; a pair with nothing to
unwrap is nodata.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadInput, TransientError
from .base import TileRef, TileResult
from .s1stack import Processing

#: the layover/shadow mask's grid (m): the track geometry at 40 m, 16x cheaper than at 10 m,
#: still 2 x 2 samples per 80 m cell (a cell is masked if any of them is)
MASK_RES = 40.0


@dataclass
class _Entry:
    tile: TileRef
    data: np.ndarray | None  # (2, n, n): wrapped phase, coherence
    valid: np.ndarray | None  # (n, n) bool
    items: tuple[str, ...]
    error: str | None
    mask_from: str | None = None  # product whose track geometry gives `valid` (batched)


def _valid(geometry: np.ndarray, n: int) -> np.ndarray | None:
    """(n, n) cells free of layover/shadow: none of the geometry's samples in a cell has a
    bit (band 2; NaN, no swath, counts as masked)."""
    bits = np.nan_to_num(geometry[2], nan=1.0) > 0
    f = bits.shape[0] // n
    if f < 1 or bits.shape[0] != f * n:
        return None
    return ~bits.reshape(n, f, n, f).any(axis=(1, 3))


@contextlib.contextmanager
def _numba_threads(n: int) -> Iterator[None]:
    """This thread's numba kernels on at most `n` threads inside the block (numba's setting
    is per thread). The mask's kernels run on 112 x 112 tiles: in parallel they spent more in
    their barriers than they gained (36 tiles, 2 cores: 0.41 CPU s on one thread, 1.1-1.4 on
    two, and 1.4-3.8 s of wall against 0.6-1.4 on a loaded machine)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(min(n, before))
    try:
        yield
    finally:
        numba.set_num_threads(before)


@dataclass
class BlockUnwrapper:
    """Collects each tile's unwrapping input per (pair label, track); `results` unwraps.

    `proc` (the unit's processing settings) computes the layover/shadow masks of tiles added
    with `mask_from`: one `track_geometry` call per track for all of them, at the end (per
    tile, a call's fixed costs were most of the mask's time)."""

    proc: Processing | None = None
    entries: dict[tuple[str, str], list[_Entry]] = field(default_factory=dict)

    def add(self, tile: TileRef, label: str, track: str, data: np.ndarray | None,
            geometry: np.ndarray | None, items: tuple[str, ...], error: str | None,
            mask_from: str | None = None) -> None:
        """`data` (2, n, n) from pair_layers' "s1unw"; `geometry` the tile's (3, H, W)
        s1geom (band 2: layover/shadow bits) or None; else `mask_from`, a product path whose
        track geometry at MASK_RES is computed in `results`."""
        valid = None
        if data is not None and geometry is not None:
            valid = _valid(geometry, data.shape[1])
            mask_from = None
        elif data is None:
            mask_from = None
        self.entries.setdefault((label, track), []).append(
            _Entry(tile, data, valid, items, error, mask_from))

    def _masks(self) -> None:
        """Fill `valid` (or the tile's error) of every entry added with `mask_from`.

        The geometry is the track's (as `s1geom`): per track and tile, that of the first
        product added for it, whichever pairs the unit holds; one call per product."""
        pending = [(track, e) for (_, track), es in self.entries.items() for e in es
                   if e.mask_from is not None and e.error is None]
        source: dict[tuple[str, str], str] = {}  # (track, tile) -> product path
        for track, e in pending:
            source.setdefault((track, e.tile.id), e.mask_from or "")
        todo: dict[str, dict[str, TileRef]] = {}
        for track, e in pending:
            todo.setdefault(source[(track, e.tile.id)], {})[e.tile.id] = e.tile
        got: dict[tuple[str, str], tuple[np.ndarray | None, str | None]] = {}
        for path, tiles in todo.items():
            got.update(((path, t), r) for t, r in self._geometry(path, list(tiles.values())
                                                                  ).items())
        for track, e in pending:
            geom, err = got[(source[(track, e.tile.id)], e.tile.id)]
            if err is not None:
                e.error = err
            elif geom is not None and e.data is not None:
                e.valid = _valid(geom, e.data.shape[1])
            e.mask_from = None

    def _geometry(self, path: str, tiles: list[TileRef]
                  ) -> dict[str, tuple[np.ndarray | None, str | None]]:
        """tile -> (track geometry at MASK_RES or None, failure or None), one call for all
        tiles; when it fails, tile by tile, so a failure stays with its own tile."""
        import dataclasses

        from ..sar.trackgeom import track_geometry

        if self.proc is None:
            raise ValueError("BlockUnwrapper needs `proc` for tiles added with mask_from")
        proc = self.proc
        coarse = [dataclasses.replace(t, grid=t.grid_at(MASK_RES)) for t in tiles]
        try:
            with _numba_threads(1):
                geo = track_geometry(path, coarse, proc.dem, orbit_dir=proc.orbits,
                                     bits_only=True)
            return {t.id: (geo.get(t.id), None) for t in tiles}
        except (BadInput, TransientError):
            raise
        except Exception as e:  # noqa: BLE001 - this tile's mask, so this tile's s1unw
            if len(tiles) == 1:
                return {tiles[0].id: (None, f"layover/shadow mask: {type(e).__name__}: {e}")}
        out: dict[str, tuple[np.ndarray | None, str | None]] = {}
        for t in tiles:  # the batch failed: find the tile(s) it belongs to
            out.update(self._geometry(path, [t]))
        return out

    def results(self) -> Iterator[TileResult]:
        """One TileResult per added tile: unwrapped per (label, track) mosaic."""
        from ..sar.unwrap import UNW_RES, TileInput, unwrap_tiles

        self._masks()
        for (label, _track), entries in sorted(self.entries.items()):
            inputs = {e.tile.id: TileInput(e.tile.grid_at(UNW_RES), e.data[0], e.data[1],
                                           e.valid)
                      for e in entries if e.error is None and e.data is not None}
            failure = None
            unw: dict[str, np.ndarray] = {}
            if inputs:
                try:
                    unw = unwrap_tiles(inputs)
                except (RuntimeError, OSError, ValueError) as err:  # SNAPHU failed: this pair only
                    first = (str(err).strip().splitlines() or [""])[-1]
                    failure = f"SNAPHU failed: {type(err).__name__}: {first}"[:300]
            for e in entries:
                error = e.error or (failure if e.tile.id in inputs else None)
                if error:
                    yield TileResult(e.tile.id, "failed", error=error, items=e.items,
                                     modality="s1unw", period=label)
                    continue
                data = unw.get(e.tile.id)
                if data is None or not np.isfinite(data[0]).any():
                    yield TileResult(e.tile.id, "nodata", items=e.items, modality="s1unw",
                                     period=label)
                    continue
                yield TileResult(e.tile.id, "done", data=data.astype(np.float32), items=e.items,
                                 modality="s1unw", period=label)
