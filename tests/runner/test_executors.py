"""While the workers start, the coordinator runs light tasks itself, never heavy ones."""

from __future__ import annotations

import os

from m3leo_tiles.runner.executors import WorkerPool, light_task


class Light:
    light = True


class Heavy:
    light = False


def where(kind: object, i: int) -> tuple[int, int]:
    return os.getpid(), i


def test_light_tasks_start_in_the_coordinator_heavy_ones_never():
    assert light_task((Light(), 0)) and not light_task((Heavy(), 0)) and not light_task(())
    pool = WorkerPool(2)
    try:
        light = list(pool.run(where, [(Light(), i) for i in range(12)]))
        heavy = list(pool.run(where, [(Heavy(), i) for i in range(12)]))
    finally:
        pool.stop()
    for got in (light, heavy):  # every task ran once
        assert sorted(i for _, i in got) == list(range(12))
    here = [i for pid, i in light if pid == os.getpid()]
    # the first task before any worker is spawned, then the first beyond the workers' queue
    assert here[:2] == [0, 1 + 2 * 3]
    assert any(pid != os.getpid() for pid, _ in light)  # the workers took over
    assert all(pid != os.getpid() for pid, _ in heavy)
