"""The tile lattice: UTM zone + column + row, anchored at the zone's false origin.

Anchoring every zone's lattice at its own false origin (easting 0, northing 0 in the north,
the 10,000 km false northing in the south) makes a tile's id a pure function of where it is:
the same square gets the same id whichever region or AOI produced it, and the id parses back
into geometry with no lookup table.

`Tile` is the lattice *address* a tile id encodes (`17N-0089-0745` <-> zone 17, north, column
89, row 745), nothing more: hashable, parseable, with the geometry that follows from it. It
keeps its short name: an id names exactly a square of the lattice, and a rename (TileIndex)
would leave two names for one thing while the simulator and the SAR tests still build it.
It is not the value the layers above pass around: that is
`grid.tileref.TileRef` (id, 10 m GeoBox, lon/lat footprint), because adopted M3LEO/geetiles
tiles are lon/lat squares with opaque ids and no lattice address at all. `TileRef.of(tile)`
and `TileRef.from_id(id)` are the one bridge from an address to that value.

Lon/lat footprints follow RFC 7946 section 3.1.9: a tile that straddles the antimeridian is
cut there into a MultiPolygon with every longitude in [-180, 180], so it stays valid when a GIS
reprojects it (EPSG:3857, 6933...). Ids and pixel grids live in UTM and never change.

The constants below (the tile edge in `lattice`) are the only place the 4480 m tile, the 10 m
base grid and its 448 px edge are written down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import shapely

from .geobox import GeoBox
from .lattice import DEFAULT_TILE_SIZE

if TYPE_CHECKING:  # PROJ is imported where a transformer is built: a worker whose tiles
    from pyproj import Transformer  # arrive with their lon/lat polygons never needs it

BASE_RES = 10  # metres: the finest grid every tile carries
BASE_PX = DEFAULT_TILE_SIZE // BASE_RES  # 448; adopted lon/lat tiles are 448 x 448 too
#: The resolution ladder (metres) a default tile nests exactly on.
RESOLUTIONS = (BASE_RES, 2 * BASE_RES, 4 * BASE_RES, 8 * BASE_RES)
_ID_RE = re.compile(r"^(\d{2})([NS])-(\d{4})-(\d{4})(?:-s(\d+))?$")


def utm_epsg(zone: int, hemisphere: str) -> int:
    return (32600 if hemisphere == "N" else 32700) + zone


def zone_band(zone: int, hemisphere: str) -> tuple[float, float, float, float]:
    """The zone's 6-degree band (lon_min, lat_min, lon_max, lat_max), standard zones only."""
    lon0 = -180.0 + 6.0 * (zone - 1)
    return (lon0, 0.0, lon0 + 6.0, 84.0) if hemisphere == "N" else (lon0, -80.0, lon0 + 6.0, 0.0)


def central_meridian(zone: int) -> float:
    return -183.0 + 6.0 * zone


def check_tile_size(size: int) -> int:
    """Tile sizes are positive multiples of the base resolution, so the base grid fits a whole
    number of pixels."""
    if not isinstance(size, (int, np.integer)) or size <= 0 or size % BASE_RES:
        raise ValueError(f"tile size must be a positive multiple of {BASE_RES} m, got {size!r}")
    return int(size)


_TRANSFORMERS: dict[tuple[str, int], Transformer] = {}


def to_lonlat(epsg: int) -> Transformer:
    """Cached UTM -> lon/lat transformer (pyproj transformers are costly to build)."""
    t = _TRANSFORMERS.get(("to", epsg))
    if t is None:
        from pyproj import Transformer

        t = Transformer.from_crs(epsg, 4326, always_xy=True)
        _TRANSFORMERS[("to", epsg)] = t
    return t


def from_lonlat(epsg: int) -> Transformer:
    t = _TRANSFORMERS.get(("from", epsg))
    if t is None:
        from pyproj import Transformer

        t = Transformer.from_crs(4326, epsg, always_xy=True)
        _TRANSFORMERS[("from", epsg)] = t
    return t


@dataclass(frozen=True)
class Tile:
    """The lattice address of one square of a zone (what its id encodes); `id` round-trips."""

    zone: int
    hemisphere: str
    col: int
    row: int
    size: int = DEFAULT_TILE_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.zone <= 60 or self.hemisphere not in ("N", "S"):
            raise ValueError(f"bad UTM zone {self.zone}{self.hemisphere}")
        check_tile_size(self.size)

    @property
    def id(self) -> str:
        base = f"{self.zone:02d}{self.hemisphere}-{self.col:04d}-{self.row:04d}"
        return base if self.size == DEFAULT_TILE_SIZE else f"{base}-s{self.size}"

    @property
    def epsg(self) -> int:
        return utm_epsg(self.zone, self.hemisphere)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """UTM bounds (xmin, ymin, xmax, ymax) in metres."""
        x, y = self.col * self.size, self.row * self.size
        return (float(x), float(y), float(x + self.size), float(y + self.size))

    def grid(self, res: float = BASE_RES) -> GeoBox:
        """The tile's pixel grid at `res` metres (the RESOLUTIONS nest exactly on the default)."""
        n = self.size / res
        if abs(n - round(n)) > 1e-9:
            raise ValueError(f"resolution {res} m does not divide a {self.size} m tile")
        n = int(round(n))
        xmin, _, _, ymax = self.bounds
        return GeoBox(self.epsg, xmin, ymax, float(res), float(res), n, n)

    @cached_property
    def polygon_lonlat(self) -> shapely.Polygon | shapely.MultiPolygon:
        """The tile square in EPSG:4326, edges densified so the curve is followed to < 1 m;
        a MultiPolygon cut at 180 degrees for a tile that straddles the antimeridian."""
        return tile_polygons_lonlat(self.epsg, np.array([self.col]), np.array([self.row]),
                                    self.size)[0]

    def __str__(self) -> str:
        return self.id


def tile_from_id(tile_id: str) -> Tile:
    """Parse `17N-0089-0745` (or `17N-0089-0745-s2240` for non-default sizes) into a Tile."""
    m = _ID_RE.match(tile_id.strip())
    if not m:
        raise ValueError(f"not a tile id: {tile_id!r} (expected like 17N-0089-0745)")
    zone, hem, col, row, size = m.groups()
    return Tile(int(zone), hem, int(col), int(row), int(size) if size else DEFAULT_TILE_SIZE)


def tile_polygons_lonlat(
    epsg: int, cols: np.ndarray, rows: np.ndarray, size: int, per_edge: int = 4
) -> np.ndarray:
    """Vectorised lon/lat polygons of many tiles of one zone (one pyproj call for all).

    Longitudes are first kept continuous around the zone's central meridian (no polygon
    wrapping the globe), then the few tiles that straddle the antimeridian are cut there.
    """
    t = np.linspace(0.0, 1.0, per_edge + 1)[:-1]
    # ring: bottom (W->E), right (S->N), top (E->W), left (N->S); counter-clockwise
    fx = np.concatenate([t, np.ones_like(t), 1 - t, np.zeros_like(t)])
    fy = np.concatenate([np.zeros_like(t), t, np.ones_like(t), 1 - t])
    x = (cols[:, None] + fx[None, :]) * size
    y = (rows[:, None] + fy[None, :]) * size
    lon, lat = to_lonlat(epsg).transform(x.ravel(), y.ravel())
    lon = np.asarray(lon).reshape(x.shape)
    lat = np.asarray(lat).reshape(y.shape)
    zone = epsg % 100
    cm = central_meridian(zone)
    lon = cm + (lon - cm + 180.0) % 360.0 - 180.0
    coords = np.stack([lon, lat], axis=-1)
    coords = np.concatenate([coords, coords[:, :1]], axis=1)
    return cut_antimeridian(shapely.polygons(coords))


def cut_antimeridian(geoms: np.ndarray) -> np.ndarray:
    """RFC 7946 s3.1.9: geometries with longitudes beyond +-180 cut at the antimeridian.

    Each piece is shifted by 360 degrees into [-180, 180]; a geometry in two pieces becomes a
    MultiPolygon whose parts meet at +180 and -180. Geometries already inside are returned
    as they are (the same objects), so only straddling tiles pay for the cut.
    """
    geoms = np.asarray(geoms, dtype=object)
    b = shapely.bounds(geoms)
    out = geoms.copy()
    for i in np.nonzero((b[:, 0] < -180.0) | (b[:, 2] > 180.0))[0]:
        parts = []
        for shift in (360.0, 0.0, -360.0):
            window = shapely.box(-180.0 - shift, -90.0, 180.0 - shift, 90.0)
            piece = shapely.intersection(geoms[i], window)
            for p in shapely.get_parts(piece):
                if isinstance(p, shapely.Polygon) and p.area > 0:
                    parts.append(shapely.transform(p, lambda c, s=shift: c + (s, 0.0)))
        cut = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        out[i] = shapely.orient_polygons(cut)
    return out


def lonlat_centres(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of each footprint's centroid, right for footprints cut at the antimeridian
    (their plain centroid would fall half a world away): parts west of 0 are moved by +360
    before the centroid, which is then wrapped back into [-180, 180)."""
    geoms = np.asarray(geoms, dtype=object)
    c = shapely.centroid(geoms)
    lon, lat = shapely.get_x(c).copy(), shapely.get_y(c).copy()
    b = shapely.bounds(geoms)
    for i in np.nonzero((b[:, 2] - b[:, 0]) > 180.0)[0]:
        g = shapely.transform(geoms[i], lambda xy: np.column_stack(
            [np.where(xy[:, 0] < 0, xy[:, 0] + 360.0, xy[:, 0]), xy[:, 1]]))
        cc = shapely.centroid(g)
        lon[i] = (cc.x + 180.0) % 360.0 - 180.0
        lat[i] = cc.y
    return lon, lat


__all__ = [
    "BASE_PX",
    "BASE_RES",
    "DEFAULT_TILE_SIZE",
    "RESOLUTIONS",
    "Tile",
    "cut_antimeridian",
    "lonlat_centres",
    "tile_from_id",
    "tile_polygons_lonlat",
    "utm_epsg",
    "zone_band",
]
