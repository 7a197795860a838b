"""Local raster archives (GeoTIFF/COG) warped onto the tile grid: the offline backend.

An archive is STAC JSON (an ItemCollection such as `items.json`, which the simulator writes,
or a Catalog/Collection whose relative item and child links are followed; Earth Search asset
names like `blue` or `scl` are understood) or a plain directory of rasters, indexed on the fly:
Sentinel-2 L2A product folders holding `B02.tif`, `SCL.tif`... (the Earth Search /
rio-tiler-pds layout, dated by the folder name or its STAC JSON), Copernicus DEM tiles
(`Copernicus_DSM_*_DEM.tif`), ESA WorldCover maps (`ESA_WorldCover_*_Map.tif`) and GHS-BUILT-S
epoch tiles (`GHS_BUILT_S_E2020_*.tif`, any CRS: JRC ships Mollweide) and ESA CCI Biomass AGB
tiles or NetCDF files (`*_ESACCI-BIOMASS-L4-AGB-MERGED-100m-2020-fv4.0.tif`, see `cciagb`).

Per tile the source reads only the window of each raster that covers the tile. A raster in the
tile's own UTM zone and no finer than its grid (Sentinel-2 in its zone) is resampled with the
exact separable bilinear/nearest a GDAL warp would compute, in Numba and without a warp; any
other is warped by GDAL, all bands of one resolution in one call. The source then composites
by date like the Earth Engine path: Sentinel-2 clouds are masked with the scene classification
(SCL), reflectances keep the L2A scale (1e-4) with the processing-baseline offset removed,
granules of one day are mosaicked (MGRS tiles overlap; an observation counts once), and the
period median is taken over valid days, with their count.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyproj
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import from_bounds

from ..errors import BadInput, NoData, PermanentError
from ..grid.geobox import GridSpec
from ..modalities import S2_BANDS, Modality
from ..periods import Period
from .base import Source, TileRef, TileResult, WorkUnit
from .cciagb import CCI_AGB, encode, find_products, source_nodata

log = logging.getLogger(__name__)

S2 = "sentinel-2-l2a"
DEM = "cop-dem-glo-30"
WORLDCOVER = "esa-worldcover"
GHS_BUILT = "ghs-built-s"
#: SCL classes that are not clear ground: no data, saturated, cloud shadow, clouds, cirrus
SCL_INVALID = (0, 1, 3, 8, 9, 10)
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


def _unreadable(path: str, e: Exception) -> PermanentError:
    """Name the file and GDAL's own reason (rasterio's message alone says "see previous")."""
    cause = e.__cause__ or e.__context__
    reason = str(cause) if cause and str(cause) else str(e)
    return PermanentError(f"unreadable raster {Path(path).name}: {reason}")


def _crs_name(crs) -> str:
    try:
        c = pyproj.CRS.from_user_input(crs.to_wkt())
        return f"{c.name!r} ({c.type_name})"
    except pyproj.exceptions.CRSError:
        return "(unparseable)"


def _transform_bounds(src_crs, dst_crs, bounds, name: str, raster_crs, other: str):
    """transform_bounds, naming the raster (whose CRS is `raster_crs`) when PROJ cannot relate
    it to `other`."""
    try:
        return transform_bounds(src_crs, dst_crs, *bounds, densify_pts=21)
    except Exception:  # GDAL/PROJ raise private error classes here
        raise PermanentError(f"{name}: its CRS {_crs_name(raster_crs)} cannot be related to "
                             f"{other}") from None


def _tile_bounds_in(crs, grid: GridSpec, name: str):
    return _transform_bounds(grid.crs, crs, grid.bounds, name, crs, f"the tile's {grid.crs}")


def _raster_bbox(path: Path) -> tuple[float, float, float, float]:
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise PermanentError(f"{path.name}: raster has no CRS")
            return _transform_bounds(ds.crs, "EPSG:4326", ds.bounds, path.name, ds.crs,
                                     "EPSG:4326")
    except rasterio.errors.RasterioError as e:
        raise _unreadable(str(path), e) from None


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
        raw = _raster_bbox(Path(next(iter(assets.values()))))
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
        return _raster_bbox(path)
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


@functools.lru_cache(maxsize=4096)
def _resolution(path: str) -> float:
    return float(_open(path).res[0])


class _Handle:
    """A cached open dataset used as a context manager (closing is the cache's job)."""

    def __init__(self, ds):
        self.ds = ds

    def __enter__(self):
        return self.ds

    def __exit__(self, *exc):
        return False


@functools.lru_cache(maxsize=256)
def _open(path: str):
    """Datasets stay open per worker process: re-opening a COG per band per tile costs more
    than reading its window."""
    return rasterio.open(path)


def _separable_plan(crs, transform, grid: GridSpec, resampling: Resampling):
    """For a raster in the tile's CRS, axis-aligned and no finer than the tile grid: the
    source window and per-row/column sample positions of an exact separable resampling
    (nearest or bilinear), which is what GDAL computes there, without a warp. Else None."""
    if crs.to_epsg() != grid.epsg or transform.b or transform.d:
        return None
    sx, sy = transform.a, -transform.e
    if sx < grid.dx - 1e-9 or sy < grid.dy - 1e-9 or resampling not in (
            Resampling.bilinear, Resampling.nearest):
        return None
    # target pixel centres in source pixel-index space (0 = centre of the first pixel)
    u = (grid.xs() - transform.c) / sx - 0.5
    v = (transform.f - grid.ys()) / sy - 0.5
    c0, r0 = int(np.floor(u.min())) - 1, int(np.floor(v.min())) - 1
    c1, r1 = int(np.floor(u.max())) + 3, int(np.floor(v.max())) + 3
    win = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
    return win, u - c0, v - r0


def _read_padded(ds, win) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """A window that may reach past the raster, padded by repeating the raster's edge (as a
    GDAL warp renormalises its kernel there), with the rows/columns [r0, r1) x [c0, c1) that
    are really inside; None when the raster does not reach the window at all."""
    ro, co = int(win.row_off), int(win.col_off)
    r0, c0 = max(0, ro), max(0, co)
    r1, c1 = min(ds.height, ro + int(win.height)), min(ds.width, co + int(win.width))
    if r1 <= r0 or c1 <= c0:
        return None
    data = ds.read(1, window=((r0, r1), (c0, c1)))
    pads = ((r0 - ro, ro + int(win.height) - r1), (c0 - co, co + int(win.width) - c1))
    if any(pads[0]) or any(pads[1]):
        data = np.pad(data, pads, mode="edge")
    return data, (r0 - ro, r1 - ro, c0 - co, c1 - co)


@numba.njit(parallel=True, cache=True)
def _resample_separable(band, nodata, has_nodata, u, v, nearest, out):
    """Bilinear (or nearest) resampling at separable sample positions, straight from the
    native integers: nodata and any NaN neighbour give NaN, as a GDAL warp would skip them.
    Where positions fall on source pixel centres (10 m S2 bands on our grid) the weights are
    zero and this is a strided copy."""
    h, w = v.size, u.size
    one = np.float32(1.0)
    half = 0.5 if nearest else 0.0
    jj = np.empty(w, np.int64)
    wxx = np.empty(w, np.float32)
    for c in range(w):
        jj[c] = int(np.floor(u[c] + half))
        wxx[c] = 0.0 if nearest else np.float32(u[c] - jj[c])
    on_centres = not np.any(wxx != 0)
    for r in numba.prange(h):
        i = int(np.floor(v[r] + half))
        wy = np.float32(0.0) if nearest else np.float32(v[r] - i)
        row = out[r]
        if on_centres and wy == 0:
            for c in range(w):
                x = band[i, jj[c]]
                row[c] = np.nan if has_nodata and x == nodata else np.float32(x)
            continue
        for c in range(w):
            j = jj[c]
            wx = wxx[c]
            a = np.float32(band[i, j])
            if has_nodata and band[i, j] == nodata:
                a = np.float32(np.nan)
            b = np.float32(band[i, j + 1])
            if has_nodata and band[i, j + 1] == nodata:
                b = np.float32(np.nan)
            cc = np.float32(band[i + 1, j])
            if has_nodata and band[i + 1, j] == nodata:
                cc = np.float32(np.nan)
            d = np.float32(band[i + 1, j + 1])
            if has_nodata and band[i + 1, j + 1] == nodata:
                d = np.float32(np.nan)
            left = a * (one - wy) + cc * wy
            right = b * (one - wy) + d * wy
            row[c] = left * (one - wx) + right * wx


def _boa_offset(props: dict) -> float:
    """The L2A offset to add to DN: -1000 from processing baseline 04.00 on, else 0."""
    for key in ("s2:boa_add_offset", "boa_add_offset"):
        if props.get(key) is not None:
            return float(props[key])
    if props.get("earthsearch:boa_offset_applied"):
        return 0.0
    try:
        return -1000.0 if float(props.get("s2:processing_baseline", 0)) >= 4.0 else 0.0
    except (TypeError, ValueError):
        return 0.0


# --------------------------------------------------------------------------------------------
def _read_onto(paths: list[str], grid: GridSpec, resampling: Resampling, dtype=np.float32,
               src_nodata: float | None = None) -> np.ndarray:
    """Warp same-grid rasters (one band each) onto `grid` in one GDAL call.

    Only the window covering the tile (plus a margin for the kernel) is read; pixels the source
    does not cover come back as NaN.
    """
    out = np.full((len(paths),) + grid.shape, np.nan, dtype=np.float32)
    current = paths[0]  # the file being read, for the error message
    try:
        with _Handle(_open(paths[0])) as ref:
            crs, transform = ref.crs, ref.transform
            nodata = ref.nodata if src_nodata is None else src_nodata
            if crs is None:
                raise PermanentError(f"{Path(paths[0]).name}: raster has no CRS")
            plan = _separable_plan(crs, transform, grid, resampling)
        if plan is not None:
            # the raster is in the tile's CRS (S2 and the tile in one UTM zone): resample
            # rows then columns exactly as a bilinear/nearest warp would, with no GDAL warp
            win, u, v = plan
            for i, p in enumerate(paths):
                current = p
                with _Handle(_open(p)) as ds:
                    if ds.crs != crs or ds.transform != transform:
                        raise PermanentError(
                            f"{Path(p).name} is not on the grid of {Path(paths[0]).name}")
                    got = _read_padded(ds, win)
                if got is None:
                    continue  # this raster does not reach the tile: NaN
                band, (r0, r1, c0, c1) = got
                _resample_separable(band, band.dtype.type(nodata or 0), nodata is not None,
                                    u, v, resampling == Resampling.nearest, out[i])
                # beyond the raster's footprint there is no data, whatever the padding holds
                out[i][(v < r0 - 0.5) | (v > r1 - 0.5)] = np.nan
                out[i][:, (u < c0 - 0.5) | (u > c1 - 0.5)] = np.nan
            return out
        with rasterio.open(paths[0]) as ref:
            b = _tile_bounds_in(crs, grid, Path(paths[0]).name)
            pad = 4 * max(abs(transform.a), abs(transform.e))
            win = from_bounds(b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad, transform)
            win = win.round_offsets(op="floor").round_lengths(op="ceil")
            win = win.intersection(rasterio.windows.Window(0, 0, ref.width, ref.height))
            src_shape = (int(win.height), int(win.width))
            wtransform = rasterio.windows.transform(win, transform)
        stack = None
        for i, p in enumerate(paths):
            current = p
            with rasterio.open(p) as ds:
                if ds.crs != crs or ds.transform != transform:
                    raise PermanentError(f"{Path(p).name} is not on the grid of {Path(paths[0]).name}")
                band = ds.read(1, window=win)
                if stack is None:
                    stack = np.empty((len(paths),) + src_shape, dtype=band.dtype)
                stack[i] = band
    except rasterio.errors.WindowError:
        return out  # the raster does not reach this tile
    except rasterio.errors.RasterioError as e:
        raise _unreadable(current, e) from None
    # warp the native integers (GDAL skips source nodata itself) on both cores
    reproject(stack, out, src_transform=wtransform, src_crs=crs, src_nodata=nodata,
              dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
              resampling=resampling, num_threads=2)
    return out


def _read_mosaic(paths: list[str], grid: GridSpec, resampling: Resampling) -> np.ndarray | None:
    """Rasters side by side on one lattice (DEM tiles) pasted into one source array and warped
    once, so pixels near a seam interpolate across it instead of from a renormalised edge.
    None when they are not on one lattice (the caller then warps them one by one)."""
    dss = []
    for p in paths:
        try:
            dss.append(_open(p))
        except rasterio.errors.RasterioError as e:
            raise _unreadable(p, e) from None
    ref = dss[0]
    t0 = ref.transform
    if ref.crs is None or t0.b or t0.d:
        return None
    sx, sy = t0.a, -t0.e
    offsets = []
    for ds in dss:
        t = ds.transform
        ox, oy = (t.c - t0.c) / sx, (t0.f - t.f) / sy
        if ds.crs != ref.crs or t.b or t.d or not np.isclose(t.a, sx) or \
                not np.isclose(-t.e, sy) or abs(ox - round(ox)) > 1e-6 or \
                abs(oy - round(oy)) > 1e-6:
            return None
        offsets.append((round(oy), round(ox)))
    b = _tile_bounds_in(ref.crs, grid, Path(paths[0]).name)
    c0, c1 = int(np.floor((b[0] - t0.c) / sx)) - 4, int(np.ceil((b[2] - t0.c) / sx)) + 4
    r0, r1 = int(np.floor((t0.f - b[3]) / sy)) - 4, int(np.ceil((t0.f - b[1]) / sy)) + 4
    src = np.full((r1 - r0, c1 - c0), np.nan, np.float32)
    for p, ds, (oy, ox) in zip(paths, dss, offsets, strict=True):
        # this raster's pixels [rr0, rr1) x [cc0, cc1) fall in the mosaic window
        rr0, rr1 = max(r0 - oy, 0), min(r1 - oy, ds.height)
        cc0, cc1 = max(c0 - ox, 0), min(c1 - ox, ds.width)
        if rr1 <= rr0 or cc1 <= cc0:
            continue
        try:
            part = ds.read(1, window=((rr0, rr1), (cc0, cc1))).astype(np.float32)
        except rasterio.errors.RasterioError as e:
            raise _unreadable(p, e) from None
        if ds.nodata is not None:
            part[part == ds.nodata] = np.nan
        dst = src[rr0 + oy - r0:rr1 + oy - r0, cc0 + ox - c0:cc1 + ox - c0]
        np.copyto(dst, part, where=np.isnan(dst))  # first raster wins where they overlap
    out = np.full(grid.shape, np.nan, np.float32)
    reproject(src, out, src_transform=t0 * Affine.translation(c0, r0), src_crs=ref.crs,
              src_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs,
              dst_nodata=np.nan, resampling=resampling, num_threads=2)
    return out


def _first_valid(paths: list[str], grid: GridSpec, resampling: Resampling,
                 src_nodata: float | None = None) -> np.ndarray:
    """Single-band rasters warped one by one onto `grid`; where they overlap the first with
    data wins; NaN where none reaches."""
    out = np.full(grid.shape, np.nan, np.float32)
    for path in paths:
        part = _read_onto([path], grid, resampling, src_nodata=src_nodata)[0]
        np.copyto(out, part, where=np.isnan(out))
    return out


@numba.njit(parallel=True, cache=True)
def _mask_scene(bands, scl, offset, invalid_classes):
    """Add the L2A offset; NaN where the scene class is not clear ground or the reflectance
    is not positive."""
    nb, n = bands.shape
    bad = np.empty(n, np.bool_)
    for i in numba.prange(n):
        s = scl[i]
        x = s != s
        for c in invalid_classes:
            x |= s == c
        bad[i] = x
    for b in range(nb):
        row = bands[b]
        for i in numba.prange(n):
            v = row[i] + offset
            row[i] = np.nan if bad[i] or not v > 0 else v


@numba.njit(parallel=True, cache=True)
def _nan_median(stack: np.ndarray, out: np.ndarray) -> None:
    d, n = stack.shape
    chunk = 8192
    for c in numba.prange((n + chunk - 1) // chunk):
        buf = np.empty(d, np.float32)  # one buffer per chunk, not per pixel
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            k = 0
            for j in range(d):
                v = stack[j, i]
                if v == v:  # not NaN
                    buf[k] = v
                    k += 1
            if k == 0:
                out[i] = np.nan
            elif k == 1:
                out[i] = buf[0]
            elif k == 2:
                out[i] = np.float32(0.5) * (buf[0] + buf[1])
            elif k == 3:  # branch-free: data-dependent branches dominate otherwise
                lo, hi = min(buf[0], buf[1]), max(buf[0], buf[1])
                out[i] = max(lo, min(hi, buf[2]))
            else:
                for q in range(1, k):  # insertion sort
                    v = buf[q]
                    p = q
                    while p > 0 and buf[p - 1] > v:
                        buf[p] = buf[p - 1]
                        p -= 1
                    buf[p] = v
                if k % 2:
                    out[i] = buf[k // 2]
                else:
                    out[i] = np.float32(0.5) * (buf[k // 2 - 1] + buf[k // 2])


def nan_median(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (few dates, many pixels: a Numba insertion sort)."""
    flat = np.ascontiguousarray(stack.reshape(stack.shape[0], -1), dtype=np.float32)
    out = np.empty(flat.shape[1], np.float32)
    _nan_median(flat, out)
    return out.reshape(stack.shape[1:])


def warm_kernels() -> None:
    """Compile (or load from Numba's cache) the kernels for the band types archives use, so a
    benchmark or a fresh worker does not time the compiler."""
    u = v = np.arange(2, dtype=np.float64) + 0.25
    for dt_ in (np.uint8, np.uint16, np.int16, np.float32):
        band = np.ones((4, 4), dt_)
        _resample_separable(band, band.dtype.type(0), True, u, v, False,
                            np.empty((2, 2), np.float32))
    nan_median(np.ones((3, 1, 2), np.float32))
    _mask_scene(np.ones((1, 2), np.float32), np.ones(2, np.float32), np.float32(0),
                np.array(SCL_INVALID, np.float32))


def slope_aspect(elev: np.ndarray, dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect in degrees (aspect clockwise from north, downslope direction)."""
    gy, gx = np.gradient(elev.astype(np.float64), dy, dx)
    # rows run south, so north-facing gradient is -gy
    dzdx, dzdy = gx, -gy
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    aspect = (np.degrees(np.arctan2(-dzdx, -dzdy)) + 360.0) % 360.0
    return slope.astype(np.float32), aspect.astype(np.float32)


class LocalRasterSource(Source):
    """s2, s2rgb, dem, esawc, ghsbuilt and agb from GeoTIFF/COG (and CCI NetCDF) files."""

    name = "local"
    modalities = ("s2", "s2rgb", "dem", "esawc", "ghsbuilt", "agb")
    version = "1"

    def __init__(self, root: str | None = None, **_ignored):
        if not root:
            raise BadInput("the local source needs root=<directory or items.json> "
                           "(--source-opt local.root=PATH)")
        self.root = str(root)
        self._items: list[Item] | None = None

    def __getstate__(self):
        return {"root": self.root, "_items": self._items}

    def items(self) -> list[Item]:
        if self._items is None:
            self._items = load_index(self.root)
        return self._items

    def check(self) -> None:
        if not self.items():
            raise BadInput(f"local raster archive {self.root} holds no rasters")

    def _index(self, collection: str) -> tuple[list[Item], shapely.STRtree]:
        """An R-tree of one collection's footprints, built once per process (an archive of
        thousands of scenes would otherwise cost a scan per tile)."""
        trees = self.__dict__.setdefault("_trees", {})
        if collection not in trees:
            its = [it for it in self.items() if it.collection == collection]
            trees[collection] = (its, shapely.STRtree([shapely.box(*it.bbox) for it in its]))
        return trees[collection]

    def _select(self, tile: TileRef, collection: str, period: Period | None) -> list[Item]:
        its, tree = self._index(collection)
        out = []
        # one box per part: a tile cut at the antimeridian has one on each side
        boxes = shapely.box(*shapely.bounds(shapely.get_parts(tile.polygon)).T)
        hits = np.unique(tree.query(boxes, predicate="intersects")[1])
        for k in hits:
            it = its[int(k)]
            if period is not None and it.datetime is not None and \
                    not period.contains(it.datetime.date()):
                continue
            out.append(it)
        return sorted(out, key=lambda i: (i.datetime or dt.datetime.min.replace(tzinfo=dt.UTC),
                                          i.id))

    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        fn = {"s2": self._s2, "s2rgb": self._s2rgb, "dem": self._dem, "esawc": self._esawc,
              "ghsbuilt": self._ghsbuilt, "agb": self._agb}
        if modality.name not in fn:
            raise PermanentError(f"local source does not serve {modality.name}")
        for tid in unit.tiles:
            tile = tiles[tid]
            grid = tile.grid_at(modality.res)
            try:
                data, used = fn[modality.name](tile, grid, period)
            except NoData as e:
                yield TileResult(tid, "nodata", error=str(e) or None)
                continue
            except PermanentError as e:
                yield TileResult(tid, "failed", error=f"PermanentError: {e}")
                continue
            except rasterio.errors.RasterioError as e:
                yield TileResult(tid, "failed", error=f"unreadable raster: {e}")
                continue
            yield TileResult(tid, "done", data, items=tuple(i.id for i in used))

    # ---- Sentinel-2 ------------------------------------------------------------------------
    def _s2_scene(self, item: Item, grid: GridSpec, bands: tuple[str, ...]) -> np.ndarray:
        """One scene's bands as reflectance x 1e4 (float32, NaN = invalid) on the grid."""
        missing = [b for b in bands + ("SCL",) if b not in item.assets]
        if missing:
            raise PermanentError(f"{item.id}: assets {missing} missing")
        groups: dict[float, list[str]] = {}
        for b in bands:
            groups.setdefault(_resolution(item.assets[b]), []).append(b)
        out = np.empty((len(bands),) + grid.shape, np.float32)
        for _, names in sorted(groups.items()):
            arr = _read_onto([item.assets[b] for b in names], grid, Resampling.bilinear)
            for b, a in zip(names, arr, strict=True):
                out[bands.index(b)] = a
        scl = _read_onto([item.assets["SCL"]], grid, Resampling.nearest, src_nodata=0)[0]
        _mask_scene(out.reshape(len(bands), -1), scl.ravel(), np.float32(
            _boa_offset(item.properties)), np.array(SCL_INVALID, np.float32))
        return out

    def _composite(self, tile: TileRef, grid: GridSpec, period: Period,
                   bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[Item]]:
        items = self._select(tile, S2, period)
        if not items:
            raise NoData(f"no Sentinel-2 scene in {period.label}")
        # one layer per day: neighbouring MGRS granules of one pass overlap by ~10 km, and an
        # observation must count once (the first granule with a clear pixel gives it)
        days: dict[dt.date, list[Item]] = {}
        for it in items:
            days.setdefault(it.datetime.date() if it.datetime else dt.date.min, []).append(it)
        stack = np.empty((len(days), len(bands)) + grid.shape, np.float32)
        for k, same_day in enumerate(days.values()):
            stack[k] = self._s2_scene(same_day[0], grid, bands)
            for it in same_day[1:]:
                more = self._s2_scene(it, grid, bands)
                np.copyto(stack[k], more, where=np.isnan(stack[k]))
        count = np.sum(~np.isnan(stack[:, 0]), axis=0)
        if not count.any():
            raise NoData(f"no clear Sentinel-2 pixel in {period.label}")
        return nan_median(stack), count, items

    def _s2(self, tile, grid, period):
        med, count, items = self._composite(tile, grid, period, S2_BANDS)
        out = np.zeros((len(S2_BANDS) + 1,) + grid.shape, np.uint16)
        out[:-1] = np.where(np.isnan(med), 0, np.clip(np.rint(med), 1, 65535)).astype(np.uint16)
        out[-1] = count.astype(np.uint16)
        return out, items

    def _s2rgb(self, tile, grid, period):
        med, _, items = self._composite(tile, grid, period, ("B4", "B3", "B2"))
        rgb = np.clip(np.rint(med * 1e-4 / 0.3 * 255), 1, 255)
        return np.where(np.isnan(med), 0, rgb).astype(np.uint8), items

    # ---- terrain and land cover ----------------------------------------------------------
    def _dem(self, tile, grid, period):
        items = self._select(tile, DEM, None)
        if not items:
            raise NoData("no DEM tile covers this tile")
        # one pixel of border so slope/aspect need no edge special case
        big = GridSpec(grid.epsg, grid.x0 - grid.dx, grid.y0 + grid.dy, grid.dx, grid.dy,
                       grid.width + 2, grid.height + 2)
        paths = [it.assets["elevation"] for it in items]
        elev = _read_mosaic(paths, big, Resampling.bilinear) if len(paths) > 1 else None
        if elev is None:
            elev = _first_valid(paths, big, Resampling.bilinear)
        if np.isnan(elev[1:-1, 1:-1]).all():
            raise NoData("DEM tiles do not reach this tile")
        # pixels no DEM tile covers (GLO-30 has no tiles over open sea) stay NaN, and so do
        # slope and aspect next to them; the one-pixel border only feeds the slope kernel,
        # so where it is missing the tile's edge pixel stands in
        border = np.ones(elev.shape, bool)
        border[1:-1, 1:-1] = False
        fill = border & np.isnan(elev)
        elev[fill] = np.pad(elev[1:-1, 1:-1], 1, mode="edge")[fill]
        dx, dy = grid.dx, grid.dy
        if grid.epsg == 4326:  # degrees -> metres at the tile's latitude
            lat = np.radians(grid.y0)
            dx, dy = dx * 111_320 * np.cos(lat), dy * 110_540
        slope, aspect = slope_aspect(elev, dx, dy)
        out = np.stack([elev, slope, aspect])[:, 1:-1, 1:-1]
        return out.astype(np.float32), items

    def _esawc(self, tile, grid, period):
        items = self._select(tile, WORLDCOVER, period) or (
            self._select(tile, WORLDCOVER, None) if period.kind == "static" else [])
        if not items:
            raise NoData(f"no WorldCover map for {period.label}")
        cls = _first_valid([it.assets["map"] for it in items], grid, Resampling.nearest,
                           src_nodata=0)
        if np.isnan(cls).all():
            raise NoData("WorldCover does not reach this tile")
        return np.where(np.isnan(cls), 0, cls).astype(np.uint8)[None], items

    def _ghsbuilt(self, tile, grid, period):
        """GHS-BUILT-S epoch tiles (Mollweide, 100 m) warped with nearest neighbour, so each
        pixel keeps the m2 of its native cell, as the Earth Engine path delivers it."""
        items = [it for it in self._select(tile, GHS_BUILT, None)
                 if it.datetime is not None and it.datetime.year == period.start.year]
        if not items:
            raise NoData(f"no GHS-BUILT-S epoch {period.label} in the archive")
        out = _first_valid([it.assets["built_surface"] for it in items], grid,
                           Resampling.nearest)
        if np.isnan(out).all():
            raise NoData("GHS-BUILT-S does not reach this tile")
        return np.where(np.isnan(out), 65535, out).astype(np.uint16)[None], items

    def _agb(self, tile, grid, period):
        """ESA CCI AGB and its SD (EPSG:4326, ~100 m) by nearest neighbour, each pixel the
        whole Mg/ha of its native cell, as the Earth Engine path delivers them."""
        items = [it for it in self._select(tile, CCI_AGB, None)
                 if it.datetime is not None and it.datetime.year == period.start.year]
        if not items:
            raise NoData(f"no ESA CCI AGB map for {period.label} in the archive")
        bands = []
        for b in ("agb", "agb_sd"):
            paths = [it.assets[b] for it in items]
            bands.append(_first_valid(paths, grid, Resampling.nearest,
                                      src_nodata=source_nodata(paths[0])))
        if np.isnan(bands[0]).all():
            raise NoData("ESA CCI AGB does not reach this tile")
        return np.stack([encode(b) for b in bands]), items
