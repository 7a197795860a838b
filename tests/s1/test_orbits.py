"""Orbit files: one selection rule (ASF source and processor), fetched through the real
s1-orbits client from a loopback service speaking its wire format, warnings otherwise."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import warnings

import numpy as np
import pytest

from m3leo_tiles.s1.orbits import (
    MARGIN,
    OrbitWarning,
    fetch_orbit,
    find_orbit,
    parse_eof,
    read_header,
    scene_name,
)
from tests.s1.orbit_server import FakeOrbits
from tests.sources.test_asf_archive import ORBITS, SLC

pytestmark = pytest.mark.skipif(not ORBITS.is_dir(), reason="shared s1data not present")

RES_A = "S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF"
RES_B = "S1A_OPER_AUX_RESORB_OPOD_20230823T174849_V20230823T141024_20230823T172754.EOF"
POE = "S1A_OPER_AUX_POEORB_OPOD_20230912T080000_V20230823T123139_20230823T154909.EOF"


def _poe_text() -> bytes:
    """A precise file with the real vectors of RES_A (POEORB differs by centimetres)."""
    text = (ORBITS / RES_A).read_text()
    return (text.replace("AUX_RESORB", "AUX_POEORB").replace("Restituted", "Precise")
            .replace("UTC=2023-08-23T16:20:50", "UTC=2023-09-12T08:00:00")).encode()


@pytest.fixture(scope="module")
def product():
    from m3leo_tiles.s1.archive import scan_archive

    a = scan_archive(SLC)[0]
    return dataclasses.replace(a, start=dt.datetime(2023, 8, 23, 14, 30, 0),
                               stop=dt.datetime(2023, 8, 23, 14, 30, 27))


def _fake(*names: str) -> FakeOrbits:
    fake = FakeOrbits()
    for n in names:
        fake.put(n, _poe_text() if n == POE else (ORBITS / n).read_bytes())
    return fake


def _utc64(t: dt.datetime) -> np.datetime64:
    return np.datetime64(t, "ns")


def test_fetch_precise_through_s1_orbits(product, tmp_path):
    from m3leo_tiles.sar.orbit import find_eof

    d = tmp_path / "orbits"
    with _fake(RES_A, RES_B, POE) as fake:
        h = fetch_orbit(product, d, url=fake.url)
        assert h is not None and h.kind == "AUX_POEORB" and h.path == str(d / POE)
        assert (d / POE).read_bytes() == fake.objects[f"AUX_POEORB/{POE}"]
        assert [r.split("?")[0] for r in fake.requests] == [
            f"/scene/{scene_name(product)}", f"/AUX_POEORB/{POE}"]
        assert fetch_orbit(product, d, url=fake.url) == h  # local now: no new request
        assert len(fake.requests) == 2
    assert sorted(p.name for p in d.iterdir()) == [POE]  # no temporary left behind
    sv = parse_eof(d / POE)
    assert sv.window(product.start, product.stop).times.size == 14  # 10 s vectors in 14:29:00..14:31:27
    # the processor's choice (its window padded by 30 s) is the same file
    f = find_eof(d, "S1A", _utc64(product.start - MARGIN), _utc64(product.stop + MARGIN))
    assert str(f) == h.path


def test_restituted_when_no_precise_and_env_url(product, tmp_path, monkeypatch):
    with _fake(RES_A, RES_B) as fake:
        monkeypatch.setenv("M3LEO_S1_ORBITS_URL", fake.url)
        h = fetch_orbit(product, tmp_path)
    assert h.kind == "AUX_RESORB" and h.path.endswith(RES_B)  # newest production wins


def test_service_answer_not_covering_is_discarded(product, tmp_path):
    late = dataclasses.replace(product, start=dt.datetime(2023, 8, 23, 17, 0),
                               stop=dt.datetime(2023, 8, 23, 17, 0, 27))
    with _fake(RES_A) as fake:  # ends 15:49
        fake.wrong = True
        with pytest.warns(OrbitWarning, match="does not cover .* annotation orbit"):
            assert fetch_orbit(late, tmp_path, url=fake.url) is None
    assert not list(tmp_path.glob("*.EOF")) and not list(tmp_path.iterdir())


def test_not_found_busy_and_down_warn(product, tmp_path):
    with _fake() as fake:
        with pytest.warns(OrbitWarning, match="No orbit file could be found"):
            assert fetch_orbit(product, tmp_path / "a", url=fake.url) is None
        fake.fail = 1
        with pytest.warns(OrbitWarning, match="503"):
            assert fetch_orbit(product, tmp_path / "b", url=fake.url) is None
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.warns(OrbitWarning, match="ConnectionError"):
        assert fetch_orbit(product, tmp_path / "c", url=f"http://127.0.0.1:{port}") is None


def test_one_rule_for_source_and_processor(product, tmp_path):
    """POEORB first, newest production next, validity +- MARGIN, by both callers."""
    import shutil

    from m3leo_tiles.sar.orbit import find_eof

    for n in (RES_A, RES_B):
        shutil.copy(ORBITS / n, tmp_path / n)

    def both(p):
        a = find_orbit(p, tmp_path)
        b = find_eof(tmp_path, p.platform, _utc64(p.start - MARGIN), _utc64(p.stop + MARGIN))
        assert (a.path if a else None) == (str(b) if b else None)
        return a

    assert both(product).path.endswith(RES_B)
    (tmp_path / POE).write_bytes(_poe_text())
    assert read_header(tmp_path / POE).created == dt.datetime(2023, 9, 12, 8)
    assert both(product).path.endswith(POE)
    # RES_A ends 15:49:09: a product ending 20 s before is not covered with the margin
    edge = dataclasses.replace(product, start=dt.datetime(2023, 8, 23, 15, 48, 20),
                               stop=dt.datetime(2023, 8, 23, 15, 48, 49))
    assert both(edge).path.endswith(RES_B)
    (tmp_path / RES_B).unlink()
    assert both(edge) is None
    assert both(dataclasses.replace(product, platform="S1B")) is None


def test_unreadable_local_files_are_ignored(product, tmp_path):
    (tmp_path / RES_B).write_text("<Earth_Explorer_File>torn")
    (tmp_path / "S1A_junk.EOF").write_text("nothing")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert find_orbit(product, tmp_path) is not None  # RES_B's name still says it all
