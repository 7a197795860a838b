"""The part of a real swath the simulator images, and what lies under it on the ground.

The crop follows the Sentinel-1 IW SLC product specification (ESA S1-RS-MDA-52-7441, sections
on the swath timing and geolocation grid annotation): whole bursts of `linesPerBurst` lines,
and `ns` valid samples after the largest `firstValidSample` of the kept bursts, since ESA marks
the near-range samples before it as invalid. The footprint comes from ESA's own geolocation
grid (interpolated at the crop's corners), the tiles are the project's 4.48 km UTM lattice
(m3leo_tiles.grid.tiles) cells inside it, and the calibration LUT is read as the product
specification's `calibrationVector` lists.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from scipy.interpolate import LinearNDInterpolator

from ..errors import BadInput
from ..grid.tiles import DEFAULT_TILE_SIZE as TILE_M
from ..grid.tiles import Tile, utm_epsg
from . import geometry as geo
from .templates import Track


@dataclass(frozen=True)
class Swath:
    """Bursts `bursts` of the template's swath, `nl` x `ns` samples from full-product line
    `line0`; `corners` (4, 2) lon/lat of the crop, near/far range at first/last line."""

    track: Track
    annotations: dict[str, ET.Element]  # pol -> the template's annotation
    tm: geo.Timing
    bursts: list[int]
    nl: int
    ns: int
    line0: int
    s_valid: int
    corners: np.ndarray


def crop_swath(track: Track, n_bursts: int, samples: int | None, first_burst: int) -> Swath:
    """`n_bursts` bursts from `first_burst` on, `samples` valid samples (None: all)."""
    ann = {p: ET.fromstring(track.read(f"annotation-{track.swath}-{p}.xml"))
           for p in ("vv", "vh")}
    tm = geo.read_timing(ann["vv"])
    lpb = tm.lines_per_burst
    bursts = list(range(first_burst, first_burst + n_bursts))
    nl = n_bursts * lpb
    line0 = first_burst * lpb  # full-product line of our first line
    # ESA marks the near-range samples before firstValidSample as invalid: our crop keeps
    # `samples` valid samples after them (and the processor rightly ignores the rest)
    s_valid = max(int(v[v >= 0].max()) for v in (
        np.array(geo.text(b, "firstValidSample").split(), int)
        for b in ann["vv"].findall("swathTiming/burstList/burst")) if (v >= 0).any())
    ns = min(tm.samples, s_valid + samples) if samples else tm.samples
    grid = geo.grid_points(ann["vv"])
    interp = LinearNDInterpolator(np.c_[grid["line"], grid["pixel"]],
                                  np.c_[grid["longitude"], grid["latitude"]])
    corners = interp([[line0, s_valid], [line0, ns - 1], [line0 + nl - 1, ns - 1],
                      [line0 + nl - 1, s_valid]])
    return Swath(track, ann, tm, bursts, nl, ns, line0, s_valid, corners)


def utm_zone(corners: np.ndarray) -> tuple[int, int]:
    """(zone, EPSG code) of the UTM zone holding the centre of `corners` (lon/lat)."""
    lon_c, lat_c = corners.mean(axis=0)
    zone = int((lon_c + 180) // 6) + 1
    return zone, utm_epsg(zone, "N" if lat_c >= 0 else "S")


def covered_tiles(epsg: int, corners: np.ndarray, to_utm: Transformer, zone: int) -> list[Tile]:
    """Lattice tiles wholly inside the swath, 300 m clear of its edges, sorted by id."""
    cx, cy = to_utm.transform(corners[:, 0], corners[:, 1])
    inner = shapely.Polygon(np.c_[cx, cy]).buffer(-300.0)
    hem = "N" if epsg < 32700 else "S"
    xmin, ymin, xmax, ymax = inner.bounds
    out = []
    for col in range(int(xmin // TILE_M), int(xmax // TILE_M) + 1):
        for row in range(int(ymin // TILE_M), int(ymax // TILE_M) + 1):
            box = shapely.box(col * TILE_M, row * TILE_M, (col + 1) * TILE_M, (row + 1) * TILE_M)
            if inner.contains(box):
                out.append(Tile(zone, hem, col, row))
    if not out:
        raise BadInput("the simulated swath covers no whole tile; use a larger --size")
    return sorted(out, key=lambda t: t.id)


def read_lut(root: ET.Element, path: str, field: str) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """(lines, pixels, values (lines, pixels)) of a calibration/noise vector list."""
    vecs = root.findall(path)
    lines = np.array([int(geo.text(v, "line")) for v in vecs])
    pixels = np.array(geo.text(vecs[0], "pixel").split(), float)
    values = np.array([np.array(geo.text(v, field).split(), float) for v in vecs])
    return lines, pixels, values


def nearest_row(lines: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Index of the LUT vector at or just after each `line` (clipped to the list)."""
    return np.clip(np.searchsorted(lines, line), 0, len(lines) - 1)
