"""A dataset that reports from inside a loader worker (kept free of heavy imports itself).

`Probe` wraps a TileDataset: each sample carries the index read and which heavy libraries
the worker process holds, and every read is appended to a log file, so a test sees when a
spawned worker read what, without asking the worker.
"""

from __future__ import annotations

import sys
from typing import Any

import torch.multiprocessing
from torch.utils.data import Dataset

#: what a loader worker has no business importing (the worker loop itself needs torch)
HEAVY = ("pandas", "pyarrow", "m3leo_tiles.sar", "m3leo_tiles.sources", "m3leo_tiles.runner",
         "numba", "scipy", "rasterio", "xarray", "lightning")


class Probe(Dataset):
    def __init__(self, inner: Any, log: str) -> None:
        self.inner, self.log = inner, log

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int) -> dict:
        with open(self.log, "a") as f:
            f.write(f"{i}\n")
        sample = self.inner[i]
        return {"i": i, "image": sample["image"],
                "heavy": ",".join(m for m in HEAVY if m in sys.modules),
                "sharing": torch.multiprocessing.get_sharing_strategy()}
