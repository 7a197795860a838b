"""The one tile value every layer above the grid passes around, and the tile table it comes from.

A `TileRef` is what odc-geo would call a tile's GeoBox plus its name: an id, the 10 m pixel
grid, and the lon/lat footprint (RFC 7946: cut at the antimeridian). It is the one tile value:
a `grid.tiles.Tile` is only the lattice address of our UTM tiles (adopted M3LEO/geetiles tiles
have none), and `TileRef.of` / `TileRef.from_id` turn an address into this value. The store's
tile table (one row per tile: epsg, upper-left corner, pixel size, tile size) is its
serialised form; the conversion from a grid GeoDataFrame to that table and from the table to
TileRefs (`refs_from_table`, which every other route goes through) lives here, once, so the
grid, the store and the sources agree on it by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from .geobox import GeoBox
from .tiles import (
    BASE_PX,
    BASE_RES,
    DEFAULT_TILE_SIZE,
    Tile,
    lonlat_centres,
    tile_from_id,
    tile_polygons_lonlat,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TileRef:
    """What a source needs to know about a tile: its id, its 10 m grid, its lon/lat footprint."""

    id: str
    grid: GeoBox
    polygon: shapely.Geometry

    @classmethod
    def of(cls, tile: Tile) -> TileRef:
        """The TileRef of a lattice address: its id, 10 m grid and lon/lat footprint."""
        return cls(tile.id, tile.grid(BASE_RES), tile.polygon_lonlat)

    @classmethod
    def from_id(cls, tile_id: str) -> TileRef:
        """The TileRef of a lattice tile id such as `31N-0100-1200` (ValueError otherwise)."""
        return cls.of(tile_from_id(tile_id))

    def grid_at(self, res: float) -> GeoBox:
        """The tile's grid at a modality's resolution (UTM tiles: res metres; lon/lat tiles:
        the same footprint cut as a UTM tile's base grid would be at `res`)."""
        metres_per_px = self.grid.dx if self.grid.epsg != 4326 else BASE_RES
        n = int(round(self.grid.width * metres_per_px / res))
        return self.grid.with_shape(n, n)


def table_from_grid(gdf: Any) -> pd.DataFrame:
    """The store's tile table from a grid GeoDataFrame (our UTM tiles or adopted lon/lat ones)."""
    n = len(gdf)
    size = int(round(float(gdf["xmax"].iloc[0] - gdf["xmin"].iloc[0]))) if n else DEFAULT_TILE_SIZE
    epsg = gdf["epsg"].to_numpy(np.int64)
    lonlat = epsg == 4326
    px = np.where(lonlat, BASE_PX, (gdf["xmax"] - gdf["xmin"]).to_numpy() / BASE_RES)
    lon, lat = lonlat_centres(np.asarray(gdf.geometry.values))
    import pandas as pd  # here: a worker holding TileRefs never needs pandas

    return pd.DataFrame({
        "id": gdf["id"].astype(str).to_numpy(),
        "epsg": epsg,
        "x0": gdf["xmin"].to_numpy(np.float64),
        "y0": gdf["ymax"].to_numpy(np.float64),
        "dx": (gdf["xmax"] - gdf["xmin"]).to_numpy(np.float64) / px,
        "dy": (gdf["ymax"] - gdf["ymin"]).to_numpy(np.float64) / px,
        "size": np.where(lonlat, DEFAULT_TILE_SIZE, size),
        "split": gdf["split"].astype(str).to_numpy() if "split" in gdf else "",
        "lon": lon,
        "lat": lat,
    })


def _footprints(t: pd.DataFrame) -> np.ndarray:
    """Lon/lat polygons of a tile table's rows, rebuilt from their grids (one call per CRS)."""
    polys = np.empty(len(t), dtype=object)
    for epsg, idx in t.groupby("epsg").indices.items():
        sub = t.iloc[idx]
        if epsg == 4326:
            polys[idx] = shapely.box(sub.x0, sub.y0 - sub.dy * BASE_PX, sub.x0 + sub.dx * BASE_PX,
                                     sub.y0)
        else:
            size = sub["size"].to_numpy()
            cols = np.round(sub.x0.to_numpy() / size).astype(np.int64)
            rows = np.round(sub.y0.to_numpy() / size).astype(np.int64) - 1
            polys[idx] = tile_polygons_lonlat(int(epsg), cols, rows, int(size[0]))
    return polys


def refs_from_table(table: pd.DataFrame, ids: Sequence[str] | None = None,
                    footprints: Sequence[shapely.Geometry] | np.ndarray | None = None,
                    ) -> list[TileRef]:
    """TileRefs (10 m grid + lon/lat footprint) for the rows of a tile table, in table order.

    `footprints` (one per row) keeps polygons the caller already has, such as an adopted
    GeoJSON's own; by default they are rebuilt from the rows' grids.
    """
    t = table if ids is None else table.set_index("id").loc[list(ids)].reset_index()
    polys = _footprints(t) if footprints is None else np.asarray(footprints, dtype=object)
    refs: list[TileRef] = []
    for i, r in enumerate(t.itertuples(index=False)):
        npx = int(round(r.size / BASE_RES)) if r.epsg != 4326 else BASE_PX
        grid = GeoBox(int(r.epsg), float(r.x0), float(r.y0), float(r.dx), float(r.dy), npx, npx)
        refs.append(TileRef(str(r.id), grid, polys[i]))
    return refs


def grid_table_to_refs(gdf: Any) -> list[TileRef]:
    """TileRefs straight from a grid GeoDataFrame, keeping its own footprints."""
    return refs_from_table(table_from_grid(gdf), footprints=np.asarray(gdf.geometry.values))


__all__ = ["TileRef", "grid_table_to_refs", "refs_from_table", "table_from_grid"]
