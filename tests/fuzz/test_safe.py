"""Mutated SAFE products (manifest, annotation, calibration, noise XML; damaged zips) through
the metadata readers: only our own errors escape, naming the product, in one line; what
parses has a usable geometry and in-range calibration LUT indices."""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

from m3leo_tiles.errors import M3leoError
from m3leo_tiles.s1.archive import read_product, scan_archive
from m3leo_tiles.sar import safe
from m3leo_tiles.sar.calibrate import lut_parts
from tests.fuzz import seeds
from tests.fuzz.mutate import byte_damage, mutated_xml, run_fuzz
from tests.fuzz.seeds import REF_NAME

#: a parser that hangs fails its test instead of the whole run
pytestmark = pytest.mark.timeout(240)
DEPTHS = [pytest.param(False, id="fast"),
          pytest.param(True, id="deep", marks=[pytest.mark.slow, pytest.mark.timeout(1800)])]
#: what the readers use from each file, where most mutations are aimed
MANIFEST_TAGS = ("dataObject", "fileLocation", "byteStream", "productType", "mode", "number",
                 "familyName", "pass", "relativeOrbitNumber", "orbitNumber", "startTime",
                 "stopTime", "coordinates", "transmitterReceiverPolarisation", "swath",
                 "ascendingNodeTime", "instrumentMode", "metadataObject", "xmlData")
ANNOTATION_TAGS = ("productInformation", "radarFrequency", "rangeSamplingRate", "projection",
                   "azimuthSteeringRate", "imageInformation", "numberOfSamples",
                   "numberOfLines", "azimuthTimeInterval", "slantRangeTime",
                   "incidenceAngleMidSwath", "swathTiming", "linesPerBurst", "burstList",
                   "burst", "azimuthTime", "firstValidSample", "lastValidSample", "burstId",
                   "orbitList", "orbit", "time", "position", "velocity", "x", "y", "z",
                   "azimuthFmRateList", "azimuthFmRatePolynomial", "t0", "dcEstimateList",
                   "dataDcPolynomial", "samplesPerBurst")
LUT_TAGS = ("calibrationVectorList", "calibrationVector", "noiseRangeVectorList",
            "noiseRangeVector", "noiseAzimuthVectorList", "noiseAzimuthVector", "line", "pixel",
            "sigmaNought", "betaNought", "gamma", "dn", "noiseRangeLut", "noiseAzimuthLut",
            "firstAzimuthLine", "lastAzimuthLine", "firstRangeSample", "lastRangeSample",
            "azimuthTime")


@pytest.fixture(scope="module")
def parts() -> dict[str, bytes]:
    return seeds.safe_parts()


@pytest.fixture(scope="module")
def product(parts, tmp_path_factory) -> Path:
    return seeds.write_safe(parts, tmp_path_factory.mktemp("safe"))


def _rel(parts: dict[str, bytes], start: str, pol: str = "vv") -> str:
    return next(k for k in parts if k.startswith(start) and f"-{pol}-" in k)


def clean_error(e: BaseException, names: tuple[str, ...]) -> str:
    """Our own error, one line, naming the file or product it is about."""
    assert isinstance(e, M3leoError), f"{type(e).__name__} escaped: {repr(e)[:300]}"
    msg = str(e)
    assert msg and "\n" not in msg, f"not one line: {msg[:300]!r}"
    assert any(n in msg for n in names), f"does not name the input: {msg!r}"
    return msg


class Swapped:
    """One file of the seed product replaced for the duration of a check."""

    def __init__(self, product: Path, rel: str, data: bytes, geometry: bool = True):
        self.path, self.data, self.geometry = product / rel, data, geometry

    def __enter__(self):
        self.orig = self.path.read_bytes() if self.path.exists() else None
        self.path.write_bytes(self.data)
        if self.geometry:  # the cached swath geometry comes from the annotation
            safe._CACHE.clear()

    def __exit__(self, *exc):
        if self.orig is None:
            self.path.unlink()
        else:
            self.path.write_bytes(self.orig)
        if self.geometry:
            safe._CACHE.clear()


def usable(sw: safe.Swath) -> None:
    """What downstream arithmetic needs from a swath that opened."""
    for v in (sw.dt, sw.fs, sw.tau0, sw.wavelength):
        assert np.isfinite(v) and v > 0, (sw.dt, sw.fs, sw.tau0, sw.wavelength)
    assert sw.n_lines > 0 and sw.n_samples > 0 and sw.lines_per_burst > 0 and sw.bursts
    assert np.isfinite(sw.orbit.t).all() and np.isfinite(sw.orbit.pos).all()
    assert all(np.isfinite(b.t0) for b in sw.bursts)


def test_seed_product_reads(product):
    """The unmutated seed is a valid product: the fuzzers start from something real."""
    sw = safe.open_swath(product, "IW2", "VV")
    usable(sw)
    assert (sw.n_lines, sw.n_samples, len(sw.bursts)) == (13617, 26395, 3)
    assert safe.list_swaths(product) == [("IW2", "VH"), ("IW2", "VV")]
    assert read_product(product).burst_ids[0] == "108_230132_IW2"
    parts = lut_parts(sw, np.arange(0, 1500, 100), np.arange(0, 20000, 1000))
    assert np.isfinite(parts[0]).all() and parts[0].min() > 0


@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_manifest(parts, product, deep):
    seen = Counter()

    def check(data: bytes) -> None:
        with Swapped(product, "manifest.safe", data):
            for fn in (safe.product_attrs, safe.list_swaths, read_product):
                try:
                    fn(product)
                    seen["ok"] += 1
                except Exception as e:  # noqa: BLE001 - the property under test
                    clean_error(e, (REF_NAME, "manifest"))
                    seen["error"] += 1

    run_fuzz(mutated_xml(parts["manifest.safe"], MANIFEST_TAGS), check, 25, deep)
    assert seen["ok"] and seen["error"], seen


@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_annotation(parts, product, deep):
    rel = _rel(parts, "annotation/s1a")
    seen = Counter()

    def check(data: bytes) -> None:
        with Swapped(product, rel, data):
            # the checks of what parsed stand outside the `except`: a failed one is reported
            # as itself, not as an exception that "escaped"
            try:
                sw = safe.open_swath(product, "IW2", "VV")
            except Exception as e:  # noqa: BLE001
                clean_error(e, (REF_NAME, "annotation"))
                seen["error"] += 1
            else:
                usable(sw)
                seen["ok"] += 1
            try:
                p = read_product(product)
            except Exception as e:  # noqa: BLE001
                clean_error(e, (REF_NAME,))
            else:
                # a product that reads lists its bursts, every one on the swath it came from
                assert p.burst_ids, "a product read with no burst ids"
                assert all(b.endswith("_IW2") for b in p.burst_ids), p.burst_ids

    run_fuzz(mutated_xml(parts[rel], ANNOTATION_TAGS), check, 15, deep)
    assert seen["ok"] and seen["error"], seen


@pytest.mark.parametrize("kind", ["calibration", "noise"])
@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_calibration_and_noise(parts, product, kind, deep):
    rel = _rel(parts, f"annotation/calibration/{kind}-")
    sw = safe.open_swath(product, "IW2", "VV")
    lines, pixels = np.arange(0, 13617, 97), np.arange(0, 26395, 131)
    seen = Counter()

    def check(data: bytes) -> None:
        with Swapped(product, rel, data, geometry=False):
            s = safe.open_swath(product, "IW2", "VV")
            try:
                cr, ci, cw, rr, ri, rw, az = lut_parts(s, lines, pixels)
                seen["ok"] += 1
            except Exception as e:  # noqa: BLE001
                clean_error(e, (REF_NAME, kind))
                seen["error"] += 1
                return
            # indices a compiled kernel will use without bounds checks
            for rows, i0, w in ((cr, ci, cw), (rr, ri, rw)):
                assert ((i0 >= 0) & (i0 <= len(rows) - 2)).all()
                assert ((w >= 0) & (w <= 1)).all()

    assert sw.calibration is not None
    run_fuzz(mutated_xml(parts[rel], LUT_TAGS), check, 25, deep)
    assert seen["ok"] and seen["error"], seen


@pytest.fixture(scope="module")
def zipped(parts) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for rel, data in parts.items():
            z.writestr(f"{REF_NAME}.SAFE/{rel}", data)
    return buf.getvalue()


@pytest.mark.parametrize("deep", DEPTHS)
def test_damaged_zip(zipped, tmp_path, deep):
    path = tmp_path / f"{REF_NAME}.zip"
    seen = Counter()

    def check(data: bytes) -> None:
        path.write_bytes(data)
        safe._CACHE.clear()
        for fn in (lambda p: safe.open_swath(p, "IW2", "VV"), read_product):
            try:
                fn(path)
                seen["ok"] += 1
            except Exception as e:  # noqa: BLE001
                clean_error(e, (REF_NAME,))
                seen["error"] += 1
        found = scan_archive(tmp_path)  # never raises: what it cannot read it lists
        assert len(found) + len(found.skipped) == 1

    run_fuzz(byte_damage(zipped).filter(lambda b: b != zipped) | st.just(zipped[:100]),
             check, 15, deep)
    assert seen["ok"] and seen["error"], seen
