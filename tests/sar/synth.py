"""Real-annotation SAFE copies with synthetic measurement pixels (test fixtures only).

The annotation, calibration, noise and manifest are ESA's (hyp3-isce2 pair); measurement
TIFFs are written sparse (tiled, only the blocks we fill), so a full-size swath costs a few
hundred kB. A point target is placed where ESA's geolocation grid says a lat/lon/height
appears (line from the grid's azimuth time, sample from its slant range time), with peak
phase -4 pi R / lambda and the TOPS azimuth modulation of its burst position.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from m3leo_tiles.sar.orbit import to_seconds
from m3leo_tiles.sar.safe import C, open_swath
from m3leo_tiles.sar.tops import doppler_centroid

PAIR = "hyp3-isce2/tests/data/packaging/slc"


def copy_safe(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / src.name
    shutil.copytree(src, dst)
    return dst


def measurement_path(safe: Path, swath: str, pol: str) -> Path:
    return next((safe / "measurement").glob(f"*-{swath.lower()}-slc-{pol.lower()}-*.tiff"))


def write_sparse(safe: Path, swath: str, pol: str, patches: list[tuple[int, int, np.ndarray]]):
    """Write a full-size sparse CInt16 measurement holding only `patches` (row0, col0, data)."""
    sw = open_swath(safe, swath, pol)
    path = measurement_path(safe, swath, pol)
    path.unlink()
    prof = dict(driver="GTiff", width=sw.n_samples, height=sw.n_lines, count=1,
                dtype="complex_int16", tiled=True, blockxsize=256, blockysize=256,
                sparse_ok=True)
    with rasterio.open(path, "w", **prof) as r:
        for row0, col0, data in patches:
            r.write(data.astype(np.complex64), 1,
                    window=Window(col0, row0, data.shape[1], data.shape[0]))
    return sw


def gcp_target(sw, ia: int, ir: int):
    """(lon, lat, h, burst, line in burst, sample, slant range) of one geolocation grid point."""
    g = sw.gcp
    t = float(to_seconds(g.azimuth_time.values[ia], sw.t_ref))
    tau = float(g.slant_range_time.values[ir])
    sample = (tau - sw.tau0) * sw.fs
    # the burst holding this time farthest from its invalid edges
    best = None
    for b in sw.bursts:
        line = (t - b.t0) / sw.dt
        m = min(line - b.valid_lines[0], b.valid_lines[1] - line)
        if best is None or m > best[0]:
            best = (m, b.index, line)
    return (float(g.longitude.values[ia, ir]), float(g.latitude.values[ia, ir]),
            float(g.height.values[ia, ir]), best[1], best[2], sample, tau * C / 2)


def point_target(sw, burst: int, line: float, sample: float, rng: float, amp: float = 1000.0,
                 half: int = 48):
    """Band-limited point response with the local TOPS Doppler; returns (row0, col0, data)."""
    b = sw.bursts[burst]
    r0 = int(round(line)) - half
    c0 = int(round(sample)) - half
    ll = np.arange(r0, r0 + 2 * half)[:, None]
    ss = np.arange(c0, c0 + 2 * half)[None, :]
    fdc = doppler_centroid(sw, burst, line, sample)
    resp = np.sinc(0.7 * (ll - line)) * np.sinc(0.8 * (ss - sample))
    ph = 2 * math.pi * fdc * (ll - line) * sw.dt - 4 * math.pi * rng / sw.wavelength
    return b.first_line + r0, c0, (amp * resp * np.exp(1j * ph)).astype(np.complex64)
