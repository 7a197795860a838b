"""`gunw`: ARIA S1 GUNW standard products from ASF onto the 80 m tile grids (issue 22 item 3).

The M3LEO-compatible layer, as `s1grd-ee` is for GRD: GUNW_STD products found through
`asf_search` (s1/gunw.py), downloaded with our resumable, verified downloader into the shared
cache, and the `/science/grids/data` layers (unwrappedPhase, coherence, connectedComponents,
amplitude) read from the NetCDF on its 3 arc-second lat/lon grid (latitude decreasing).
Only the window around a unit's tiles is read. Resampling onto the tile's 80 m UTM grid:
connectedComponents by nearest neighbour; the continuous layers bilinear where the four
neighbouring samples are valid and lie in the nearest sample's component (never across a
component border), else the nearest sample. GUNW fill values (0 for phase, coherence and
amplitude, -1 for components) read as NaN. Units: one per (pair label, block of tiles),
holding every product of the label that touches the block (neighbouring frames of one
track): a tile takes, per cell, the first product with data there. A product that does not
reach a tile leaves it nodata; a corrupt or truncated NetCDF fails its unit with one line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from ...errors import PermanentError
from ...s1.gunw import GunwProduct
from ..base import PlanRequest, TileRef, TileResult, WorkUnit
from ..s1blocks import BLOCK, block_of

GUNW_BANDS = ("unwrappedPhase", "coherence", "connectedComponents", "amplitude")
DATA_GROUP = "science/grids/data"
COMPONENTS = GUNW_BANDS.index("connectedComponents")


@dataclass(frozen=True)
class GunwRecord:
    """What a worker needs of one product: where it comes from (picklable)."""

    name: str
    url: str | None
    size: int | None
    md5: str | None


@dataclass(frozen=True, eq=False)
class GunwWork:
    """A gunw unit's products (every product of the label touching the block)."""

    products: tuple[GunwRecord, ...]


def plan_gunw(requests: Sequence[PlanRequest], products: Sequence[GunwProduct],
              block: int = BLOCK) -> list[WorkUnit]:
    """One unit per (pair label, block of tiles) that some product of the label touches."""
    by_label: dict[str, list[GunwProduct]] = {}
    for g in products:
        by_label.setdefault(g.label, []).append(g)
    units = []
    for r in requests:
        prods = by_label.get(r.period.label, [])
        if not prods or not r.tiles:
            continue
        tree = shapely.STRtree([t.polygon for t in r.tiles])
        blocks: dict[tuple, dict[str, set[int]]] = {}
        for k, g in enumerate(prods):
            for i in tree.query(g.footprint, predicate="intersects").tolist():
                tid = r.tiles[i].id
                blocks.setdefault(block_of(tid, block), {}).setdefault(tid, set()).add(k)
        for bkey in sorted(blocks, key=str):
            tiles = tuple(sorted(blocks[bkey]))
            used = sorted({k for ks in blocks[bkey].values() for k in ks})
            work = GunwWork(tuple(GunwRecord(prods[k].name, prods[k].url, prods[k].size,
                                             prods[k].md5) for k in used))
            units.append(WorkUnit("gunw", r.period.label, tiles,
                                  key="-".join(str(x) for x in bkey) + f":gunw:{r.period.label}",
                                  items=tuple(p.name for p in work.products), payload=work))
    return units


@dataclass(frozen=True)
class GunwWindow:
    """The part of one product's data layers around some tiles: (4, ny, nx) float32, NaN
    where the product has no data; `lat` decreasing, `lon` increasing (pixel centres)."""

    lat: np.ndarray
    lon: np.ndarray
    data: np.ndarray


def read_window(path: str | Path, bounds: tuple[float, float, float, float],
                name: str = "") -> GunwWindow | None:
    """The data layers inside lon/lat `bounds` (plus one sample), None if they miss it.

    PermanentError with one line when the file is not a readable GUNW NetCDF."""
    import h5netcdf

    label = name or Path(path).name
    w, s, e, n = bounds
    try:
        with h5netcdf.File(str(path), "r") as f:
            g = f[DATA_GROUP]
            lat = np.asarray(g["latitude"][:], np.float64)
            lon = np.asarray(g["longitude"][:], np.float64)
            rows = np.flatnonzero((lat >= s - 0.001) & (lat <= n + 0.001))
            cols = np.flatnonzero((lon >= w - 0.001) & (lon <= e + 0.001))
            if not len(rows) or not len(cols):
                return None
            r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, len(lat))
            c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, len(lon))
            layers = []
            for band in GUNW_BANDS:
                v = g[band]
                x = np.asarray(v[r0:r1, c0:c1], np.float32)
                fill = v.attrs.get("_FillValue")
                if fill is not None:
                    x[x == np.float32(np.asarray(fill).item())] = np.nan
                layers.append(x)
    except (OSError, KeyError, ValueError, TypeError) as err:
        msg = " ".join(str(err).split())[:200] or type(err).__name__
        raise PermanentError(f"GUNW {label}: not a readable GUNW NetCDF "
                             f"({type(err).__name__}: {msg})") from None
    if lat.size > 1 and lat[1] > lat[0]:
        raise PermanentError(f"GUNW {label}: latitude increases (expected north-up rows)")
    return GunwWindow(lat[r0:r1], lon[c0:c1], np.stack(layers))


def sample(win: GunwWindow, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(4, *lon.shape): components nearest, the rest bilinear inside one component."""
    fy = (win.lat[0] - lat) / (win.lat[0] - win.lat[1]) if len(win.lat) > 1 else lat * 0
    fx = (lon - win.lon[0]) / (win.lon[1] - win.lon[0]) if len(win.lon) > 1 else lon * 0
    ny, nx = win.data.shape[1:]
    inside = (fy >= -0.5) & (fy <= ny - 0.5) & (fx >= -0.5) & (fx <= nx - 0.5)
    ri = np.clip(np.rint(fy).astype(np.int64), 0, ny - 1)
    ci = np.clip(np.rint(fx).astype(np.int64), 0, nx - 1)
    near = win.data[:, ri, ci]
    near[:, ~inside] = np.nan
    y0 = np.clip(np.floor(fy).astype(np.int64), 0, max(ny - 2, 0))
    x0 = np.clip(np.floor(fx).astype(np.int64), 0, max(nx - 2, 0))
    wy = np.clip(fy - y0, 0, 1)
    wx = np.clip(fx - x0, 0, 1)
    y1, x1 = np.minimum(y0 + 1, ny - 1), np.minimum(x0 + 1, nx - 1)
    comp = win.data[COMPONENTS]
    same = np.ones(lon.shape, bool)
    for yy, xx in ((y0, x0), (y0, x1), (y1, x0), (y1, x1)):
        same &= comp[yy, xx] == near[COMPONENTS]
    out = near.copy()
    for b in range(len(GUNW_BANDS)):
        if b == COMPONENTS:
            continue
        d = win.data[b]
        bil = ((1 - wy) * (1 - wx) * d[y0, x0] + (1 - wy) * wx * d[y0, x1]
               + wy * (1 - wx) * d[y1, x0] + wy * wx * d[y1, x1])
        ok = same & np.isfinite(bil) & inside
        out[b][ok] = bil[ok]
    return out.astype(np.float32)


def _tile_lonlat(tile: TileRef, res: float) -> tuple[np.ndarray, np.ndarray]:
    from ...grid.tiles import to_lonlat

    g = tile.grid_at(res)
    xx, yy = np.meshgrid(g.xs(), g.ys())
    if g.epsg == 4326:
        return xx, yy
    lon, lat = to_lonlat(g.epsg).transform(xx, yy)
    return np.asarray(lon), np.asarray(lat)


def read_gunw_unit(unit: WorkUnit, tiles: Mapping[str, TileRef], paths: Sequence[str],
                   res: float = 80.0) -> Iterator[TileResult]:
    """TileResults of a gunw unit; `paths[i]` is product i on disk."""
    work = unit.payload
    if not isinstance(work, GunwWork):
        raise TypeError(f"unit {unit.key}: not a gunw unit")
    coords = {t: _tile_lonlat(tiles[t], res) for t in unit.tiles}
    lons = np.concatenate([c[0].ravel() for c in coords.values()])
    lats = np.concatenate([c[1].ravel() for c in coords.values()])
    bounds = (float(lons.min()), float(lats.min()), float(lons.max()), float(lats.max()))
    windows = [read_window(p, bounds, r.name) for p, r in zip(paths, work.products, strict=True)]
    for tid in unit.tiles:
        lon, lat = coords[tid]
        acc = None
        for win in windows:
            if win is None:
                continue
            v = sample(win, lon, lat)
            if acc is None:
                acc = v
            else:
                hole = ~np.isfinite(acc[COMPONENTS])
                acc[:, hole] = v[:, hole]
        items = tuple(r.name for r in work.products)
        if acc is None or not np.isfinite(acc[0]).any():
            yield TileResult(tid, "nodata", items=items)
        else:
            yield TileResult(tid, "done", data=acc, items=items)
