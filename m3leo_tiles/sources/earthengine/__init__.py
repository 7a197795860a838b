"""Google Earth Engine: s2, s2rgb, dem, esawc (and s1grd-ee, treecover, ghsbuilt, gssic,
agb) straight onto the tile grids with computePixels.

One `ee.data.computePixels` request per (tile, modality, period): NPY format, the tile's own
CRS code, affine transform and dimensions, so pixels land on our lattice with no re-warping and
no GeoTIFF round trip (geetiles needs a getDownloadURL, a getInfo and a GeoTIFF re-read). The
high-volume endpoint is the default. A request over the 48 MiB cap is split by bands.

Retries compose instead of multiplying: the `ee` client itself retries 429 and 5xx with
exponential backoff (`ee.data.setMaxRetries`, `client_retries` here); what survives becomes a
TransientError that the runner records and retries in a later run, without in-run retries of
its own (`retries_inside = True`).

Cloud masking (s2): the scene classification band (SCL) of the L2A product, dropping no data,
saturated, cloud shadow, cloud medium/high probability and cirrus (classes 0, 1, 3, 8, 9, 10),
the same rule as the local source, so both paths agree. Cloud Score+ would mask better, but it
is a second collection to join and would make the two paths differ.

Resampling matches the local path: reflectance and elevation bilinear (a nearest-neighbour
30 m DEM would put terraces into the slope computed on the 10 m grid), class maps, tree cover,
built-up surface and biomass (agb) nearest.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from ...errors import AuthError, NoData, PermanentError, TransientError
from ...grid.geobox import GridSpec
from ...modalities import S2_BANDS, Modality
from ...periods import Period
from ..base import Source, TileRef, TileResult, WorkUnit
from ..sentinel2 import SCL_INVALID
from . import gssic

log = logging.getLogger(__name__)

REQUEST_CAP = 48 * 1024 * 1024  # bytes per computePixels request
_SIZE_ERROR = re.compile(r"Total request size \((\d+) bytes\) must be less than or equal to")
_TRANSIENT = re.compile(r"\b(429|50[0-4])\b|Too Many Requests|[Tt]imed? ?out|unavailable|"
                        r"Internal error|[Qq]uota", re.I)
_initialised: dict[str, bool] = {}  # per process: ee.Initialize once per worker
#: bands requested beside a modality's own, to tell "no observation" from a value
_EXTRA_BANDS = {"s2rgb": ("count",), "s1grd-ee": ("count_asc", "count_des"),
                "dem": ("dem_valid",), "agb": ("agb_epoch",)}
#: ESA CCI Biomass AGB in the community catalogue (gee-community-catalog.org/projects/cci_agb):
#: one image per epoch, band AGB and SD in Mg/ha, ingested with 0 as no data
CCI_AGB_ASSET = "projects/sat-io/open-datasets/ESA/ESA_CCI_AGB"


def _stand_in(bands: list[str], cast: str):
    """A one-image collection, fully masked, with `bands`: merged under a reduction or mosaic
    so that one over no images still has its bands (Earth Engine gives it none, and renaming
    would fail the tile); masked, it changes no value and adds 0 to a count."""
    import ee

    img = ee.Image.constant([0] * len(bands)).rename(bands)
    return ee.ImageCollection([getattr(img, cast)().updateMask(0)])


def _credentials(credentials: str | None, access_token: str | None):
    """The credentials object ee expects; None when none can be found."""
    import google.oauth2.credentials

    token = access_token or os.environ.get("EE_ACCESS_TOKEN")
    if token:
        return google.oauth2.credentials.Credentials(token=token)
    key = credentials or os.environ.get("EE_SERVICE_ACCOUNT_KEY") or os.environ.get(
        "GOOGLE_APPLICATION_CREDENTIALS")
    if key:
        if not Path(key).is_file():
            raise AuthError(f"Earth Engine key file {key} not found")
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_file(
                key, scopes=["https://www.googleapis.com/auth/earthengine",
                             "https://www.googleapis.com/auth/cloud-platform"])
        except (ValueError, KeyError, json.JSONDecodeError) as e:
            raise AuthError(f"Earth Engine key file {key} is not a service-account key: {e}"
                            ) from None
    stored = Path.home() / ".config" / "earthengine" / "credentials"
    if stored.is_file():
        import ee

        return ee.data.get_persistent_credentials()
    return None


def _cci_agb(start: str, end: str):
    """The year's CCI AGB epoch as agb, agb_sd (uint16 Mg/ha) and agb_epoch (how many epoch
    images the year has: 0 means no epoch, told apart from a tile of zeros). The collection
    masks 0 Mg/ha as no data; unmasked back to 0 it matches the product files."""
    import ee

    col = (ee.ImageCollection(CCI_AGB_ASSET).filterDate(start, end)
           .select(["AGB", "SD"], ["agb", "agb_sd"]))
    img = col.merge(_stand_in(["agb", "agb_sd"], "toUint16")).mosaic().unmask(0).toUint16()
    return img.addBands(ee.Image.constant(col.size()).rename("agb_epoch").toUint16())


def _region(tile: TileRef):
    """The tile's lon/lat bounding rectangle for filterBounds; a tile cut at the antimeridian
    (RFC 7946) gets one rectangle per side, not one spanning the globe."""
    import ee
    import shapely

    parts = shapely.get_parts(tile.polygon)
    if len(parts) == 1:
        return ee.Geometry.Rectangle(list(tile.polygon.bounds), "EPSG:4326", False)
    rings = [[list(shapely.box(*p.bounds).exterior.coords)] for p in parts]
    return ee.Geometry.MultiPolygon(rings, "EPSG:4326", False)


def decode_npy(raw: object, bands: list[str], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Band arrays from a computePixels NPY body, checked before anything is allocated.

    The header is read first: a body whose header promises another shape, other fields or
    non-numeric types is refused without reading (or allocating) its data, so a damaged or
    hostile answer costs nothing; a body cut short is a TransientError (the transfer broke).
    """
    if not isinstance(raw, bytes | bytearray):
        raise PermanentError(f"Earth Engine answered {type(raw).__name__}, not NPY bytes")
    buf = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(buf)
        header = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if header is None:
            raise ValueError(f"NPY format version {version} is not one Earth Engine writes")
        hshape, fortran, dtype = header(buf)
    except Exception as e:  # noqa: BLE001 - numpy's header parser raises SyntaxError,
        # tokenize.TokenError, ValueError... on damaged text: all mean a malformed body
        why = (str(e).splitlines() or [""])[0][:200]
        raise TransientError(f"Earth Engine returned a malformed NPY body: {why}") from None
    names = dtype.names or ()
    missing = [b for b in bands if b not in names]
    if missing or tuple(hshape) != tuple(shape) or fortran:
        raise PermanentError(f"Earth Engine answer has fields {names or None} and shape "
                             f"{tuple(hshape)}, expected {bands} on {tuple(shape)}")
    odd = [b for b in bands if dtype[b].kind not in "biuf" or dtype[b].shape]
    if odd:
        raise PermanentError(f"Earth Engine answer has non-numeric bands {odd} "
                             f"({', '.join(str(dtype[b]) for b in odd)})")
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        why = (str(e).splitlines() or [""])[0][:200]
        raise TransientError(f"Earth Engine returned a malformed NPY body: {why}") from None
    return {b: np.asarray(arr[b]) for b in bands}


class EarthEngineSource(Source):
    name = "earthengine"
    modalities = ("s2", "s2rgb", "dem", "esawc", "s1grd-ee", "treecover", "ghsbuilt", "gssic",
                  "agb")
    version = "1"
    retries_inside = True

    def __init__(self, project: str | None = None, credentials: str | None = None,
                 access_token: str | None = None, url: str | None = None,
                 client_retries: int = 5, deadline_ms: int = 120_000, **_ignored):
        self.project = project or os.environ.get("EE_PROJECT") or os.environ.get(
            "GOOGLE_CLOUD_PROJECT")
        self.credentials = credentials
        self.access_token = access_token
        self.url = url
        self.client_retries = int(client_retries)
        self.deadline_ms = int(deadline_ms)

    # ---- set-up ----------------------------------------------------------------------------
    def check(self) -> None:
        """One clear error before any work: a project and credentials are required, and Earth
        Engine must accept them (an unregistered project is refused at initialisation)."""
        if not self.project:
            raise AuthError("Earth Engine needs a Cloud project: --ee-project PROJECT "
                            "(or EE_PROJECT, or --source-opt earthengine.project=PROJECT)")
        if _credentials(self.credentials, self.access_token) is None:
            raise AuthError("no Earth Engine credentials: set GOOGLE_APPLICATION_CREDENTIALS "
                            "to a service-account key or run `earthengine authenticate`")
        self._init()

    def _init(self) -> None:
        key = f"{self.project}|{self.url}"
        if _initialised.get(key):
            return
        import ee
        import google.auth.exceptions

        creds = _credentials(self.credentials, self.access_token)
        if creds is None:
            raise AuthError("no Earth Engine credentials")
        if _initialised:  # another project or server: start clean, so it is checked too
            ee.Reset()
        url = self.url or ee.data.HIGH_VOLUME_API_BASE_URL
        try:
            ee.Initialize(credentials=creds, project=self.project, opt_url=url)
        except ee.EEException as e:
            msg = " ".join(str(e).split())
            if _TRANSIENT.search(msg):
                raise TransientError(f"Earth Engine unavailable: {msg}") from None
            raise AuthError(f"Earth Engine refused project {self.project}: {msg}") from None
        except google.auth.exceptions.GoogleAuthError as e:
            raise AuthError(f"Earth Engine credentials refused: {e}") from None
        except OSError as e:  # no route, DNS, connection refused
            raise TransientError(f"cannot reach Earth Engine at {url}: "
                                 f"{type(e).__name__}") from None
        ee.data.setMaxRetries(self.client_retries)
        ee.data.setDeadline(self.deadline_ms)
        _initialised.clear()
        _initialised[key] = True

    # ---- expressions -------------------------------------------------------------------------
    def image(self, modality: str, period: Period, tile: TileRef):
        """The ee.Image whose pixels a tile of `modality` in `period` gets."""
        import ee

        region = _region(tile)
        start, end = period.start.isoformat(), period.end.isoformat()
        if modality in ("s2", "s2rgb"):
            col = (ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED")
                   .filterBounds(region).filterDate(start, end))

            def clear(img):
                scl = img.select("SCL")
                bad = scl.eq(SCL_INVALID[0])
                for c in SCL_INVALID[1:]:
                    bad = bad.Or(scl.eq(c))
                # bilinear onto our grid as the local path does (20 m bands, other zones);
                # the mask stays the nearest scene class
                return img.resample("bilinear").updateMask(bad.Not())

            masked = col.map(clear)

            def day_mosaic(day):
                # neighbouring MGRS granules of one pass overlap by ~10 km: one mosaic per
                # day makes an observation count once, as the local path does
                d = ee.Date(day)
                return masked.filterDate(d, d.advance(1, "day")).mosaic().set(
                    "system:time_start", d.millis())

            days = (masked.aggregate_array("system:time_start")
                    .map(lambda t: ee.Date(t).format("YYYY-MM-dd")).distinct())
            daily = ee.ImageCollection.fromImages(days.map(day_mosaic))
            bands = list(S2_BANDS) if modality == "s2" else ["B4", "B3", "B2"]
            # a period with no scene then answers count == 0 everywhere (nodata), in the
            # same single request
            empty = _stand_in(bands, "toUint16")
            med = daily.select(bands).merge(empty).median()
            count = (daily.select("B2").merge(empty.select("B2")).count().unmask(0)
                     .rename("count"))
            # rounded (a median of two is a half), and 0 kept for no data, as the local path
            if modality == "s2":
                return (med.round().max(1).unmask(0).toUint16()
                        .addBands(count.toUint16()))
            rgb = med.divide(10000).visualize(min=0, max=0.3).rename(["red", "green", "blue"])
            return (rgb.max(1).updateMask(med.mask().reduce("min")).unmask(0).toUint8()
                    .addBands(count.toUint16()))
        if modality == "dem":
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
        if modality == "esawc":
            year = period.start.year
            asset = {2020: "ESA/WorldCover/v100", 2021: "ESA/WorldCover/v200"}.get(year)
            if asset is None:
                raise NoData(f"ESA WorldCover exists for 2020 and 2021, not {year}")
            return ee.ImageCollection(asset).first().select("Map").rename("class").toUint8()
        if modality == "s1grd-ee":
            col = (ee.ImageCollection("COPERNICUS/S1_GRD").filterBounds(region)
                   .filterDate(start, end).filter(ee.Filter.eq("instrumentMode", "IW"))
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
        if modality == "treecover":
            col = (ee.ImageCollection("MODIS/061/MOD44B").filterDate(start, end)
                   .select("Percent_Tree_Cover"))
            return (col.merge(_stand_in(["Percent_Tree_Cover"], "toUint8")).max()
                    .rename("tree_cover").unmask(255).toUint8())
        if modality == "ghsbuilt":
            year = period.start.year
            if year % 5 or not 1975 <= year <= 2030:
                raise NoData(f"GHS-BUILT-S has epochs every 5 years 1975-2030, not {year}")
            return (ee.Image(f"JRC/GHSL/P2023A/GHS_BUILT_S/{year}").select("built_surface")
                    .unmask(65535).toUint16())
        if modality == "gssic":
            return gssic.image(region, period)
        if modality == "agb":
            return _cci_agb(start, end)
        raise PermanentError(f"earthengine does not serve {modality}")

    # ---- requests ------------------------------------------------------------------------------
    def _grid(self, grid: GridSpec) -> dict:
        return {"dimensions": {"width": grid.width, "height": grid.height},
                "affineTransform": {"scaleX": grid.dx, "shearX": 0.0, "translateX": grid.x0,
                                    "shearY": 0.0, "scaleY": -grid.dy, "translateY": grid.y0},
                "crsCode": grid.crs}

    def _pixels(self, image, bands: list[str], grid: GridSpec, itemsize: int) -> dict:
        """Band arrays; splits the bands when a request would pass the 48 MiB cap."""
        import ee
        import google.auth.exceptions

        if len(bands) > 1 and len(bands) * grid.width * grid.height * itemsize > REQUEST_CAP:
            half = len(bands) // 2
            return {**self._pixels(image, bands[:half], grid, itemsize),
                    **self._pixels(image, bands[half:], grid, itemsize)}
        try:
            raw = ee.data.computePixels({"expression": image, "fileFormat": "NPY",
                                         "bandIds": bands, "grid": self._grid(grid)})
        except ee.EEException as e:
            msg = str(e)
            if _SIZE_ERROR.search(msg) and len(bands) > 1:
                half = len(bands) // 2
                return {**self._pixels(image, bands[:half], grid, itemsize),
                        **self._pixels(image, bands[half:], grid, itemsize)}
            if _TRANSIENT.search(msg):
                raise TransientError(f"Earth Engine: {msg}") from None
            raise PermanentError(f"Earth Engine: {msg}") from None
        except (OSError, TimeoutError) as e:  # connection reset, socket timeout
            raise TransientError(f"Earth Engine connection: {e}") from None
        except google.auth.exceptions.GoogleAuthError as e:  # a 401 the token cannot mend
            raise AuthError(f"Earth Engine credentials refused: "
                            f"{' '.join(str(e).split())[:300]}") from None
        return decode_npy(raw, bands, grid.shape)

    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        self._init()
        for tid in unit.tiles:
            tile = tiles[tid]
            grid = tile.grid_at(modality.res)
            try:
                image = self.image(modality.name, period, tile)
                bands = list(modality.bands) + list(_EXTRA_BANDS.get(modality.name, ()))
                px = self._pixels(image, bands, grid, np.dtype(modality.dtype).itemsize)
            except NoData as e:
                yield TileResult(tid, "nodata", error=str(e))
                continue
            if modality.name in ("s2", "s2rgb") and not px["count"].any():
                yield TileResult(tid, "nodata", error=f"no clear Sentinel-2 pixel in "
                                 f"{period.label}")
                continue
            if modality.name == "s1grd-ee":
                counts = [px.pop(f"count_{tag}") for tag in ("asc", "des")]
                if not any(c.any() for c in counts):
                    yield TileResult(tid, "nodata", error=f"no Sentinel-1 IW VV+VH scene in "
                                     f"{period.label}")
                    continue
                for tag, c in zip(("asc", "des"), counts, strict=True):
                    for pol in ("VV", "VH"):  # masked pixels come back as 0, not NaN
                        px[f"{pol}_{tag}"] = np.where(c > 0, px[f"{pol}_{tag}"], np.nan)
            if modality.name == "gssic":
                done = gssic.finish(px)
                if done is None:
                    yield TileResult(tid, "nodata", error=f"no GSSIC data in {period.label}")
                    continue
                px = done
            if modality.name == "agb" and not px.pop("agb_epoch").any():
                yield TileResult(tid, "nodata", error=f"no ESA CCI AGB epoch in {period.label}")
                continue
            if modality.name == "dem":
                valid = px.pop("dem_valid") > 0
                if not valid.any():
                    yield TileResult(tid, "nodata", error="no Copernicus DEM over this tile")
                    continue
                for b in modality.bands:
                    px[b] = np.where(valid, px[b], np.nan)
            if modality.nodata is not None and (
                    px[modality.bands[0]] == modality.nodata).all():
                yield TileResult(tid, "nodata", error=f"no {modality.name} data in "
                                 f"{period.label}")
                continue
            data = np.stack([px[b] for b in modality.bands]).astype(modality.dtype)
            yield TileResult(tid, "done", data, items=(f"ee:{modality.name}:{period.label}",))


__all__ = ["EarthEngineSource", "decode_npy"]
