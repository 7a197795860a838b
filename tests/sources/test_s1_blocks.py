"""Bounded S1 block units on a plan of thousands of tiles and a real-geometry burst catalogue."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest
import shapely

from m3leo_tiles.errors import BadInput
from m3leo_tiles.grid.build import build_grid
from m3leo_tiles.grid.tileref import grid_table_to_refs
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.periods import STATIC, Period, period_from_label
from m3leo_tiles.s1.pairing import form_pairs
from m3leo_tiles.sources.base import PlanRequest
from m3leo_tiles.sources.s1blocks import block_of, plan_blocks, track_label
from tests.sources.burst_catalogue import catalogue

AOI = shapely.box(-100.0, 37.0, -97.0, 39.0)  # Kansas: ~2,700 tiles, asc + desc tracks
JJA = Period(dt.date(2020, 6, 1), dt.date(2020, 9, 1), "2020-JJA", "seasonal")


@pytest.fixture(scope="module")
def region():
    refs = grid_table_to_refs(build_grid(AOI))
    bursts, _ = catalogue(AOI, dt.date(2020, 6, 1), dt.date(2020, 7, 1))
    return refs, bursts


def _requests(refs, products):
    pairs = form_pairs(products, "sequential")
    labels = sorted({p.label for p in pairs})
    tracks = sorted({track_label(p.relative_orbit, p.pass_direction) for p in products})
    reqs = [PlanRequest(get_modality("s1grd"), JJA, refs)]
    reqs += [PlanRequest(get_modality(m), period_from_label(lb), refs)
             for lb in labels for m in ("s1coh", "s1ifg")]
    reqs += [PlanRequest(get_modality("s1geom"), Period(STATIC.start, STATIC.end, t, "static"),
                         refs) for t in tracks]
    return reqs, pairs


def test_units_are_bounded_blocks_and_own_their_chunks(region):
    refs, bursts = region
    assert len(refs) > 2000 and len(bursts) > 500
    reqs, pairs = _requests(refs, bursts)
    units = plan_blocks(reqs, bursts, pairs)
    sizes = [len(u.all_tiles) for u in units]
    assert max(sizes) <= 64 and len(units) >= len(refs) / 64
    owner: Counter = Counter()
    for u in units:
        assert len({block_of(t) for t in u.all_tiles}) == 1  # neighbours only
        for tg in u.targets:
            owner.update((t, tg.modality, tg.period) for t in tg.tiles)
    assert max(owner.values()) == 1  # no chunk in two units: workers never share one
    # every tile a product of the season touches gets its s1grd, from every such product,
    # ascending and descending alike (their bands share the tile's one chunk)
    tree = shapely.STRtree([p.footprint for p in bursts])
    for u in units[::7]:
        work = u.payload
        grd = dict(work.grd).get("2020-JJA", ())
        for t in u.all_tiles:
            ref = next(r for r in refs if r.id == t)
            want = {bursts[i].name for i in tree.query(ref.polygon, predicate="intersects")
                    if JJA.contains(bursts[i].date)}
            got = {work.products[i].name for i in set(work.cover[t]) & set(grd)}
            if (t, "s1grd", "2020-JJA") in owner:
                assert got == want
    passes = {p.pass_direction for u in units for p in u.payload.products}
    assert passes == {"ASCENDING", "DESCENDING"}
    # a pair's tiles lie inside the union of its burst pairs' common footprints
    u = max(units, key=lambda u: len(u.payload.pairs))
    work = u.payload
    by_name = {p.name: p for p in bursts}
    for pw in work.pairs:
        region_ = shapely.union_all([by_name[work.products[i].name].footprint.intersection(
            by_name[work.products[j].name].footprint) for i, j in pw.products])
        for t in pw.tiles:
            assert region_.covers(next(r for r in refs if r.id == t).polygon)


def test_unit_size_does_not_grow_with_dates_or_region(region):
    refs, bursts = region
    june = [b for b in bursts if b.date < dt.date(2020, 6, 16)]
    small = plan_blocks(_requests(refs, june)[0][:1], june, [])
    full = plan_blocks(_requests(refs, bursts)[0][:1], bursts, [])
    assert len(small) == len(full)  # the same blocks, whatever the number of dates
    assert max(len(u.all_tiles) for u in small) == max(len(u.all_tiles) for u in full) <= 64
    # a quarter of the region: fewer units, the same bound
    quarter = [r for r in refs if r.polygon.centroid.x < -99.25]
    part = plan_blocks([PlanRequest(get_modality("s1grd"), JJA, quarter)], bursts, [])
    assert len(part) < len(full) and max(len(u.all_tiles) for u in part) <= 64


def test_block_size_is_bounded(region):
    refs, bursts = region
    req = [PlanRequest(get_modality("s1grd"), JJA, refs)]
    assert max(len(u.all_tiles) for u in plan_blocks(req, bursts, [], block=11)) <= 121
    with pytest.raises(BadInput, match="block"):
        plan_blocks(req, bursts, [], block=12)


def test_burst_catalogue_follows_the_esa_rules(region):
    _, bursts = region
    ids = Counter(b.burst_ids[0] for b in bursts)
    # S1A + S1B: a burst id is imaged every 6 days (4-6 times in June 2020)
    assert set(ids.values()) <= {4, 5, 6}
    for b in bursts[:50]:
        rel, n, sw = b.burst_ids[0].split("_")
        assert int(rel) == b.relative_orbit and sw in ("IW1", "IW2", "IW3")
        assert 15 < b.footprint.area * 111 * 111 * np.cos(np.radians(38)) / 20 < 120


@pytest.mark.parametrize("source", ["archive", "asf"])
def test_a_missing_dem_is_one_clear_error_before_any_work(source, tmp_path):
    import subprocess
    import sys

    aoi = tmp_path / "aoi.wkt"
    aoi.write_text(shapely.box(-98.0, 38.0, -97.95, 38.05).wkt)
    store = tmp_path / "s.zarr"
    args = ["fetch", "--store", str(store), "--region", str(aoi), "-m", "s1grd", "--period",
            "2020-JJA", "--source", source, "--source-opt", f"{source}.archive={tmp_path}"]
    p = subprocess.run([sys.executable, "-m", "m3leo_tiles", *args], text=True,
                       capture_output=True)
    assert p.returncode == 2 and "DEM" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not store.exists()
    p = subprocess.run([sys.executable, "-m", "m3leo_tiles", *args, "--source-opt",
                        f"{source}.dem={tmp_path / 'nope.tif'}"], text=True, capture_output=True)
    assert p.returncode == 2 and "nope.tif" in p.stderr and not store.exists()
