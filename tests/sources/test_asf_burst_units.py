"""Bursts by default, planned from frames (issue 12 item 3 at region scale).

The ASF source searches IW SLC frames to plan and pair; at read time ONE CMR burst search per
unit finds each frame's bursts over the unit's tiles, which are downloaded and assembled into
one SAFE per frame (a run per swath). Checked here:

- on the real track-108 metadata (fast, no processing): bursts of two swaths make one SAFE,
  one burst search per unit; a gap in a run, a frame CMR lists no burst of, and a frame whose
  bursts miss the unit's tiles are each reported for that frame alone;
- on the simulated pair through the loopback ASF (`fetch`, bursts by default): the planning
  searches frames only, each unit makes exactly one burst search, and every layer equals the
  archive source's on the full SAFEs (1e-3 dB, 1e-5 coherence); a frame without bursts fails
  only the layers that use it, with a clear message.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
import rasterio
import shapely

from m3leo_tiles.runner.fetch import FetchRequest, fetch
from m3leo_tiles.s1.archive import read_product
from m3leo_tiles.sources.asf import AsfSource
from m3leo_tiles.sources.base import TileRef
from m3leo_tiles.sources.s1blocks import ProductRecord
from m3leo_tiles.store.store import open_store
from tests.s1 import burstcut
from tests.s1.test_burst_chain import burst_footprints, serve_bursts
from tests.sources.asf_server import FakeAsf, umm_item
from tests.sources.test_asf_archive import REF, SLC

TOKEN = "edl-token-burst-units"
BURSTS = "SENTINEL-1_BURSTS"


def burst_searches(asf: FakeAsf) -> list[dict]:
    return [f for f in asf.forms if BURSTS in f.get("shortName", [])]


def _tiny_tiff() -> bytes:
    with rasterio.MemoryFile() as mem:
        with mem.open(driver="GTiff", width=4, height=4, count=1, dtype="complex_int16") as w:
            w.write(np.full((4, 4), 3 - 1j, np.complex64), 1)
        return mem.read()


@functools.cache
def _xml(pol: str) -> bytes:
    return burstcut.metadata_xml(SLC / f"{REF}.SAFE", pol)


def _serve_real(asf: FakeAsf, runs: dict[str, list[int]]) -> None:
    """Bursts of the real track-108 SLC (metadata real, TIFFs tiny: the fixture's are empty)."""
    safe = SLC / f"{REF}.SAFE"
    prod = read_product(safe)
    tiff = _tiny_tiff()
    for sw, ix in runs.items():
        ids = sorted(b for b in prod.burst_ids if b.endswith(sw))
        fps = burst_footprints(safe, sw)
        for pol in prod.polarisations:
            xml = _xml(pol)
            for k in ix:
                asf.add_file(f"{REF}/{sw}/{pol}/{k}.xml", xml)
                md5 = asf.add_file(f"{REF}/{sw}/{pol}/{k}.tiff", tiff)
                asf.items.append(umm_item(prod, asf.base, burst=ids[k], index=k, pol=pol,
                                          size=len(tiff), md5=md5, footprint=fps[k]))


def _frame_record() -> ProductRecord:
    p = read_product(SLC / f"{REF}.SAFE")
    return ProductRecord.of(dataclasses.replace(p, path=None, extra={"as_bursts": True}))


def _tile(poly: shapely.Geometry) -> TileRef:
    return TileRef("t", None, poly)  # type: ignore[arg-type]  # the burst search needs polygons


@pytest.mark.skipif(not SLC.is_dir(), reason="shared s1data not present")
def test_a_unit_fetches_one_safe_per_frame_from_one_burst_search(tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    safe = SLC / f"{REF}.SAFE"
    runs = {"IW1": [2, 3], "IW2": [3, 4]}
    fps = {sw: burst_footprints(safe, sw) for sw in runs}
    # the unit's tiles: two small squares, one in IW1 burst 2, one in IW2 burst 4
    tiles = [_tile(fps["IW1"][2].centroid.buffer(0.01, quad_segs=1)),
             _tile(fps["IW2"][4].centroid.buffer(0.01, quad_segs=1))]
    with FakeAsf() as asf:
        asf.token = TOKEN
        _serve_real(asf, {"IW1": [1, 2, 3, 4], "IW2": [2, 3, 4, 5]})
        src = AsfSource(cache=str(tmp_path / "cache"), host=asf.host)
        got = src.fetch_unit([_frame_record()], tiles)
        assert (got.failed, got.unused) == ({}, set())
        assert len(burst_searches(asf)) == 1
        # the bursts the hull of the tiles meets, per swath: the hull picks IW1 2-3, IW2 3-4
        # or a superset; every burst of the SAFE meets the hull, every run is consecutive
        out = read_product(got.paths[0])
        hull = shapely.GeometryCollection([t.polygon for t in tiles]).convex_hull
        ids = {sw: sorted(b for b in read_product(safe).burst_ids if b.endswith(sw))
               for sw in runs}
        want = {ids[sw][k] for sw in runs for k, fp in enumerate(fps[sw])
                if fp.intersects(hull) and k in {"IW1": [1, 2, 3, 4], "IW2": [2, 3, 4, 5]}[sw]}
        assert set(out.burst_ids) == want
        assert {ids["IW1"][2], ids["IW2"][4]} <= want
        assert out.polarisations == ("VV", "VH")
        assert src.fetch_unit([_frame_record()], tiles).paths == got.paths  # cached
        assert len(burst_searches(asf)) == 2


@pytest.mark.skipif(not SLC.is_dir(), reason="shared s1data not present")
def test_a_frame_without_usable_bursts_is_reported_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    fps = burst_footprints(SLC / f"{REF}.SAFE", "IW2")
    inside = [_tile(shapely.MultiPoint([fps[3].centroid, fps[5].centroid]).buffer(0.01))]
    with FakeAsf() as asf:  # IW2 burst 4 missing from CMR: a gap in the run
        asf.token = TOKEN
        _serve_real(asf, {"IW2": [3, 5]})
        got = AsfSource(cache=str(tmp_path / "c1"), host=asf.host).fetch_unit(
            [_frame_record()], inside)
        assert list(got.failed) == [0]
        assert got.failed[0].startswith(REF) and "not consecutive (missing [4])" in got.failed[0]
    with FakeAsf() as asf:  # CMR lists no burst of the frame at all
        asf.token = TOKEN
        src = AsfSource(cache=str(tmp_path / "c2"), host=asf.host)
        got = src.fetch_unit([_frame_record()], inside)
        assert "ASF lists no burst products of this SLC" in got.failed[0]
        assert len(burst_searches(asf)) == 2  # the unit's, then "any burst of it anywhere?"
    with FakeAsf() as asf:  # its bursts exist but none meets the unit's tiles
        asf.token = TOKEN
        _serve_real(asf, {"IW2": [0]})
        got = AsfSource(cache=str(tmp_path / "c3"), host=asf.host).fetch_unit(
            [_frame_record()], [_tile(fps[8].centroid.buffer(0.01))])
        assert (got.failed, got.unused) == ({}, {0})


# --- the simulated pair, end to end -----------------------------------------------------
LAYERS = ["s1grd", "s1coh", "s1ifg"]  # one stack per tile: backscatter and the pair


def _fetch(small_sim, url: str, source: str, opts: dict, modalities=LAYERS, dry_run=False):
    return fetch(FetchRequest(store=url, region=str(small_sim / "aoi.geojson"),
                              modalities=modalities, period="2025-MAM", source=source,
                              source_options=opts, workers=1, progress=False,
                              dry_run=dry_run))


def test_bursts_planned_from_frames_match_the_archive(small_sim, tmp_path, monkeypatch):
    m = json.loads((small_sim / "simulation.json").read_text())
    dem = str(small_sim / "rasters" / "dem.tif")
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    urls = {"asf": str(tmp_path / "asf.zarr"), "archive": str(tmp_path / "arc.zarr")}
    with FakeAsf() as asf:
        asf.token = TOKEN
        for p in m["products"]:
            serve_bursts(asf, small_sim / p, frame=True)
        opts = {"asf": {"host": asf.host, "cache": str(tmp_path / "cache"), "dem": dem},
                "archive": {"archive": str(small_sim / "s1"), "dem": dem}}
        plan = _fetch(small_sim, urls["asf"], "asf", opts, dry_run=True)
        assert sum(r.tiles_to_fetch for r in plan.rows) == len(LAYERS) * len(m["tiles"])
        assert asf.forms and not burst_searches(asf)  # the plan searched frames only
        asf.forms.clear()
        s = _fetch(small_sim, urls["asf"], "asf", opts)
        assert s.failed == 0 and s.done == len(LAYERS) * len(m["tiles"]), s.as_dict()
        assert len(burst_searches(asf)) == s.units  # exactly one per unit, at read time
        units = s.units
        assert set(asf.served.values()) == {1}  # every burst TIFF and XML fetched once
        assert not any(p.startswith("/data/") for _, p, _ in asf.requests)  # no SLC zip
    s = _fetch(small_sim, urls["archive"], "archive", opts)
    assert s.failed == 0, s.as_dict()
    # one SAFE per frame and unit (two blocks here), of the bursts over the unit's tiles
    safes = sorted((tmp_path / "cache").glob("*.SAFE"))
    assert len(safes) == units * len(m["products"]), safes
    full = {read_product(small_sim / p).date: set(read_product(small_sim / p).burst_ids)
            for p in m["products"]}
    for safe in safes:
        p = read_product(safe)
        assert set(p.burst_ids) <= full[p.date] and p.polarisations == ("VV", "VH")
    assert {len(read_product(safe).burst_ids) for safe in safes} == {1, 2}
    trees = {k: open_store(u) for k, u in urls.items()}
    for layer, tol in (("s1grd", 1e-3), ("s1coh", 1e-5), ("s1ifg", 1e-4)):
        a_ds, b_ds = trees["asf"][layer].ds[layer], trees["archive"][layer].ds[layer]
        assert list(a_ds.period.values) == list(b_ds.period.values)
        for t in m["tiles"]:
            a, b = a_ds.sel(tile=t).values, b_ds.sel(tile=t).values
            assert np.array_equal(np.isfinite(a), np.isfinite(b)), (layer, t)
            ok = np.isfinite(a)
            assert ok.mean() > 0.3 and np.abs(a[ok] - b[ok]).max() <= tol, (layer, t)


def test_a_frame_without_bursts_fails_only_its_layers(small_sim, tmp_path, monkeypatch):
    m = json.loads((small_sim / "simulation.json").read_text())
    dem = str(small_sim / "rasters" / "dem.tif")
    monkeypatch.setenv("EARTHDATA_TOKEN", TOKEN)
    first, second = (small_sim / p for p in m["products"])
    with FakeAsf() as asf:
        asf.token = TOKEN
        serve_bursts(asf, first, frame=True)
        serve_bursts(asf, second, frame=True, indices=[])  # its frame, none of its bursts
        opts = {"asf": {"host": asf.host, "cache": str(tmp_path / "cache"), "dem": dem}}
        s = _fetch(small_sim, str(tmp_path / "s.zarr"), "asf", opts,
                   modalities=["s1grd", "s1geom"])
    n = len(m["tiles"])
    # s1geom reads the first date only: done; s1grd (every date of the period): failed
    assert (s.done, s.failed) == (n, n), s.as_dict()
    name = second.name.removesuffix(".SAFE")
    why = (f"{name}: ASF lists no burst products of this SLC (CMR burst search); its layers "
           "are tried again on the next run")
    assert dict(s.reasons) == {why[:160]: n}, s.reasons  # the summary keeps 160 chars
