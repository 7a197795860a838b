"""ASF burst downloads on disk, recognised: which SLC, swath, polarisation and burst index
each TIFF is, from ASF's own names and the metadata XML (what burst2safe's local mode needs
to be told by hand).

ASF names a burst TIFF after its granule, `S1_{burst number}_{swath}_{sensing start}_{pol}_
{SLC product id}-BURST.tiff`, and burst2safe / ASF's downloads name the metadata XML
`{SLC name}_{pol}.xml`. The burst index is the position in the SLC swath's burst list whose
<burstId> (or, before IPF 3.40, whose start second) matches the granule.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import BadInput
from .bursts import BurstFiles, BurstXml, assemble_safe, read_burst_xml

_GRANULE = re.compile(r"^S1_(\d{6})_((?:IW|EW)\d)_(\d{8}T\d{6})_([VH]{2})_([0-9A-F]{4})-BURST$",
                      re.I)
_XML = re.compile(r"^(S1[ABCD]_IW_SLC__1S[DS][VH]_\d{8}T\d{6}_\d{8}T\d{6}_\d{6}_[0-9A-F]{6}_"
                  r"([0-9A-F]{4}))_([VH]{2})$", re.I)


def _index(meta: BurstXml, swath: str, pol: str, number: int, start: dt.datetime) -> int | None:
    """Position of the burst in the SLC swath's burst list (by id, else by start second)."""
    product = meta.part("product", swath, pol)
    for i, b in enumerate(product.findall("swathTiming/burstList/burst")):
        bid = (b.findtext("burstId") or "").strip()
        t = dt.datetime.fromisoformat(b.findtext("azimuthTime") or "")
        if (bid and int(bid) == number) or (not bid and t.replace(microsecond=0) == start):
            return i
    return None


def find_burst_files(directory: str | Path) -> list[BurstFiles]:
    """Every ASF burst TIFF in `directory` whose SLC metadata XML is there too."""
    d = Path(directory)
    if not d.is_dir():
        raise BadInput(f"burst folder {str(directory)!r} is not a directory")
    xmls: dict[tuple[str, str], tuple[str, Path]] = {}  # (product id, pol) -> (slc, path)
    for f in sorted(d.glob("*.xml")):
        m = _XML.match(f.stem)
        if m:
            xmls[(m.group(2).upper(), m.group(3).upper())] = (m.group(1), f)
    metas: dict[Path, BurstXml] = {}
    out = []
    for f in sorted(d.glob("*.tif*")):
        m = _GRANULE.match(f.stem)
        if not m:
            continue
        number, swath, when, pol, pid = m.groups()
        hit = xmls.get((pid.upper(), pol.upper()))
        if hit is None:
            raise BadInput(f"{f.name}: no {pid.upper()} {pol.upper()} metadata XML "
                           f"(<SLC name>_{pol.upper()}.xml) next to it")
        slc, xml = hit
        meta = metas.get(xml) or metas.setdefault(xml, read_burst_xml(xml))
        start = dt.datetime.strptime(when, "%Y%m%dT%H%M%S")
        idx = _index(meta, swath.upper(), pol.upper(), int(number), start)
        if idx is None:
            raise BadInput(f"{f.name}: burst {number} is not in {xml.name}")
        out.append(BurstFiles(slc, swath.upper(), pol.upper(), idx, f, xml))
    return out


def runs(files: Iterable[BurstFiles]) -> list[list[BurstFiles]]:
    """Bursts grouped into runs of consecutive indices per SLC swath (all polarisations)."""
    by: dict[tuple[str, str], list[BurstFiles]] = {}
    for f in files:
        by.setdefault((f.slc, f.swath), []).append(f)
    out = []
    for key in sorted(by):
        group = by[key]
        idx = sorted({f.index for f in group})
        start = 0
        for i in range(1, len(idx) + 1):
            if i == len(idx) or idx[i] != idx[i - 1] + 1:
                keep = set(idx[start:i])
                out.append([f for f in group if f.index in keep])
                start = i
    return out


def assemble_folder(directory: str | Path, out_dir: str | Path) -> list[Path]:
    """One SAFE per run of consecutive bursts found in `directory`, written to `out_dir`."""
    return [assemble_safe(run, out_dir) for run in runs(find_burst_files(directory))]
