"""The one archive scanner (subfolders) and `s1 search --archive` defaults (issue 16 item 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from m3leo_tiles.s1 import BurstId
from m3leo_tiles.s1.archive import product_paths, scan_archive
from tests.sources.test_asf_archive import REF, SEC, SLC, _main, _zip_safe

pytestmark = pytest.mark.skipif(not SLC.is_dir(), reason="shared s1data not present")


@pytest.fixture
def nested(tmp_path) -> Path:
    """REF zipped two levels down, SEC as a SAFE folder one level down, junk around them."""
    root = tmp_path / "archive"
    (root / "2025" / "04").mkdir(parents=True)
    (root / "s1").mkdir()
    _zip_safe(SLC / f"{REF}.SAFE", root / "2025" / "04")
    shutil.copytree(SLC / f"{SEC}.SAFE", root / "s1" / f"{SEC}.SAFE",
                    ignore=shutil.ignore_patterns("measurement", "preview", "support"))
    (root / ".cache").mkdir()
    _zip_safe(SLC / f"{REF}.SAFE", root / ".cache")  # hidden: a download cache, not scanned
    (root / "s1" / "notes.txt").write_text("not a product")
    return root


def test_scan_descends_subfolders_not_into_safes(nested):
    paths = product_paths(nested)
    assert [p.relative_to(nested).as_posix() for p in paths] == [
        f"2025/04/{REF}.zip", f"s1/{SEC}.SAFE"]
    prods = scan_archive(nested)
    assert [p.name for p in prods] == [REF, SEC] and prods.skipped == []
    assert prods[0].burst_ids == prods[1].burst_ids and len(prods[0].burst_ids) == 27
    assert BurstId.parse("108_230132_IW2") in prods[0].bursts


def test_search_without_period_spans_the_archive(nested, track108_aoi, tmp_path, capsys):
    out = tmp_path / "pairs.parquet"
    code, text = _main(["s1", "search", "--aoi", str(track108_aoi), "--archive", str(nested),
                        "--out", str(out)], capsys)
    assert code == 0, text
    assert "1 pair(s)" in text and "2025-04-06..2025-04-18" in text and "hint" not in text
    df = pd.read_parquet(out)
    assert list(df.label) == ["20250406_20250418"]
    assert df.iloc[0].reference_path.endswith(f"2025/04/{REF}.zip")
    assert df.iloc[0].secondary_path.endswith(f"s1/{SEC}.SAFE")


def test_search_window_excluding_everything_hints(nested, track108_aoi, tmp_path, capsys):
    out = tmp_path / "pairs.parquet"
    code, text = _main(["s1", "search", "--aoi", str(track108_aoi), "--archive", str(nested),
                        "--period", "2024", "--out", str(out)], capsys)
    assert code == 0, text
    assert "0 pair(s)" in text
    hints = [ln for ln in text.splitlines() if ln.startswith("hint:")]
    assert hints == ["hint: the archive's 2 product(s) span 2025-04-06..2025-04-18; none falls "
                     "in 2024-01-01..2024-12-31: widen --period or omit it"]
    assert pd.read_parquet(out).empty


def test_search_aoi_outside_every_product_hints(nested, tmp_path, capsys):
    far = tmp_path / "far.geojson"
    far.write_text('{"type":"Polygon","coordinates":[[[10,10],[10.1,10],[10.1,10.1],[10,10]]]}')
    code, text = _main(["s1", "search", "--aoi", str(far), "--archive", str(nested),
                        "--out", str(tmp_path / "p.parquet")], capsys)
    assert code == 0, text
    assert "hint: 2 product(s) in the window, none intersects the AOI" in text


def test_empty_archive_keeps_the_rolling_default(tmp_path, track108_aoi, capsys):
    (tmp_path / "empty").mkdir()
    code, text = _main(["s1", "search", "--aoi", str(track108_aoi), "--archive", str(tmp_path / "empty"),
                        "--out", str(tmp_path / "p.parquet")], capsys)
    assert code == 0 and "0 pair(s)" in text and "hint" not in text, text


def test_scan_product_spanning_the_ascending_node(tmp_path):
    """A manifest listing two tracks (108 -> 109) and two absolute orbits is read; computed
    burst ids move to track 109 for bursts a full orbit period after the ANX."""
    import datetime as dt
    import re

    from m3leo_tiles.s1.archive import read_product
    from m3leo_tiles.s1.burst_id import T_ORB

    safe = tmp_path / f"{REF}.SAFE"
    shutil.copytree(SLC / f"{REF}.SAFE", safe,
                    ignore=shutil.ignore_patterns("measurement", "preview", "support"))
    for f in (safe / "annotation").glob("*.xml"):
        f.write_text(re.sub(r"<burstId[^>]*>\d+</burstId>", "", f.read_text()))
    anx = dt.datetime(2025, 4, 6, 2, 20, 23) - dt.timedelta(seconds=T_ORB)
    man = safe / "manifest.safe"
    text = man.read_text()
    text = text.replace('<safe:orbitNumber type="stop">58630<', '<safe:orbitNumber type="stop">58631<')
    text = text.replace('<safe:relativeOrbitNumber type="stop">108<',
                        '<safe:relativeOrbitNumber type="stop">109<')
    text = re.sub(r"<s1:ascendingNodeTime>[^<]+<", f"<s1:ascendingNodeTime>{anx.isoformat()}<", text)
    man.write_text(text)
    p = read_product(safe)
    assert (p.relative_orbit, p.absolute_orbit) == (108, 58630)
    tracks = {b.split("_")[0] for b in p.burst_ids}
    assert tracks == {"108", "109"} and len(p.burst_ids) == 27
    early = [b for b in p.bursts if b.relative_orbit == 108]
    late = [b for b in p.bursts if b.relative_orbit == 109]
    assert max(b.number for b in early) < min(b.number for b in late)  # numbers run on
