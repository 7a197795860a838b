"""`gunw` online: loopback CMR (GUNW_STD) -> verified download -> NetCDF -> 80 m tiles.

The loopback ASF serves ARIA GUNW NetCDF files written in the product's real layout
(tests/sources/gunw_file.py) with analytic fields, so the resampled values are checked
against the field at each 80 m cell centre; a truncated product fails its unit with one line.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pytest
import shapely

from m3leo_tiles.grid.tileref import TileRef
from m3leo_tiles.grid.tiles import to_lonlat
from m3leo_tiles.runner.fetch import FetchRequest, fetch
from m3leo_tiles.s1.gunw import parse_gunw_name
from m3leo_tiles.store.store import open_store
from tests.sources.asf_server import FakeAsf, gunw_item
from tests.sources.gunw_file import GunwTruth, gunw_name, write_gunw

TOKEN = "edl-token-for-gunw"
# a 0.6 x 0.5 degree product; data only west of -99.75 (the rest fill), water in a corner
TRUTH = GunwTruth(-100.3, 40.3, 720, 600, -100.02, (-100.3, 39.8, -99.75, 40.3),
                  (-100.1, 40.05, -100.06, 40.1))
AOI = shapely.box(-100.08, 40.02, -99.62, 40.1)
GOOD = gunw_name(dt.date(2020, 7, 2), dt.date(2020, 6, 20))
BAD = gunw_name(dt.date(2020, 7, 14), dt.date(2020, 7, 2))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("gunw")
    aoi = d / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "Feature", "properties": {},
                               "geometry": shapely.geometry.mapping(AOI)}))
    with FakeAsf() as asf:
        asf.token = TOKEN
        for name in (GOOD, BAD):
            p = write_gunw(d / f"{name}.nc", TRUTH, name)
            data = p.read_bytes()
            if name == BAD:  # truncated in the ASF archive itself: md5 and size agree
                data = data[: len(data) // 3]
            md5 = asf.add_file(p.name, data)
            later, earlier, _, _ = parse_gunw_name(name)
            asf.items.append(gunw_item(name, TRUTH.footprint,
                                       dt.datetime.combine(earlier, dt.time(14, 1)),
                                       dt.datetime.combine(later, dt.time(14, 1, 30)),
                                       asf.base, len(data), md5))
        old = os.environ.get("EARTHDATA_TOKEN")
        os.environ["EARTHDATA_TOKEN"] = TOKEN
        try:
            s = fetch(FetchRequest(store=str(d / "g.zarr"), region=str(aoi), modalities=["gunw"],
                                   period="2020", source="asf", workers=1, progress=False,
                                   source_options={"asf": {"host": asf.host,
                                                           "cache": str(d / "cache")}}))
        finally:
            if old is None:
                os.environ.pop("EARTHDATA_TOKEN", None)
            else:
                os.environ["EARTHDATA_TOKEN"] = old
        yield d, s, asf


def test_gunw_pairs_are_labelled_earlier_date_first(run):
    d, s, _ = run
    tree = open_store(str(d / "g.zarr"))
    assert list(tree["gunw"].ds.period.values) == ["20200620_20200702", "20200702_20200714"]
    assert list(tree["gunw"].ds.band.values) == ["unwrappedPhase", "coherence",
                                                 "connectedComponents", "amplitude"]


def test_gunw_layers_resample_onto_the_80m_grid_without_crossing_components(run):
    d, s, asf = run
    ds = open_store(str(d / "g.zarr"))["gunw"].ds
    tiles = [str(t) for t in ds.tile.values]
    assert any(path.startswith("/search/granules") for _, path, _ in asf.requests)
    assert (d / "cache" / f"{GOOD}.nc").is_file()
    checked = 0
    nodata_tiles = 0
    for k, tid in enumerate(tiles):
        g = TileRef.from_id(tid).grid_at(80)
        lon, lat = to_lonlat(g.epsg).transform(*np.meshgrid(g.xs(), g.ys()))
        v = ds["gunw"].isel(tile=k, period=0).values
        if np.isnan(v).all():
            nodata_tiles += 1
            assert (lon > -99.75).all()  # east of the data: nodata, not an error
            continue
        comp = TRUTH.component(lon, lat)
        inside = lon < -99.76
        # components exactly, by nearest neighbour (away from their borders by a sample)
        far = inside & (np.abs(lon - TRUTH.split_lon) > 2 / 1200)
        assert np.array_equal(v[2][far & (comp > 0)], comp[far & (comp > 0)])
        # phase: the analytic plane of the cell's own component, never a blend of two
        ok = inside & np.isfinite(v[0]) & (v[2] > 0)
        want = TRUTH.phase(lon, lat)
        # (bilinear is exact for these planes; beside a component border the nearest sample
        # is taken: at most ~0.7 of a 3" sample's change, 0.024 rad here, 6 pi apart if blended)
        assert np.abs(v[0][ok] - want[ok]).max() < 0.05
        assert np.abs(v[1][ok] - TRUTH.coherence(lon, lat)[ok]).max() < 2e-3
        assert np.abs(v[3][ok] - TRUTH.amplitude(lon, lat)[ok]).max() < 3.2
        assert np.median(np.abs(v[3][ok] - TRUTH.amplitude(lon, lat)[ok])) < 0.01
        checked += int(ok.sum())
    assert checked > 1000 and nodata_tiles >= 1


def test_a_truncated_gunw_fails_its_units_with_one_line(run):
    d, s, _ = run
    from m3leo_tiles.runner.state import StateDB

    assert s.failed > 0 and s.done > 0 and s.nodata > 0, s.as_dict()
    from m3leo_tiles.store.urls import default_state_path

    db = StateDB(default_state_path(str(d / "g.zarr")), create=False)
    rows = [r for r in db.failures() if r[0] == "gunw"]
    db.close()
    assert rows and all(r[1] == "20200702_20200714" for r in rows)
    assert all("not a readable GUNW NetCDF" in r[5] and "\n" not in r[5] for r in rows), rows
