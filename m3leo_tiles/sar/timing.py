"""Wall-clock seconds per processing stage, summed over a run (benchmarks read and reset it).

With tiles on several threads (tilepool.py) the sums add every thread's seconds: they say
where the work goes, and may add up to more than the run's wall time.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

#: accumulated wall seconds per stage name
STAGES: dict[str, float] = {}
_LOCK = threading.Lock()


class stage:
    """`with stage("geocode"): ...` adds the block's wall time to STAGES["geocode"]."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.t = 0.0

    def __enter__(self) -> None:
        self.t = time.perf_counter()

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        add(self.name, time.perf_counter() - self.t)


def add(name: str, seconds: float) -> None:
    with _LOCK:  # tile threads add at once; a lost update would hide their time
        STAGES[name] = STAGES.get(name, 0.0) + seconds
