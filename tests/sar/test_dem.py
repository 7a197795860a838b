"""GeoTiffDem from several tile threads at once: each thread reads through its own file."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from m3leo_tiles.sar.dem import GeoTiffDem
from m3leo_tiles.sources.base import TileRef


def test_one_dem_serves_several_threads_at_once(small_sim):
    path = str(small_sim / "rasters" / "dem.tif")
    tiles = [TileRef.from_id(t)
             for t in json.loads((small_sim / "simulation.json").read_text())["tiles"]]
    dem = GeoTiffDem(path)
    # quarter-tile grids at 20 m, shifted: many distinct warps, not one cached answer
    grids = [replace(t.grid, dx=20.0, dy=20.0, width=112, height=112,
                     x0=t.grid.x0 + 20 * ox, y0=t.grid.y0 - 20 * oy)
             for t in tiles for ox in (0, 37, 81) for oy in (0, 53, 97)]
    want = [GeoTiffDem(path)(g) for g in grids]
    assert np.isfinite(np.concatenate([w.ravel() for w in want])).mean() > 0.9
    with ThreadPoolExecutor(2) as ex:
        got = list(ex.map(dem, grids * 4))
    for w, g in zip(want * 4, got, strict=True):
        assert np.array_equal(w, g, equal_nan=True)
    # a pickled copy (what a worker process gets) opens its own files
    again = pickle.loads(pickle.dumps(dem))
    assert np.array_equal(again(grids[0]), want[0], equal_nan=True)
