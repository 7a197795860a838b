"""Hostile inputs from the command line and through the runner.

CLI: a damaged AOI, STAC archive or SAFE product ends in exit code 2 and one `error:` line
(never a traceback) and creates nothing; damaged products in an S1 archive are skipped with a
line each. Runner: a corrupted Earth Engine answer fails its unit, writes no chunk for it,
and the run completes (under a timeout: a hung worker fails the test); the rerun mends it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from m3leo_tiles.cli import main
from m3leo_tiles.modalities import S2_BANDS
from tests.fuzz import seeds
from tests.fuzz.mutate import mutated_xml, run_fuzz
from tests.fuzz.seeds import REF_NAME
from tests.fuzz.test_safe import DEPTHS, MANIFEST_TAGS

#: a parser that hangs fails its test instead of the whole run
pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]
AOI_WKT = "POLYGON ((3 0.5, 3.03 0.5, 3.03 0.53, 3 0.53, 3 0.5))"
HOSTILE_AOIS = {
    "truncated.geojson": json.dumps(seeds.aoi_geojson())[:150],
    "features-number.geojson": '{"type": "FeatureCollection", "features": 1e40}',
    "features-strings.geojson": '{"type": "FeatureCollection", "features": ["a", 3]}',
    "nan.geojson": json.dumps({"type": "Polygon", "coordinates": [[[3, 0.5], [float("nan"), 0.5],
                                                                   [3, 0.6], [3, 0.5]]]}),
    "garbage.geojson": "\x00\x01\x02{{{",
    "point.wkt": "POINT (3 0.5)",
    "huge.wkt": "POLYGON ((0 0, 1e308 0, 1 1, 0 0))",
}
HOSTILE_STAC = {
    "features-number": {"type": "FeatureCollection", "features": 12},
    "no-href": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "x", "bbox": [2.9, 0.4, 3.1, 0.6], "assets": {"red": {}}}]},
    "nan-bbox": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "x", "bbox": [2.9, float("nan"), 3.1, 0.6],
         "properties": {"datetime": "2021-07-01T10:00:00Z"},
         "assets": {"red": {"href": "B04.tif"}}}]},
    "bad-date": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "x", "bbox": [2.9, 0.4, 3.1, 0.6],
         "properties": {"datetime": "2021-13-45T25:61:61Z"},
         "assets": {"red": {"href": "B04.tif"}}}]},
    "links-not-list": {"type": "Catalog", "id": "c", "links": {"rel": "item"}},
}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def refused(code: int, err: str) -> str:
    """Exit 2 and exactly one `error:` line on stderr."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err[-500:])
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-500:]
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("name", sorted(HOSTILE_AOIS))
def test_grid_refuses_hostile_aoi(tmp_path, capsys, name):
    aoi = tmp_path / name
    aoi.write_text(HOSTILE_AOIS[name])
    out = tmp_path / "grid.parquet"
    line = refused(*run_cli(["grid", "--region", str(aoi), "--out", str(out)], capsys)[::2])
    assert name in line
    assert not out.exists()


@pytest.mark.parametrize("name", sorted(HOSTILE_STAC))
def test_fetch_refuses_hostile_stac(tmp_path, capsys, name):
    aoi = tmp_path / "aoi.wkt"
    aoi.write_text(AOI_WKT)
    items = tmp_path / "items.json"
    items.write_text(json.dumps(HOSTILE_STAC[name]))
    store = tmp_path / "s.zarr"
    code, _, err = run_cli(["fetch", "--region", str(aoi), "-m", "s2", "--period", "2021-JJA",
                            "--source", "local", "--source-opt", f"local.root={items}",
                            "--store", str(store)], capsys)
    assert "items.json" in refused(code, err)
    assert not store.exists()


@pytest.fixture(scope="module")
def archive_parts() -> dict[str, bytes]:
    return seeds.safe_parts()


@pytest.mark.parametrize("deep", DEPTHS)
def test_s1_search_skips_damaged_products(tmp_path, capsys, archive_parts, deep):
    """`s1 search --archive` over a damaged manifest: exit 0, and the product is either found
    or skipped with one stderr line naming it; never a traceback."""
    archive = tmp_path / "archive"
    safe = seeds.write_safe(archive_parts, archive)
    aoi = tmp_path / "aoi.wkt"
    aoi.write_text("POLYGON ((-128.2 52.0, -127.9 52.0, -127.9 52.2, -128.2 52.2, -128.2 52.0))")
    plan = tmp_path / "plan.parquet"
    seen = Counter()

    def check(blob: bytes) -> None:
        (safe / "manifest.safe").write_bytes(blob)
        code, out, err = run_cli(["s1", "search", "--archive", str(archive), "--aoi", str(aoi),
                                  "--period", "2025-04", "--out", str(plan)], capsys)
        assert code == 0 and "Traceback" not in err, (code, err[-500:])
        skipped = [ln for ln in err.splitlines() if ln.startswith("skipped ")]
        assert len(skipped) <= 1 and all(REF_NAME in ln for ln in skipped)
        seen["skipped" if skipped else "read"] += 1
        assert "0 pair(s)" in out  # one product makes no pair either way

    run_fuzz(mutated_xml(archive_parts["manifest.safe"], MANIFEST_TAGS), check, 8, deep)
    assert seen["skipped"] and seen["read"], seen


def test_subprocess_cli_on_hostile_files_has_no_traceback(tmp_path):
    """The real entry point, in its own process: what a user sees on the terminal."""
    aoi = tmp_path / "garbage.geojson"
    aoi.write_text(HOSTILE_AOIS["features-strings.geojson"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "m3leo_tiles", "grid", "--region", str(aoi),
                        "--out", str(tmp_path / "g.parquet")], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2, r.stderr[-800:]
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: ")
    assert "garbage.geojson" in r.stderr and "Traceback" not in r.stderr


# ---- the runner ------------------------------------------------------------------------------
@pytest.fixture
def ee_server(monkeypatch):
    import ee
    import googleapiclient.http

    from tests.sources.ee_server import EEServer

    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda s: None)
    monkeypatch.setenv("EE_ACCESS_TOKEN", "test")
    with EEServer(fill=lambda band, h, w: np.full((h, w), 7 if band == "count" else 1234)) as s:
        yield s


@pytest.mark.timeout(240)
@pytest.mark.parametrize("damage", ["truncated", "huge-shape", "object-dtype"])
def test_corrupted_answer_fails_its_unit_only(tmp_path, capsys, ee_server, damage):
    import xarray as xr

    aoi = tmp_path / "a.wkt"
    aoi.write_text("POLYGON((2 48, 2.05 48, 2.05 48.04, 2 48.04, 2 48))")
    store = tmp_path / "s.zarr"
    bands = [*S2_BANDS, "count"]
    good = seeds.npy_bytes(bands, (448, 448))
    descr = "[" + ", ".join(f"('{b}', '{'|O' if b == 'B2' else '<u2'}')" for b in bands) + "]"
    bodies = {"truncated": good[:-1000],
              "huge-shape": seeds.npy_with_header(
                  str({"descr": [(b, "<u2") for b in bands], "fortran_order": False,
                       "shape": (10**9, 10**9)}), good[-4096:]),
              "object-dtype": seeds.npy_with_header(
                  f"{{'descr': {descr}, 'fortran_order': False, 'shape': (448, 448), }}",
                  good[-4096:])}
    expect = {"truncated": "transient: TransientError: Earth Engine returned a malformed NPY",
              "huge-shape": "permanent: PermanentError: Earth Engine answer has fields",
              "object-dtype": "permanent: PermanentError: Earth Engine answer has non-numeric"}
    ee_server.script = [("raw", bodies[damage])]
    args = ["fetch", "--region", str(aoi), "-m", "s2", "--period", "2021-JJA", "--store",
            str(store), "--ee-project", "p4", "--source-opt",
            f"earthengine.url={ee_server.url}", "--json"]
    code, out, err = run_cli(args, capsys)
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 1 and "Traceback" not in err  # the run completed, with a failure
    assert summary["failed"] == 1 and summary["done"] >= 1
    # the failed tile has no chunk; every done tile has one
    code, out, _ = run_cli(["status", "--store", str(store), "--failed"], capsys)
    (fail_line,) = [ln for ln in out.splitlines() if ln.startswith("s2 2021-JJA ")]
    tile = fail_line.split()[2]
    assert expect[damage] in fail_line
    assert "Traceback" not in fail_line
    ds = xr.open_zarr(store, group="s2", consolidated=False, mask_and_scale=False)
    tiles = [str(t) for t in ds["tile"].values]
    chunks = {p.relative_to(store / "s2" / "s2" / "c").parts[0]
              for p in (store / "s2" / "s2" / "c").rglob("*") if p.is_file()}
    assert str(tiles.index(tile)) not in chunks
    assert len(chunks) == summary["done"]
    code, out, _ = run_cli(["verify", "--store", str(store)], capsys)
    assert code in (0, None) and "0 corrupt, 0 missing, 0 orphan" in out
    # the server mends; a rerun fetches just that unit (a malformed body is transient; the
    # permanent refusals need --retry-failed)
    code, out, _ = run_cli(args + ([] if damage == "truncated" else ["--retry-failed"]), capsys)
    again = json.loads(out.strip().splitlines()[-1])
    assert again["done"] == 1 and again["failed"] == 0
    assert (xr.open_zarr(store, group="s2", consolidated=False, mask_and_scale=False)["s2"]
            .sel(tile=tile, period="2021-JJA", band="B2").values == 1234).all()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_corrupted_s1_product_fails_its_pair_in_parallel_workers(small_sim, tmp_path):
    """A simulated pair whose secondary VV measurement TIFF was cut short (a broken transfer),
    processed by two loky workers: the pair's tiles fail with a one-line SafeError, no chunk is
    written, and the run ends (the timeout fails the test if a worker hangs)."""
    import shutil

    from m3leo_tiles.runner.fetch import FetchRequest, fetch

    sim = tmp_path / "sim"
    shutil.copytree(small_sim, sim)
    products = sorted((sim / "s1").glob("*.SAFE"))
    tiff = next((products[1] / "measurement").glob("*-vv-*.tiff"))
    with open(tiff, "r+b") as f:
        f.truncate(4096)
    store = tmp_path / "sim.zarr"
    opts = {"archive": {"archive": str(sim / "s1"), "dem": str(sim / "rasters" / "dem.tif")}}
    s = fetch(FetchRequest(store=str(store), region=str(sim / "aoi.geojson"),
                           modalities=["s1coh"], period="2025-04-01/2025-05-31",
                           source="archive", source_options=opts, workers=2, progress=False))
    assert s.failed > 0 and s.done == 0, s.as_dict()
    assert not (store / "s1coh" / "s1coh" / "c").exists() or \
        not any(p.is_file() for p in (store / "s1coh" / "s1coh" / "c").rglob("*"))
    from m3leo_tiles.runner.state import StateDB
    from m3leo_tiles.store.urls import default_state_path

    db = StateDB(default_state_path(str(store)), create=False)
    errors = {err for *_, err in db.failures()}
    db.close()
    assert errors and all("\n" not in e and "measurement" in e for e in errors), errors


def test_geoparquet_aoi_with_nan_coordinates_is_bad_input(tmp_path, capsys):
    import geopandas as gpd
    import shapely

    path = tmp_path / "fields.parquet"
    gpd.GeoDataFrame(geometry=[shapely.Polygon([(3, 0.5), (float("nan"), 0.5), (3, 0.6)]),
                               shapely.box(3, 0.5, 3.1, 0.6)], crs=4326).to_parquet(path)
    line = refused(*run_cli(["grid", "--region", str(path), "--out",
                             str(tmp_path / "g.parquet")], capsys)[::2])
    assert "fields.parquet" in line and "unreadable geometry" in line
