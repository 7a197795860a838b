"""A full SLC's annotation, calibration and noise XML cut to a run of consecutive bursts of
one swath (S1 Product Specification S1-RS-MDA-52-7441 section 6; the cut burst2safe makes).

The burst list is cut to the run, the image size and times are the run's, and every
line-indexed list (geolocation grid, calibration, noise range and azimuth vectors) keeps the
rows inside the run plus the nearest row either side, lines re-counted from the run's first
line, so every interpolation inside the run is the one on the full SLC. Time-indexed lists
(orbit, attitude, Doppler, FM rate, antenna pattern) are kept whole.
"""

from __future__ import annotations

import copy
import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..errors import PermanentError

__all__ = ["BurstError", "BurstRun", "burst_run", "cut_annotation", "grid_points",
           "iso_time"]


class BurstError(PermanentError):
    """Burst files that cannot make a SAFE (missing parts, mixed products, gaps)."""


def _set(el: ET.Element, path: str, text: object) -> None:
    node = el.find(path)
    if node is None:
        raise BurstError(f"annotation has no {path}")
    node.text = str(text)


def iso_time(t: dt.datetime) -> str:
    return t.isoformat(timespec="microseconds")


def _cut_rows(parent: ET.Element, first: int, last: int, line_path: str = "line") -> None:
    """Keep children whose line is in [first, last] plus the nearest line either side where
    the run's edge is not itself a node; re-count lines from `first`."""
    items = list(parent)
    lines = sorted({int(it.findtext(line_path) or 0) for it in items})
    inside = [ln for ln in lines if first <= ln <= last]
    below = [ln for ln in lines if ln < first]
    above = [ln for ln in lines if ln > last]
    keep = set(inside)
    if below and (not inside or inside[0] > first):
        keep.add(below[-1])
    if above and (not inside or inside[-1] < last):
        keep.add(above[0])
    n = 0
    for it in items:
        ln = int(it.findtext(line_path) or 0)
        if ln in keep:
            _set(it, line_path, ln - first)
            n += 1
        else:
            parent.remove(it)
    parent.set("count", str(n))


def _cut_azimuth_noise(noise: ET.Element, first: int, last: int) -> None:
    """Noise azimuth vectors: node lines cut like the other lists, block limits clipped."""
    lst = noise.find("noiseAzimuthVectorList")
    if lst is None:
        return
    for vec in list(lst):
        a, b = int(vec.findtext("firstAzimuthLine") or 0), int(vec.findtext("lastAzimuthLine") or 0)
        if b < first or a > last:
            lst.remove(vec)
            continue
        lines = [int(v) for v in (vec.findtext("line") or "").split()]
        lut = (vec.findtext("noiseAzimuthLut") or "").split()
        keep = [i for i, ln in enumerate(lines) if first <= ln <= last]
        lo = [i for i, ln in enumerate(lines) if ln < first]
        hi = [i for i, ln in enumerate(lines) if ln > last]
        if lo and (not keep or lines[keep[0]] > first):
            keep.insert(0, lo[-1])
        if hi and (not keep or lines[keep[-1]] < last):
            keep.append(hi[0])
        for tag, values in (("line", [str(lines[i] - first) for i in keep]),
                            ("noiseAzimuthLut", [lut[i] for i in keep])):
            node = vec.find(tag)
            if node is not None:
                node.text = " ".join(values)
                node.set("count", str(len(values)))
        _set(vec, "firstAzimuthLine", max(a, first) - first)
        _set(vec, "lastAzimuthLine", min(b, last) - first)
    lst.set("count", str(len(lst)))


@dataclass(frozen=True)
class BurstRun:
    """A run of consecutive bursts of one swath: lines, times, footprint."""

    first_burst: int
    n_bursts: int
    lpb: int
    start: dt.datetime
    stop: dt.datetime

    @property
    def first_line(self) -> int:
        return self.first_burst * self.lpb

    @property
    def last_line(self) -> int:
        return self.first_line + self.n_bursts * self.lpb - 1


def burst_run(product: ET.Element, indices: list[int], what: str = "") -> BurstRun:
    bursts = product.findall("swathTiming/burstList/burst")
    lpb = int(product.findtext("swathTiming/linesPerBurst") or 0)
    ati = float(product.findtext("imageAnnotation/imageInformation/azimuthTimeInterval") or 0)
    if not bursts or lpb <= 0 or ati <= 0:
        raise BurstError("annotation lacks burst timing (burstList, linesPerBurst)")
    if indices != list(range(indices[0], indices[0] + len(indices))):
        gap = sorted(set(range(indices[0], indices[-1] + 1)) - set(indices))
        raise BurstError(f"{what}bursts {indices} are not consecutive (missing {gap}): "
                         "a run with a gap cannot make one swath")
    if indices[0] < 0 or indices[-1] >= len(bursts):
        raise BurstError(f"{what}burst index {indices[-1]} beyond the SLC's {len(bursts)} "
                         "bursts")
    start = dt.datetime.fromisoformat(bursts[indices[0]].findtext("azimuthTime") or "")
    stop = start + dt.timedelta(seconds=(len(indices) * lpb - 1) * ati)
    return BurstRun(indices[0], len(indices), lpb, start, stop)


def cut_annotation(kind: str, content: ET.Element, run: BurstRun) -> ET.Element:
    """A full SLC's annotation/calibration/noise XML cut to a burst run (a new element)."""
    root = ET.Element(kind)
    root.extend(copy.deepcopy(list(content)))
    _set(root, "adsHeader/startTime", iso_time(run.start))
    _set(root, "adsHeader/stopTime", iso_time(run.stop))
    first, last = run.first_line, run.last_line
    if kind == "product":
        info = "imageAnnotation/imageInformation/"
        _set(root, info + "productFirstLineUtcTime", iso_time(run.start))
        _set(root, info + "productLastLineUtcTime", iso_time(run.stop))
        _set(root, info + "numberOfLines", run.n_bursts * run.lpb)
        blist = root.find("swathTiming/burstList")
        assert blist is not None
        for i, b in enumerate(list(blist)):
            if not run.first_burst <= i < run.first_burst + run.n_bursts:
                blist.remove(b)
        blist.set("count", str(run.n_bursts))
        grid = root.find("geolocationGrid/geolocationGridPointList")
        if grid is not None:
            _cut_rows(grid, first, last)
    elif kind == "calibration":
        lst = root.find("calibrationVectorList")
        if lst is not None:
            _cut_rows(lst, first, last)
    elif kind == "noise":
        for tag in ("noiseRangeVectorList", "noiseVectorList"):  # IPF >= 2.9 / before
            lst = root.find(tag)
            if lst is not None:
                _cut_rows(lst, first, last)
        _cut_azimuth_noise(root, first, last)
    return root


def grid_points(product: ET.Element) -> list[tuple[float, float]]:
    """(lat, lon) of every point of a (cut) annotation's geolocation grid."""
    pts = [(float(p.findtext("latitude") or 0), float(p.findtext("longitude") or 0))
           for p in product.iter("geolocationGridPoint")]
    if not pts:
        raise BurstError("annotation has no geolocation grid")
    return pts
