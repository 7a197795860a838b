"""Archive mode: S1 IW SLC products (.SAFE folders or .zip) on disk, read without network.

Metadata comes from manifest.safe and the annotation XML only, so products whose
measurement TIFFs are absent or empty still scan (that is all search and pairing need).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from pathlib import Path

import shapely

from ...errors import PermanentError
from ..s1types import S1Product

log = logging.getLogger(__name__)

T_ORB = 12 * 24 * 3600 / 175  # nominal orbit period [s] (ESA S1 burst id definition)
T_BEAM = 2.758273  # nominal burst cycle [s]
T_PRE = 2.299849  # preamble before the first burst after the ascending node [s]
_ANNOT = re.compile(r"annotation/s1[abcd]-(iw\d)-slc-(\w\w)-[^/]*\.xml$", re.I)


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


def esa_burst_id(relative_orbit: int, burst_centre: dt.datetime, anx: dt.datetime) -> int:
    """ESA's burst id: burst cycles since the track's first ascending node (S1 burst-id note)."""
    t_orb = (relative_orbit - 1) * T_ORB + (burst_centre - anx).total_seconds()
    return 1 + math.floor((t_orb - T_PRE) / T_BEAM)


def burst_ids_from_annotation(xml: bytes, swath: str, relative_orbit: int,
                              anx: dt.datetime | None) -> list[str]:
    """Burst ids of one swath: annotation <burstId> when present, else computed from times."""
    root = ET.fromstring(xml)
    lpb = int(_find(root, "linesPerBurst") or 0)
    ati = float(_find(root, "azimuthTimeInterval") or 0.0)
    out = []
    for b in root.iter("burst"):
        bid = b.find("burstId")
        if bid is not None and bid.text and bid.text.strip():
            n = int(bid.text)
        elif anx is not None:
            start = _time(b.findtext("azimuthTime"))
            n = esa_burst_id(relative_orbit, start + dt.timedelta(seconds=lpb * ati / 2), anx)
        else:
            continue
        out.append(f"{relative_orbit:03d}_{n:06d}_{swath.upper()}")
    return out


def product_from_files(name: str, manifest: bytes, annotations: dict[str, bytes],
                       path: str | None = None) -> S1Product:
    """An S1Product from the manifest bytes and {annotation path: bytes}."""
    root = ET.fromstring(manifest)
    mode, ptype = _find(root, "mode"), _find(root, "productType")
    if mode != "IW" or ptype != "SLC":
        raise ValueError(f"not an IW SLC product (mode={mode}, type={ptype})")
    rel = int(root.find(".//{*}relativeOrbitNumber").text)
    coords = [[float(v) for v in tok.split(",")] for tok in _find(root, "coordinates").split()]
    anx_text = _find(root, "ascendingNodeTime")
    anx = _time(anx_text) if anx_text else None
    bursts: set[str] = set()
    for rel_path, xml in sorted(annotations.items()):
        m = _ANNOT.search(rel_path)
        if m:
            bursts.update(burst_ids_from_annotation(xml, m.group(1), rel, anx))
    pols = tuple(el.text for el in root.findall(".//{*}transmitterReceiverPolarisation") if el.text)
    return S1Product(
        name=name, platform=f"S1{_find(root, 'number')}",
        start=_time(_find(root, "startTime")), stop=_time(_find(root, "stopTime")),
        relative_orbit=rel, absolute_orbit=int(root.find(".//{*}orbitNumber").text),
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


def scan_archive(directory: str | Path) -> ScanResult:
    """Every readable IW SLC under `directory`; unreadable ones are logged and listed in .skipped."""
    d = Path(directory)
    out = ScanResult()
    if not d.is_dir():
        from ...errors import BadInput

        raise BadInput(f"S1 archive {str(directory)!r} is not a directory")
    for p in sorted(d.iterdir()):
        if not (p.suffix.lower() == ".zip" or p.suffix == ".SAFE"):
            continue
        try:
            out.append(read_product(p))
        except (PermanentError, zipfile.BadZipFile, OSError, ValueError, KeyError,
                AttributeError, TypeError, ET.ParseError) as e:
            reason = f"{type(e).__name__}: {e}"
            log.warning("skipping %s: %s", p.name, reason)
            out.skipped.append((str(p), reason))
    return out
