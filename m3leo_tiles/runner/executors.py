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

On its first task a worker freezes what it has imported (`gc.freeze`): numpy, zarr, numba,
rasterio and the source's modules are ~170k objects that live as long as the process, and
every full collection walked them again: the one loky forces after a worker's first call took
0.35 s in an S1 worker (0.09 s frozen), and the first S1 unit of a worker, which allocates
enough to trigger several, ran in 2.9 s instead of 4.3 s (4-date simulated stack, 2 cores).
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

#: tasks queued per worker beyond the one it runs
AHEAD = 2

#: thread pools a worker's libraries size from the environment (joblib limits the same ones)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def worker_env(workers: int) -> dict[str, str]:
    """cores / workers threads per worker unless the user set them: N workers each running
    a Numba or BLAS pool as wide as the machine would oversubscribe the cores N times."""
    n = str(max(1, (os.cpu_count() or 1) // workers))
    env = {v: os.environ.get(v, n) for v in THREAD_VARS}
    env["ENABLE_IPC"] = os.environ.get("ENABLE_IPC", "1")  # TBB: one pool across workers
    return env


_frozen = False


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

    loky spawns fresh interpreters: no inherited sockets (the EE client needs that) and no
    inherited threads (zarr's event loop). The executor is loky's reusable one, as joblib's
    is, so a later run in the same process finds its workers warm.
    """

    def __init__(self, workers: int):
        from joblib.externals.loky import get_reusable_executor

        self.workers = workers
        self.executor = get_reusable_executor(max_workers=workers, timeout=300,
                                              env=worker_env(workers))

    def run(self, fn: Callable[..., Any], tasks: Iterable[tuple]) -> Generator[Any]:
        """fn(*task) for every task, results as they finish; closing the generator early
        (a full disk, Ctrl-C) stops the workers' remaining and running tasks."""
        todo = iter(tasks)
        running: set[Future] = set()
        finished = False
        try:
            while True:
                while len(running) < self.workers * (1 + AHEAD):
                    task = next(todo, None)
                    if task is None:
                        break
                    running.add(self.executor.submit(call_in_worker, fn, *task))
                if not running:
                    finished = True
                    return
                done, running = wait(running, return_when=FIRST_COMPLETED)
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


__all__ = ["AHEAD", "THREAD_VARS", "WorkerPool", "call_in_worker", "dask_workers", "run_dask",
           "run_inline", "worker_env"]
