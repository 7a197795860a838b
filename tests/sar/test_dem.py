"""GeoTiffDem from several tile threads at once: each thread reads through its own file."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from m3leo_tiles.grid.geobox import GeoBox
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


def test_a_dem_on_the_tile_lattice_reads_what_the_warp_gives(tmp_path, small_sim):
    """Grids whose pixels are the file's are read, not warped, with the warp's very values
    (nodata included); a grid half a pixel off, or at another size, is still warped."""
    import rasterio

    src = small_sim / "rasters" / "dem.tif"
    with rasterio.open(src) as r:
        prof = r.profile
        h = r.read(1)
    h[100:140, 200:260] = -9999.0  # a nodata hole
    path = tmp_path / "dem.tif"
    prof.update(nodata=-9999.0)
    with rasterio.open(path, "w", **prof) as r:
        r.write(h, 1)
    dem = GeoTiffDem(str(path))
    t = dem.transform
    grid = GeoBox(dem.epsg, t.c + 190 * t.a, t.f + 90 * t.e, t.a, -t.e, 120, 80)
    assert dem.on_grid(grid) is not None
    got = dem(grid)
    warped = _warped(dem, grid)
    assert np.isnan(got).sum() == 40 * 60 and np.array_equal(got, warped, equal_nan=True)
    for other in (replace(grid, x0=grid.x0 + t.a / 2), replace(grid, dx=2 * t.a, dy=-2 * t.e)):
        assert dem.on_grid(other) is None
        assert np.array_equal(dem(other), _warped(dem, other), equal_nan=True)


def _warped(dem: GeoTiffDem, grid: GeoBox) -> np.ndarray:
    import rasterio
    from rasterio.warp import Resampling, reproject

    out = np.full(grid.shape, np.nan, np.float32)
    with rasterio.open(dem.path) as r:
        reproject(rasterio.band(r, 1), out, src_nodata=dem.nodata, dst_nodata=np.nan,
                  dst_transform=grid.transform, dst_crs=grid.crs,
                  resampling=Resampling.bilinear)
    return out.astype(np.float64)
