"""How the engine hands units to workers: longest first, the same chunks whatever the count."""

from __future__ import annotations

from pathlib import Path

import tests.runner.synthetic as syn
from m3leo_tiles.runner.engine import unit_weight
from m3leo_tiles.runner.executors import WorkerPool
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


def test_worker_pool_yields_every_result_and_stops_early():
    results = WorkerPool(2).run(pow, [(2, k) for k in range(40)])
    assert next(results) in {2**k for k in range(40)}
    results.close()  # a consumer that stops (full disk, Ctrl-C) stops the pool's tasks
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
    want = str(max(1, (os.cpu_count() or 1) // 2))
    assert set(WorkerPool(2).run(_threads, [()] * 3)) == {(want, "3")}
