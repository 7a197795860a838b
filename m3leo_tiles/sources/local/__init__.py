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
from collections.abc import Iterator, Mapping

import numpy as np
import rasterio
import shapely
from rasterio.enums import Resampling

from ...errors import BadInput, NoData, PermanentError
from ...grid.geobox import GeoBox
from ...modalities import S2_BANDS, Modality
from ...periods import Period
from ..base import Source, TileRef, TileResult, WorkUnit
from ..cciagb import CCI_AGB, encode, source_nodata
from ..sentinel2 import SCL_INVALID, boa_offset
from .index import DEM, GHS_BUILT, S2, WORLDCOVER, Item, load_index
from .kernels import mask_scene, nan_median, warm_kernels
from .rasters import first_valid, read_mosaic, read_onto, resolution
from .terrain import slope_aspect


class LocalRasterSource(Source):
    """s2, s2rgb, dem, esawc, ghsbuilt and agb from GeoTIFF/COG (and CCI NetCDF) files."""

    name = "local"
    modalities = ("s2", "s2rgb", "dem", "esawc", "ghsbuilt", "agb")
    version = "1"
    light = True  # a tile's windows of local rasters

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
    def _s2_scene(self, item: Item, grid: GeoBox, bands: tuple[str, ...]) -> np.ndarray:
        """One scene's bands as reflectance x 1e4 (float32, NaN = invalid) on the grid."""
        missing = [b for b in bands + ("SCL",) if b not in item.assets]
        if missing:
            raise PermanentError(f"{item.id}: assets {missing} missing")
        groups: dict[float, list[str]] = {}
        for b in bands:
            groups.setdefault(resolution(item.assets[b]), []).append(b)
        out = np.empty((len(bands),) + grid.shape, np.float32)
        for _, names in sorted(groups.items()):
            arr = read_onto([item.assets[b] for b in names], grid, Resampling.bilinear)
            for b, a in zip(names, arr, strict=True):
                out[bands.index(b)] = a
        scl = read_onto([item.assets["SCL"]], grid, Resampling.nearest, src_nodata=0)[0]
        mask_scene(out.reshape(len(bands), -1), scl.ravel(), np.float32(
            boa_offset(item.properties)), np.array(SCL_INVALID, np.float32))
        return out

    def _composite(self, tile: TileRef, grid: GeoBox, period: Period,
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
        big = GeoBox(grid.epsg, grid.x0 - grid.dx, grid.y0 + grid.dy, grid.dx, grid.dy,
                       grid.width + 2, grid.height + 2)
        paths = [it.assets["elevation"] for it in items]
        elev = read_mosaic(paths, big, Resampling.bilinear) if len(paths) > 1 else None
        if elev is None:
            elev = first_valid(paths, big, Resampling.bilinear)
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
        cls = first_valid([it.assets["map"] for it in items], grid, Resampling.nearest,
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
        out = first_valid([it.assets["built_surface"] for it in items], grid,
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
            bands.append(first_valid(paths, grid, Resampling.nearest,
                                      src_nodata=source_nodata(paths[0])))
        if np.isnan(bands[0]).all():
            raise NoData("ESA CCI AGB does not reach this tile")
        return np.stack([encode(b) for b in bands]), items


__all__ = ["DEM", "GHS_BUILT", "S2", "WORLDCOVER", "Item", "LocalRasterSource", "load_index",
           "nan_median", "slope_aspect", "warm_kernels"]
