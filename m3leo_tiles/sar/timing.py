"""Wall-clock seconds per processing stage, summed over a run (benchmarks read and reset it)."""

from __future__ import annotations

import time
from types import TracebackType

#: accumulated wall seconds per stage name
STAGES: dict[str, float] = {}


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
    STAGES[name] = STAGES.get(name, 0.0) + seconds
