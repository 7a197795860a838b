"""Cut an AOI into tiles of every UTM zone it touches.

Per zone (and hemisphere), we keep every tile of the zone's lattice that intersects the zone's
6-degree band AND the AOI. Keeping only tiles whose centre lies in the zone would leave gaps,
because neighbouring zones' lattices are offset and rotated against each other. The price is an
overlap strip along each zone boundary where tiles of both lattices cover the same ground: its
width is between zero and one tile on each side, about one tile in all: measured as overlap
area / boundary length, 3.7 km at 33 N, 4.4 km at 45 N, 4.2 km at the equator and 4.4 km at
60 N (`tests/grid/test_build.py` bounds it to 0.5-1.5 tiles). The same holds at
the equator between the northern and the southern lattice.

Everything is vectorised with shapely 2 and pyproj (one call per zone), so the million tiles of
the six M3LEO regions take seconds, not hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Proj

from ..errors import BadInput
from .tiles import (
    DEFAULT_TILE_SIZE,
    check_tile_size,
    from_lonlat,
    tile_polygons_lonlat,
    utm_epsg,
    zone_band,
)

COLUMNS = ["id", "zone", "hemisphere", "epsg", "col", "row", "xmin", "ymin", "xmax", "ymax",
           "area_km2", "split", "geometry"]


def _zone_pieces(aoi: shapely.Geometry) -> Iterator[tuple[int, str, float, shapely.Geometry]]:
    """(zone, hemisphere, lon shift, AOI part in the zone band) for every band the AOI touches.

    AOIs may use longitudes beyond +-180 to cross the antimeridian; such parts are matched with
    bands shifted by 360 degrees.
    """
    minx, miny, maxx, maxy = aoi.bounds
    first = int(np.floor((minx + 180.0) / 6.0))
    last = int(np.floor((maxx + 180.0) / 6.0 - 1e-12))
    for k in range(first, last + 1):
        zone = k % 60 + 1
        shift = 360.0 * (k // 60)
        for hem in ("N", "S"):
            b = zone_band(zone, hem)
            band = shapely.box(b[0] + shift, b[1], b[2] + shift, b[3])
            if not band.intersects(aoi):
                continue
            piece = shapely.intersection(aoi, band)
            if piece.is_empty or piece.area == 0:
                continue
            yield zone, hem, shift, piece


def _project(piece: shapely.Geometry, epsg: int, shift: float) -> shapely.Geometry:
    # densify first: straight lon/lat edges are curves in UTM
    dense = shapely.segmentize(piece, 0.02)
    tr = from_lonlat(epsg)

    def fwd(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0] - shift, xy[:, 1])
        return np.column_stack([x, y])

    return shapely.make_valid(shapely.transform(dense, fwd))


def _zone_tiles(zone: int, hem: str, shift: float, piece: shapely.Geometry,
                size: int) -> tuple[int, np.ndarray, np.ndarray]:
    epsg = utm_epsg(zone, hem)
    proj = _project(piece, epsg, shift)
    x0, y0, x1, y1 = proj.bounds
    c0, c1 = int(np.floor(x0 / size)), int(np.floor(x1 / size))
    r0, r1 = int(np.floor(y0 / size)), int(np.floor(y1 / size))
    shapely.prepare(proj)
    cols_out: list[np.ndarray] = []
    rows_out: list[np.ndarray] = []
    # row blocks keep the candidate arrays small for continent-sized zone pieces
    step = max(1, 400_000 // max(1, c1 - c0 + 1))
    for rs in range(r0, r1 + 1, step):
        cgrid, rgrid = np.meshgrid(np.arange(c0, c1 + 1), np.arange(rs, min(rs + step, r1 + 1)))
        cols, rows = cgrid.ravel(), rgrid.ravel()
        boxes = shapely.box(cols * size, rows * size, (cols + 1) * size, (rows + 1) * size)
        keep = shapely.intersects(proj, boxes)
        cols_out.append(cols[keep])
        rows_out.append(rows[keep])
    cols = np.concatenate(cols_out)
    rows = np.concatenate(rows_out)
    return epsg, cols, rows


def _true_area_km2(epsg: int, cols: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Ellipsoidal area: the UTM square divided by the areal scale factor at its centre."""
    if not len(cols):
        return np.zeros(0)
    tr = Proj(f"EPSG:{epsg}")
    lon, lat = tr((cols + 0.5) * size, (rows + 0.5) * size, inverse=True)
    f = tr.get_factors(lon, lat)
    return (size * size / 1e6) / np.asarray(f.areal_scale)


def build_grid(aoi: shapely.Geometry, tile_size: int = DEFAULT_TILE_SIZE) -> gpd.GeoDataFrame:
    """Every tile of every zone lattice that intersects both its zone band and the AOI."""
    size = check_tile_size(tile_size)
    if aoi is None or aoi.is_empty:
        raise BadInput("the AOI is empty")
    frames = []
    for zone, hem, shift, piece in _zone_pieces(aoi):
        epsg, cols, rows = _zone_tiles(zone, hem, shift, piece, size)
        if not len(cols):
            continue
        ids = _ids(zone, hem, cols, rows, size)
        polys = tile_polygons_lonlat(epsg, cols, rows, size)
        frames.append(pd.DataFrame({
            "id": ids, "zone": np.int16(zone), "hemisphere": hem, "epsg": np.int32(epsg),
            "col": cols.astype(np.int32), "row": rows.astype(np.int32),
            "xmin": (cols * size).astype(np.float64), "ymin": (rows * size).astype(np.float64),
            "xmax": ((cols + 1) * size).astype(np.float64),
            "ymax": ((rows + 1) * size).astype(np.float64),
            "area_km2": _true_area_km2(epsg, cols, rows, size), "split": "",
            "geometry": polys,
        }))
    if not frames:
        df = pd.DataFrame({c: [] for c in COLUMNS})
        return gpd.GeoDataFrame(df, geometry="geometry", crs=4326)
    df = pd.concat(frames, ignore_index=True).sort_values("id", kind="stable")
    df = df.drop_duplicates("id").reset_index(drop=True)
    return gpd.GeoDataFrame(df[COLUMNS], geometry="geometry", crs=4326)


def _ids(zone: int, hem: str, cols: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    prefix = f"{zone:02d}{hem}-"
    suffix = "" if size == DEFAULT_TILE_SIZE else f"-s{size}"
    c = np.char.zfill(cols.astype(str), 4)
    r = np.char.zfill(rows.astype(str), 4)
    return np.char.add(np.char.add(np.char.add(prefix, c), "-"), np.char.add(r, suffix)).astype(
        object)


def count_tiles(aoi: shapely.Geometry, tile_size: int = DEFAULT_TILE_SIZE) -> int:
    """Tile count without building polygons (for `regions`)."""
    size = check_tile_size(tile_size)
    n = 0
    for zone, hem, shift, piece in _zone_pieces(aoi):
        n += len(_zone_tiles(zone, hem, shift, piece, size)[1])
    return n


def write_grid(gdf: gpd.GeoDataFrame, path: str | Path) -> Path:
    """GeoParquet, written to a temporary name and renamed: no half file on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        gdf.to_parquet(tmp, index=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["COLUMNS", "build_grid", "count_tiles", "write_grid"]
