"""Tiles on several threads: order, errors, early close, one Numba thread per tile thread."""

from __future__ import annotations

import threading
import time

import numba
import numpy as np
import pytest

from m3leo_tiles.sar import tilepool
from m3leo_tiles.sar.kernels import interp_bilinear
from m3leo_tiles.sar.tilepool import map_tiles


@pytest.fixture(autouse=True)
def _layer_chosen() -> None:
    """A parallel kernel has run, so Numba's threading layer is known (as after a tile)."""
    interp_bilinear(np.zeros((2, 2), np.float32), 0.0, 0.0, np.zeros(1), np.zeros(1),
                    np.zeros(0, np.int64), np.zeros(1, np.float32))
    if numba.threading_layer() not in tilepool.THREADSAFE_LAYERS:
        pytest.skip(f"Numba's {numba.threading_layer()} layer: tiles run one by one")


def test_tiles_come_back_in_order_from_several_threads() -> None:
    seen: set[str] = set()

    def fn(k: int) -> int:
        seen.add(threading.current_thread().name)
        time.sleep(0.02 * ((7 * k) % 5))  # later tiles often finish first
        return k * k

    assert list(map_tiles(fn, range(20), threads=3)) == [k * k for k in range(20)]
    assert len({n for n in seen if n.startswith("m3leo-tile")}) >= 2


def test_tile_threads_run_numba_kernels_alone() -> None:
    counts: list[int] = []

    def fn(k: int) -> int:
        counts.append(numba.get_num_threads())
        return k

    before = numba.get_num_threads()
    list(map_tiles(fn, range(8), threads=2))
    # the first tile runs in the caller with its own count; every tile thread uses one
    assert counts[1:] == [1] * 7
    assert numba.get_num_threads() == before


def test_a_tile_error_is_raised_at_its_tile() -> None:
    def fn(k: int) -> int:
        if k == 5:
            raise ValueError("tile 5 is bad")
        return k

    got: list[int] = []
    with pytest.raises(ValueError, match="tile 5 is bad"):
        for v in map_tiles(fn, range(10), threads=2):
            got.append(v)
    assert got == [0, 1, 2, 3, 4]


def test_closing_early_waits_for_the_tiles_in_flight() -> None:
    running = [0]
    lock = threading.Lock()

    def fn(k: int) -> int:
        with lock:
            running[0] += 1
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return k

    it = map_tiles(fn, range(50), threads=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()  # e.g. iter_pair's caller stops: the products are closed right after
    assert running[0] == 0


def test_without_a_threadsafe_layer_tiles_run_in_the_caller(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tilepool, "_layer_threadsafe", lambda: False)
    names = []

    def fn(k: int) -> int:
        names.append(threading.current_thread().name)
        return k

    assert list(map_tiles(fn, range(6), threads=4)) == list(range(6))
    assert set(names) == {threading.current_thread().name}
