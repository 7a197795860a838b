"""ASF's side of burst products, for tests: cut a SAFE into burst TIFFs + metadata XML in the
format ASF's burst extractor serves (what burst2safe reads: `metadata/<kind>` elements with
`swath`, `polarisation`, `content`, and `manifest/XFDU`)."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import rasterio

_FILE = re.compile(r"(?:(calibration|noise|rfi)-)?s1[abcd]-(iw\d)-slc-(\w\w)-")


def metadata_xml(safe: Path, pol: str) -> bytes:
    """The burst metadata XML of an SLC and polarisation (the same for all its bursts)."""
    parts = []
    for f in sorted((safe / "annotation").rglob("*.xml")):
        m = _FILE.match(f.name)
        if not m or m.group(3).upper() != pol.upper():
            continue
        kind = m.group(1) or "product"
        body = f.read_text()
        body = re.sub(r"^<\?xml[^>]*>\s*", "", body)
        inner = re.sub(r"^<(product|calibration|noise|rfi)(\s[^>]*)?>", "", body.strip())
        inner = re.sub(r"</(product|calibration|noise|rfi)>$", "", inner)
        parts.append(f"<{kind}><swath>{m.group(2).upper()}</swath><polarisation>"
                     f"{pol.upper()}</polarisation><content>{inner}</content></{kind}>")
    manifest = re.sub(r"^<\?xml[^>]*>\s*", "", (safe / "manifest.safe").read_text())
    doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<burst><metadata>{"".join(parts)}'
           f"</metadata><manifest>{manifest}</manifest></burst>")
    ET.fromstring(doc)  # well-formed
    return doc.encode()


def burst_tiff(safe: Path, swath: str, pol: str, index: int) -> bytes:
    """Lines of burst `index` of the swath's measurement, as a complex int16 GeoTIFF."""
    ann = next(f for f in (safe / "annotation").glob("*.xml")
               if f"-{swath.lower()}-slc-{pol.lower()}-" in f.name)
    lpb = int(re.search(r"<linesPerBurst>(\d+)<", ann.read_text()).group(1))
    meas = next((safe / "measurement").glob(f"*-{swath.lower()}-slc-{pol.lower()}-*.tiff"))
    with rasterio.open(meas) as r:
        data = r.read(1, window=rasterio.windows.Window(0, index * lpb, r.width, lpb))
        dtype = r.dtypes[0]
    buf = io.BytesIO()
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                      dtype=dtype) as w:
            w.write(data, 1)
        buf.write(mem.read())
    return buf.getvalue()


def n_bursts(safe: Path, swath: str) -> int:
    ann = next(f for f in (safe / "annotation").glob(f"*-{swath.lower()}-slc-*.xml"))
    return int(re.search(r'<burstList count="(\d+)"', ann.read_text()).group(1))


def cut(safe: Path, swath: str, index: int, dest: Path, pols=("VV", "VH")) -> list:
    """Files of one burst as a download would leave them: {pol}.tiff and {slc}_{pol}.xml."""
    from m3leo_tiles.s1.bursts import BurstFiles

    slc = safe.name.removesuffix(".SAFE")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for pol in pols:
        tiff = dest / f"{slc}_{swath}_{pol}_{index}.tiff"
        xml = dest / f"{slc}_{pol}.xml"
        tiff.write_bytes(burst_tiff(safe, swath, pol, index))
        xml.write_bytes(metadata_xml(safe, pol))
        out.append(BurstFiles(slc, swath, pol, index, tiff, xml))
    return out


__all__ = ["burst_tiff", "cut", "metadata_xml", "n_bursts"]
