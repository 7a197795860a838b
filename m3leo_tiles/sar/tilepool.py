"""The tiles of one call on several threads, each thread running the Numba kernels alone.

Why: one 448 x 448 tile-date is ~20 ms of kernels in ~30 parallel regions. On a small machine
every region waits for its slowest thread (another process, a descheduled vCPU), and the
Python and NumPy between the regions run on one core. Whole tiles per thread keep every core
busy with no barrier inside a tile, in one process, so the products' open files, parsed
metadata and calibration caches stay shared. The kernels release the GIL (Numba nopython
code, NumPy's loops and GDAL do; SLC lines are read by pread inside a kernel).

A thread-safe Numba threading layer (OpenMP or TBB) is required: with the workqueue layer,
which aborts on concurrent launches, tiles run one after another as before. Inside a run's
worker process, which the runner gives one Numba thread per worker (executors.THREAD_VARS),
there is one thread and nothing changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numba

T = TypeVar("T")
U = TypeVar("U")

#: Numba threading layers that take parallel launches from several threads at once
THREADSAFE_LAYERS = ("omp", "tbb")


def _one_numba_thread() -> None:
    numba.set_num_threads(1)  # thread-local: this tile thread's kernels run on it alone


def _layer_threadsafe() -> bool | None:
    """Whether Numba's threading layer takes concurrent launches; None before the first
    parallel kernel has chosen a layer."""
    try:
        return numba.threading_layer() in THREADSAFE_LAYERS
    except ValueError:
        return None


def map_tiles(fn: Callable[[T], U], tiles: Iterable[T], threads: int | None = None
              ) -> Iterator[U]:
    """fn(tile) for each tile, in order, on up to `threads` threads (default: the caller's
    Numba thread count).

    The first tiles run in the calling thread until a parallel kernel has picked Numba's
    layer (and filled the metadata caches the others share); at most threads + 1 results
    are held ahead of the consumer. An exception from fn is raised at its tile, as a plain
    loop would; closing the iterator early waits for the tiles in flight, so the caller may
    close the products they read as soon as it returns.
    """
    n = numba.get_num_threads() if threads is None else threads
    it = iter(tiles)
    if n < 2:
        yield from map(fn, it)
        return
    for tile in it:
        yield fn(tile)
        safe = _layer_threadsafe()
        if safe is not None:
            break
    else:
        return
    if not safe:
        yield from map(fn, it)
        return
    pool = ThreadPoolExecutor(n, thread_name_prefix="m3leo-tile", initializer=_one_numba_thread)
    ahead: deque[Future[U]] = deque()
    try:
        for tile in it:
            ahead.append(pool.submit(fn, tile))
            if len(ahead) > n:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()
    finally:
        for f in ahead:
            f.cancel()
        pool.shutdown(wait=True)


__all__ = ["THREADSAFE_LAYERS", "map_tiles"]
