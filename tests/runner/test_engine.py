"""The run engine: retries, permanent failures, nodata, determinism, Dask."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import tests.runner.synthetic as syn
from m3leo_tiles.grid.tileref import refs_from_table
from m3leo_tiles.periods import expand
from m3leo_tiles.runner.engine import ModalityJob, UnitRetryPolicy, execute
from m3leo_tiles.runner.state import StateDB
from m3leo_tiles.store.store import TileStore
from tests.runner.helpers import tiles_table

FAST = UnitRetryPolicy(tries_per_run=3, base_delay=0.0, max_attempts=2)


def run(url: str, table, source, workers=1, scheduler=None, retry_failed=False, policy=FAST):
    store = TileStore.open(url) if TileStore.exists(url) else TileStore.create(url, "t", table, 4480)
    db = StateDB(url + ".state.sqlite")
    job = ModalityJob(syn.SYNTH, source, expand("annual", "2020"))
    s = execute(store, db, [job], refs_from_table(table), workers=workers, scheduler=scheduler,
                retry_failed=retry_failed, policy=policy)
    failures = db.failures()
    db.close()
    return s, failures


def chunk_digests(url: str) -> dict[str, str]:
    root = Path(url) / "synth" / "synth" / "c"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_transient_error_is_retried_within_the_run(tmp_path):
    table = tiles_table(3)
    t = table["id"][1]
    src = syn.SyntheticSource(fail={t: "transient"}, transient_times=2,
                              counter_dir=str(tmp_path))
    s, failures = run(str(tmp_path / "s.zarr"), table, src)
    assert (s.done, s.failed) == (3, 0)
    assert (tmp_path / t).read_text() == "3"  # two 503s, then success


def test_persistent_transient_failure_is_retried_next_run_up_to_a_bound(tmp_path):
    table = tiles_table(2)
    t = table["id"][0]
    src = syn.SyntheticSource(fail={t: "transient"}, transient_times=99, counter_dir=str(tmp_path))
    url = str(tmp_path / "s.zarr")
    s, failures = run(url, table, src)
    assert (s.done, s.failed, s.transient_failed) == (1, 1, 1)
    assert failures[0][2] == t and failures[0][4] == 1 and "503" in failures[0][5]
    s, _ = run(url, table, src)  # attempts 1 < 2: retried
    assert (s.failed, s.skipped) == (1, 1)
    s, _ = run(url, table, src)  # attempts reached the bound: left alone
    assert (s.failed, s.skipped, s.units) == (0, 2, 0)


def test_permanent_failure_is_recorded_and_skipped_unless_retry_failed(tmp_path):
    table = tiles_table(3)
    bad = table["id"][2]
    url = str(tmp_path / "s.zarr")
    s, failures = run(url, table, syn.SyntheticSource(fail={bad: "permanent"}))
    assert (s.done, s.failed) == (2, 1)
    assert "synthetic permanent failure" in failures[0][5] and failures[0][4] == 0
    assert list(s.reasons) == [f"PermanentError: synthetic permanent failure for {bad}"]
    s, _ = run(url, table, syn.SyntheticSource())
    assert s.units == 0
    s, failures = run(url, table, syn.SyntheticSource(), retry_failed=True)
    assert (s.done, failures) == (1, [])


def test_nodata_is_not_a_failure(tmp_path):
    table = tiles_table(2)
    s, failures = run(str(tmp_path / "s.zarr"), table,
                      syn.SyntheticSource(nodata=[table["id"][0]]))
    assert (s.done, s.nodata, s.failed) == (1, 1, 0)


def test_chunks_do_not_depend_on_worker_count(tmp_path):
    table = tiles_table(6)
    a, b = str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")
    run(a, table, syn.SyntheticSource(group=2), workers=1)
    s, _ = run(b, table, syn.SyntheticSource(group=1), workers=2)
    assert s.done == 6
    assert chunk_digests(a) == chunk_digests(b) and len(chunk_digests(a)) == 6


@pytest.mark.timeout(180)
def test_dask_cluster_gives_the_joblib_result(tmp_path):
    distributed = pytest.importorskip("distributed")
    table = tiles_table(4)
    a, b = str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")
    run(a, table, syn.SyntheticSource(), workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, processes=True) as cluster:
        s, _ = run(b, table, syn.SyntheticSource(), scheduler=cluster.scheduler_address)
    assert s.done == 4
    assert chunk_digests(a) == chunk_digests(b)


def _joint_run(url: str, table, source, workers=1, scheduler=None):
    store = TileStore.open(url) if TileStore.exists(url) else TileStore.create(url, "t", table, 4480)
    db = StateDB(url + ".state.sqlite")
    periods = expand("annual", "2020")
    jobs = [ModalityJob(syn.SYNTH, source, periods), ModalityJob(syn.SYNTH40, source, periods)]
    s = execute(store, db, jobs, refs_from_table(table), workers=workers, scheduler=scheduler,
                policy=FAST)
    states = {m: db.states(m, "2020") for m in ("synth", "synth40")}
    db.close()
    return s, states


def test_one_unit_writes_several_layers_and_each_is_recorded(tmp_path):
    table = tiles_table(6)
    ids = list(table["id"])
    src = syn.JointSource(group=3, counter_dir=str(tmp_path), nodata=[ids[4]])
    url = str(tmp_path / "s.zarr")
    s, states = _joint_run(url, table, src, workers=2)
    assert (s.units, s.done, s.nodata, s.failed) == (2, 11, 1, 0)
    # each tile was read once for both layers
    assert sorted(int((tmp_path / t).read_text()) for t in ids) == [1] * 6
    assert {t: st.status for t, st in states["synth"].items()} == dict.fromkeys(ids, "done")
    assert states["synth40"][ids[4]].status == "nodata"
    # the 40 m layer's chunks hold what the source computed for it
    arr = TileStore.open(url).root["synth40"]["synth40"]
    got = arr[ids.index(ids[1]), 0]
    assert got.shape == (3, 112, 112)
    assert (got == syn.synth_tile(ids[1], "2020", 3, 112).astype("float32")).all()
    # a rerun plans nothing; forgetting one layer of one tile re-plans only that target
    s, _ = _joint_run(url, table, src)
    assert (s.units, s.skipped) == (0, 12)  # nodata of a settled period is final too
    db = StateDB(url + ".state.sqlite")
    db.conn.execute("DELETE FROM units WHERE modality='synth' AND tile=?", (ids[0],))
    db.conn.commit()
    db.close()
    s, _ = _joint_run(url, table, src)
    assert (s.units, s.done) == (1, 1)
    assert int((tmp_path / ids[0]).read_text()) == 2


def test_a_failing_joint_unit_fails_every_target_it_holds(tmp_path):
    table = tiles_table(4)
    ids = sorted(table["id"])  # the order JointSource groups them in
    src = syn.JointSource(group=2, fail={ids[3]: "permanent"})
    s, states = _joint_run(str(tmp_path / "s.zarr"), table, src)
    assert (s.done, s.failed) == (4, 4)
    for m in ("synth", "synth40"):
        assert {states[m][t].status for t in ids[2:]} == {"failed"}
        assert "permanent failure" in states[m][ids[2]].error


def test_refresh_runs_the_s1_layers_of_a_job_in_one_fetch():
    from m3leo_tiles.runner.refresh import _batches

    assert _batches(["s2", "s1grd", "dem", "s1coh", "s1ifg"]) == \
        [["s2"], ["dem"], ["s1grd", "s1coh", "s1ifg"]]
    assert _batches(["s2"]) == [["s2"]]


@pytest.mark.timeout(180)
def test_joint_units_on_dask_give_the_joblib_chunks(tmp_path):
    distributed = pytest.importorskip("distributed")
    table = tiles_table(4)
    a, b = str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")
    _joint_run(a, table, syn.JointSource(group=2), workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, processes=True) as cluster:
        s, states = _joint_run(b, table, syn.JointSource(group=2),
                               scheduler=cluster.scheduler_address)
    assert (s.units, s.done) == (2, 8)
    assert {st.status for m in states for st in states[m].values()} == {"done"}
    for m in ("synth", "synth40"):
        root_a, root_b = Path(a) / m / m / "c", Path(b) / m / m / "c"
        da = {str(p.relative_to(root_a)): p.read_bytes() for p in root_a.rglob("*") if p.is_file()}
        db_ = {str(p.relative_to(root_b)): p.read_bytes() for p in root_b.rglob("*")
               if p.is_file()}
        assert da == db_ and len(da) == 4
