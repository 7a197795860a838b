"""ASF search with the real asf_search client against a loopback CMR built from real metadata."""

from __future__ import annotations

import datetime as dt

import pytest
import shapely

from m3leo_tiles.errors import BadInput, PermanentError
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.periods import Period
from m3leo_tiles.s1.archive import scan_archive
from m3leo_tiles.s1.search import search_products
from m3leo_tiles.sources.asf import AsfSource
from tests.conftest import S1DATA
from tests.sources.asf_server import FakeAsf, umm_item

SLC = S1DATA / "hyp3-isce2/tests/data/packaging/slc"
pytestmark = pytest.mark.skipif(not SLC.is_dir(), reason="shared s1data not present")
APRIL = (dt.date(2025, 4, 1), dt.date(2025, 5, 1))
AOI = shapely.box(-128.2, 52.0, -127.9, 52.2)


@pytest.fixture(scope="module")
def real():
    return list(scan_archive(SLC))


@pytest.fixture
def cmr(real):
    with FakeAsf() as f:
        for p in real:
            f.items.append(umm_item(p, f.base, size=1234, md5="0" * 32))
            for b in p.burst_ids:
                f.items.append(umm_item(p, f.base, burst=b, size=99))
        yield f


def test_slc_search_with_real_client(cmr, real):
    prods = search_products(AOI, *APRIL, host=cmr.host)
    assert [p.name for p in prods] == [p.name for p in real]
    a = prods[0]
    assert (a.platform, a.relative_orbit, a.absolute_orbit, a.pass_direction) == \
        ("S1A", 108, 58630, "ASCENDING")
    assert a.polarisations == ("VV", "VH") and a.size == 1234 and a.md5 == "0" * 32
    assert a.url == f"{cmr.base}/data/{a.name}.zip"
    assert a.footprint.equals_exact(real[0].footprint, 1e-6)
    assert abs((a.start - real[0].start).total_seconds()) < 1
    form = cmr.forms[0]
    assert "SENTINEL-1A_SLC" in form["shortName"] and "string,BEAM_MODE,IW" in form["attribute[]"]
    assert form["temporal"][0].startswith("2025-04-01T00:00:00Z,2025-05-01T00:00:00Z")


def test_paging_follows_cmr_search_after(cmr, real):
    cmr.page_size = 1
    prods = search_products(AOI, *APRIL, host=cmr.host)
    assert len(prods) == 2
    posts = [h for m, path, h in cmr.requests if m == "POST"]
    assert len(posts) == 2 and posts[1].get("CMR-Search-After") == "1"


def test_burst_search(cmr, real):
    prods = search_products(real[0].footprint, *APRIL, host=cmr.host, burst=True)
    assert cmr.forms[0]["shortName"] == ["SENTINEL-1_BURSTS"]
    assert len(prods) == 2 * 27
    ids = {p.burst_ids[0] for p in prods}
    assert ids == set(real[0].burst_ids)
    assert all(p.polarisations == ("VV",) for p in prods)
    assert all(p.burst_ids[0] in p.extra["burst_footprints"] for p in prods)


def test_window_and_aoi_filter(cmr):
    assert search_products(AOI, dt.date(2025, 4, 10), dt.date(2025, 5, 1), host=cmr.host)[0] \
        .date == dt.date(2025, 4, 18)
    assert search_products(shapely.box(10, 10, 11, 11), *APRIL, host=cmr.host) == []
    with pytest.raises(BadInput):
        search_products(AOI, APRIL[1], APRIL[0], host=cmr.host)


def test_cmr_error_body_is_a_clear_error(cmr):
    cmr.fail_search, cmr.fail_code = 1, 400
    with pytest.raises(PermanentError, match="CMR refused the query"):
        search_products(AOI, *APRIL, host=cmr.host)


def _tiles():
    from m3leo_tiles.grid.build import build_grid
    from m3leo_tiles.grid.tileref import grid_table_to_refs

    return grid_table_to_refs(build_grid(AOI))


def test_asf_source_periods_and_plan(cmr, real):
    src = AsfSource(host=cmr.host, pairs="sequential", burst=False)
    tiles = _tiles()
    mod = get_modality("s1coh")
    req = [Period(APRIL[0], APRIL[1], "2025-04", "monthly")]
    periods = src.periods(mod, req, tiles)
    assert [p.label for p in periods] == ["20250406_20250418"]
    units = src.plan(mod, periods[0], tiles)
    # blocks of <= 8 x 8 neighbouring tiles, every tile in exactly one
    assert all(len(u.tiles) <= 64 for u in units)
    ids = [t for u in units for t in u.tiles]
    assert sorted(ids) == sorted(t.id for t in tiles)  # the AOI lies inside both frames
    for u in units:
        assert u.items == (real[0].name, real[1].name)
        (pw,) = u.payload.pairs
        assert pw.label == "20250406_20250418" and pw.track == "t108A"
        ref = u.payload.products[pw.products[0][0]]
        assert ref.url.endswith(f"{real[0].name}.zip") and ref.md5 == "0" * 32


def test_asf_source_burst_units(cmr, real):
    src = AsfSource(host=cmr.host, burst=True)
    tiles = _tiles()
    mod = get_modality("s1coh")
    periods = src.periods(mod, [Period(APRIL[0], APRIL[1], "2025-04", "monthly")], tiles)
    units = src.plan(mod, periods[0], tiles)
    # bursts by default: the plan pairs the SLC frames (one search, no burst granule parsed)
    # and marks them to be fetched as their bursts over each unit at read time
    assert units and all(len(u.tiles) <= 64 for u in units)
    assert cmr.forms and not [f for f in cmr.forms if "SENTINEL-1_BURSTS" in f["shortName"]]
    for u in units:
        work = u.payload
        assert work.pairs and all(pw.products for pw in work.pairs)
        assert [(p.name, p.as_bursts) for p in work.products] == [(p.name, True) for p in real]
    assert sorted(t for u in units for t in u.tiles) == sorted(t.id for t in tiles)
    assert not AsfSource(host=cmr.host, burst=False).products(AOI, *APRIL)[0].extra.get(
        "as_bursts")


def test_asf_source_bad_options(tmp_path):
    with pytest.raises(BadInput):
        AsfSource(pairs="nearest")
    with pytest.raises(BadInput):
        AsfSource(archive=str(tmp_path / "missing"))


def test_cli_search_against_cmr(cmr, real, tmp_path, capsys):
    import pandas as pd

    from m3leo_tiles.cli import main

    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(shapely.to_geojson(AOI))
    out = tmp_path / "pairs.parquet"
    with pytest.raises(SystemExit) as e:
        main(["s1", "search", "--aoi", str(aoi), "--period", "2025-04", "--pairs", "seasonal",
              "--host", cmr.host, "--out", str(out)])
    text = capsys.readouterr()
    assert e.value.code == 0, text
    assert "1 pair(s) (seasonal)" in text.out
    row = pd.read_parquet(out).iloc[0]
    assert row.label == "20250406_20250418" and row.reference_size == 1234
    assert row.secondary_url == f"{cmr.base}/data/{real[1].name}.zip"
    assert row.n_tiles == len(row.tiles) > 0
    assert all(m == "POST" for m, _, _ in cmr.requests)  # planning downloads nothing


def test_cmr_5xx_is_retried_by_the_client_then_transient(cmr, monkeypatch):
    """asf_search retries a 5xx page itself (3 attempts, tenacity): one 503 is absorbed, a
    persistent one becomes a TransientError for the runner, after exactly 3 requests."""
    import importlib

    from m3leo_tiles.errors import TransientError

    # `asf_search.search` is also the name of a function, so import the module by path
    generator = importlib.import_module("asf_search.search.search_generator")
    monkeypatch.setattr(generator.get_page.retry, "sleep", lambda s: None)
    cmr.fail_search, cmr.fail_code = 1, 503
    assert len(search_products(AOI, *APRIL, host=cmr.host)) == 2
    cmr.fail_search = 10
    with pytest.raises(TransientError, match="server error"):
        search_products(AOI, *APRIL, host=cmr.host)
    assert cmr.fail_search == 7


def test_cli_search_burst_pairs_single_bursts(cmr, real, tmp_path, capsys):
    import pandas as pd

    from m3leo_tiles.cli import main

    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(shapely.to_geojson(AOI))
    out = tmp_path / "pairs.parquet"
    with pytest.raises(SystemExit) as e:
        main(["s1", "search", "--aoi", str(aoi), "--period", "2025-04", "--burst",
              "--host", cmr.host, "--out", str(out)])
    text = capsys.readouterr()
    assert e.value.code == 0, text
    assert [f["shortName"] for f in cmr.forms] == [["SENTINEL-1_BURSTS"]]
    df = pd.read_parquet(out)
    assert len(df) > 0 and set(df.label) == {"20250406_20250418"}
    # one burst per pair, each a burst of the real SLCs, none twice
    ids = [tuple(b) for b in df.bursts]
    assert all(len(b) == 1 for b in ids) and len(set(ids)) == len(ids)
    assert {b[0] for b in ids} <= set(real[0].burst_ids)
    assert all(r.endswith("-BURST") for r in df.reference)
