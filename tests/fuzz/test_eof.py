"""Mutated Earth Explorer orbit files (EOF) through both readers: the SAR processor's
(`sar.orbit.read_eof`, `find_eof`) and the ASF source's (`read_header`, `parse_eof`,
`find_orbit`). Only our own errors escape, naming the file in one line; what parses is a
usable orbit; a directory scan skips a bad file instead of failing."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely

from m3leo_tiles.s1.orbits import find_orbit, parse_eof, read_header
from m3leo_tiles.s1.products import S1Product
from m3leo_tiles.sar.orbit import find_eof, read_eof
from tests.conftest import S1DATA
from tests.fuzz import seeds
from tests.fuzz.mutate import mutated_xml, run_fuzz
from tests.fuzz.test_safe import DEPTHS, clean_error

#: a parser that hangs fails its test instead of the whole run
pytestmark = pytest.mark.timeout(240)
EOF_TAGS = ("File_Type", "Mission", "Validity_Start", "Validity_Stop", "Creation_Date",
            "Ref_Frame", "List_of_OSVs", "OSV", "UTC", "X", "Y", "Z", "VX", "VY", "VZ",
            "Absolute_Orbit", "File_Name")
REAL_EOF = S1DATA / "s1-reader/tests/data/orbits" / \
    "S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF"
PRODUCT = S1Product("S1A_IW_SLC__1SDV_20250406T022008_20250406T022035_058630_07421F_93A7",
                    "S1A", dt.datetime(2025, 4, 6, 2, 20, 8), dt.datetime(2025, 4, 6, 2, 20, 35),
                    108, 58630, "ASCENDING", ("VV", "VH"), shapely.Point(0, 0))


def _short_real() -> bytes:
    """The real RESORB cut to its first 40 state vectors (its header and layout kept)."""
    root = ET.parse(REAL_EOF).getroot()
    lst = root.find(".//List_of_OSVs")
    for osv in list(lst)[40:]:
        lst.remove(osv)
    lst.set("count", "40")
    return seeds.XML_HEAD + ET.tostring(root)


def test_seed_eofs_read():
    o = read_eof_bytes(seeds.eof_bytes(), seeds.EOF_NAME)
    assert len(o.t) == 30 and np.allclose(np.diff(o.t), 10)


def read_eof_bytes(data: bytes, name: str, tmp: Path | None = None):
    import tempfile

    d = Path(tmp or tempfile.mkdtemp())
    (d / name).write_bytes(data)
    return read_eof(d / name)


def _check_all(path: Path, seen: Counter) -> None:
    name = path.name
    for fn in (read_eof, read_header, parse_eof):
        try:
            out = fn(path)
            seen["ok"] += 1
        except Exception as e:  # noqa: BLE001 - the property under test
            clean_error(e, (name,))
            seen["error"] += 1
            continue
        if fn is read_eof:
            assert np.isfinite(out.t).all() and np.isfinite(out.pos).all()
            assert np.all(np.diff(out.t) > 0) and len(out.t) >= 4
        elif fn is parse_eof:
            assert np.isfinite(out.position).all() and np.isfinite(out.velocity).all()
    # scanning a directory never fails on a bad file: it is skipped
    find_orbit(PRODUCT, path.parent)
    find_eof(path.parent, "S1A", np.datetime64("2025-04-06T02:20:00"),
             np.datetime64("2025-04-06T02:21:00"))


@pytest.mark.parametrize("seed", ["generated", "real"])
@pytest.mark.parametrize("deep", DEPTHS)
def test_fuzzed_eof(tmp_path, seed, deep):
    if seed == "real":
        if not REAL_EOF.is_file():
            pytest.skip("../shared/s1data is absent")
        data, name = _short_real(), REAL_EOF.name
    else:
        data, name = seeds.eof_bytes(), seeds.EOF_NAME
    path = tmp_path / name
    seen = Counter()

    def check(blob: bytes) -> None:
        path.write_bytes(blob)
        _check_all(path, seen)

    run_fuzz(mutated_xml(data, EOF_TAGS), check, 40, deep)
    assert seen["ok"] and seen["error"], seen
