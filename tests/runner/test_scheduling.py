"""How the engine hands units to workers: longest first, the same chunks whatever the count."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import tests.runner.synthetic as syn
from m3leo_tiles.runner.engine import unit_weight
from m3leo_tiles.runner.executors import AHEAD, WorkerPool, usable_cpus, worker_env
from m3leo_tiles.sources.base import Target, WorkUnit
from tests.runner.helpers import tiles_table
from tests.runner.test_engine import chunk_digests, run

SIZES = (1, 3, 2, 1, 4)  # tiles per unit, in the order the source plans them


class SizedSource(syn.SyntheticSource):
    """Plans units of the given sizes and logs which unit each read starts (any process)."""

    name = "sized"

    def __init__(self, sizes: tuple[int, ...], log: str, delay: float = 0.0):
        super().__init__(delay=delay)
        self.sizes, self.log = sizes, log

    def plan(self, modality, period, tiles):
        ids, out, i = [t.id for t in tiles], [], 0
        for k, n in enumerate(self.sizes):
            out.append(WorkUnit(modality.name, period.label, tuple(ids[i:i + n]), key=f"u{k}"))
            i += n
        return out

    def read(self, unit, tiles, modality, period):
        with open(self.log, "a") as f:
            f.write(unit.key + "\n")
        yield from super().read(unit, tiles, modality, period)


def started(log: Path) -> list[str]:
    return log.read_text().split()


def test_units_run_longest_first(tmp_path):
    table = tiles_table(sum(SIZES))
    log = tmp_path / "one.log"
    s, _ = run(str(tmp_path / "one.zarr"), table, SizedSource(SIZES, str(log)), workers=1)
    assert s.done == sum(SIZES) and s.units == len(SIZES)
    # by size, equal sizes in plan order
    assert started(log) == ["u4", "u1", "u2", "u0", "u3"]


def test_two_workers_start_the_two_longest_units_and_write_the_same_chunks(tmp_path):
    table = tiles_table(sum(SIZES))
    one, two = str(tmp_path / "one.zarr"), str(tmp_path / "two.zarr")
    run(one, table, SizedSource(SIZES, str(tmp_path / "one.log")), workers=1)
    log = tmp_path / "two.log"
    s, _ = run(two, table, SizedSource(SIZES, str(log), delay=0.2), workers=2)
    assert s.done == sum(SIZES) and s.failed == 0
    assert sorted(started(log)) == [f"u{k}" for k in range(len(SIZES))]
    assert set(started(log)[:2]) == {"u4", "u1"}
    assert chunk_digests(one) == chunk_digests(two) and len(chunk_digests(one)) == sum(SIZES)


def test_unit_weight_counts_every_chunk_a_unit_writes():
    u = WorkUnit("synth", "2020", ("a", "b"), more=(Target("synth40", "2020", ("a", "b", "c")),))
    assert unit_weight(u) == 5


def _mark(folder: str, k: int) -> int:
    """Leaves a file per task started; the worker's pid for the caller."""
    import os
    import time

    Path(folder, str(k)).touch()
    time.sleep(0.05)
    return os.getpid()


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_worker_pool_yields_every_result_and_stops_early(tmp_path):
    results = WorkerPool(2).run(_mark, [(str(tmp_path), k) for k in range(40)])
    pid = next(results)
    results.close()  # a consumer that stops (full disk, Ctrl-C) stops the pool's tasks
    # the worker ended (not left running its queue) and the pending tasks never started:
    # at most the ones running or already handed to a worker's queue
    assert not _alive(pid)
    started_now = len(list(tmp_path.iterdir()))
    time.sleep(0.3)
    assert len(list(tmp_path.iterdir())) == started_now <= 2 * (1 + AHEAD)
    assert sorted(WorkerPool(2).run(pow, [(3, k) for k in range(5)])) == [1, 3, 9, 27, 81]


def _frozen_count() -> int:
    import gc

    return gc.get_freeze_count()


def test_a_worker_freezes_its_imports_before_its_first_task():
    # what the worker imported is frozen; the coordinator's own collector is untouched
    counts = list(WorkerPool(2).run(_frozen_count, [()] * 4))
    assert len(counts) == 4 and min(counts) > 10_000
    assert _frozen_count() == 0


def _threads() -> tuple[str | None, str | None]:
    import os

    return os.environ.get("NUMBA_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS")


def test_workers_share_the_cores_instead_of_each_taking_all(monkeypatch):
    import os

    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's own setting is kept
    want = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert set(WorkerPool(2).run(_threads, [()] * 3)) == {(want, "3")}


@pytest.fixture
def one_cpu():
    """This process pinned to one of its CPUs (as `taskset -c 0` would), then restored."""
    import os

    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mask)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, mask)


def test_thread_count_follows_the_affinity_mask_not_the_machine(monkeypatch, one_cpu):
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    # one CPU in the mask: one thread per worker, however many CPUs the machine has
    assert worker_env(1)["NUMBA_NUM_THREADS"] == "1"


def _cgroup(tmp_path: Path, v2: dict[str, str] | None = None,
            v1: dict[str, tuple[int, int]] | None = None) -> tuple[Path, Path]:
    """A /sys/fs/cgroup tree and a /proc/self/cgroup for a process in group /job/step."""
    root, proc = tmp_path / "cgroup", tmp_path / "proc_cgroup"
    lines = []
    for rel, cpu_max in (v2 or {}).items():
        (root / rel).mkdir(parents=True, exist_ok=True)
        (root / rel / "cpu.max").write_text(cpu_max + "\n")
    if v2 is not None:
        lines.append("0::/job/step")
    for rel, (quota, period) in (v1 or {}).items():
        d = root / "cpu,cpuacct" / rel
        d.mkdir(parents=True, exist_ok=True)
        (d / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        (d / "cpu.cfs_period_us").write_text(f"{period}\n")
    if v1 is not None:
        lines += ["4:memory:/job/step", "3:cpu,cpuacct:/job/step"]
    proc.write_text("\n".join(lines) + "\n")
    return root, proc


@pytest.mark.parametrize(("v2", "v1", "cpus"), [
    ({"": "max 100000", "job": "150000 100000", "job/step": "max 100000"}, None, 2),
    ({"job/step": "100000 100000"}, None, 1),
    ({"job/step": "max 100000"}, None, None),
    (None, {"": (-1, 100000), "job": (50000, 100000), "job/step": (-1, 100000)}, 1),
    (None, {"job/step": (-1, 100000)}, None),
], ids=["v2-parent-1.5", "v2-own-1", "v2-unlimited", "v1-parent-0.5", "v1-unlimited"])
def test_thread_count_follows_the_cgroup_cpu_quota(tmp_path, monkeypatch, v2, v1, cpus):
    """A container's --cpus quota (at its own or a parent cgroup, v1 or v2) caps the count;
    a fractional quota rounds up (1.5 CPUs keep two threads busy half the time)."""
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    root, proc = _cgroup(tmp_path, v2, v1)
    assert usable_cpus(root, proc) == (cpus or 8)
