"""Raster I/O of the local source: windows of GeoTIFF/COG files onto a tile's grid.

A raster in the tile's own UTM zone and no finer than its grid is resampled with the exact
separable bilinear/nearest a GDAL warp would compute (`kernels.resample_separable`); any other
is warped by GDAL (`rasterio.warp.reproject`), all bands of one resolution in one call.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import from_bounds

from ...errors import PermanentError
from ...grid.geobox import GeoBox
from .kernels import resample_separable


def unreadable(path: str, e: Exception) -> PermanentError:
    """Name the file and GDAL's own reason (rasterio's message alone says "see previous")."""
    cause = e.__cause__ or e.__context__
    reason = str(cause) if cause and str(cause) else str(e)
    return PermanentError(f"unreadable raster {Path(path).name}: {reason}")


def _crs_name(crs) -> str:
    import pyproj  # only to name a CRS in an error message

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


def _tile_bounds_in(crs, grid: GeoBox, name: str):
    return _transform_bounds(grid.crs, crs, grid.bounds, name, crs, f"the tile's {grid.crs}")


def raster_bbox(path: Path) -> tuple[float, float, float, float]:
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise PermanentError(f"{path.name}: raster has no CRS")
            return _transform_bounds(ds.crs, "EPSG:4326", ds.bounds, path.name, ds.crs,
                                     "EPSG:4326")
    except rasterio.errors.RasterioError as e:
        raise unreadable(str(path), e) from None


@functools.lru_cache(maxsize=4096)
def resolution(path: str) -> float:
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


def _separable_plan(crs, transform, grid: GeoBox, resampling: Resampling):
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


def read_onto(paths: list[str], grid: GeoBox, resampling: Resampling,
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
                resample_separable(band, band.dtype.type(nodata or 0), nodata is not None,
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
        raise unreadable(current, e) from None
    # warp the native integers (GDAL skips source nodata itself) on both cores
    reproject(stack, out, src_transform=wtransform, src_crs=crs, src_nodata=nodata,
              dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
              resampling=resampling, num_threads=2)
    return out


def read_mosaic(paths: list[str], grid: GeoBox, resampling: Resampling) -> np.ndarray | None:
    """Rasters side by side on one lattice (DEM tiles) pasted into one source array and warped
    once, so pixels near a seam interpolate across it instead of from a renormalised edge.
    None when they are not on one lattice (the caller then warps them one by one)."""
    dss = []
    for p in paths:
        try:
            dss.append(_open(p))
        except rasterio.errors.RasterioError as e:
            raise unreadable(p, e) from None
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
            raise unreadable(p, e) from None
        if ds.nodata is not None:
            part[part == ds.nodata] = np.nan
        dst = src[rr0 + oy - r0:rr1 + oy - r0, cc0 + ox - c0:cc1 + ox - c0]
        np.copyto(dst, part, where=np.isnan(dst))  # first raster wins where they overlap
    out = np.full(grid.shape, np.nan, np.float32)
    reproject(src, out, src_transform=t0 * Affine.translation(c0, r0), src_crs=ref.crs,
              src_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs,
              dst_nodata=np.nan, resampling=resampling, num_threads=2)
    return out


def first_valid(paths: list[str], grid: GeoBox, resampling: Resampling,
                 src_nodata: float | None = None) -> np.ndarray:
    """Single-band rasters warped one by one onto `grid`; where they overlap the first with
    data wins; NaN where none reaches."""
    out = np.full(grid.shape, np.nan, np.float32)
    for path in paths:
        part = read_onto([path], grid, resampling, src_nodata=src_nodata)[0]
        np.copyto(out, part, where=np.isnan(out))
    return out
