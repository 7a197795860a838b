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


SCRIPT = '''
import os, sys
from pathlib import Path
if __name__ != "__main__":  # a worker importing this script again leaves a mark
    Path(sys.argv[1] if len(sys.argv) > 1 else os.environ["MARK_DIR"], f"{os.getpid()}").touch()
from m3leo_tiles.runner.executors import WorkerPool, start_method

def square(x):  # defined in __main__: reaches the workers by value
    return x * x, os.getpid()

if __name__ == "__main__":
    pool = WorkerPool(2)
    try:
        got = sorted(pool.run(square, [(k,) for k in range(6)]))
    finally:
        pool.stop()
    assert [v for v, _ in got] == [k * k for k in range(6)], got
    assert any(pid != os.getpid() for _, pid in got)
    print(start_method())
'''


def test_workers_do_not_import_the_coordinators_main_script(tmp_path):
    """A script that starts a pool is not run again in each worker, as a spawned worker
    would (its imports in every worker, its unguarded code run again)."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "coordinator.py"
    script.write_text(SCRIPT)
    marks = tmp_path / "marks"
    marks.mkdir()
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "MARK_DIR": str(marks)}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] in ("forkserver", "loky")
    assert list(marks.iterdir()) == []
