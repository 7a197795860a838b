"""Archive scan, pairing, orbits and `s1 search` on real S1 metadata (no network)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import shapely

from m3leo_tiles.errors import BadInput
from m3leo_tiles.s1.archive import esa_burst_id, read_product, scan_archive
from m3leo_tiles.s1.orbits import find_orbit, parse_eof, read_header
from m3leo_tiles.s1.pairing import form_pairs, tiles_for_pair
from m3leo_tiles.s1.products import S1Pair
from tests.conftest import S1DATA

SLC = S1DATA / "hyp3-isce2/tests/data/packaging/slc"
REF = "S1A_IW_SLC__1SDV_20250406T022008_20250406T022035_058630_07421F_93A7"
SEC = "S1A_IW_SLC__1SDV_20250418T022008_20250418T022035_058805_074946_C7D4"
ORBITS = S1DATA / "s1-reader/tests/data/orbits"
RAIDER_EOF = S1DATA / "RAiDER/test/orbit_files/S1_orbit_example.EOF"

pytestmark = pytest.mark.skipif(not SLC.is_dir(), reason="shared s1data not present")


def _zip_safe(safe: Path, dest: Path) -> Path:
    """A SAFE folder zipped the way ASF serves it: NAME.SAFE/... inside NAME.zip."""
    z = dest / (safe.name.removesuffix(".SAFE") + ".zip")
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(safe.rglob("*")):
            if f.is_file():
                zf.write(f, f"{safe.name}/{f.relative_to(safe)}")
    return z


@pytest.fixture(scope="module")
def zipped(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("archive")
    for name in (REF, SEC):
        _zip_safe(SLC / f"{name}.SAFE", d)
    (d / "S1A_IW_SLC__1SDV_20250430T022008_20250430T022035_058980_000000_BAD0.zip").write_bytes(
        b"PK\x03\x04 truncated by a broken transfer")
    (d / "notes.txt").write_text("not a product")
    return d


def test_scan_real_safe_folders():
    prods = scan_archive(SLC)
    assert [p.name for p in prods] == [REF, SEC]
    a, b = prods
    assert (a.platform, a.relative_orbit, a.absolute_orbit, a.pass_direction) == \
        ("S1A", 108, 58630, "ASCENDING")
    assert b.absolute_orbit == 58805
    assert a.polarisations == ("VV", "VH")
    assert a.start == dt.datetime(2025, 4, 6, 2, 20, 8, 592193)
    assert a.stop == dt.datetime(2025, 4, 6, 2, 20, 35, 567258)
    # manifest footprint (lat,lon in the file -> lon/lat here)
    assert a.footprint.bounds == pytest.approx((-130.122009, 51.039009, -125.93853, 53.054619))
    # 9 bursts in each of 3 swaths; ESA ids as in the annotation's <burstId>
    assert len(a.burst_ids) == 27 and a.burst_ids == b.burst_ids
    assert "108_230132_IW2" in a.burst_ids and "108_230131_IW3" in a.burst_ids
    assert a.path == str(SLC / f"{REF}.SAFE")
    assert prods.skipped == []


def test_burst_ids_computed_the_esa_way_match_annotation(tmp_path):
    """Strip <burstId> from a copy: ids from azimuth time since ANX equal ESA's."""
    safe = tmp_path / f"{REF}.SAFE"
    shutil.copytree(SLC / f"{REF}.SAFE", safe, ignore=shutil.ignore_patterns("measurement"))
    for f in (safe / "annotation").glob("*.xml"):
        f.write_text(re.sub(r"<burstId[^>]*>\d+</burstId>", "", f.read_text()))
    computed = read_product(safe)
    assert "burstId" not in next((safe / "annotation").glob("*.xml")).read_text()
    assert computed.burst_ids == scan_archive(SLC)[0].burst_ids
    # the formula itself, on IW2's first burst (centre time from the annotation)
    anx = dt.datetime(2025, 4, 6, 2, 6, 13, 325994)
    assert esa_burst_id(108, dt.datetime(2025, 4, 6, 2, 20, 11, 770000), anx) == 230132


def test_scan_zips_and_skip_corrupt(zipped, caplog):
    prods = scan_archive(zipped)
    assert [p.name for p in prods] == [REF, SEC]
    assert prods[0].path.endswith(f"{REF}.zip")
    assert prods[0].burst_ids == scan_archive(SLC)[0].burst_ids
    assert len(prods.skipped) == 1 and "BAD0.zip" in prods.skipped[0][0]
    assert "BadZipFile" in prods.skipped[0][1]
    assert any("skipping" in r.message for r in caplog.records)


def test_scan_missing_dir_is_bad_input(tmp_path):
    with pytest.raises(BadInput):
        scan_archive(tmp_path / "nope")


# --- pairing -------------------------------------------------------------------------------
def _series(days: list[int], base=None, **kw):
    """Copies of the real product at other dates (same track, same bursts)."""
    base = base or scan_archive(SLC)[0]
    out = []
    for d in days:
        t = base.start + dt.timedelta(days=d)
        out.append(dataclasses.replace(base, name=f"{base.name}_{d:03d}", start=t,
                                       stop=base.stop + dt.timedelta(days=d), **kw))
    return out


def test_real_pair_sequential():
    pairs = form_pairs(scan_archive(SLC), "sequential")
    assert len(pairs) == 1
    assert pairs[0].label == "20250406_20250418" and pairs[0].dt_days == 12


def test_sequential_nearest_repeat_and_max_dt():
    prods = _series([0, 12, 18, 30, 54])  # 6-day gap once, one 24-day gap
    pairs = form_pairs(prods, "sequential")
    assert [p.dt_days for p in pairs] == [12, 6, 12]  # no 24-day pair: not a nearest repeat
    assert [p.dt_days for p in form_pairs(prods, "sequential", max_dt=24)] == [12, 6, 12, 24]
    assert [p.dt_days for p in form_pairs(prods, "sequential", max_dt=6)] == [6]


def test_seasonal_gssic_baselines_and_mid_date():
    prods = _series(list(range(0, 61, 6)))  # every 6 days from 2025-04-06 to 2025-06-05
    pairs = form_pairs(prods, "seasonal")
    assert {p.dt_days for p in pairs} == {6, 12, 18, 24, 36, 48}  # never 30, 42, 54, 60
    mam = form_pairs(prods, "seasonal", season_window="MAM")
    for p in mam:
        mid = p.reference.date + dt.timedelta(days=p.dt_days / 2)
        assert mid.month in (3, 4, 5)
    assert 0 < len(mam) < len(pairs)
    window = form_pairs(prods, "seasonal", season_window=(dt.date(2025, 5, 1), dt.date(2025, 5, 15)))
    assert window and all(dt.date(2025, 5, 1) <= p.reference.date +
                          dt.timedelta(days=p.dt_days // 2) < dt.date(2025, 5, 16) for p in window)
    assert max(p.dt_days for p in form_pairs(prods, "seasonal", max_dt=18)) == 18


def test_pairs_need_same_track_pass_and_bursts():
    a = scan_archive(SLC)[0]
    other_track = _series([12], a, relative_orbit=35)
    other_bursts = _series([12], a, burst_ids=("108_999999_IW1",))
    other_pass = _series([12], a, pass_direction="DESCENDING")
    assert form_pairs([a, *other_track, *other_bursts, *other_pass], "sequential") == []
    partial = _series([12], a, burst_ids=a.burst_ids[:5])  # frames that share some bursts
    assert len(form_pairs([a, *partial], "sequential")) == 1


def test_unknown_policy_is_bad_input():
    with pytest.raises(BadInput, match="unknown pair policy"):
        form_pairs([], "nearest")
    with pytest.raises(BadInput):
        form_pairs([], "sequential", max_dt=0)


def test_tiles_for_pair_full_cover_only():
    from m3leo_tiles.grid.build import build_grid
    from m3leo_tiles.grid.tileref import grid_table_to_refs

    a, b = scan_archive(SLC)
    box = shapely.box(-126.3, 51.3, -125.7, 51.7)  # straddles the frame's eastern edge
    refs = grid_table_to_refs(build_grid(box))
    covered = tiles_for_pair(S1Pair(a, b), refs)
    both = a.footprint.intersection(b.footprint)
    assert covered and len(covered) < len(refs)
    by_id = {r.id: r for r in refs}
    assert all(both.covers(by_id[t].polygon) for t in covered)
    assert all(not both.covers(r.polygon) for r in refs if r.id not in covered)


# --- orbits --------------------------------------------------------------------------------
def test_parse_real_resorb():
    f = ORBITS / "S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF"
    sv = parse_eof(f)
    h = sv.header
    assert (h.mission, h.kind) == ("S1A", "AUX_RESORB")
    assert h.start == dt.datetime(2023, 8, 23, 12, 31, 39)
    assert len(sv.times) == 1186 and np.all(np.diff(sv.times) > np.timedelta64(0))
    r = np.linalg.norm(sv.position, axis=1)
    v = np.linalg.norm(sv.velocity, axis=1)
    assert np.all((r > 7.0e6) & (r < 7.1e6))  # ~700 km above the Earth
    assert np.all((v > 7.4e3) & (v < 7.7e3))
    assert sv.absolute_orbit[0] == 50002


def test_parse_real_poeorb():
    sv = parse_eof(RAIDER_EOF)  # named S1_orbit_example.EOF: kind and mission from the header
    assert (sv.header.kind, sv.header.mission) == ("AUX_POEORB", "S1A")
    assert len(sv.times) == 8 and sv.position[0, 0] == pytest.approx(-2064965.285362)
    # vectors every 10 s from 23:00:02 to 23:01:12; window keeps those within 60 s
    t = dt.datetime(2018, 11, 12, 23, 0, 40)
    assert sv.window(t, t).times.size == 8
    assert sv.window(t + dt.timedelta(seconds=40), t + dt.timedelta(seconds=40)).times.size == 6


def test_find_orbit_prefers_poeorb_then_newest_resorb(tmp_path):
    a = scan_archive(SLC)[0]
    p = dataclasses.replace(a, start=dt.datetime(2023, 8, 23, 14, 30), stop=dt.datetime(2023, 8, 23, 14, 31))
    for f in ORBITS.glob("*.EOF"):
        shutil.copy(f, tmp_path)
    h = find_orbit(p, tmp_path)
    assert h.kind == "AUX_RESORB" and "20230823T174849" in h.path  # both cover: newest wins
    late = dataclasses.replace(p, start=dt.datetime(2023, 8, 23, 17, 0), stop=dt.datetime(2023, 8, 23, 17, 1))
    assert "20230823T174849" in find_orbit(late, tmp_path).path
    # a POEORB covering the same time wins over RESORB
    text = (tmp_path / "S1A_OPER_AUX_RESORB_OPOD_20230823T162050_V20230823T123139_20230823T154909.EOF").read_text()
    poe = text.replace("AUX_RESORB", "AUX_POEORB").replace("Restituted", "Precise")
    (tmp_path / "S1A_OPER_AUX_POEORB_OPOD_20230912T080000_V20230823T123139_20230823T154909.EOF").write_text(poe)
    assert read_header(tmp_path / "S1A_OPER_AUX_POEORB_OPOD_20230912T080000_V20230823T123139_20230823T154909.EOF").kind == "AUX_POEORB"
    assert find_orbit(p, tmp_path).kind == "AUX_POEORB"
    assert find_orbit(dataclasses.replace(p, platform="S1B"), tmp_path) is None
    assert find_orbit(a, tmp_path) is None  # 2025: nothing covers it


# --- CLI -----------------------------------------------------------------------------------
def _main(argv: list[str], capsys) -> tuple[int, str]:
    """The real entry point (exit codes and one-line errors), in process."""
    from m3leo_tiles.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    cap = capsys.readouterr()
    return e.value.code, cap.out + cap.err


def test_cli_search_archive(zipped, track108_aoi, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "pairs.parquet"
    code, text = _main(["s1", "search", "--aoi", str(track108_aoi), "--period",
                        "2025-04-01/2025-04-30", "--pairs", "sequential",
                        "--archive", str(zipped), "--out", str(out)], capsys)
    assert code == 0, text
    assert "1 pair(s)" in text and "108A" in text and "BAD0.zip" in text
    df = pd.read_parquet(out)
    assert list(df.label) == ["20250406_20250418"]
    row = df.iloc[0]
    assert row.reference == REF and row.secondary == SEC and row.n_tiles == len(row.tiles) > 0
    assert len(row.bursts) == 27 and row.reference_path.endswith(".zip")


@pytest.mark.parametrize("args, msg", [
    (["--pairs", "nearest"], "unknown pair policy"),
    (["--period", "2025-05-01/2025-04-01"], "ends before it starts"),
    (["--max-dt", "0"], "max-dt"),
    (["--no-aoi"], "--region or --aoi"),
])
def test_cli_bad_input(args, msg, track108_aoi, zipped, tmp_path, capsys):
    out = tmp_path / "pairs.parquet"
    base = ["s1", "search", "--archive", str(zipped), "--out", str(out)]
    if args == ["--no-aoi"]:
        args = []
    else:
        base += ["--aoi", str(track108_aoi)]
    code, text = _main(base + args, capsys)
    assert code == 2
    assert msg in text and len(text.strip().splitlines()) == 1, text
    assert not out.exists() and not list(tmp_path.glob(".pairs*"))


def test_asf_source_seasonal_pairs_by_mid_date(tmp_path):
    """Archive mode: seasonal pairs belong to the period holding their mid-date."""
    from m3leo_tiles.grid.build import build_grid
    from m3leo_tiles.grid.tileref import grid_table_to_refs
    from m3leo_tiles.modalities import get_modality
    from m3leo_tiles.periods import Period
    from m3leo_tiles.sources.asf import AsfSource

    for name in (REF, SEC):  # the real pair plus a copy 24 days on (same bursts)
        shutil.copytree(SLC / f"{name}.SAFE", tmp_path / f"{name}.SAFE",
                        ignore=shutil.ignore_patterns("measurement", "preview", "support"))
    late = SEC.replace("20250418", "20250512")
    shutil.copytree(tmp_path / f"{SEC}.SAFE", tmp_path / f"{late}.SAFE")
    man = tmp_path / f"{late}.SAFE" / "manifest.safe"
    man.write_text(man.read_text().replace("2025-04-18T", "2025-05-12T"))
    tiles = grid_table_to_refs(build_grid(shapely.box(-128.2, 52.0, -128.1, 52.05)))
    mod = get_modality("s1coh")
    april = [Period(dt.date(2025, 4, 1), dt.date(2025, 5, 1), "2025-04", "monthly")]
    seq = AsfSource(archive=str(tmp_path), pairs="sequential")
    assert [p.label for p in seq.periods(mod, april, tiles)] == ["20250406_20250418"]
    sea = AsfSource(archive=str(tmp_path), pairs="seasonal")
    labels = [p.label for p in sea.periods(mod, april, tiles)]
    # 0406-0512 (36 d, mid 04-24) and 0418-0512 (24 d, mid 04-30) reach into May
    assert labels == ["20250406_20250418", "20250406_20250512", "20250418_20250512"]
