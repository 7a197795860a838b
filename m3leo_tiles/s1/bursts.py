"""ASF burst SLC products made into minimal SAFEs the processor reads unchanged.

ASF's burst extractor serves, per burst, a measurement TIFF (the burst's lines of the swath's
measurement, complex int16) and a metadata XML holding, for every swath of the source SLC and
that polarisation, the full product annotation, calibration, noise and RFI XML (each under
`metadata/<kind>` with `swath`, `polarisation` and `content`) plus the SLC's `manifest.safe`
(`manifest/XFDU`). We assemble one SAFE from bursts of one SLC: per swath a run of
consecutive bursts (the runs of different swaths start at different burst indices), in the
layout of the S1 Product Specification S1-RS-MDA-52-7441 that burst2safe also writes:

- measurement: per swath, its burst TIFFs (one linked, or several stacked);
- annotation: per swath, the SLC's cut to the swath's run (`s1.annotation.cut_annotation`);
- manifest: the SLC's, with times and footprint spanning every run, the swaths present and
  the data objects written.
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

import shapely

from .annotation import BurstError, BurstRun, burst_run, cut_annotation, grid_points, iso_time

XFDU = "urn:ccsds:schema:xfdu:1"
GML = "http://www.opengis.net/gml"
SAFE_NS = "http://www.esa.int/safe/sentinel-1.0"
KINDS = ("product", "calibration", "noise")
REP_IDS = {"product": "s1Level1ProductSchema", "calibration": "s1Level1CalibrationSchema",
           "noise": "s1Level1NoiseSchema", "measurement": "s1Level1MeasurementSchema"}

__all__ = ["BurstError", "BurstFiles", "BurstXml", "assemble_safe", "read_burst_xml"]


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


def _manifest(base: ET.Element, start: dt.datetime, stop: dt.datetime, swaths: set[str],
              pols: list[str], files: list[tuple[str, str, str]], footprint: str,
              root: Path) -> ET.Element:
    """The SLC's manifest with the runs' times, footprint, swaths and data objects."""
    man = copy.deepcopy(base)
    for el in man.iter():
        if el.tag == f"{{{SAFE_NS}}}startTime":
            el.text = iso_time(start)
        elif el.tag == f"{{{SAFE_NS}}}stopTime":
            el.text = iso_time(stop)
        elif el.tag == f"{{{GML}}}coordinates":
            el.text = footprint
    for parent in man.iter():
        for child in list(parent):
            if (child.tag.endswith("}swath") and child.text
                    and child.text.upper() not in swaths):
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


def safe_name(slc: str, start: dt.datetime, stop: dt.datetime, pols: Sequence[str],
              runs: dict[str, list[int]]) -> str:
    """ESA-style name: the SLC's fields with the runs' times and an id of (SLC, swath runs)."""
    parts = slc.split("_")
    if len(parts) < 9 or not parts[0].startswith("S1"):
        raise BurstError(f"{slc!r} is not an S1 SLC name")
    kind = "1S" + ("D" if len(pols) > 1 else "S") + pols[0][0]
    key = "/".join(f"{sw}/{ix[0]}-{ix[-1]}" for sw, ix in sorted(runs.items()))
    crc = binascii.crc_hqx(f"{slc}/{key}".encode(), 0xFFFF)
    return (f"{parts[0]}_IW_SLC__{kind}_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_"
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


def _footprint(corners: list[tuple[float, float]]) -> str:
    """gml:coordinates ('lat,lon' ...) of the hull of every swath's geolocation grid points
    (their rows bend in lon/lat: corners alone would cut the far range off)."""
    hull = shapely.MultiPoint([(lon, lat) for lat, lon in corners]).convex_hull
    ring = list(hull.exterior.coords)[:-1] if hull.geom_type == "Polygon" else []
    if len(ring) < 3:
        raise BurstError("the bursts' geolocation grids span no area")
    return " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in ring)


def _measurement(tiffs: list[Path], dest: Path) -> None:
    if len(tiffs) == 1:
        try:  # the cache's file, shared (no second copy of ~100 MB per burst)
            os.link(tiffs[0], dest)
        except OSError:
            shutil.copyfile(tiffs[0], dest)
    else:
        _stack_tiffs(tiffs, dest)


def _build(metas: dict[str, BurstXml], by: dict[tuple[str, str], list[BurstFiles]],
           pols: list[str], runs: dict[str, BurstRun], slc: str, tmp: Path, dest: Path) -> None:
    """Write the SAFE into `tmp`, then rename it to `dest` (the caller holds the lock)."""
    try:
        (tmp / "annotation" / "calibration").mkdir(parents=True)
        (tmp / "measurement").mkdir()
        files: list[tuple[str, str, str]] = []
        corners: list[tuple[float, float]] = []
        mission = slc[:3].lower()
        for p in pols:
            meta = metas[p]
            for swath, run in sorted(runs.items()):
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
                    if kind == "product" and p == pols[0]:
                        corners += grid_points(cut)
                rel = f"measurement/{stem}.tiff"
                _measurement([b.tiff for b in by[(swath, p)]], tmp / rel)
                files.append((rel, REP_IDS["measurement"], "application/octet-stream"))
        for prefix, uri in metas[pols[0]].namespaces.items():
            if prefix:
                ET.register_namespace(prefix, uri)
        start = min(r.start for r in runs.values())
        stop = max(r.stop for r in runs.values())
        man = _manifest(metas[pols[0]].manifest, start, stop, set(runs), pols, files,
                        _footprint(corners), tmp)
        ET.ElementTree(man).write(tmp / "manifest.safe", encoding="UTF-8", xml_declaration=True)
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _group(bursts: Sequence[BurstFiles]) -> tuple[str, list[str],
                                                   dict[tuple[str, str], list[BurstFiles]]]:
    """(slc, polarisations VV first, {(swath, pol): bursts by index}), checked: one SLC, and
    in each swath the same bursts in every polarisation."""
    slcs = {b.slc for b in bursts}
    if len(slcs) != 1:
        raise BurstError(f"bursts of one SLC only, got {sorted(slcs)}")
    pols = sorted({b.polarisation.upper() for b in bursts}, key=lambda p: (p != "VV", p))
    by: dict[tuple[str, str], list[BurstFiles]] = {}
    for b in sorted(bursts, key=lambda b: b.index):
        by.setdefault((b.swath.upper(), b.polarisation.upper()), []).append(b)
    for swath in sorted({sw for sw, _ in by}):
        want = [b.index for b in by.get((swath, pols[0]), [])]
        for p in pols:
            have = [b.index for b in by.get((swath, p), [])]
            if have != want:
                raise BurstError(f"{swath}: {p} has bursts {have}, {pols[0]} has {want}")
    return slcs.pop(), pols, by


def assemble_safe(bursts: Sequence[BurstFiles], out_dir: str | Path) -> Path:
    """A SAFE folder in `out_dir` for bursts of one SLC: in each swath a run of consecutive
    bursts (any swaths, any polarisations, the same bursts in each polarisation).

    Idempotent (an existing SAFE of the same name is returned) and atomic (built in a hidden
    folder, then renamed), so workers sharing `out_dir` never see half a SAFE.
    """
    if not bursts:
        raise BurstError("no bursts to assemble")
    slc, pols, by = _group(bursts)
    metas = {p: read_burst_xml(next(b for (_, q), bs in by.items() if q == p for b in bs).xml)
             for p in pols}
    indices = {sw: [b.index for b in bs] for (sw, p), bs in by.items() if p == pols[0]}
    runs = {sw: burst_run(metas[pols[0]].part("product", sw, pols[0]), ix, f"{slc} {sw}: ")
            for sw, ix in indices.items()}
    name = safe_name(slc, min(r.start for r in runs.values()),
                     max(r.stop for r in runs.values()), pols, indices)
    out = Path(out_dir)
    dest = out / f"{name}.SAFE"
    if (dest / "manifest.safe").is_file():
        return dest
    with _building(out, name):
        if not (dest / "manifest.safe").is_file():
            _build(metas, by, pols, runs, slc, out / f".{name}.SAFE.{os.getpid()}.tmp", dest)
    return dest
