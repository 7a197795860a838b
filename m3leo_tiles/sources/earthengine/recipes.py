"""What Earth Engine computes for each modality, in one table (`RECIPES`).

A recipe is the ee.Image a tile's request evaluates, the bands requested beside the
modality's own (to tell "no observation" from a value), and what turns the returned band
arrays into the modality's (masking, or NoData when the tile saw nothing). The dispatch-table
shape follows xarray-sentinel's `METADATA_OPENERS`. Collections are those of the Earth Engine
catalogue named in each builder; the reasons for each resampling are in the package docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import NoData
from ...modalities import S2_BANDS
from ...periods import Period
from ..sentinel2 import SCL_INVALID
from . import gssic

#: ESA CCI Biomass AGB in the community catalogue (gee-community-catalog.org/projects/cci_agb):
#: one image per epoch, band AGB and SD in Mg/ha, ingested with 0 as no data
CCI_AGB_ASSET = "projects/sat-io/open-datasets/ESA/ESA_CCI_AGB"

Pixels = dict[str, np.ndarray]


@dataclass(frozen=True)
class Recipe:
    """One modality's Earth Engine request: `image(region, period)` builds the expression,
    `extra` names bands requested beside the modality's own, `finish(px, bands, period)`
    masks them in place or raises NoData (None: the bands are used as they come)."""

    image: Callable[[Any, Period], Any]
    extra: tuple[str, ...] = ()
    finish: Callable[[Pixels, tuple[str, ...], Period], Pixels] | None = None


def _stand_in(bands: list[str], cast: str) -> Any:
    """A one-image collection, fully masked, with `bands`: merged under a reduction or mosaic
    so that one over no images still has its bands (Earth Engine gives it none, and renaming
    would fail the tile); masked, it changes no value and adds 0 to a count."""
    import ee

    img = ee.Image.constant([0] * len(bands)).rename(bands)
    return ee.ImageCollection([getattr(img, cast)().updateMask(0)])


# ---- Sentinel-2 L2A ---------------------------------------------------------------------------
def _s2_median(region: Any, period: Period, bands: list[str]) -> tuple[Any, Any]:
    """The period's per-day-mosaic median of `bands` with SCL-masked clouds, and the count of
    clear days (0 everywhere for a period with no scene, in the same single request)."""
    import ee

    start, end = period.start.isoformat(), period.end.isoformat()
    col = (ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED")
           .filterBounds(region).filterDate(start, end))

    def clear(img: Any) -> Any:
        scl = img.select("SCL")
        bad = scl.eq(SCL_INVALID[0])
        for c in SCL_INVALID[1:]:
            bad = bad.Or(scl.eq(c))
        # bilinear onto our grid as the local path does (20 m bands, other zones);
        # the mask stays the nearest scene class
        return img.resample("bilinear").updateMask(bad.Not())

    masked = col.map(clear)

    def day_mosaic(day: Any) -> Any:
        # neighbouring MGRS granules of one pass overlap by ~10 km: one mosaic per
        # day makes an observation count once, as the local path does
        d = ee.Date(day)
        return masked.filterDate(d, d.advance(1, "day")).mosaic().set(
            "system:time_start", d.millis())

    days = (masked.aggregate_array("system:time_start")
            .map(lambda t: ee.Date(t).format("YYYY-MM-dd")).distinct())
    daily = ee.ImageCollection.fromImages(days.map(day_mosaic))
    empty = _stand_in(bands, "toUint16")
    med = daily.select(bands).merge(empty).median()
    count = (daily.select("B2").merge(empty.select("B2")).count().unmask(0)
             .rename("count"))
    return med, count


def _s2(region: Any, period: Period) -> Any:
    med, count = _s2_median(region, period, list(S2_BANDS))
    # rounded (a median of two is a half), and 0 kept for no data, as the local path
    return med.round().max(1).unmask(0).toUint16().addBands(count.toUint16())


def _s2rgb(region: Any, period: Period) -> Any:
    med, count = _s2_median(region, period, ["B4", "B3", "B2"])
    rgb = med.divide(10000).visualize(min=0, max=0.3).rename(["red", "green", "blue"])
    return (rgb.max(1).updateMask(med.mask().reduce("min")).unmask(0).toUint8()
            .addBands(count.toUint16()))


def _s2_finish(px: Pixels, bands: tuple[str, ...], period: Period) -> Pixels:
    if not px["count"].any():
        raise NoData(f"no clear Sentinel-2 pixel in {period.label}")
    return px


# ---- terrain and land cover -------------------------------------------------------------------
def _dem(region: Any, period: Period) -> Any:
    import ee

    col = ee.ImageCollection("COPERNICUS/DEM/GLO30").filterBounds(region).select("DEM")
    # open sea has no GLO-30 tile: with the stand-in the answer there is
    # dem_valid == 0, nodata; the projection is GLO-30's 1 arc-second, not taken from
    # a first image that may not exist
    # bilinear: a nearest-neighbour 30 m DEM on a 10 m grid has terraces, and slope
    # computed on the tile grid would see steps instead of the terrain
    dem = (col.merge(_stand_in(["DEM"], "toFloat")).mosaic()
           .setDefaultProjection(ee.Projection("EPSG:4326").atScale(30))
           .resample("bilinear").rename("elevation"))
    # masked pixels (no GLO-30 tile over open sea) arrive as 0: the mask band lets
    # them become NaN, as on the local path
    return ee.Image.cat([dem, ee.Terrain.slope(dem).rename("slope"),
                         ee.Terrain.aspect(dem).rename("aspect"),
                         dem.mask().rename("dem_valid")]).toFloat()


def _dem_finish(px: Pixels, bands: tuple[str, ...], period: Period) -> Pixels:
    valid = px.pop("dem_valid") > 0
    if not valid.any():
        raise NoData("no Copernicus DEM over this tile")
    for b in bands:
        px[b] = np.where(valid, px[b], np.nan)
    return px


def _esawc(region: Any, period: Period) -> Any:
    import ee

    year = period.start.year
    asset = {2020: "ESA/WorldCover/v100", 2021: "ESA/WorldCover/v200"}.get(year)
    if asset is None:
        raise NoData(f"ESA WorldCover exists for 2020 and 2021, not {year}")
    return ee.ImageCollection(asset).first().select("Map").rename("class").toUint8()


def _treecover(region: Any, period: Period) -> Any:
    import ee

    col = (ee.ImageCollection("MODIS/061/MOD44B")
           .filterDate(period.start.isoformat(), period.end.isoformat())
           .select("Percent_Tree_Cover"))
    return (col.merge(_stand_in(["Percent_Tree_Cover"], "toUint8")).max()
            .rename("tree_cover").unmask(255).toUint8())


def _ghsbuilt(region: Any, period: Period) -> Any:
    import ee

    year = period.start.year
    if year % 5 or not 1975 <= year <= 2030:
        raise NoData(f"GHS-BUILT-S has epochs every 5 years 1975-2030, not {year}")
    return (ee.Image(f"JRC/GHSL/P2023A/GHS_BUILT_S/{year}").select("built_surface")
            .unmask(65535).toUint16())


def _agb(region: Any, period: Period) -> Any:
    """The year's CCI AGB epoch as agb, agb_sd (uint16 Mg/ha) and agb_epoch (how many epoch
    images the year has: 0 means no epoch, told apart from a tile of zeros). The collection
    masks 0 Mg/ha as no data; unmasked back to 0 it matches the product files."""
    import ee

    col = (ee.ImageCollection(CCI_AGB_ASSET)
           .filterDate(period.start.isoformat(), period.end.isoformat())
           .select(["AGB", "SD"], ["agb", "agb_sd"]))
    img = col.merge(_stand_in(["agb", "agb_sd"], "toUint16")).mosaic().unmask(0).toUint16()
    return img.addBands(ee.Image.constant(col.size()).rename("agb_epoch").toUint16())


def _agb_finish(px: Pixels, bands: tuple[str, ...], period: Period) -> Pixels:
    if not px.pop("agb_epoch").any():
        raise NoData(f"no ESA CCI AGB epoch in {period.label}")
    return px


# ---- Sentinel-1 from the Earth Engine catalogue -----------------------------------------------
def _s1grd_ee(region: Any, period: Period) -> Any:
    import ee

    col = (ee.ImageCollection("COPERNICUS/S1_GRD").filterBounds(region)
           .filterDate(period.start.isoformat(), period.end.isoformat())
           .filter(ee.Filter.eq("instrumentMode", "IW"))
           .filter(ee.Filter.listContains("transmitterReceiverPolarisation", "VV"))
           .filter(ee.Filter.listContains("transmitterReceiverPolarisation", "VH")))
    parts = []
    for orbit, tag in (("ASCENDING", "asc"), ("DESCENDING", "des")):
        one = col.filter(ee.Filter.eq("orbitProperties_pass", orbit)).select(["VV", "VH"])
        # a pass without acquisitions is common: its count is then 0
        empty = _stand_in(["VV", "VH"], "toFloat")
        med = one.merge(empty).median()
        count = one.select("VV").merge(empty.select("VV")).count()
        parts += [med.rename([f"VV_{tag}", f"VH_{tag}"]).unmask(0).toFloat(),
                  count.unmask(0).rename(f"count_{tag}").toUint16()]
    return ee.Image.cat(parts)


def _s1grd_ee_finish(px: Pixels, bands: tuple[str, ...], period: Period) -> Pixels:
    counts = [px.pop(f"count_{tag}") for tag in ("asc", "des")]
    if not any(c.any() for c in counts):
        raise NoData(f"no Sentinel-1 IW VV+VH scene in {period.label}")
    for tag, c in zip(("asc", "des"), counts, strict=True):
        for pol in ("VV", "VH"):  # masked pixels come back as 0, not NaN
            px[f"{pol}_{tag}"] = np.where(c > 0, px[f"{pol}_{tag}"], np.nan)
    return px


def _gssic_finish(px: Pixels, bands: tuple[str, ...], period: Period) -> Pixels:
    done = gssic.finish(px)
    if done is None:
        raise NoData(f"no GSSIC data in {period.label}")
    return done


RECIPES: dict[str, Recipe] = {
    "s2": Recipe(_s2, finish=_s2_finish),
    "s2rgb": Recipe(_s2rgb, extra=("count",), finish=_s2_finish),
    "dem": Recipe(_dem, extra=("dem_valid",), finish=_dem_finish),
    "esawc": Recipe(_esawc),
    "s1grd-ee": Recipe(_s1grd_ee, extra=("count_asc", "count_des"), finish=_s1grd_ee_finish),
    "treecover": Recipe(_treecover),
    "ghsbuilt": Recipe(_ghsbuilt),
    "gssic": Recipe(gssic.image, finish=_gssic_finish),
    "agb": Recipe(_agb, extra=("agb_epoch",), finish=_agb_finish),
}

__all__ = ["CCI_AGB_ASSET", "RECIPES", "Recipe"]
