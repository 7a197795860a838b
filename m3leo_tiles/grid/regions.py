"""The six built-in regions and user AOIs (GeoJSON, WKT, GeoParquet), always EPSG:4326.

M3LEO never published its AOI polygons; ours approximate its map from Natural Earth country
shapes clipped with hand-drawn polygons (see data/regions/PROVENANCE.md).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import shapely
from shapely.validation import explain_validity

from ..errors import BadInput
from .summary import M3LEO_TILES as M3LEO_TILES  # re-exported: callers read it here
from .summary import REGIONS as REGIONS


def _region_file(name: str) -> Traversable:
    return resources.files("m3leo_tiles") / "data" / "regions" / f"{name}.geojson"


@lru_cache(maxsize=16)
def region_geometry(name: str) -> shapely.Geometry:
    if name not in REGIONS:
        raise BadInput(f"unknown region {name!r}; built-in: {', '.join(REGIONS)} "
                       "(or give a GeoJSON, WKT or GeoParquet file)")
    return _from_geojson_text(_region_file(name).read_text(), name)


def _from_geojson_text(text: str, where: str) -> shapely.Geometry:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{where}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict) or "type" not in doc:
        raise BadInput(f"{where}: not a GeoJSON object")
    if doc["type"] == "FeatureCollection":
        feats = doc.get("features", [])
        if not isinstance(feats, list) or not all(isinstance(f, dict) for f in feats):
            raise BadInput(f"{where}: 'features' is not a list of GeoJSON Features")
        geoms = [f.get("geometry") for f in feats if f.get("geometry")]
    elif doc["type"] == "Feature":
        geoms = [doc.get("geometry")] if doc.get("geometry") else []
    else:
        geoms = [doc]
    if not geoms:
        raise BadInput(f"{where}: no geometry in the file")
    try:
        parts = [shapely.geometry.shape(g) for g in geoms]
        geom = shapely.union_all(parts) if len(parts) > 1 else parts[0]
    except Exception as e:  # noqa: BLE001 - shapely raises several kinds for bad coordinates
        raise BadInput(f"{where}: unreadable geometry ({' '.join(str(e).split())})") from None
    return _check(geom, where)


def _check(geom: shapely.Geometry, where: str) -> shapely.Geometry:
    if geom is None or geom.is_empty:
        raise BadInput(f"{where}: the geometry is empty")
    if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise BadInput(f"{where}: an AOI must be a polygon, got {geom.geom_type}")
    if not geom.is_valid:
        raise BadInput(f"{where}: invalid geometry ({explain_validity(geom)})")
    minx, miny, maxx, maxy = geom.bounds
    if miny < -90 or maxy > 90 or minx < -540 or maxx > 540:
        raise BadInput(f"{where}: coordinates are not longitude/latitude degrees")
    if geom.area == 0:
        raise BadInput(f"{where}: the geometry has no area")
    return geom


def load_aoi(region_or_path: str) -> tuple[str, shapely.Geometry]:
    """(name, lon/lat geometry) for a built-in region name or an AOI file path."""
    value = str(region_or_path)
    if value in REGIONS:
        return value, region_geometry(value)
    p = Path(value)
    if not p.suffix and "/" not in value:
        region_geometry(value)  # raises the unknown-region error
    if not p.exists():
        raise BadInput(f"AOI file {value} not found")
    if p.is_dir() or p.stat().st_size == 0:
        raise BadInput(f"AOI file {value} is empty")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".geoparquet"):
        import geopandas as gpd

        try:
            gdf = gpd.read_parquet(p)
        except Exception as e:  # noqa: BLE001
            raise BadInput(f"{value}: not a GeoParquet file ({e})") from None
        if gdf.empty:
            raise BadInput(f"{value}: no geometry in the file")
        try:
            if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
                gdf = gdf.to_crs(4326)
            geom = shapely.union_all(gdf.geometry.values)
        except Exception as e:  # noqa: BLE001 - GEOS/PROJ errors on NaN or wild coordinates
            raise BadInput(f"{value}: unreadable geometry ({' '.join(str(e).split())})") from None
        return p.stem, _check(geom, value)
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise BadInput(f"{value}: not a text file (GeoJSON or WKT expected)") from None
    if not text.strip():
        raise BadInput(f"AOI file {value} is empty")
    if suffix in (".json", ".geojson") or text.lstrip().startswith("{"):
        return p.stem, _from_geojson_text(text, value)
    try:
        geom = shapely.from_wkt(text.strip())
    except Exception as e:  # noqa: BLE001 - GEOS parse errors
        raise BadInput(f"{value}: not valid WKT ({str(e).splitlines()[0]})") from None
    return p.stem, _check(geom, value)
