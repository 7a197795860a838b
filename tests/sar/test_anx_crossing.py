"""Products spanning the ascending-node crossing (two absolute orbit numbers) are read.

An ascending product over the equator starts in orbit N (relative R) and stops in N + 1
(R + 1); its manifest lists both, which xarray-sentinel's parser refuses. The case is built
from a real ascending manifest (tests/data/s1, from sarsen's test data) with its stop orbit
numbers moved on by one, exactly the two lines such a product differs in.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from m3leo_tiles.errors import SafeError
from m3leo_tiles.sar.safe import parse_manifest, product_attrs

DATA = Path(__file__).resolve().parents[1] / "data" / "s1"
NAME = "S1A_IW_SLC__1SDV_20220104T170557_20220104T170624_041314_04E951_F1F1"


def _crossing(xml: bytes) -> bytes:
    """The manifest of the same product had it run past the ascending node."""
    out, n = re.subn(rb'(<safe:orbitNumber type="stop">)41314<', rb"\g<1>41315<", xml)
    out, m = re.subn(rb'(<safe:relativeOrbitNumber type="stop">)117<', rb"\g<1>118<", out)
    assert n == 1 and m == 1
    return out


def test_manifest_across_the_ascending_node_is_read(tmp_path):
    xml = (DATA / f"{NAME}.manifest.safe").read_bytes()
    plain, files = parse_manifest(xml)
    assert (plain["orbit_number"], plain["orbit_number_stop"]) == (41314, 41314)
    assert (plain["relative_orbit_number"], plain["relative_orbit_number_stop"]) == (117, 117)
    crossing, files2 = parse_manifest(_crossing(xml))
    # the start orbit names the product and its track; the stop numbers are kept
    assert crossing["orbit_number"] == 41314 and crossing["relative_orbit_number"] == 117
    assert crossing["orbit_number_stop"] == 41315
    assert crossing["relative_orbit_number_stop"] == 118
    assert crossing["pass"] == "ASCENDING" and files2 == files
    # through the product reader as the archive scanner uses it
    safe = tmp_path / f"{NAME}.SAFE"
    safe.mkdir()
    (safe / "manifest.safe").write_bytes(_crossing(xml))
    attrs = product_attrs(safe)
    assert attrs["orbit_number"] == 41314 and attrs["relative_orbit_number"] == 117


def test_other_manifest_errors_stay_clear(tmp_path):
    xml = (DATA / f"{NAME}.manifest.safe").read_bytes()
    safe = tmp_path / f"{NAME}.SAFE"
    safe.mkdir()
    (safe / "manifest.safe").write_bytes(xml.replace(b"<s1:pass>ASCENDING", b"<s1:pass>SIDEWAYS"))
    with pytest.raises(SafeError, match="unreadable manifest: ValueError: pass=SIDEWAYS"):
        product_attrs(safe)


def test_crossing_product_processes(s1data, tmp_path):
    """The whole real product (annotation, calibration, measurement) with that manifest opens
    and geolocates as the unmodified one does."""
    from m3leo_tiles.sar.geocode import gcp_residuals
    from m3leo_tiles.sar.product import open_product

    src = s1data / "sarsen/tests/data" / f"{NAME}.SAFE"
    safe = tmp_path / src.name
    shutil.copytree(src, safe)
    man = safe / "manifest.safe"
    man.chmod(0o644)
    man.write_bytes(_crossing(man.read_bytes()))
    prod = open_product(str(safe), ["VV"])
    try:
        assert prod.attrs["orbit_number"] == 41314 and prod.attrs["orbit_number_stop"] == 41315
        assert gcp_residuals(prod.geometry[0])["rms_px"] < 0.1
    finally:
        prod.close()
