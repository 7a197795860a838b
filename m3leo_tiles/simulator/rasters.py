"""What the simulator writes besides SAFE products: truth per tile, and the local-source rasters.

- `truth/<tile>.npz`: on the tile's 10 m grid: `classes` (1 water, 2 forest, 3 cropland,
  4 bare, 5 urban), `height` (ellipsoidal m), `deformation` (LOS range increase per date, m,
  shape (dates, y, x)), `coherence` (12-day class coherence), `sigma0_vv_db`, `sigma0_vh_db`,
  `ifg_phase` (per consecutive pair: wrap(4 pi (d2 - d1) / lambda), the phase g1 conj(g2)
  keeps after flattening and topography removal), `unw_phase` (the same, unwrapped:
  4 pi (d2 - d1) / lambda, what `s1unw` recovers up to 2 pi k + c per component), `rho` and `tau` (days) of the temporal
  decay gamma(t) = (1 - rho) exp(-t / tau) + rho (tau 0: gamma = rho for t > 0).
- `rasters/`: Sentinel-2 L2A-like COGs (B2..B12 at 10/20 m, SCL at 20 m; three dates, clouds
  (SCL 9) on the second). Current L2A convention (processing baseline >= 04.00): uint16
  DN = reflectance x 1e4 + 1000, i.e. reflectance = (DN - 1000) x 1e-4; the items say so with
  `s2:processing_baseline` "05.11" and `s2:boa_add_offset` -1000. DN 0 is nodata. `dem.tif`: heights above the WGS84
  ellipsoid, 10 m (geoid taken as 0; its tags say so). `worldcover.tif` (ESA WorldCover codes), indexed by the STAC ItemCollection `items.json`.
- `aoi.geojson`: the union of the covered tiles.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin
from scipy import ndimage

from ..grid.tiles import Tile
from ..modalities import S2_BANDS
from .scene import CLASSES, Scene

TEN_M = ("B2", "B3", "B4", "B8")
BOA_OFFSET = 1000  # L2A DN offset since processing baseline 04.00 (Jan 2022)


def _window(scene: Scene, tile: Tile) -> tuple[slice, slice]:
    x0, _, _, y1 = tile.bounds
    c = int(round((x0 - scene.x0) / scene.res))
    r = int(round((scene.y0 - y1) / scene.res))
    n = int(tile.size / scene.res)
    return slice(r, r + n), slice(c, c + n)


def write_truth(out: Path, scene: Scene, tiles: list[Tile], steps: list[float],
                wavelength: float, decay: dict[int, tuple[float, float]]) -> list[str]:
    """One npz per tile; `steps` are the dates in units of 12 days, `decay` class -> (rho,
    tau days) of the temporal coherence model."""
    d = out / "truth"
    d.mkdir(parents=True, exist_ok=True)
    rho_lut = np.zeros(max(CLASSES) + 1, np.float32)
    tau_lut = np.zeros(max(CLASSES) + 1, np.float32)
    for k, (r, tau) in decay.items():
        rho_lut[k], tau_lut[k] = r, tau
    files = []
    for t in tiles:
        rs, cs = _window(scene, t)
        cls = scene.classes[rs, cs]
        defo = np.stack([scene.bowl[rs, cs] * scene.los_rate * k for k in steps])
        ifg = np.angle(np.exp(4j * np.pi * np.diff(defo, axis=0) / wavelength))
        unw = 4 * np.pi * np.diff(defo, axis=0) / wavelength
        np.savez_compressed(
            d / f"{t.id}.npz", classes=cls, height=scene.height[rs, cs], deformation=defo,
            coherence=scene.table(4)[cls].astype(np.float32),
            sigma0_vv_db=scene.table(2)[cls].astype(np.float32),
            sigma0_vh_db=scene.table(3)[cls].astype(np.float32),
            ifg_phase=ifg.astype(np.float32), unw_phase=unw.astype(np.float32),
            rho=rho_lut[cls], tau=tau_lut[cls])
        files.append(f"truth/{t.id}.npz")
    return files


def _geotiff(path: Path, data: np.ndarray, epsg: int, x0: float, y0: float, res: float,
             nodata: float | None = None, **tags: str) -> None:
    profile = dict(driver="GTiff", width=data.shape[-1], height=data.shape[-2], count=1,
                   dtype=data.dtype, crs=f"EPSG:{epsg}", transform=from_origin(x0, y0, res, res),
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate", zlevel=1)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        if tags:
            ds.update_tags(**tags)


def write_rasters(out: Path, scene: Scene, tiles: list[Tile], rng: np.random.Generator,
                  date0: dt.date, optical: bool = True) -> dict[str, str]:
    """DEM, WorldCover and (with `optical`) three Sentinel-2 L2A dates over the scene, their
    STAC index rasters/items.json, and aoi.geojson (the union of `tiles`)."""
    rdir = out / "rasters"
    rdir.mkdir(parents=True, exist_ok=True)
    epsg, x0, y0, res = scene.epsg, scene.x0, scene.y0, scene.res
    _geotiff(rdir / "dem.tif", scene.height, epsg, x0, y0, res,
             datum="WGS84 ellipsoid (simulated scene; geoid undulation taken as 0)")
    wc = np.zeros(scene.classes.shape, np.uint8)
    for k, v in CLASSES.items():
        wc[scene.classes == k] = v[1]
    _geotiff(rdir / "worldcover.tif", wc, epsg, x0, y0, res, nodata=0)
    lon0, lat0, lon1, lat1 = _bbox_lonlat(scene)
    items = [
        _item("dem", "cop-dem-glo-30", None, (lon0, lat0, lon1, lat1), {"elevation": "dem.tif"}),
        _item("worldcover-2021", "esa-worldcover", dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
              (lon0, lat0, lon1, lat1), {"map": "worldcover.tif"}),
    ]
    # Sentinel-2: class spectra, a little texture, terrain shading; clouds on the 2nd date
    refl = np.array([v[5] for k, v in sorted(CLASSES.items())], np.float32)  # (5, 10)
    cls = scene.classes.astype(np.int64) - 1
    gy, gx = np.gradient(scene.height, res)
    shade = np.clip(1 + 0.8 * (-gx * 0.5 + gy * 0.5), 0.6, 1.4).astype(np.float32)
    texture = 1 + 0.05 * ndimage.gaussian_filter(rng.standard_normal(cls.shape), 1.5)
    for i, day in enumerate((4, 14, 24) if optical else ()):
        when = dt.datetime.combine(date0 + dt.timedelta(days=day), dt.time(19, 5), dt.UTC)
        item_id = f"S2B_SIM_{when:%Y%m%d}_L2A"
        d = rdir / item_id
        d.mkdir(exist_ok=True)
        season = 1 + 0.03 * (i - 1)
        assets = {}
        for b, name in enumerate(S2_BANDS):
            v = refl[cls, b] * shade * texture * season
            dn = np.clip(np.rint(v) + BOA_OFFSET, 1, 65535).astype(np.uint16)
            if name not in TEN_M:  # 20 m bands: 2 x 2 block means
                h, w = dn.shape[0] // 2 * 2, dn.shape[1] // 2 * 2
                dn = np.rint(dn[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
                             ).astype(np.uint16)
            _geotiff(d / f"{name}.tif", dn, epsg, x0, y0, res if name in TEN_M else 2 * res,
                     nodata=0)
            assets[name] = f"{item_id}/{name}.tif"
        scl = np.where(scene.classes == 1, 6, 4).astype(np.uint8)  # water / vegetation
        scl[scene.classes == 4] = 5
        if i == 1:
            blob = ndimage.gaussian_filter(rng.standard_normal(scl.shape), 40) > 0.004
            scl[blob] = 9
        scl = scl[: scl.shape[0] // 2 * 2:2, : scl.shape[1] // 2 * 2:2]
        _geotiff(d / "SCL.tif", scl, epsg, x0, y0, 2 * res, nodata=0)
        assets["SCL"] = f"{item_id}/SCL.tif"
        items.append(_item(item_id, "sentinel-2-l2a", when, (lon0, lat0, lon1, lat1), assets,
                           {"s2:processing_baseline": "05.11",
                            "s2:boa_add_offset": -BOA_OFFSET}))
    (rdir / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items},
                                                indent=1))
    polys = [t.polygon_lonlat for t in tiles]
    aoi = shapely.union_all(polys).buffer(-0.002)
    (out / "aoi.geojson").write_text(json.dumps({
        "type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {"name": "simulated"},
            "geometry": json.loads(shapely.to_geojson(aoi))}]}))
    return {"rasters": "rasters/items.json", "dem": "rasters/dem.tif", "aoi": "aoi.geojson"}


def _bbox_lonlat(scene: Scene) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    h, w = scene.shape
    return transform_bounds(f"EPSG:{scene.epsg}", "EPSG:4326", scene.x0, scene.y0 - h * scene.res,
                            scene.x0 + w * scene.res, scene.y0)


def _item(item_id: str, collection: str, when: dt.datetime | None,
          bbox: tuple[float, float, float, float], assets: dict[str, str],
          props: dict[str, Any] | None = None) -> dict[str, Any]:
    """One STAC 1.0.0 Item (a Feature with bbox, datetime and GeoTIFF assets)."""
    lon0, lat0, lon1, lat1 = bbox
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id,
            "collection": collection, "bbox": [lon0, lat0, lon1, lat1],
            "geometry": json.loads(shapely.to_geojson(shapely.box(lon0, lat0, lon1, lat1))),
            "properties": {"datetime": when.isoformat().replace("+00:00", "Z") if when else None,
                           **(props or {})},
            "assets": {k: {"href": v, "type": "image/tiff; application=geotiff"}
                       for k, v in assets.items()}}
