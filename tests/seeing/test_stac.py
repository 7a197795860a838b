"""`stac`: the collection validates offline against the official schemas kept in the repo,
its assets open with xarray as they say, its grid asset is the store's tiles, and it names
the licences and citations of the data the modalities come from."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
import xarray as xr
from pystac.errors import STACValidationError

from m3leo_tiles.modalities import get_modality
from m3leo_tiles.stac.origins import MODALITY_ORIGINS, ORIGINS
from m3leo_tiles.stac.validate import EXTENSIONS, validate
from m3leo_tiles.store.store import TileStore
from tests.runner.test_cli_runs import ENV, make_store
from tests.seeing.stores import small_store

SCHEMAS = Path(__file__).resolve().parents[2] / "m3leo_tiles" / "stac" / "schemas"


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> tuple[str, Path, dict]:
    url = small_store(tmp_path_factory.mktemp("stac"))
    out = tmp_path_factory.mktemp("stac-out")
    p = subprocess.run([sys.executable, "-m", "m3leo_tiles", "stac", "--store", url, "--out",
                        str(out)], env=ENV, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return url, out, json.loads((out / "collection.json").read_text())


def test_kept_schemas_are_the_files_provenance_lists():
    table = (SCHEMAS / "PROVENANCE.md").read_text().split("```\n")[1].split("```")[0]
    listed = dict(reversed(line.split()) for line in table.splitlines())
    kept = {str(p.relative_to(SCHEMAS)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in SCHEMAS.rglob("*.json")}
    assert kept == listed and len(kept) == 14


def test_collection_validates_offline_against_core_and_every_extension(collection):
    _, _, doc = collection
    checked = validate(doc)
    assert set(EXTENSIONS) <= set(checked) and any("collection.json" in u for u in checked)
    assert set(doc["stac_extensions"]) == set(EXTENSIONS)


def test_the_validator_rejects_what_the_schemas_forbid(collection):
    """(The datacube schema accepts a collection whose top-level cube fields or whose assets'
    are valid, so a cube break is made in both.)"""
    _, _, doc = collection

    def cubes(d: dict) -> list[dict]:
        return [d["cube:dimensions"]] + [a["cube:dimensions"] for a in d["assets"].values()
                                         if "cube:dimensions" in a]

    breaks = {"a dimension with neither extent nor values":
              lambda d: [c["band"].pop("values") for c in cubes(d)],
              "a period extent that is not a pair":
              lambda d: [c["period"].__setitem__("extent", ["2020"]) for c in cubes(d)],
              "open kwargs that are not an object":
              lambda d: d["assets"]["synth"].__setitem__("xarray:open_kwargs", "group=synth"),
              "no licence": lambda d: d.pop("license")}
    for why, break_it in breaks.items():
        bad = copy.deepcopy(doc)
        break_it(bad)
        with pytest.raises(STACValidationError):
            validate(bad)
            pytest.fail(f"accepted {why}")


def test_each_data_asset_opens_with_xarray_as_its_fields_say(collection):
    url, _, doc = collection
    store = TileStore.open(url, mode="r")
    data = {k: a for k, a in doc["assets"].items() if "data" in a["roles"]}
    assert set(data) == set(store.modalities()) == {"synth"}
    for m, asset in data.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a missing consolidated metadata would warn
            ds = xr.open_zarr(asset["href"], **asset["xarray:open_kwargs"])
        dims = asset["cube:dimensions"]
        assert ds[m].dims == tuple(dims) == tuple(asset["cube:variables"][m]["dimensions"])
        assert ds.sizes["tile"] == dims["tile"]["extent"][1] + 1 == len(store.tile_ids)
        assert list(ds["band"].values) == dims["band"]["values"]
        assert ds.sizes["period"] == len(dims["period"]["values"]) == 2
        assert ds.sizes["y"] == dims["y"]["extent"][1] + 1 == 448
    var = doc["cube:variables"]["synth"]
    assert var["m3leo:resolution_m"] == 10 and var["unit"] == "1" and len(var["m3leo:bands"]) == 12


def test_grid_asset_is_the_store_tile_table_with_footprints(collection):
    url, out, doc = collection
    gdf = gpd.read_parquet(out / doc["assets"]["tiles"]["href"])
    table = TileStore.open(url, mode="r").tile_table()
    assert list(gdf["id"]) == list(table["id"]) and gdf.crs.to_epsg() == 4326
    assert gdf.geometry.contains(gpd.GeoSeries(gpd.points_from_xy(table["lon"], table["lat"]),
                                               crs=4326)).all()
    assert len(gdf) == 8
    west, south, east, north = doc["extent"]["spatial"]["bbox"][0]
    assert (west, south, east, north) == pytest.approx(tuple(gdf.total_bounds))
    assert doc["extent"]["temporal"]["interval"] == [["2020-01-01T00:00:00Z",
                                                      "2022-01-01T00:00:00Z"]]


def test_every_builtin_modality_names_its_origins():
    code = "from m3leo_tiles.modalities import REGISTRY; print(' '.join(REGISTRY))"
    builtin = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split()  # no test plugin registered there
    assert set(MODALITY_ORIGINS) == set(builtin) and len(builtin) >= 14
    assert all(k in ORIGINS for ks in MODALITY_ORIGINS.values() for k in ks)


def test_licences_and_citations_of_the_sources(tmp_path):
    from m3leo_tiles.stac.collection import build

    url = make_store(tmp_path / "multi.zarr", 2)
    store = TileStore.open(url)
    for m in ("s2", "esawc", "ghsbuilt", "agb", "gssic", "s1coh", "s1geom"):
        store.ensure_modality(get_modality(m))
    store.ensure_periods("s2", ["2020-JJA"])
    store.ensure_periods("s1geom", ["t108A"])  # a track's geometry: a label, not a time
    doc = build(url).to_dict(include_self_link=False, transform_hrefs=False)
    validate(doc)
    assert doc["extent"]["temporal"]["interval"] == [["2020-06-01T00:00:00Z",
                                                      "2020-09-01T00:00:00Z"]]
    assert "values" not in doc["assets"]["s1geom"]["cube:dimensions"]["period"]
    assert doc["assets"]["s1geom"]["m3leo:periods"] == ["t108A"]
    licences = [ln for ln in doc["links"] if ln["rel"] == "license"]
    titles = " ".join(ln["title"] for ln in licences)
    for name in ("Copernicus Sentinel-1", "Copernicus Sentinel-2", "ESA WorldCover",
                 "GHS-BUILT-S", "CCI Biomass", "GSSIC", "Copernicus DEM"):
        assert name in titles
    dois = {p.get("doi") for p in doc["sci:publications"]}
    assert {"10.1038/s41597-022-01189-6", "10.5285/95913ffb6467447ca72c4e9d8cf30501",
            "10.5281/zenodo.5571936"} <= dois
    assert doc["license"] == "other" and "CC-BY-4.0" in titles
