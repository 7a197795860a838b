"""Seed inputs for the fuzzers, made without ../shared.

The SAFE seed is ESA's own metadata, as the simulator ships it (m3leo_tiles/simulator/
data: a real track-108 IW2 manifest, annotation, calibration and noise XML), with its long
lists cut short so one parse takes milliseconds, and a tiny measurement TIFF beside it. The EOF
seed is a Earth Explorer orbit file in ESA's layout around that product's time.
"""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import rasterio

from m3leo_tiles.simulator.safe_writer import _manifest_only
from m3leo_tiles.simulator.templates import TRACKS

ASC = TRACKS["asc"]
REF_NAME = ASC.name

#: list elements cut to this many entries in the seed (the rest of the XML is ESA's)
KEEP = {"antennaPatternList": 2, "noiseList": 2, "burstList": 3, "geolocationGridPointList": 42,
        "attitudeList": 4, "replicaList": 1, "dcEstimateList": 3, "azimuthFmRateList": 3,
        "sliceList": 2, "calibrationVectorList": 3, "noiseRangeVectorList": 3}
XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def trimmed(name: str) -> bytes:
    root = ET.fromstring(ASC.read(name))
    for el in root.iter():
        n = KEEP.get(el.tag)
        if n is not None and len(el) > n:
            for child in list(el)[n:]:
                el.remove(child)
            el.set("count", str(n))
    return XML_HEAD + ET.tostring(root)


def safe_parts() -> dict[str, bytes]:
    """{relative path: bytes} of a small but complete IW2 SLC product (VV and VH)."""
    parts = {"manifest.safe": _manifest_only(ASC.read("manifest.safe"), "iw2").encode()}
    for pol in ("vv", "vh"):
        stem = ASC.file_stem.format(pol=pol, n=ASC.index(pol))
        parts[f"annotation/{stem}.xml"] = trimmed(f"annotation-iw2-{pol}.xml")
        for kind in ("calibration", "noise"):
            parts[f"annotation/calibration/{kind}-{stem}.xml"] = trimmed(f"{kind}-iw2-{pol}.xml")
        parts[f"measurement/{stem}.tiff"] = tiny_tiff()
    return parts


def tiny_tiff() -> bytes:
    buf = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=4, height=4, count=1, dtype="complex_int16") as ds:
            ds.write(np.ones((4, 4), np.complex64), 1)
        buf.write(mem.read())
    return buf.getvalue()


def write_safe(parts: dict[str, bytes], dest: Path, name: str = REF_NAME) -> Path:
    safe = dest / f"{name}.SAFE"
    for rel, data in parts.items():
        (safe / rel).parent.mkdir(parents=True, exist_ok=True)
        (safe / rel).write_bytes(data)
    return safe


EOF_NAME = "S1A_OPER_AUX_POEORB_OPOD_20250426T070652_V20250405T225942_20250407T005942.EOF"


def eof_bytes(n: int = 30) -> bytes:
    """An AUX_POEORB file of `n` state vectors, 10 s apart, on a circular polar orbit."""
    t0 = dt.datetime(2025, 4, 6, 2, 18, 0)
    r, w = 7_071_000.0, 2 * np.pi / (12 * 86400 / 175)
    osvs = []
    for k in range(n):
        t = t0 + dt.timedelta(seconds=10 * k)
        a = w * 10 * k
        pos = (r * np.cos(a), 0.0, r * np.sin(a))
        vel = (-r * w * np.sin(a), 0.0, r * w * np.cos(a))
        osvs.append(
            f"<OSV><TAI>TAI={t + dt.timedelta(seconds=37):%Y-%m-%dT%H:%M:%S.%f}</TAI>"
            f"<UTC>UTC={t:%Y-%m-%dT%H:%M:%S.%f}</UTC><UT1>UT1={t:%Y-%m-%dT%H:%M:%S.%f}</UT1>"
            f"<Absolute_Orbit>+58630</Absolute_Orbit>"
            + "".join(f'<{k_} unit="m">{v:.6f}</{k_}>' for k_, v in zip("XYZ", pos, strict=True))
            + "".join(f'<V{k_} unit="m/s">{v:.6f}</V{k_}>'
                      for k_, v in zip("XYZ", vel, strict=True))
            + "<Quality>NOMINAL</Quality></OSV>")
    return (XML_HEAD + (
        '<Earth_Explorer_File>'
        "<Earth_Explorer_Header><Fixed_Header>"
        f"<File_Name>{EOF_NAME[:-4]}</File_Name>"
        "<File_Description>Precise Orbit Ephemerides (POE) Orbit File</File_Description>"
        "<Mission>Sentinel-1A</Mission><File_Class>OPER</File_Class>"
        "<File_Type>AUX_POEORB</File_Type><Validity_Period>"
        "<Validity_Start>UTC=2025-04-05T22:59:42</Validity_Start>"
        "<Validity_Stop>UTC=2025-04-07T00:59:42</Validity_Stop></Validity_Period>"
        "<File_Version>0001</File_Version><Source><System>OPOD</System>"
        "<Creation_Date>UTC=2025-04-26T07:06:52</Creation_Date></Source></Fixed_Header>"
        "<Variable_Header><Ref_Frame>EARTH_FIXED</Ref_Frame><Time_Reference>UTC</Time_Reference>"
        "</Variable_Header></Earth_Explorer_Header><Data_Block type=\"xml\">"
        f'<List_of_OSVs count="{n}">' + "".join(osvs) + "</List_of_OSVs></Data_Block>"
        "</Earth_Explorer_File>").encode())


def stac_items(n: int = 3) -> dict:
    """An ItemCollection of `n` Sentinel-2 items (Earth Search asset names), hrefs relative."""
    feats = []
    for k in range(n):
        feats.append({
            "type": "Feature", "stac_version": "1.0.0", "id": f"S2A_31NCA_2021070{k + 1}_0_L2A",
            "collection": "sentinel-2-l2a", "bbox": [2.9, 0.4, 3.1, 0.6],
            "geometry": {"type": "Polygon", "coordinates": [[[2.9, 0.4], [3.1, 0.4], [3.1, 0.6],
                                                             [2.9, 0.6], [2.9, 0.4]]]},
            "properties": {"datetime": f"2021-07-0{k + 1}T10:00:00Z",
                           "s2:processing_baseline": "04.00"},
            "assets": {"blue": {"href": f"scene{k}/B02.tif"}, "red": {"href": f"scene{k}/B04.tif"},
                       "scl": {"href": f"scene{k}/SCL.tif"}}})
    return {"type": "FeatureCollection", "features": feats}


def aoi_geojson() -> dict:
    """Two overlapping fields with the attributes a GIS export carries."""
    feats = []
    for k, (x0, y0) in enumerate(((3.0, 0.5), (3.05, 0.53))):
        ring = [[x0, y0], [x0 + 0.08, y0], [x0 + 0.08, y0 + 0.06], [x0, y0 + 0.06], [x0, y0]]
        feats.append({"type": "Feature", "id": k,
                      "properties": {"name": f"field {k}", "crop": "maize", "area_ha": 41.5,
                                     "surveyed": "2021-06-01", "tags": ["a", "b"]},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return {"type": "FeatureCollection", "name": "fields", "features": feats}


def npy_bytes(bands: list[str], shape: tuple[int, int], dtype: str = "<u2") -> bytes:
    """An Earth Engine computePixels NPY answer: one structured field per band."""
    arr = np.zeros(shape, dtype=[(b, dtype) for b in bands])
    for k, b in enumerate(bands):
        arr[b] = 100 + k  # fits every band type the sources use
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def npy_with_header(header: str, data: bytes) -> bytes:
    """A version-1.0 NPY body with an arbitrary header dict text (hostile answers)."""
    text = header + " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1") + data
