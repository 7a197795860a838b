"""Indexing a local archive: STAC JSON (ItemCollection, Item, Catalog/Collection links) or a
plain folder of rasters, into `Item`s with a lon/lat bbox, a date and band -> path assets.

STAC follows the STAC 1.0 Item/Catalog specifications (stacspec.org); Earth Search asset names
(`blue`, `scl`...) are mapped to band names; folder layouts are those the package docstring
lists.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from ...errors import BadInput, PermanentError
from ..cciagb import CCI_AGB, find_products
from .rasters import raster_bbox

log = logging.getLogger(__name__)

S2 = "sentinel-2-l2a"
DEM = "cop-dem-glo-30"
WORLDCOVER = "esa-worldcover"
GHS_BUILT = "ghs-built-s"
_BAND_FILE = re.compile(r"^(B0?(\d{1,2}A?)|SCL)\.tif{1,2}$", re.I)


@dataclass(frozen=True)
class Item:
    id: str
    collection: str
    datetime: dt.datetime | None
    bbox: tuple[float, float, float, float]  # lon/lat
    assets: dict[str, str]  # band -> path
    properties: dict = field(default_factory=dict, hash=False, compare=False)


def _norm_band(name: str) -> str:
    m = re.match(r"^B0?(\d{1,2}A?)$", name, re.I)
    return f"B{m.group(1).upper()}" if m else name


#: Earth Search / STAC common names of Sentinel-2 assets, and DEM asset keys
_ASSET_NAMES = {"coastal": "B1", "blue": "B2", "green": "B3", "red": "B4", "rededge1": "B5",
                "rededge2": "B6", "rededge3": "B7", "nir": "B8", "nir08": "B8A", "nir09": "B9",
                "swir16": "B11", "swir22": "B12", "scl": "SCL"}


def _asset_key(collection: str, key: str) -> str:
    if collection == DEM and key.lower() in ("data", "dem", "elevation"):
        return "elevation"
    return _ASSET_NAMES.get(key.lower()) or _norm_band(key)


def _stac_features(path: Path, seen: set[Path]) -> list[tuple[dict, Path]]:
    """Features of an ItemCollection, an Item, or a Catalog/Collection followed through its
    relative item and child links; each with the folder its relative hrefs start from."""
    path = path.resolve()
    if path in seen:
        return []
    seen.add(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = " ".join(str(e).split())[:200]
        raise BadInput(f"cannot read STAC file {path}: {type(e).__name__}: {why}") from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection":
        feats = doc.get("features", [])
        if not isinstance(feats, list):
            raise BadInput(f"STAC file {path}: 'features' is not a list")
        return [(f, path.parent) for f in feats]
    if kind == "Feature":
        return [(doc, path.parent)]
    if kind in ("Catalog", "Collection"):
        out = []
        links = doc.get("links", [])
        if not isinstance(links, list) or not all(
                isinstance(lk, dict) and isinstance(lk.get("href", ""), str) for lk in links):
            raise BadInput(f"STAC file {path}: 'links' is not a list of links with hrefs")
        for link in links:
            href = link.get("href", "")
            if link.get("rel") in ("item", "child") and "://" not in href:
                out += _stac_features(path.parent / href, seen)
        return out
    raise BadInput(f"{path} is not a STAC ItemCollection, Item, Catalog or Collection")


def _load_items_json(path: Path) -> list[Item]:
    items = []
    for k, (f, base) in enumerate(_stac_features(path, set())):
        try:
            items.append(_item(f, base))
        except (PermanentError, KeyError, TypeError, ValueError, AttributeError, IndexError,
                OverflowError, shapely.errors.ShapelyError) as e:
            why = " ".join(str(e).split())[:200] or type(e).__name__
            fid = f.get("id") if isinstance(f, dict) else None
            raise BadInput(f"STAC file {path}: feature {k} ({fid!r}) is unusable: "
                           f"{type(e).__name__}: {why}") from None
    return items


def _item(f: dict, base: Path) -> Item:
    """One STAC Item, checked where a damaged file would otherwise fail later, per tile."""
    if not isinstance(f.get("id"), str) or not f["id"]:
        raise ValueError("no string id")
    props = f.get("properties") or {}
    if not isinstance(props, dict):
        raise ValueError("properties is not an object")
    coll = f.get("collection", "")
    if not isinstance(coll, str):
        raise ValueError("collection is not a string")
    assets = {}
    for key, a in (f.get("assets") or {}).items():
        href = a["href"]
        if not isinstance(href, str) or not href:
            raise ValueError(f"asset {key!r} has no href")
        assets[_asset_key(coll, key)] = href if "://" in href else str((base / href).resolve())
    raw: Sequence[float] | None = f.get("bbox") or (
        shapely.geometry.shape(f["geometry"]).bounds if f.get("geometry") else None)
    if raw is None:
        if not assets:
            raise ValueError("no bbox, no geometry and no asset to place it")
        raw = raster_bbox(Path(next(iter(assets.values()))))
    if len(raw) == 6:  # a 3-D bbox: lon/lat are 0, 1, 3, 4
        raw = [raw[0], raw[1], raw[3], raw[4]]
    bbox = tuple(float(v) for v in raw)
    if len(bbox) != 4 or not all(np.isfinite(bbox)) or bbox[0] > bbox[2] or bbox[1] > bbox[3]:
        raise ValueError(f"bbox {list(bbox)} is not [west, south, east, north] in degrees")
    when = props.get("datetime")
    if when is not None:
        when = dt.datetime.fromisoformat(str(when).replace("Z", "+00:00"))
        if when.tzinfo is None:  # STAC datetimes are UTC
            when = when.replace(tzinfo=dt.UTC)
    return Item(f["id"], coll, when, bbox, assets, props)


def _scan_directory(root: Path) -> list[Item]:
    items: list[Item] = []
    folders: dict[Path, dict[str, str]] = {}
    for p in sorted(root.rglob("*.tif")):
        m = _BAND_FILE.match(p.name)
        if m:
            folders.setdefault(p.parent, {})[_norm_band(p.stem).upper()
                                             if p.stem.upper() != "SCL" else "SCL"] = str(p)
        elif re.match(r"Copernicus_DSM_.*_DEM\.tif$", p.name):
            bbox = _placed(p)
            if bbox:
                items.append(Item(p.stem, DEM, None, bbox, {"elevation": str(p)}))
        elif m := re.match(r"GHS_BUILT_S_E(\d{4})_.*\.tif$", p.name, re.I):
            when = dt.datetime(int(m.group(1)), 1, 1, tzinfo=dt.UTC)
            bbox = _placed(p)
            if bbox:
                items.append(Item(p.stem, GHS_BUILT, when, bbox, {"built_surface": str(p)}))
        elif re.match(r"ESA_WorldCover_.*_Map\.tif$", p.name, re.I):
            ym = re.search(r"_(20\d\d)_", p.name)
            dated = dt.datetime(int(ym.group(1)), 1, 1, tzinfo=dt.UTC) if ym else None
            bbox = _placed(p)
            if bbox:
                items.append(Item(p.stem, WORLDCOVER, dated, bbox, {"map": str(p)}))
    for item_id, year, assets in find_products(root):
        bbox = _placed(Path(assets["agb"]))
        if bbox:
            items.append(Item(item_id, CCI_AGB, dt.datetime(year, 1, 1, tzinfo=dt.UTC), bbox,
                              assets))
    for folder, assets in folders.items():
        props: dict = {}
        meta = next(iter(sorted(folder.glob("*.json"))), None)
        stamp: dt.datetime | None = None
        if meta is not None:
            try:
                props = json.loads(meta.read_text()).get("properties", {})
                stamp = dt.datetime.fromisoformat(props["datetime"].replace("Z", "+00:00"))
                if stamp.tzinfo is None:  # STAC datetimes are UTC
                    stamp = stamp.replace(tzinfo=dt.UTC)
            except (OSError, ValueError, LookupError, TypeError, AttributeError) as e:
                # a damaged item JSON: the folder name still dates the scene
                log.warning("local archive: ignoring %s (%s: %s)", meta, type(e).__name__, e)
                props, stamp = {}, None
        if stamp is None:
            d = re.search(r"(20\d{6})", folder.name)
            if not d:
                continue
            stamp = dt.datetime.strptime(d.group(1), "%Y%m%d").replace(tzinfo=dt.UTC)
        bbox = _placed(Path(next(iter(assets.values()))))
        if bbox:
            items.append(Item(folder.name, S2, stamp, bbox, assets, props))
    return items


def _placed(path: Path) -> tuple[float, float, float, float] | None:
    """A raster's lon/lat bbox for the index; one that cannot be placed on Earth (corrupt, no
    CRS, a CRS PROJ cannot relate) is left out with a warning instead of failing every unit."""
    try:
        return raster_bbox(path)
    except PermanentError as e:
        log.warning("local archive: skipping %s: %s", path, e)
        return None


def load_index(root: str | Path) -> list[Item]:
    p = Path(root)
    if p.is_file():
        return _load_items_json(p)
    for name in ("items.json", "catalog.json", "collection.json"):
        if (p / name).is_file():
            return _load_items_json(p / name)
    if p.is_dir():
        return _scan_directory(p)
    raise BadInput(f"local raster archive {root} not found")
