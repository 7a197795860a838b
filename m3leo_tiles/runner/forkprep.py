"""Imported by the workers' fork server only (executors.PRELOAD): its workers do not re-import
the coordinator's main module.

A process started by multiprocessing's fork server, like a spawned one, first runs the
parent's main script again as `__mp_main__`: under a benchmark or a user's script that is
every import the script makes (zarr, pandas, geopandas under bench_store: the store ratio fell
from 1.30 to 1.09), and a script without a main guard would run again. Loky's own start skips
that step and carries functions defined in `__main__` by value (cloudpickle); the fork server's
workers do the same once this module has wrapped `multiprocessing.spawn.prepare` in the
server, which the coordinator marks by `M3LEO_FORK_SERVER=1` in the server's environment. The
coordinator's own multiprocessing is never touched. The fork server is the process's one:
anything else in the same process that starts workers with the "forkserver" method after a
run (a DataLoader asked for it, say) gets the same workers, whose functions and classes must
then be importable, as ours are.
"""

from __future__ import annotations

import os
from multiprocessing import spawn
from typing import Any

#: the preparation keys that make a new process import the parent's main module
MAIN_KEYS = ("init_main_from_path", "init_main_from_name")


def _without_main(prepare: Any) -> Any:
    def prep(data: dict[str, Any]) -> None:
        prepare({k: v for k, v in data.items() if k not in MAIN_KEYS})

    return prep


if os.environ.pop("M3LEO_FORK_SERVER", None) == "1":
    spawn.prepare = _without_main(spawn.prepare)  # type: ignore[assignment]
