"""`s1unw` of a block unit: the tiles' 80 m phase and coherence, unwrapped once per block.

The block unit (s1work.py) resamples each tile's stack once; the same stack gives `s1coh`,
`s1ifg` and, for `s1unw`, the 80 m wrapped phase and coherence of the pair's first
polarisation (`sar.pipeline.pair_layers`). Those small rasters (56 x 56 per tile) are held
here until the unit's last tile, then each pair label and track is stitched into one mosaic,
unwrapped by SNAPHU (sar/unwrap.py) and cut back into tiles: tiles of a block share one
phase reference per connected component. Layover/shadow cells (the track geometry's bits,
any 10 m sample of the 80 m cell) are masked. A SNAPHU failure fails that pair's tiles only,
with its one-line reason; a pair with nothing to unwrap is nodata.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import BadInput, TransientError
from .base import TileRef, TileResult
from .s1stack import Processing

#: the layover/shadow mask's grid (m): the track geometry at 40 m, 16x cheaper than at 10 m,
#: still 4 samples a side per 80 m cell (a cell is masked if any of them is)
MASK_RES = 40.0


@dataclass
class _Entry:
    tile: TileRef
    data: np.ndarray | None  # (2, n, n): wrapped phase, coherence
    valid: np.ndarray | None  # (n, n) bool
    items: tuple[str, ...]
    error: str | None


@dataclass
class BlockUnwrapper:
    """Collects each tile's unwrapping input per (pair label, track); `results` unwraps."""

    entries: dict[tuple[str, str], list[_Entry]] = field(default_factory=dict)

    def add(self, tile: TileRef, label: str, track: str, data: np.ndarray | None,
            geometry: np.ndarray | None, items: tuple[str, ...], error: str | None) -> None:
        """`data` (2, n, n) from pair_layers' "s1unw"; `geometry` the tile's (3, H, W)
        s1geom (band 2: layover/shadow bits) or None."""
        valid = None
        if data is not None and geometry is not None:
            bits = np.nan_to_num(geometry[2], nan=1.0) > 0
            f = bits.shape[0] // data.shape[1]
            if f >= 1 and bits.shape[0] == f * data.shape[1]:
                n = data.shape[1]
                valid = ~bits.reshape(n, f, n, f).any(axis=(1, 3))
        self.entries.setdefault((label, track), []).append(
            _Entry(tile, data, valid, items, error))

    @staticmethod
    def mask_geometry(tile: TileRef, path: str | None, proc: Processing, needed: bool = True
                      ) -> tuple[np.ndarray | None, str | None]:
        """The tile's track geometry at MASK_RES for the layover/shadow mask (when the unit
        computes no `s1geom` of the tile): (geometry or None, failure or None)."""
        if path is None or not needed:
            return None, None
        import dataclasses

        from ..sar.trackgeom import track_geometry

        coarse = dataclasses.replace(tile, grid=tile.grid_at(MASK_RES))
        try:
            return track_geometry(path, [coarse], proc.dem, orbit_dir=proc.orbits
                                  ).get(tile.id), None
        except (BadInput, TransientError):
            raise
        except Exception as e:  # noqa: BLE001 - this tile's mask, so this tile's s1unw
            return None, f"layover/shadow mask: {type(e).__name__}: {e}"

    def results(self) -> Iterator[TileResult]:
        """One TileResult per added tile: unwrapped per (label, track) mosaic."""
        from ..sar.unwrap import UNW_RES, TileInput, unwrap_tiles

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
