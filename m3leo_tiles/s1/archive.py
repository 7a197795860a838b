"""The one Sentinel-1 archive scanner: IW SLC products (.SAFE folders or .zip) on disk.

Metadata comes from manifest.safe and the annotation XML only (S1 Product Specification,
S1-RS-MDA-52-7441, sections 3-4), so products whose measurement TIFFs are absent or empty
still scan: that is all search and pairing need. Subfolders are scanned too (the simulator
writes its products under `s1/`); a .SAFE folder is a product, never descended into.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from pathlib import Path

import shapely

from ..errors import BadInput, PermanentError
from .burst_id import BurstId, esa_burst_id
from .products import S1Product

log = logging.getLogger(__name__)

_ANNOT = re.compile(r"annotation/s1[abcd]-(iw\d)-slc-(\w\w)-[^/]*\.xml$", re.I)
UNREADABLE = (zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError, TypeError,
              ET.ParseError)

__all__ = ["ScanResult", "burst_ids_from_annotation", "esa_burst_id", "product_from_files",
           "read_product", "scan_archive"]


class ScanResult(list):
    """Products found (a list) plus `.skipped`: (path, reason) of what could not be read."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.skipped: list[tuple[str, str]] = []


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip().rstrip("Z"))


def _find(root: ET.Element, tag: str) -> str | None:
    el = root.find(f".//{{*}}{tag}")
    return el.text if el is not None and el.text is not None else None


def burst_ids_from_annotation(xml: bytes, swath: str, relative_orbit: int,
                              anx: dt.datetime | None,
                              end_relative_orbit: int | None = None) -> list[str]:
    """Burst ids of one swath: annotation <burstId> when present, else computed from times."""
    root = ET.fromstring(xml)
    lpb = int(_find(root, "linesPerBurst") or 0)
    ati = float(_find(root, "azimuthTimeInterval") or 0.0)
    out = []
    for b in root.iter("burst"):
        bid = b.find("burstId")
        if bid is not None and bid.text and bid.text.strip():
            out.append(str(BurstId(relative_orbit, int(bid.text), swath)))
        elif anx is not None:
            start = _time(b.findtext("azimuthTime") or "")
            centre = start + dt.timedelta(seconds=lpb * ati / 2)
            out.append(str(BurstId.from_times(centre, anx, relative_orbit, swath,
                                              end_relative_orbit)))
    return out


def product_from_files(name: str, manifest: bytes, annotations: dict[str, bytes],
                       path: str | None = None) -> S1Product:
    """An S1Product from the manifest bytes and {annotation path: bytes}."""
    root = ET.fromstring(manifest)
    mode, ptype = _find(root, "mode"), _find(root, "productType")
    if mode != "IW" or ptype != "SLC":
        raise ValueError(f"not an IW SLC product (mode={mode}, type={ptype})")
    rels = [int(e.text or "") for e in root.iter() if e.tag.endswith("}relativeOrbitNumber")]
    orbits = [int(e.text or "") for e in root.iter() if e.tag.endswith("}orbitNumber")]
    if not rels or not orbits:
        raise ValueError("manifest has no orbit numbers")
    coords = [[float(v) for v in tok.split(",")] for tok in (_find(root, "coordinates") or "")
              .split()]
    anx_text = _find(root, "ascendingNodeTime")
    anx = _time(anx_text) if anx_text else None
    bursts: set[str] = set()
    for rel_path, xml in sorted(annotations.items()):
        m = _ANNOT.search(rel_path)
        if m:
            bursts.update(burst_ids_from_annotation(xml, m.group(1), rels[0], anx, rels[-1]))
    pols = tuple(el.text for el in root.findall(".//{*}transmitterReceiverPolarisation") if el.text)
    return S1Product(
        name=name, platform=f"S1{_find(root, 'number')}",
        start=_time(_find(root, "startTime") or ""), stop=_time(_find(root, "stopTime") or ""),
        relative_orbit=rels[0], absolute_orbit=orbits[0],
        pass_direction=(_find(root, "pass") or "").upper(), polarisations=pols,
        footprint=shapely.Polygon([(lon, lat) for lat, lon in coords]), path=path,
        burst_ids=tuple(sorted(bursts)),
        extra={"ascending_node_time": anx.isoformat() if anx else None})


def read_product(path: str | Path) -> S1Product:
    """One SAFE folder or zip; a PermanentError naming it, in one line, if unreadable."""
    try:
        return _read_product(Path(path))
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError, TypeError,
            LookupError, ArithmeticError, EOFError, ET.ParseError, zlib.error) as e:
        why = (str(e).splitlines() or [""])[0]
        raise PermanentError(f"{Path(path).name}: unreadable S1 product: "
                             f"{type(e).__name__}: {why}") from None


def _read_product(p: Path) -> S1Product:
    name = p.name.removesuffix(".zip").removesuffix(".SAFE")
    if p.is_dir():
        ann = {str(f.relative_to(p)): f.read_bytes() for f in (p / "annotation").glob("*.xml")}
        return product_from_files(name, (p / "manifest.safe").read_bytes(), ann, str(p))
    with zipfile.ZipFile(p) as z:
        names = z.namelist()
        man = [n for n in names if n.endswith(".SAFE/manifest.safe")]
        if not man:
            raise ValueError("no <name>.SAFE/manifest.safe inside")
        top = man[0][: -len("manifest.safe")]
        ann = {n[len(top):]: z.read(n) for n in names
               if n.startswith(top + "annotation/") and n.count("/") == top.count("/") + 1
               and n.endswith(".xml")}
        return product_from_files(name, z.read(man[0]), ann, str(p))


def _is_product(p: Path) -> bool:
    return (p.suffix == ".SAFE" and p.is_dir()) or (p.suffix.lower() == ".zip" and p.is_file())


def product_paths(directory: str | Path) -> list[Path]:
    """Every .SAFE folder and .zip under `directory`, subfolders included, sorted by name.

    A .SAFE folder is not descended into; hidden folders (download caches' `.part` files,
    `.git`) are skipped; symlinked folders are not followed (no loops).
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if d.endswith(".SAFE"):
                found.append(here / d)
            else:
                keep.append(d)
        dirnames[:] = keep
        found.extend(here / f for f in filenames if f.lower().endswith(".zip")
                     and not f.startswith("."))
    return sorted(found, key=lambda q: (q.name, str(q)))


def scan_archive(directory: str | Path) -> ScanResult:
    """Every readable IW SLC under `directory` (recursively); the unreadable ones are logged
    and listed in `.skipped`."""
    d = Path(directory)
    if not d.is_dir():
        raise BadInput(f"S1 archive {str(directory)!r} is not a directory")
    out = ScanResult()
    for p in product_paths(d):
        try:
            out.append(read_product(p))
        except (PermanentError, *UNREADABLE) as e:
            reason = f"{type(e).__name__}: {e}"
            log.warning("skipping %s: %s", p.name, reason)
            out.skipped.append((str(p), reason))
    return out
