"""ESA CCI Biomass above-ground biomass (AGB) files on disk, for the local source.

The products as ESA's CCI Open Data Portal / CEDA ship them (Santoro & Cartus, Biomass_cci;
v6.0: doi:10.5285/95913ffb6467447ca72c4e9d8cf30501), EPSG:4326 at 1/1125 degree (~100 m):

- GeoTIFF 10 x 10 degree tiles, one file per variable and year:
  `N40W080_ESACCI-BIOMASS-L4-AGB-MERGED-100m-2020-fv4.0.tif` and the matching
  `..._AGB_SD-...` (per-pixel standard deviation; `AGB_SE`, standard error, in v1);
- one global NetCDF per year, `ESACCI-BIOMASS-L4-AGB-MERGED-100m-2020-fv4.0.nc`, variables
  `agb` and `agb_sd` (`agb_se` in early versions), read through GDAL's netCDF driver.

Values are whole Mg/ha. The products carry 0 where there is no biomass (non-forest, water);
some tools, and the community Earth Engine collection, treat that 0 as no data, but it is a
value here: a declared nodata of 0 is ignored. Pixels no file covers become the modality's
nodata (65535).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import rasterio

CCI_AGB = "esa-cci-agb"
NODATA = 65535
_TIF = re.compile(r"^([NS]\d{2}[EW]\d{3})_ESACCI-BIOMASS-L4-(AGB|AGB_SD|AGB_SE)-MERGED-100m-"
                  r"(\d{4})-fv([\d.]+)\.tiff?$", re.I)
_NC = re.compile(r"^ESACCI-BIOMASS-L4-AGB-MERGED-100m-(\d{4})-fv([\d.]+)\.nc$", re.I)


def find_products(root: Path) -> list[tuple[str, int, dict[str, str]]]:
    """(id, year, {"agb": path, "agb_sd": path}) for every CCI AGB tile or NetCDF under root.

    A tile whose SD file is missing is left out: the modality needs both bands.
    """
    tiles: dict[tuple[str, int, str], dict[str, str]] = {}
    for p in sorted(root.rglob("*ESACCI-BIOMASS-L4-AGB*")):
        if m := _TIF.match(p.name):
            key = (m.group(1).upper(), int(m.group(3)), m.group(4))
            band = "agb" if m.group(2).upper() == "AGB" else "agb_sd"
            tiles.setdefault(key, {})[band] = str(p)
        elif m := _NC.match(p.name):
            sd = "agb_sd" if _has_variable(p, "agb_sd") else "agb_se"
            tiles[("GLOBAL", int(m.group(1)), m.group(2))] = {
                "agb": f'NETCDF:"{p}":agb', "agb_sd": f'NETCDF:"{p}":{sd}'}
    out = []
    for (name, year, version), assets in sorted(tiles.items()):
        if set(assets) == {"agb", "agb_sd"}:
            out.append((f"ESACCI-AGB-{name}-{year}-fv{version}", year, assets))
    return out


def _has_variable(path: Path, name: str) -> bool:
    try:
        with rasterio.open(path) as ds:
            return any(s.endswith(f":{name}") for s in ds.subdatasets)
    except rasterio.errors.RasterioError:
        return False


def source_nodata(path: str) -> float | None:
    """The nodata to honour when reading `path`: the file's own, except a declared 0, which
    is replaced by a value the product never holds (0 Mg/ha is a value)."""
    with rasterio.open(path) as ds:
        nd, dtype = ds.nodata, np.dtype(ds.dtypes[0])
    if nd is None or nd != 0:
        return nd
    if dtype.kind == "f":
        return float("nan")
    info = np.iinfo(dtype)
    return float(info.max if dtype.kind == "u" else info.min)


def encode(values: np.ndarray) -> np.ndarray:
    """Float Mg/ha (NaN where nothing covers) as the modality's uint16: whole Mg/ha."""
    out = np.clip(np.rint(np.nan_to_num(values, nan=0.0)), 0, NODATA - 1).astype(np.uint16)
    out[np.isnan(values)] = NODATA
    return out
