"""`grid` and `regions` from the command line: outputs, splits, adoption, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from m3leo_tiles.grid.regions import M3LEO_TILES, REGIONS, load_aoi
from m3leo_tiles.grid.splits import band_splits, cycle_pattern

WKT = "POLYGON((-100 30,-99.6 30,-99.6 30.4,-100 30.4,-100 30))"
COLUMNS = {"id", "zone", "hemisphere", "epsg", "col", "row", "xmin", "ymin", "xmax", "ymax",
           "geometry", "area_km2", "split"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "m3leo_tiles", *args], capture_output=True,
                          text=True)


def test_grid_from_wkt_writes_geoparquet_with_all_columns(tmp_path):
    aoi = tmp_path / "aoi.wkt"
    aoi.write_text(WKT)
    out, png = tmp_path / "g.parquet", tmp_path / "g.png"
    p = cli("grid", "--region", str(aoi), "--out", str(out), "--preview", str(png))
    assert p.returncode == 0, p.stderr
    gdf = gpd.read_parquet(out)
    assert COLUMNS <= set(gdf.columns) and gdf.crs.to_epsg() == 4326
    assert gdf["id"].is_unique and len(gdf) > 50
    assert set(gdf["split"]) == {"train", "val", "test"}
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "tiles" in p.stdout and str(out) in p.stdout


def test_geojson_and_geoparquet_aois_give_the_same_grid(tmp_path):
    geom = shapely.from_wkt(WKT)
    (tmp_path / "a.geojson").write_text(json.dumps(
        {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {}, "geometry": json.loads(shapely.to_geojson(geom))}
        ]}))
    gpd.GeoDataFrame(geometry=[geom], crs=4326).to_parquet(tmp_path / "a.parquet")
    a = load_aoi(str(tmp_path / "a.geojson"))[1]
    b = load_aoi(str(tmp_path / "a.parquet"))[1]
    assert a.equals(b) and a.equals(geom)


def test_band_splits_are_deterministic_and_near_60_20_20():
    from m3leo_tiles.grid.build import build_grid

    g = build_grid(shapely.box(-100, 30, -97, 32))
    s1 = band_splits(g.geometry.values, 9.0, 60, (60, 20, 20))
    s2 = band_splits(g.geometry.values, 9.0, 60, (60, 20, 20))
    assert (s1 == s2).all()
    share = pd.Series(s1).value_counts(normalize=True)
    assert abs(share["train"] - 0.6) < 0.05 and abs(share["val"] - 0.2) < 0.05
    assert cycle_pattern((60, 20, 20)) == ["train", "train", "train", "val", "test"]
    # stripes: neighbours along the stripe direction share a split far more often than chance
    assert len(set(s1[:5])) <= 2


def test_splits_from_csv(tmp_path):
    aoi = tmp_path / "aoi.wkt"
    aoi.write_text(WKT)
    out = tmp_path / "g.parquet"
    assert cli("grid", "--region", str(aoi), "--out", str(out)).returncode == 0
    ids = gpd.read_parquet(out)["id"]
    csv = tmp_path / "s.csv"
    pd.DataFrame({"id": ids, "split": np.where(np.arange(len(ids)) % 2, "test", "train")}
                 ).to_csv(csv, index=False)
    out2 = tmp_path / "g2.parquet"
    assert cli("grid", "--region", str(aoi), "--out", str(out2),
               "--splits-csv", str(csv)).returncode == 0
    g2 = gpd.read_parquet(out2)
    assert list(g2["split"][:4]) == ["train", "test", "train", "test"]


@pytest.mark.skipif(shutil.which("geet") is None and not
                    (Path(sys.executable).parent / "geet").exists(), reason="geetiles absent")
def test_adopt_a_geetiles_tile_file(tmp_path):
    wkt = tmp_path / "small.wkt"
    wkt.write_text("POLYGON((-100 30,-99.8 30,-99.8 30.2,-100 30.2,-100 30))")
    geet = shutil.which("geet") or str(Path(sys.executable).parent / "geet")
    subprocess.run([geet, "grid", "--aoi_wkt_file", str(wkt), "--chip_size_meters", "4480",
                    "--aoi_name", "small", "--dest_dir", str(tmp_path)], check=True,
                   capture_output=True)
    src = next(tmp_path.glob("small_partitions_aschips_*.geojson"))
    out = tmp_path / "adopted.parquet"
    p = cli("grid", "--from-geojson", str(src), "--out", str(out))
    assert p.returncode == 0, p.stderr
    theirs = gpd.read_file(src)
    ours = gpd.read_parquet(out)
    assert list(ours["id"]) == list(theirs["identifier"])
    assert (ours["epsg"] == 4326).all()
    for a, b in zip(ours.geometry, theirs.geometry, strict=True):
        assert a.equals_exact(b, 1e-12)
    # each adopted tile is a 448 x 448 lon/lat pixel grid over its own square
    from m3leo_tiles.grid.tileref import grid_table_to_refs

    ref = grid_table_to_refs(ours)[0]
    assert ref.grid.epsg == 4326 and ref.grid.shape == (448, 448)
    assert np.allclose(ref.grid.bounds, theirs.geometry.iloc[0].bounds)
    assert set(ours["split"]) <= {"train", "val", "test"}


@pytest.mark.parametrize("content, args, message", [
    (None, ["--region", "atlantis"], "unknown region 'atlantis'"),
    (None, ["--region", "missing.geojson"], "not found"),
    ("", ["--region", "{f}"], "is empty"),
    ("{not json", ["--region", "{f}"], "not valid JSON"),
    ('{"type": "Polygon", "coordinates": [[[0,0],[1,1],[1,0],[0,1],[0,0]]]}',
     ["--region", "{f}"], "invalid geometry"),
    (WKT, ["--region", "{f}", "--tile-size", "4485"], "multiple of 10"),
    (WKT, ["--region", "{f}", "--split-pct", "60,20,10"], "sum to 90"),
])
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, content, args, message):
    f = tmp_path / "aoi.geojson"
    if content is not None:
        f.write_text(content)
    out = tmp_path / "out.parquet"
    p = cli("grid", *[a.replace("{f}", str(f)) for a in args], "--out", str(out))
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


def test_regions_lists_all_six_within_25_percent_of_m3leo():
    p = cli("regions")
    assert p.returncode == 0
    rows = {ln.split()[0]: ln.split() for ln in p.stdout.splitlines()[1:]}
    assert set(rows) == set(REGIONS)
    for name, row in rows.items():
        ours = int(row[2].replace(",", ""))
        assert abs(ours / M3LEO_TILES[name] - 1) < 0.25, (name, ours)
