"""Writing one simulated date as a SAFE product: the template's XML cropped to the simulated
bursts and samples, the date's orbit and regeolocated grid, and the CInt16 measurement with
thermal noise drawn from the noise LUT (see simulator.py for the signal)."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from . import geometry as geo
from .templates import Track, apply


@dataclass
class DateGeom:
    index: int
    date: dt.date
    name: str
    orbit: geo.OrbitFit
    orbit_pos: np.ndarray
    orbit_vel: np.ndarray


def write_safe(safe: Path, track: Track, g: DateGeom, subs, tm, bursts, nl, ns, line0, images,
               k, rng, corners) -> None:
    (safe / "annotation" / "calibration").mkdir(parents=True, exist_ok=True)
    (safe / "measurement").mkdir(exist_ok=True)
    last_line_time = tm.first_line[bursts[-1]] + dt.timedelta(
        seconds=(tm.lines_per_burst - 1) * tm.dt)
    for p in ("vv", "vh"):
        stem = apply(track.file_stem.format(pol=p, n=track.index(p)), subs)
        root = ET.fromstring(track.read(f"annotation-{track.swath}-{p}.xml"))
        _crop_annotation(root, bursts, nl, ns, line0, g, last_line_time)
        text = apply(ET.tostring(root, encoding="unicode"), subs)
        (safe / "annotation" / f"{stem}.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n' + text)
        for kind in ("calibration", "noise"):
            root = ET.fromstring(track.read(f"{kind}-{track.swath}-{p}.xml"))
            _crop_lut(root, kind, bursts, nl, ns, line0)
            (safe / "annotation" / "calibration" / f"{kind}-{stem}.xml").write_text(
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                + apply(ET.tostring(root, encoding="unicode"), subs))
        nr, na = _noise_power(root, nl, ns, line0)
        img = images[(k, p)]
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
    coords = " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in corners)
    man = re.sub(r"<gml:coordinates>[^<]*</gml:coordinates>",
                 f"<gml:coordinates>{coords}</gml:coordinates>", man)
    (safe / "manifest.safe").write_text(man)


def _crop_annotation(root, bursts, nl, ns, line0, g: DateGeom, last_line_time) -> None:
    ii = root.find("imageAnnotation/imageInformation")
    ii.find("numberOfLines").text = str(nl)
    ii.find("numberOfSamples").text = str(ns)
    first = root.findtext(f"swathTiming/burstList/burst[{bursts[0] + 1}]/azimuthTime")
    ii.find("productFirstLineUtcTime").text = first
    ii.find("productLastLineUtcTime").text = last_line_time.isoformat()
    st = root.find("swathTiming")
    st.find("samplesPerBurst").text = str(ns)
    bl = st.find("burstList")
    for i, b in enumerate(list(bl)):
        if i not in bursts:
            bl.remove(b)
        else:
            for tag in ("firstValidSample", "lastValidSample"):
                v = np.array(b.findtext(tag).split(), int)
                v = np.where(v >= 0, np.minimum(v, ns - 1), v)
                b.find(tag).text = " ".join(map(str, v))
    bl.set("count", str(len(bursts)))
    for o, pos, vel in zip(root.findall("generalAnnotation/orbitList/orbit"), g.orbit_pos,
                           g.orbit_vel, strict=True):
        for c, v, w in zip("xyz", pos, vel, strict=True):
            o.find(f"position/{c}").text = f"{v:.6f}"  # mm-rounding would cost 0.15 rad
            o.find(f"velocity/{c}").text = f"{w:.9f}"
    gl = root.find("geolocationGrid/geolocationGridPointList")
    pts = list(gl)
    for p in pts:
        line = int(p.findtext("line"))
        if line < line0 or line > line0 + nl:
            gl.remove(p)
        else:
            p.find("line").text = str(line - line0)
    gl.set("count", str(len(list(gl))))
    if g.index:
        _regeolocate(root, g)


def _regeolocate(root, g: DateGeom) -> None:
    """Grid points of a displaced orbit: same (time, range), new ground point (Newton)."""
    pts = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    for p in pts:
        t = g.orbit.seconds(geo.parse_time(p.findtext("azimuthTime")))
        r = float(p.findtext("slantRangeTime")) * geo.C / 2
        lon, lat, h = (float(p.findtext(k)) for k in ("longitude", "latitude", "height"))
        s = g.orbit.position(np.array([t]))[0]
        v = g.orbit.velocity(np.array([t]))[0]
        for _ in range(6):
            f0 = _rd(lon, lat, h, s, v, r)
            j = np.empty((2, 2))
            for i, (dlon, dlat) in enumerate(((1e-6, 0), (0, 1e-6))):
                j[:, i] = (_rd(lon + dlon, lat + dlat, h, s, v, r) - f0) / 1e-6
            d = np.linalg.solve(j, -f0)
            lon, lat = lon + d[0], lat + d[1]
        p.find("longitude").text = f"{lon:.15e}"
        p.find("latitude").text = f"{lat:.15e}"


def _rd(lon, lat, h, s, v, r) -> np.ndarray:
    p = geo.geodetic_to_ecef(np.array(lon), np.array(lat), np.array(h))
    d = p - s
    return np.array([d @ v / np.linalg.norm(v), np.linalg.norm(d) - r])


def _crop_lut(root, kind: str, bursts, nl, ns, line0) -> None:
    path = "calibrationVectorList" if kind == "calibration" else "noiseRangeVectorList"
    vl = root.find(path)
    vecs = list(vl)
    lines = np.array([int(v.findtext("line")) for v in vecs])
    keep = (lines >= line0 - 2000) & (lines <= line0 + nl + 2000)
    for v, kp, line in zip(vecs, keep, lines, strict=True):
        if not kp:
            vl.remove(v)
        else:
            v.find("line").text = str(line - line0)
    vl.set("count", str(int(keep.sum())))
    if kind == "noise":
        for v in root.findall("noiseAzimuthVectorList/noiseAzimuthVector"):
            ls = np.array(v.findtext("line").split(), int) - line0
            vals = np.array(v.findtext("noiseAzimuthLut").split(), float)
            k = (ls >= -200) & (ls <= nl + 200)
            v.find("line").text = " ".join(map(str, ls[k]))
            v.find("line").set("count", str(int(k.sum())))
            v.find("noiseAzimuthLut").text = " ".join(f"{x:.6e}" for x in vals[k])
            v.find("noiseAzimuthLut").set("count", str(int(k.sum())))
            v.find("firstAzimuthLine").text = "0"
            v.find("lastAzimuthLine").text = str(nl - 1)
            v.find("lastRangeSample").text = str(ns - 1)


def _noise_power(root, nl, ns, line0) -> tuple[np.ndarray, np.ndarray]:
    """Noise power per sample (range LUT of the nearest vector) and per line (azimuth LUT)."""
    vecs = root.findall("noiseRangeVectorList/noiseRangeVector")
    mid = nl // 2
    v = min(vecs, key=lambda e: abs(int(e.findtext("line")) - mid))
    nr = np.interp(np.arange(ns), np.array(v.findtext("pixel").split(), float),
                   np.array(v.findtext("noiseRangeLut").split(), float))
    az = root.find("noiseAzimuthVectorList/noiseAzimuthVector")
    na = np.interp(np.arange(nl), np.array(az.findtext("line").split(), float),
                   np.array(az.findtext("noiseAzimuthLut").split(), float))
    return nr, na


def _manifest_only(man: str, swath: str) -> str:
    """Drop the other swaths' and the RFI files from the manifest (we write one swath)."""
    drop = "|".join([s for s in ("iw1", "iw2", "iw3") if s != swath] + ["rfi"])
    man = re.sub(rf"\s*<dataObject ID=\"[^\"]*(?:{drop})[^\"]*\".*?</dataObject>", "", man,
                 flags=re.S | re.I)
    man = re.sub(rf"\s*<dataObjectPointer dataObjectID=\"[^\"]*(?:{drop})[^\"]*\"/>", "", man,
                 flags=re.I)
    return man
