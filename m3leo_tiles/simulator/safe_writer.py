"""Writing one simulated date as a SAFE product: the template's XML cropped to the simulated
bursts and samples, the date's orbit and regeolocated grid, and the CInt16 measurement with
thermal noise drawn from the noise LUT (see stack.py for the signal).

The layout, file names and annotation schema are those of the Sentinel-1 Product
Specification (S1-RS-MDA-52-7441): `manifest.safe`, `annotation/*.xml`,
`annotation/calibration/{calibration,noise}-*.xml` and `measurement/*.tiff` (complex int16,
one line per strip).
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import rasterio

from . import geometry as geo
from .geometry import child, text
from .orbits import DateGeom
from .swath import Swath
from .templates import apply


def write_safe(safe: Path, sw: Swath, g: DateGeom, subs: dict[str, str],
               images: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Write date `g` of the stack to the SAFE folder `safe`; `images`: pol -> its SLC
    (complex, before noise), `subs` the text substitutions naming the date's product."""
    track, tm, bursts, nl, ns, line0 = sw.track, sw.tm, sw.bursts, sw.nl, sw.ns, sw.line0
    (safe / "annotation" / "calibration").mkdir(parents=True, exist_ok=True)
    (safe / "measurement").mkdir(exist_ok=True)
    last_line_time = tm.first_line[bursts[-1]] + dt.timedelta(
        seconds=(tm.lines_per_burst - 1) * tm.dt)
    for p in ("vv", "vh"):
        stem = apply(track.file_stem.format(pol=p, n=track.index(p)), subs)
        root = ET.fromstring(track.read(f"annotation-{track.swath}-{p}.xml"))
        _crop_annotation(root, bursts, nl, ns, line0, g, last_line_time)
        xml = apply(ET.tostring(root, encoding="unicode"), subs)
        (safe / "annotation" / f"{stem}.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n' + xml)
        for kind in ("calibration", "noise"):
            root = ET.fromstring(track.read(f"{kind}-{track.swath}-{p}.xml"))
            _crop_lut(root, kind, nl, ns, line0)
            (safe / "annotation" / "calibration" / f"{kind}-{stem}.xml").write_text(
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                + apply(ET.tostring(root, encoding="unicode"), subs))
        nr, na = _noise_power(root, nl, ns)
        img = images[p]
        noise = rng.standard_normal((nl, ns, 2)).astype(np.float32)
        scale = np.sqrt(np.outer(na, np.ones(ns)) * nr / 2).astype(np.float32)
        re_ = np.rint(img.real + noise[..., 0] * scale)
        im_ = np.rint(img.imag + noise[..., 1] * scale)
        data = (np.clip(re_, -32768, 32767) + 1j * np.clip(im_, -32768, 32767)).astype(
            np.complex64)
        with rasterio.open(safe / "measurement" / f"{stem}.tiff", "w", driver="GTiff",
                           width=ns, height=nl, count=1, dtype="complex_int16",
                           blockysize=1, tiled=False) as ds:
            ds.write(data, 1)
    man = apply(track.read("manifest.safe"), subs)
    man = _manifest_only(man, track.swath)
    coords = " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in sw.corners)
    man = re.sub(r"<gml:coordinates>[^<]*</gml:coordinates>",
                 f"<gml:coordinates>{coords}</gml:coordinates>", man)
    (safe / "manifest.safe").write_text(man)


def _crop_annotation(root: ET.Element, bursts: list[int], nl: int, ns: int, line0: int,
                     g: DateGeom, last_line_time: dt.datetime) -> None:
    """The annotation of the crop: image size and times, kept bursts, the date's orbit, the
    geolocation grid's lines from the crop's first line (regeolocated for a displaced orbit)."""
    ii = child(root, "imageAnnotation/imageInformation")
    child(ii, "numberOfLines").text = str(nl)
    child(ii, "numberOfSamples").text = str(ns)
    first = text(root, f"swathTiming/burstList/burst[{bursts[0] + 1}]/azimuthTime")
    child(ii, "productFirstLineUtcTime").text = first
    child(ii, "productLastLineUtcTime").text = last_line_time.isoformat()
    st = child(root, "swathTiming")
    child(st, "samplesPerBurst").text = str(ns)
    bl = child(st, "burstList")
    for i, b in enumerate(list(bl)):
        if i not in bursts:
            bl.remove(b)
        else:
            for tag in ("firstValidSample", "lastValidSample"):
                v = np.array(text(b, tag).split(), int)
                v = np.where(v >= 0, np.minimum(v, ns - 1), v)
                child(b, tag).text = " ".join(map(str, v))
    bl.set("count", str(len(bursts)))
    for o, pos, vel in zip(root.findall("generalAnnotation/orbitList/orbit"), g.orbit_pos,
                           g.orbit_vel, strict=True):
        for c, v, w in zip("xyz", pos, vel, strict=True):
            child(o, f"position/{c}").text = f"{v:.6f}"  # mm-rounding would cost 0.15 rad
            child(o, f"velocity/{c}").text = f"{w:.9f}"
    gl = child(root, "geolocationGrid/geolocationGridPointList")
    pts = list(gl)
    for p in pts:
        line = int(text(p, "line"))
        if line < line0 or line > line0 + nl:
            gl.remove(p)
        else:
            child(p, "line").text = str(line - line0)
    gl.set("count", str(len(list(gl))))
    if g.index:
        _regeolocate(root, g)


def _regeolocate(root: ET.Element, g: DateGeom) -> None:
    """Grid points of a displaced orbit: same (time, range), new ground point (Newton)."""
    pts = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    for p in pts:
        t = g.orbit.seconds(geo.parse_time(text(p, "azimuthTime")))
        r = float(text(p, "slantRangeTime")) * geo.C / 2
        lon, lat, h = (float(text(p, k)) for k in ("longitude", "latitude", "height"))
        s = g.orbit.position(np.array([t]))[0]
        v = g.orbit.velocity(np.array([t]))[0]
        for _ in range(6):
            f0 = _rd(lon, lat, h, s, v, r)
            j = np.empty((2, 2))
            for i, (dlon, dlat) in enumerate(((1e-6, 0), (0, 1e-6))):
                j[:, i] = (_rd(lon + dlon, lat + dlat, h, s, v, r) - f0) / 1e-6
            d = np.linalg.solve(j, -f0)
            lon, lat = lon + d[0], lat + d[1]
        child(p, "longitude").text = f"{lon:.15e}"
        child(p, "latitude").text = f"{lat:.15e}"


def _rd(lon: float, lat: float, h: float, s: np.ndarray, v: np.ndarray, r: float
        ) -> np.ndarray:
    """Range-Doppler residuals (along-track offset, range error) of a ground point."""
    p = geo.geodetic_to_ecef(np.array(lon), np.array(lat), np.array(h))
    d = p - s
    return np.array([d @ v / np.linalg.norm(v), np.linalg.norm(d) - r])


def _crop_lut(root: ET.Element, kind: str, nl: int, ns: int, line0: int) -> None:
    """Keep the LUT vectors near the crop, their lines counted from the crop's first line."""
    path = "calibrationVectorList" if kind == "calibration" else "noiseRangeVectorList"
    vl = child(root, path)
    vecs = list(vl)
    lines = np.array([int(text(v, "line")) for v in vecs])
    keep = (lines >= line0 - 2000) & (lines <= line0 + nl + 2000)
    for v, kp, line in zip(vecs, keep, lines, strict=True):
        if not kp:
            vl.remove(v)
        else:
            child(v, "line").text = str(line - line0)
    vl.set("count", str(int(keep.sum())))
    if kind == "noise":
        for v in root.findall("noiseAzimuthVectorList/noiseAzimuthVector"):
            ls = np.array(text(v, "line").split(), int) - line0
            vals = np.array(text(v, "noiseAzimuthLut").split(), float)
            k = (ls >= -200) & (ls <= nl + 200)
            child(v, "line").text = " ".join(map(str, ls[k]))
            child(v, "line").set("count", str(int(k.sum())))
            child(v, "noiseAzimuthLut").text = " ".join(f"{x:.6e}" for x in vals[k])
            child(v, "noiseAzimuthLut").set("count", str(int(k.sum())))
            child(v, "firstAzimuthLine").text = "0"
            child(v, "lastAzimuthLine").text = str(nl - 1)
            child(v, "lastRangeSample").text = str(ns - 1)


def _noise_power(root: ET.Element, nl: int, ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise power per sample (range LUT of the nearest vector) and per line (azimuth LUT)."""
    vecs = root.findall("noiseRangeVectorList/noiseRangeVector")
    mid = nl // 2
    v = min(vecs, key=lambda e: abs(int(text(e, "line")) - mid))
    nr = np.interp(np.arange(ns), np.array(text(v, "pixel").split(), float),
                   np.array(text(v, "noiseRangeLut").split(), float))
    az = child(root, "noiseAzimuthVectorList/noiseAzimuthVector")
    na = np.interp(np.arange(nl), np.array(text(az, "line").split(), float),
                   np.array(text(az, "noiseAzimuthLut").split(), float))
    return nr, na


def _manifest_only(man: str, swath: str) -> str:
    """Drop the other swaths' and the RFI files from the manifest (we write one swath)."""
    drop = "|".join([s for s in ("iw1", "iw2", "iw3") if s != swath] + ["rfi"])
    man = re.sub(rf"\s*<dataObject ID=\"[^\"]*(?:{drop})[^\"]*\".*?</dataObject>", "", man,
                 flags=re.S | re.I)
    man = re.sub(rf"\s*<dataObjectPointer dataObjectID=\"[^\"]*(?:{drop})[^\"]*\"/>", "", man,
                 flags=re.I)
    return man
