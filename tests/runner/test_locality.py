"""The locality schedule, its cache hints and the cache replay (issue 20)."""

from __future__ import annotations

from m3leo_tiles.grid.tileref import refs_from_table
from m3leo_tiles.runner.inputs import UnitInputs, burst_cells
from m3leo_tiles.runner.locality import Schedule, components, hinted, replay, schedule
from m3leo_tiles.sources.base import WorkUnit
from tests.runner.helpers import tiles_table


def units_of(needs: list[dict[str, int]]) -> list[UnitInputs]:
    return [UnitInputs(f"u{i}", n) for i, n in enumerate(needs)]


def test_replay_downloads_each_burst_once_when_the_cache_holds_them_all():
    needs = units_of([{"f1#a": 5, "f1#b": 5}, {"f1#b": 5, "f2#c": 5}, {"f1#a": 5}])
    plan = Schedule(((0, 1, 2),))
    assert replay(plan, needs, [1, 1, 1], cache_bytes=100, workers=2) == 15


def test_refs_keep_a_burst_a_pending_unit_still_needs_lru_does_not():
    # cap 10 (two bursts), one worker: after u2 LRU drops f1#a, which u3 needs again
    needs = units_of([{"f1#a": 5}, {"f2#b": 5}, {"f3#c": 5}, {"f1#a": 5}])
    plan = Schedule(((0, 1, 2, 3),))
    assert replay(plan, needs, [1] * 4, 10, 1, policy="lru") == 20
    assert replay(plan, needs, [1] * 4, 10, 1, policy="refs") == 15


def test_holds_are_per_burst_a_burst_no_later_unit_reads_goes_first():
    # cap 10, one worker: u0 reads bursts a and b of frame f, u2 only a. When u1 needs room,
    # b (no later reader) is evicted, not a: holding whole frames would keep both and lose a
    needs = units_of([{"f#a": 5, "f#b": 5}, {"g#c": 5}, {"f#a": 5}])
    plan = Schedule(((0, 1, 2),))
    assert replay(plan, needs, [1] * 3, 10, 1, policy="refs") == 15
    assert replay(plan, needs, [1] * 3, 10, 1, policy="lru") == 20


def test_each_node_has_its_own_cache():
    needs = units_of([{"f1#a": 5}, {"f1#a": 5}])
    assert replay(Schedule(((0, 1),)), needs, [1, 1], 100, 1) == 5
    assert replay(Schedule(((0,), (1,))), needs, [1, 1], 100, 1) == 10


def test_units_sharing_items_run_together_and_hints_say_until_when():
    table = tiles_table(6)
    refs = {r.id: r for r in refs_from_table(table, list(table["id"]))}
    ids = sorted(refs)
    # u0/u2/u4 share frame A (a chain), u1 and u3 read nothing shared; u3 is the heaviest
    units = [WorkUnit("m", "p", (ids[0],), key="u0", items=("A",)),
             WorkUnit("m", "p", (ids[1],), key="u1", items=("B",)),
             WorkUnit("m", "p", (ids[2],), key="u2", items=("A", "C")),
             WorkUnit("m", "p", (ids[3], ids[4]), key="u3", items=("D",)),
             WorkUnit("m", "p", (ids[5],), key="u4", items=("C",))]
    assert sorted(map(sorted, components(units))) == [[0, 2, 4], [1], [3]]
    plan = schedule(units, refs, [1, 1, 1, 2, 1], nodes=1)
    (queue,) = plan.nodes
    assert queue[:3] in {(0, 2, 4), (4, 2, 0)} and set(queue[3:]) == {1, 3}  # group first
    hints = {u.key: u.hint for _, _, u in hinted(units, plan)}
    first, last = ("u0", "u4") if queue[0] == 0 else ("u4", "u0")
    assert hints[first].seq == 0 and hints["u2"].seq == 1 and hints[last].seq == 2
    assert hints["u2"].until == (2 if last == "u0" else 1, 2 if last == "u4" else 1)
    assert hints[first].until == (1,)  # A is read again by u2 (seq 1) when u0 comes first


def test_two_nodes_split_a_group_into_regions_of_equal_weight():
    table = tiles_table(8)
    refs = {r.id: r for r in refs_from_table(table, list(table["id"]))}
    ids = sorted(refs)
    units = [WorkUnit("m", "p", (t,), key=t, items=("A",)) for t in ids]
    plan = schedule(units, refs, [1] * 8, nodes=2)
    assert sorted(len(q) for q in plan.nodes) == [4, 4]
    assert sorted(i for q in plan.nodes for i in q) == list(range(8))


def test_burst_cells_cut_the_frame_along_north_south_whatever_its_shape():
    import numpy as np
    import shapely
    from shapely import affinity

    # S1 frames are wider across track (250 km) than along (~190 km), headings ~12 degrees
    # off north: whichever edge the envelope starts with, bursts stack along north-south
    for w, h in ((3.0, 10.0), (10.0, 3.0)):
        for angle in (-12.0, 0.0, 12.0):
            frame = affinity.rotate(shapely.box(0, 0, w, h), angle, origin="centroid")
            cells = burst_cells(frame, 10)
            assert len(cells) == 30 and abs(sum(c.area for c in cells) - w * h) < 1e-6
            centres = shapely.get_coordinates(shapely.centroid(cells))
            along = centres[3] - centres[0]  # the next burst of the same sub-swath
            assert abs(np.hypot(*along) - h / 10) < 1e-6
            assert abs(along[1]) > abs(along[0])  # north-south


def _where_am_i(k: int) -> tuple[int, str]:
    import time

    from distributed import get_worker

    time.sleep(0.05)
    return k, get_worker().address


def test_dask_runs_each_unit_on_the_worker_of_its_node():
    from distributed import LocalCluster

    from m3leo_tiles.runner.executors import dask_workers, run_dask

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        a, b = dask_workers(cluster.scheduler_address)
        where = [a, a, a, a, a, b]  # not what Dask would do alone (it spreads them)
        got = dict(run_dask(_where_am_i, [(k,) for k in range(6)], cluster.scheduler_address,
                            where))
    assert [got[k] for k in range(6)] == where
