"""Where work units run: a warm pool of local worker processes (loky), or a Dask cluster.

The local pool is started before the coordinator writes metadata and plans, and each worker
imports the modules its units need at once, so worker start-up (a fresh interpreter importing
numpy, zarr and the source's stack: about a second on 2 cores) overlaps the coordinator's work
instead of idling behind it. Tasks go out in the order given (the engine puts the longest
first: Graham's LPT rule, so a run does not end on one long unit started last) and at most
`AHEAD` per worker wait in the queue, so workers never wait on the coordinator and a
region-scale plan is not pickled all at once.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

#: tasks queued per worker beyond the one it runs
AHEAD = 2


def modules_of(objects: Iterable[object]) -> tuple[str, ...]:
    """The modules that define these objects' classes and their bases (what unpickling them
    in a worker imports), in first-seen order."""
    out: dict[str, None] = {}
    for obj in objects:
        for cls in type(obj).__mro__:
            if cls.__module__ not in ("__main__", "builtins", "abc"):
                out.setdefault(cls.__module__)
    return tuple(out)


def import_modules(modules: Sequence[str]) -> int:
    """A worker's warm-up: import what its units will need; returns its pid."""
    for name in modules:
        importlib.import_module(name)
    return os.getpid()


class WorkerPool:
    """Local worker processes, started (and warming up) as soon as the pool is made.

    loky spawns fresh interpreters: no inherited sockets (the EE client needs that) and no
    inherited threads (zarr's event loop). The executor is loky's reusable one, so a later run
    in the same process finds its workers warm.
    """

    def __init__(self, workers: int, modules: Sequence[str] = ()):
        from joblib.externals.loky import get_reusable_executor

        self.workers = workers
        self.executor = get_reusable_executor(max_workers=workers, timeout=300)
        for _ in range(workers):
            self.executor.submit(import_modules, tuple(modules))

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
                    running.add(self.executor.submit(fn, *task))
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


def run_dask(fn: Callable[..., Any], tasks: Sequence[tuple], scheduler: str) -> Generator[Any]:
    """On a Dask cluster; tasks are submitted in order (Dask runs earlier submissions first)."""
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        futures = [client.submit(fn, *t, pure=False) for t in tasks]
        for fut in as_completed(futures):
            yield fut.result()


__all__ = ["AHEAD", "WorkerPool", "import_modules", "modules_of", "run_dask", "run_inline"]
