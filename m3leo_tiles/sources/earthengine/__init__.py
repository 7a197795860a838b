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
from typing import Any

import numpy as np

from ...errors import AuthError, NoData, PermanentError, TransientError
from ...grid.geobox import GeoBox
from ...modalities import Modality
from ...periods import Period
from ..base import Source, TileRef, TileResult, WorkUnit
from .recipes import CCI_AGB_ASSET, RECIPES

log = logging.getLogger(__name__)

REQUEST_CAP = 48 * 1024 * 1024  # bytes per computePixels request
_SIZE_ERROR = re.compile(r"Total request size \((\d+) bytes\) must be less than or equal to")
_TRANSIENT = re.compile(r"\b(429|50[0-4])\b|Too Many Requests|[Tt]imed? ?out|unavailable|"
                        r"Internal error|[Qq]uota", re.I)
_initialised: dict[str, bool] = {}  # per process: ee.Initialize once per worker


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
    def image(self, modality: str, period: Period, tile: TileRef) -> Any:
        """The ee.Image whose pixels a tile of `modality` in `period` gets."""
        recipe = RECIPES.get(modality)
        if recipe is None:
            raise PermanentError(f"earthengine does not serve {modality}")
        return recipe.image(_region(tile), period)

    # ---- requests ------------------------------------------------------------------------------
    def _grid(self, grid: GeoBox) -> dict:
        return {"dimensions": {"width": grid.width, "height": grid.height},
                "affineTransform": {"scaleX": grid.dx, "shearX": 0.0, "translateX": grid.x0,
                                    "shearY": 0.0, "scaleY": -grid.dy, "translateY": grid.y0},
                "crsCode": grid.crs}

    def _pixels(self, image, bands: list[str], grid: GeoBox, itemsize: int) -> dict:
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
        except (TypeError, KeyError, IndexError, AttributeError, ValueError) as e:
            # the client library's own parsing of a malformed error answer failed (a 403 whose
            # body is JSON but not an error object: googleapiclient indexes into it to decide
            # on a retry): the service's answer is broken, not our request
            raise PermanentError(f"Earth Engine answered what its client cannot parse: "
                                 f"{type(e).__name__}: {' '.join(str(e).split())[:200]}") from None
        return decode_npy(raw, bands, grid.shape)

    def read(self, unit: WorkUnit, tiles: Mapping[str, TileRef], modality: Modality,
             period: Period) -> Iterator[TileResult]:
        self._init()
        for tid in unit.tiles:
            tile = tiles[tid]
            grid = tile.grid_at(modality.res)
            recipe = RECIPES.get(modality.name)
            try:
                image = self.image(modality.name, period, tile)
                bands = list(modality.bands) + list(recipe.extra if recipe else ())
                px = self._pixels(image, bands, grid, np.dtype(modality.dtype).itemsize)
                if recipe is not None and recipe.finish is not None:
                    px = recipe.finish(px, modality.bands, period)
            except NoData as e:
                yield TileResult(tid, "nodata", error=str(e))
                continue
            if modality.nodata is not None and (
                    px[modality.bands[0]] == modality.nodata).all():
                yield TileResult(tid, "nodata", error=f"no {modality.name} data in "
                                 f"{period.label}")
                continue
            data = np.stack([px[b] for b in modality.bands]).astype(modality.dtype)
            yield TileResult(tid, "done", data, items=(f"ee:{modality.name}:{period.label}",))


__all__ = ["CCI_AGB_ASSET", "RECIPES", "EarthEngineSource", "decode_npy"]
