"""Where work units run: local worker processes (loky), or a Dask cluster.

Tasks go out in the order given (the engine puts the longest first: Graham's LPT rule, so a run
does not end on one long unit started last) and `AHEAD` per worker wait in loky's queue, so a
worker that finishes a unit starts the next at once instead of waiting on the coordinator, and
a region-scale plan is never pickled all at once.

No warm-up task is sent ahead of the units: loky takes a worker's memory reference after its
first call and replaces a worker that grew 300 MB past it, so a light first call makes every
worker that then opens an S1 stack look like a leak and restart cold (measured: each second
unit ran in a fresh process, 8 s instead of 1 s). On 2 cores, imports in the workers would
compete with the coordinator's planning anyway.

Workers fork from a server process (multiprocessing's forkserver, where the platform has
one) that imported the engine's worker side once: numpy, the store's chunk writer, the
sources' base, loky's worker loop. A worker then starts in a few hundredths of a second
instead of paying ~0.2 s of imports (a run restarts workers, and every pool of a process
starts its own); it imports its source's own libraries (GDAL, Numba, the EE client) itself,
so an Earth Engine worker never holds the SAR stack, and it does not re-import the
coordinator's main module (forkprep.py). The server is a fresh interpreter (no inherited
sockets or threads), started once per coordinator process. `M3LEO_WORKER_START=loky` spawns
every worker as a fresh interpreter instead (loky's own start).

On its first task a worker freezes what it has imported (`gc.freeze`): numpy, zarr, numba,
rasterio and the source's modules are ~170k objects that live as long as the process, and
every full collection walked them again: the one loky forces after a worker's first call took
0.35 s in an S1 worker (0.09 s frozen), and the first S1 unit of a worker, which allocates
enough to trigger several, ran in 2.9 s instead of 4.3 s (4-date simulated stack, 2 cores).
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import warnings
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

#: tasks queued per worker beyond the one it runs
AHEAD = 2

#: thread pools a worker's libraries size from the environment (joblib limits the same ones)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMEXPR_NUM_THREADS")
#: the BLAS pools numpy starts as it is imported, which happens in the fork server: one
#: thread each there (a worker's BLAS is never its hot path; Numba and OpenMP, which load in
#: the worker, get worker_env's share through _apply_env)
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS")
#: what the fork server imports once for every worker: loky's worker loop, the engine's worker
#: side and forkprep; never a source's own libraries
PRELOAD = ("m3leo_tiles.runner.forkprep", "loky.process_executor", "m3leo_tiles.runner.engine",
           "m3leo_tiles.store.chunks")


def start_method() -> str:
    """"forkserver" where the platform has it (Linux, macOS), else "loky";
    `M3LEO_WORKER_START=loky` asks for loky's spawn."""
    import multiprocessing as mp

    have = "forkserver" in mp.get_all_start_methods()
    return "forkserver" if have and os.environ.get("M3LEO_WORKER_START") != "loky" else "loky"


def start_server() -> None:
    """Start this process's fork server with PRELOAD imported (nothing once it runs)."""
    import multiprocessing as mp
    from multiprocessing import forkserver

    mp.set_forkserver_preload(list(PRELOAD))
    mark = {"M3LEO_FORK_SERVER": "1", **{v: "1" for v in BLAS_VARS if v not in os.environ}}
    os.environ.update(mark)  # the server's environment, taken when it starts
    try:
        forkserver.ensure_running()
    finally:
        for v in mark:
            os.environ.pop(v, None)


def _apply_env(env: dict[str, str]) -> None:
    """A forked worker's thread settings (loky's `env` reaches spawned workers only), set
    before the worker imports Numba or loads OpenMP."""
    os.environ.update(env)


def _cgroup_quota(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    """CPUs the process's cgroup may use (quota / period), None when unlimited or unknown.

    v2: `cpu.max` ("max 100000" or "200000 100000") in the process's group or any parent;
    v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` under the `cpu` controller (quota -1 is
    unlimited). The tightest limit on the path wins, as the kernel enforces every level."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        v1 = "cpu" in controllers.split(",")
        if not v1 and controllers:
            continue
        base = cgroup_root
        if v1:  # mounted as cpu/ or cpu,cpuacct/ depending on the distribution
            base = next((cgroup_root / d for d in ("cpu", "cpu,cpuacct", "cpuacct,cpu")
                         if (cgroup_root / d).is_dir()), cgroup_root / "cpu")
        here = base / rel.lstrip("/")
        for d in (here, *here.parents):
            try:
                if v1:
                    quota = int((d / "cpu.cfs_quota_us").read_text())
                    period = int((d / "cpu.cfs_period_us").read_text())
                else:
                    quota_s, period_s = (d / "cpu.max").read_text().split()
                    quota, period = (-1 if quota_s == "max" else int(quota_s)), int(period_s)
            except (OSError, ValueError):
                quota, period = -1, 0
            if quota > 0 and period > 0:
                limits.append(quota / period)
            if d == base:
                break
    return min(limits) if limits else None


def usable_cpus(cgroup_root: Path = Path("/sys/fs/cgroup"),
                proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process may actually run on: the affinity mask (taskset, a batch
    scheduler's cpuset), lowered to a cgroup CPU quota (a container's `--cpus`), at least 1.
    `os.cpu_count()` counts the whole machine and would oversubscribe both."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows: no affinity API
        n = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)


def worker_env(workers: int) -> dict[str, str]:
    """usable CPUs / workers threads per worker unless the user set them: N workers each
    running a Numba or BLAS pool as wide as the machine would oversubscribe the cores N
    times."""
    n = str(max(1, usable_cpus() // workers))
    env = {v: os.environ.get(v, n) for v in THREAD_VARS}
    env["ENABLE_IPC"] = os.environ.get("ENABLE_IPC", "1")  # TBB: one pool across workers
    return env


_frozen = False


def light_task(task: tuple) -> bool:
    """A task the coordinator may run itself while workers start: its first argument (the
    engine's tasks start with their Source) says `light = True` (a unit costs about a chunk
    write and needs no library the coordinator lacks; never an S1 unit or a network call)."""
    return bool(task) and getattr(task[0], "light", False) is True


def call_in_worker(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in a worker, the worker's long-lived objects frozen first (see above).

    Only what exists at the first call is frozen (modules, and the first task, which is
    small); objects a unit makes are collected as usual."""
    global _frozen
    if not _frozen:
        gc.freeze()
        _frozen = True
    return fn(*args)


class WorkerPool:
    """Local worker processes (started on the first task).

    Workers fork from the fork server or loky spawns them (see above): either way no
    inherited sockets (the EE client needs that) and no inherited threads (zarr's event
    loop). The executor is loky's reusable one, as joblib's is, so a later run in the same
    process finds its workers warm. It is loky itself, not
    the copy inside joblib: a worker runs loky's module to start, and joblib's package
    import (its parallel backends, memory cache, asyncio) cost every worker ~0.15 s.
    """

    def __init__(self, workers: int):
        from loky import get_reusable_executor

        self.workers = workers
        env = worker_env(workers)
        if start_method() == "forkserver":
            start_server()
            self.executor = get_reusable_executor(max_workers=workers, timeout=300,
                                                  context="forkserver",
                                                  initializer=_apply_env, initargs=(env,))
        else:
            self.executor = get_reusable_executor(max_workers=workers, timeout=300, env=env)

    def run(self, fn: Callable[..., Any], tasks: Iterable[tuple]) -> Generator[Any]:
        """fn(*task) for every task, results as they finish; closing the generator early
        (a full disk, Ctrl-C) stops the workers' remaining and running tasks.

        Until the first worker answers (spawn and imports: ~0.3-0.5 s, several times a small
        unit), the coordinator runs light tasks itself (`light_task`), so a run's first
        chunks do not wait for the workers' start-up. The first light task runs before the
        workers are spawned: on two cores, starting interpreters would slow it by half."""
        todo = iter(tasks)
        running: set[Future] = set()
        finished = False
        starting = True
        try:
            first = next(todo, None)
            if first is not None and light_task(first):
                yield fn(*first)
            elif first is not None:
                todo = itertools.chain([first], todo)
            while True:
                while len(running) < self.workers * (1 + AHEAD):
                    task = next(todo, None)
                    if task is None:
                        break
                    running.add(self.executor.submit(call_in_worker, fn, *task))
                if not running:
                    finished = True
                    return
                if starting and not any(f.done() for f in running):
                    task = next(todo, None)
                    if task is not None and light_task(task):
                        yield fn(*task)
                        continue
                    if task is not None:  # heavy: it goes to the workers like the rest
                        running.add(self.executor.submit(call_in_worker, fn, *task))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                starting = False
                for fut in done:
                    yield fut.result()
        finally:
            if not finished:
                self.stop()

    def stop(self) -> None:
        """Cancel what is queued and end the workers now (what they were writing is a
        `.partial` file the next run removes, never a torn chunk)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.executor.shutdown(wait=True, kill_workers=True)


def run_inline(fn: Callable[..., Any], tasks: Iterable[tuple]) -> Generator[Any]:
    for task in tasks:
        yield fn(*task)


def dask_workers(scheduler: str) -> list[str]:
    """The cluster's worker addresses, sorted (the engine gives each its share of units)."""
    from distributed import Client

    with Client(scheduler) as client:
        return sorted(client.scheduler_info()["workers"])


def run_dask(fn: Callable[..., Any], tasks: Sequence[tuple], scheduler: str,
             where: Sequence[str] | None = None) -> Generator[Any]:
    """On a Dask cluster; tasks are submitted in order (Dask runs earlier submissions first),
    task i preferably on worker `where[i]` (its cache holds what the task reads; if that
    worker is gone, another takes it)."""
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        futures = [client.submit(fn, *t, pure=False, workers=[where[i]] if where else None,
                                 allow_other_workers=bool(where))
                   for i, t in enumerate(tasks)]
        for fut in as_completed(futures):
            yield fut.result()


__all__ = ["AHEAD", "THREAD_VARS", "WorkerPool", "call_in_worker", "dask_workers", "light_task",
           "run_dask", "run_inline", "usable_cpus", "worker_env"]
