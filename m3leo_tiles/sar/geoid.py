"""Geoid undulation N (ellipsoidal height = orthometric height + N), from offline grids only.

Copernicus DEM heights are above the EGM2008 geoid; geocoding needs heights above the WGS84
ellipsoid (N is -107..+86 m worldwide, so ignoring it moves a target by tens of metres in
slant range). We look, in this order, for grids already on the machine (no download):

1. EGM2008: `us_nga_egm08_25.tif` (PROJ-data) or `egm08_25.gtx`;
2. EGM96: `us_nga_egm96_15.tif` (PROJ-data) or `egm96_15.gtx` (Debian's `proj-data` package
   ships it as /usr/share/proj/egm96_15.gtx). EGM96 stands in for EGM2008 with differences
   that are typically well below 1 m and reach a few metres only over high mountains; the
   function reports which model it used.

The search path is $M3LEO_GEOID_GRID (a file), $PROJ_DATA / $PROJ_LIB, pyproj's data
directory and /usr/share/proj. If none is found we fall back to the coarse model bundled
with the package, `data/egm96_30min.npz`: Debian proj-data 9.1.1's egm96_15.gtx (NGA EGM96,
public domain) subsampled to 0.5 degree and rounded to cm (445 kB). Bilinear on 0.5 degree
adds well under a metre almost everywhere (a few metres at most over the steepest geoid
gradients), and EGM96 differs from EGM2008 by ~0.5 m RMS: a 1 m height error moves a target
by under half a range sample and changes interferometric phase by ~0.04 rad at 100 m
baseline, against tens of metres and many fringes-worth of geometry error with no geoid.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import rasterio

CANDIDATES = [
    ("EGM2008", "us_nga_egm08_25.tif"),
    ("EGM2008", "egm08_25.gtx"),
    ("EGM96", "us_nga_egm96_15.tif"),
    ("EGM96", "egm96_15.gtx"),
]


class GeoidUnavailable(RuntimeError):
    """No geoid grid on this machine."""


def _dirs() -> list[Path]:
    out = []
    for var in ("PROJ_DATA", "PROJ_LIB"):
        if os.environ.get(var):
            out += [Path(p) for p in os.environ[var].split(os.pathsep)]
    try:
        import pyproj

        out.append(Path(pyproj.datadir.get_data_dir()))
        out.append(Path(pyproj.datadir.get_user_data_dir()))
    except Exception:  # pragma: no cover - pyproj always has these
        pass
    out.append(Path("/usr/share/proj"))
    return out


BUNDLED = Path(__file__).parent / "data" / "egm96_30min.npz"


def find_geoid_grid() -> tuple[str, Path]:
    """(model name, path) of the best geoid grid found, else the bundled coarse EGM96."""
    env = os.environ.get("M3LEO_GEOID_GRID")
    if env and Path(env).is_file():
        return ("EGM2008" if "08" in Path(env).name else "EGM96"), Path(env)
    for model, name in CANDIDATES:
        for d in _dirs():
            if (d / name).is_file():
                return model, d / name
    if BUNDLED.is_file():
        return "EGM96 (bundled, 0.5 degree)", BUNDLED
    raise GeoidUnavailable(
        "no EGM2008/EGM96 geoid grid found offline (looked for "
        + ", ".join(n for _, n in CANDIDATES)
        + " in $PROJ_DATA, pyproj's data dir and /usr/share/proj); install Debian's proj-data "
        "or set M3LEO_GEOID_GRID, or give the DEM as ellipsoidal heights"
    )


@lru_cache(maxsize=2)
def _load(path: str) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Grid and its pixel-is-area transform (x0, y0 of the outer corner, dx, dy)."""
    if path.endswith(".npz"):
        z = np.load(path)
        step = float(z["step"])
        a = z["undulation_cm"].astype(np.float32) / 100
        return a, (float(z["lon0"]) - step / 2, float(z["lat0"]) + step / 2, step, -step)
    with rasterio.open(path) as r:
        a = r.read(1).astype(np.float32)
        t = r.transform
    return a, (t.c, t.f, t.a, t.e)


def undulation(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, str]:
    """Bilinear geoid undulation N (m) at lon/lat degrees, and the model used."""
    model, path = find_geoid_grid()
    a, (x0, y0, dx, dy) = _load(str(path))
    lon = np.asarray(lon, np.float64)
    lat = np.asarray(lat, np.float64)
    # pixel-is-area transform: centre of column j at x0 + (j + 0.5) dx
    fx = (((lon - x0) / dx - 0.5) % (360.0 / dx))
    fy = np.clip((lat - y0) / dy - 0.5, 0, a.shape[0] - 1.000001)
    j0 = np.floor(fx).astype(int)
    i0 = np.floor(fy).astype(int)
    wx = fx - j0
    wy = fy - i0
    j1 = (j0 + 1) % a.shape[1]
    j0 = j0 % a.shape[1]
    i1 = np.minimum(i0 + 1, a.shape[0] - 1)
    n = ((1 - wy) * ((1 - wx) * a[i0, j0] + wx * a[i0, j1])
         + wy * ((1 - wx) * a[i1, j0] + wx * a[i1, j1]))
    return n, model
