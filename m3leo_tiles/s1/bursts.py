"""ASF burst SLC products made into minimal SAFEs the processor reads unchanged.

ASF's burst extractor serves, per burst, a measurement TIFF (the burst's lines of the swath's
measurement, complex int16) and a metadata XML holding, for every swath of the source SLC and
that polarisation, the full product annotation, calibration, noise and RFI XML (each under
`metadata/<kind>` with `swath`, `polarisation` and `content`) plus the SLC's `manifest.safe`
(`manifest/XFDU`). We assemble a SAFE for a run of consecutive bursts of one swath (S1
Product Specification S1-RS-MDA-52-7441, the layout burst2safe also writes):

- measurement: the burst TIFFs (one copied, or several stacked) as the swath's measurement;
- annotation: the burst list cut to the run, image size and times of the run, and every
  line-indexed list (geolocation grid, calibration, noise range and azimuth vectors) cut to
  the rows inside the run plus the nearest row either side, lines re-counted from the run's
  first line, so every interpolation inside the run is the one on the full SLC;
- manifest: the SLC's, with the run's times, footprint, swath and data objects.

Time-indexed lists (orbit, attitude, Doppler, FM rate, antenna pattern) are kept whole.
"""

from __future__ import annotations

import binascii
import contextlib
import copy
import datetime as dt
import fcntl
import functools
import hashlib
import io
import os
import re
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import PermanentError

XFDU = "urn:ccsds:schema:xfdu:1"
GML = "http://www.opengis.net/gml"
SAFE_NS = "http://www.esa.int/safe/sentinel-1.0"
KINDS = ("product", "calibration", "noise")
REP_IDS = {"product": "s1Level1ProductSchema", "calibration": "s1Level1CalibrationSchema",
           "noise": "s1Level1NoiseSchema", "measurement": "s1Level1MeasurementSchema"}

__all__ = ["BurstFiles", "BurstXml", "assemble_safe", "read_burst_xml"]


class BurstError(PermanentError):
    """Burst files that cannot make a SAFE (missing parts, mixed products, gaps)."""


@dataclass(frozen=True)
class BurstFiles:
    """One downloaded burst: where its TIFF and metadata XML are, and which burst it is."""

    slc: str  # source SLC name (ASF: the burst URL's first path element)
    swath: str  # IW1 | IW2 | IW3
    polarisation: str
    index: int  # burst position in the SLC's swath (ASF's burstIndex)
    tiff: Path
    xml: Path


class BurstXml:
    """ASF's combined burst metadata XML: the manifest and per (kind, swath, pol) contents."""

    def __init__(self, data: bytes) -> None:
        try:
            self.namespaces = dict(ns for _, ns in ET.iterparse(io.BytesIO(data), ["start-ns"]))
            root = ET.fromstring(data)
        except ET.ParseError as e:
            raise BurstError(f"burst metadata XML unreadable: {e}") from None
        manifest = root.find(f"manifest/{{{XFDU}}}XFDU")
        if manifest is None:
            raise BurstError("burst metadata XML has no manifest/XFDU")
        self.manifest: ET.Element = manifest
        self.parts: dict[tuple[str, str, str], ET.Element] = {}
        for el in root.findall("metadata/*"):
            content = el.find("content")
            sw, pol = el.findtext("swath"), el.findtext("polarisation")
            if content is not None and sw and pol:
                self.parts[(el.tag, sw.upper(), pol.upper())] = content

    def part(self, kind: str, swath: str, pol: str) -> ET.Element:
        el = self.parts.get((kind, swath.upper(), pol.upper()))
        if el is None:
            raise BurstError(f"burst metadata XML has no {kind} for {swath}/{pol}")
        return el


def read_burst_xml(path: str | Path) -> BurstXml:
    """The parsed metadata XML (one per SLC and polarisation, shared by all its bursts: the
    last few parsed are kept, keyed by file identity, and never modified by callers)."""
    st = Path(path).stat()
    return _parsed(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _parsed(path: str, size: int, mtime_ns: int) -> BurstXml:
    return BurstXml(Path(path).read_bytes())


def _set(el: ET.Element, path: str, text: object) -> None:
    node = el.find(path)
    if node is None:
        raise BurstError(f"annotation has no {path}")
    node.text = str(text)


def _iso(t: dt.datetime) -> str:
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
class _Run:
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


def _run(product: ET.Element, indices: list[int]) -> _Run:
    bursts = product.findall("swathTiming/burstList/burst")
    lpb = int(product.findtext("swathTiming/linesPerBurst") or 0)
    ati = float(product.findtext("imageAnnotation/imageInformation/azimuthTimeInterval") or 0)
    if not bursts or lpb <= 0 or ati <= 0:
        raise BurstError("annotation lacks burst timing (burstList, linesPerBurst)")
    if indices != list(range(indices[0], indices[0] + len(indices))):
        raise BurstError(f"bursts {indices} are not consecutive")
    if indices[0] < 0 or indices[-1] >= len(bursts):
        raise BurstError(f"burst index {indices[-1]} beyond the SLC's {len(bursts)} bursts")
    start = dt.datetime.fromisoformat(bursts[indices[0]].findtext("azimuthTime") or "")
    stop = start + dt.timedelta(seconds=(len(indices) * lpb - 1) * ati)
    return _Run(indices[0], len(indices), lpb, start, stop)


def cut_annotation(kind: str, content: ET.Element, run: _Run) -> ET.Element:
    """A full SLC's annotation/calibration/noise XML cut to a burst run (a new element)."""
    root = ET.Element(kind)
    root.extend(copy.deepcopy(list(content)))
    _set(root, "adsHeader/startTime", _iso(run.start))
    _set(root, "adsHeader/stopTime", _iso(run.stop))
    first, last = run.first_line, run.last_line
    if kind == "product":
        info = "imageAnnotation/imageInformation/"
        _set(root, info + "productFirstLineUtcTime", _iso(run.start))
        _set(root, info + "productLastLineUtcTime", _iso(run.stop))
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


def _footprint(product: ET.Element) -> str:
    """gml:coordinates ('lat,lon' corners) of the cut geolocation grid."""
    pts = [(int(p.findtext("line") or 0), int(p.findtext("pixel") or 0),
            float(p.findtext("latitude") or 0), float(p.findtext("longitude") or 0))
           for p in product.iter("geolocationGridPoint")]
    if not pts:
        raise BurstError("annotation has no geolocation grid")
    l0, l1 = min(p[0] for p in pts), max(p[0] for p in pts)
    s0, s1 = min(p[1] for p in pts), max(p[1] for p in pts)
    at = {(p[0], p[1]): (p[2], p[3]) for p in pts}
    corners = [at.get(c) for c in ((l0, s0), (l0, s1), (l1, s1), (l1, s0))]
    if any(c is None for c in corners):
        raise BurstError("geolocation grid is not a full grid")
    return " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in corners)  # type: ignore[misc]


def _stack_tiffs(paths: list[Path], dest: Path) -> None:
    """One measurement TIFF from several burst TIFFs of one swath, in order (complex int16)."""
    import rasterio

    def opened(p: Path):
        try:
            return rasterio.open(p)
        except rasterio.errors.RasterioIOError as e:
            raise BurstError(f"{p.name}: unreadable burst TIFF ({e})") from None

    with opened(paths[0]) as r0:
        prof = r0.profile
        h, w = r0.height, r0.width
    prof.update(driver="GTiff", height=h * len(paths), count=1, tiled=False, compress=None)
    for key in ("blockxsize", "blockysize", "photometric"):
        prof.pop(key, None)
    with warnings.catch_warnings():  # SLC measurements are in radar geometry: no transform
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        _write_stack(paths, dest, prof, h, w, opened)


def _write_stack(paths: list[Path], dest: Path, prof: dict, h: int, w: int, opened) -> None:
    import rasterio

    with rasterio.open(dest, "w", **prof) as out:
        for i, p in enumerate(paths):
            with opened(p) as r:
                if (r.height, r.width) != (h, w):
                    raise BurstError(f"{p.name}: {r.height}x{r.width}, expected {h}x{w}")
                out.write(r.read(1), 1, window=rasterio.windows.Window(0, i * h, w, h))


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest(base: ET.Element, run: _Run, swath: str, pols: list[str],
              files: list[tuple[str, str, str]], footprint: str, root: Path) -> ET.Element:
    """The SLC's manifest with the run's times, footprint, swath and data objects."""
    man = copy.deepcopy(base)
    for el in man.iter():
        if el.tag == f"{{{SAFE_NS}}}startTime":
            el.text = _iso(run.start)
        elif el.tag == f"{{{SAFE_NS}}}stopTime":
            el.text = _iso(run.stop)
        elif el.tag == f"{{{GML}}}coordinates":
            el.text = footprint
    for parent in man.iter():
        for child in list(parent):
            if child.tag.endswith("}swath") and child.text and child.text.upper() != swath:
                parent.remove(child)
            elif (child.tag.endswith("}transmitterReceiverPolarisation")
                  and (child.text or "").upper() not in pols):
                parent.remove(child)
    section = man.find("dataObjectSection")
    if section is None:
        section = ET.SubElement(man, "dataObjectSection")
    keep_ids = set()
    for obj in list(section):
        section.remove(obj)
    for i, (rel, rep, mime) in enumerate(files):
        oid = re.sub(r"[^a-z0-9]", "", Path(rel).stem.lower()) + f"{i:02d}"
        keep_ids.add(oid)
        obj = ET.SubElement(section, "dataObject", ID=oid, repID=rep)
        stream = ET.SubElement(obj, "byteStream", mimeType=mime,
                               size=str((root / rel).stat().st_size))
        ET.SubElement(stream, "fileLocation", locatorType="URL", href=f"./{rel}")
        ET.SubElement(stream, "checksum", checksumName="MD5").text = _md5(root / rel)
    # pointers to objects that are no longer there go (informationPackageMap, metadata)
    for parent in man.iter():
        for child in list(parent):
            ptr = child.find("dataObjectPointer")
            if ptr is not None and ptr.get("dataObjectID") not in keep_ids:
                parent.remove(child)
    return man


def safe_name(slc: str, run: _Run, pols: Sequence[str], swath: str, indices: Sequence[int]) -> str:
    """ESA-style name for the run: the SLC's fields with the run's times and its own id."""
    parts = slc.split("_")
    if len(parts) < 9 or not parts[0].startswith("S1"):
        raise BurstError(f"{slc!r} is not an S1 SLC name")
    kind = "1S" + ("D" if len(pols) > 1 else "S") + pols[0][0]
    crc = binascii.crc_hqx(f"{slc}/{swath}/{indices[0]}-{indices[-1]}".encode(), 0xFFFF)
    return (f"{parts[0]}_IW_SLC__{kind}_{run.start:%Y%m%dT%H%M%S}_{run.stop:%Y%m%dT%H%M%S}_"
            f"{parts[-3]}_{parts[-2]}_{crc:04X}")


@contextlib.contextmanager
def _building(out: Path, name: str):
    """One builder of a SAFE at a time across threads and processes (flock); half-built
    copies left by builders that died (kill -9) are removed first: none can be running."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f".{name}.SAFE.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            for tmp in out.glob(f".{name}.SAFE.*.tmp"):
                shutil.rmtree(tmp, ignore_errors=True)
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(metas: dict[str, BurstXml], by_pol: dict[str, list[BurstFiles]], pols: list[str],
           run: _Run, slc: str, swath: str, tmp: Path, dest: Path) -> None:
    """Write the SAFE into `tmp`, then rename it to `dest` (the caller holds the lock)."""
    try:
        (tmp / "annotation" / "calibration").mkdir(parents=True)
        (tmp / "measurement").mkdir()
        files: list[tuple[str, str, str]] = []
        footprint = ""
        mission = slc[:3].lower()
        for p in pols:
            meta = metas[p]
            product = meta.part("product", swath, p)
            number = int(product.findtext("adsHeader/imageNumber") or 1)
            abs_orbit = int(product.findtext("adsHeader/absoluteOrbitNumber") or 0)
            take = int(product.findtext("adsHeader/missionDataTakeId") or 0)
            stem = (f"{mission}-{swath.lower()}-slc-{p.lower()}-{run.start:%Y%m%dt%H%M%S}-"
                    f"{run.stop:%Y%m%dt%H%M%S}-{abs_orbit:06d}-{take:06x}-{number:03d}")
            for kind in KINDS:
                cut = cut_annotation(kind, meta.part(kind, swath, p), run)
                rel = (f"annotation/{stem}.xml" if kind == "product"
                       else f"annotation/calibration/{kind}-{stem}.xml")
                ET.ElementTree(cut).write(tmp / rel, encoding="UTF-8", xml_declaration=True)
                files.append((rel, REP_IDS[kind], "text/xml"))
                if kind == "product" and not footprint:
                    footprint = _footprint(cut)
            rel = f"measurement/{stem}.tiff"
            tiffs = [b.tiff for b in by_pol[p]]
            if len(tiffs) == 1:
                try:  # the cache's file, shared (no second copy of ~100 MB per burst)
                    os.link(tiffs[0], tmp / rel)
                except OSError:
                    shutil.copyfile(tiffs[0], tmp / rel)
            else:
                _stack_tiffs(tiffs, tmp / rel)
            files.append((rel, REP_IDS["measurement"], "application/octet-stream"))
        for prefix, uri in metas[pols[0]].namespaces.items():
            if prefix:
                ET.register_namespace(prefix, uri)
        man = _manifest(metas[pols[0]].manifest, run, swath, pols, files, footprint, tmp)
        ET.ElementTree(man).write(tmp / "manifest.safe", encoding="UTF-8", xml_declaration=True)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def assemble_safe(bursts: Sequence[BurstFiles], out_dir: str | Path) -> Path:
    """A SAFE folder in `out_dir` for consecutive bursts of one SLC swath (any polarisations).

    Idempotent (an existing SAFE of the same name is returned) and atomic (built in a hidden
    folder, then renamed), so workers sharing `out_dir` never see half a SAFE.
    """
    if not bursts:
        raise BurstError("no bursts to assemble")
    slcs = {b.slc for b in bursts}
    swaths = {b.swath.upper() for b in bursts}
    if len(slcs) != 1 or len(swaths) != 1:
        raise BurstError(f"bursts of one SLC swath only, got {sorted(slcs)} {sorted(swaths)}")
    slc, swath = slcs.pop(), swaths.pop()
    pols = sorted({b.polarisation.upper() for b in bursts}, key=lambda p: (p != "VV", p))
    by_pol = {p: sorted((b for b in bursts if b.polarisation.upper() == p),
                        key=lambda b: b.index) for p in pols}
    indices = [b.index for b in by_pol[pols[0]]]
    for p in pols:
        if [b.index for b in by_pol[p]] != indices:
            raise BurstError(f"{p} has bursts {[b.index for b in by_pol[p]]}, "
                             f"{pols[0]} has {indices}")
    metas = {p: read_burst_xml(by_pol[p][0].xml) for p in pols}
    run = _run(metas[pols[0]].part("product", swath, pols[0]), indices)
    name = safe_name(slc, run, pols, swath, indices)
    out = Path(out_dir)
    dest = out / f"{name}.SAFE"
    if (dest / "manifest.safe").is_file():
        return dest
    with _building(out, name):
        if not (dest / "manifest.safe").is_file():
            _build(metas, by_pol, pols, run, slc, swath, out / f".{name}.SAFE.{os.getpid()}.tmp",
                   dest)
    return dest
