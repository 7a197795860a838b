"""What a fresh worker has paid before its first unit runs (bench_store's `worker_start_s`).

`ready` stands in for `run_unit`: by the time a worker calls it, loky has spawned the
interpreter and unpickled the task, which imports the engine's worker side, the store writer
and the unit's source module: everything a worker pays before its first tile. It imports
nothing itself, so what it reports is the task's doing.
"""

from __future__ import annotations

import sys
import time
from typing import Any

#: libraries worth naming when a worker has them loaded
HEAVY = ("m3leo_tiles.sar", "numba", "rasterio", "xarray", "xarray_sentinel", "pandas",
         "pyarrow", "zarr", "ee", "asf_search", "torch", "dask", "scipy", "geopandas", "joblib",
         "pyproj")


def ready(fn: Any, *task: Any) -> tuple[float, list[str], float]:
    """The wall clock now, which HEAVY modules the worker holds (fn is not run) and the CPU
    seconds the worker has used so far (interpreter, loky, imports, unpickling: unlike the
    wall clock, stable on a machine others are loading)."""
    return time.time(), [m for m in HEAVY if m in sys.modules], time.process_time()
