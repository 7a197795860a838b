"""The training loader: the next epoch starts in the workers as soon as one ends, epochs stay
complete shuffles, and a spawned worker imports no pandas or SAR stack and shares batches by
name."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from m3leo_tiles.ml.datamodule import EagerLoader, TileDataModule
from m3leo_tiles.ml.dataset import TileDataset, share_by_name
from m3leo_tiles.ml.spec import spec_from_config
from tests.ml.loaderprobe import Probe


def _reads(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


def test_eager_loader_prefetches_the_next_epoch_in_a_lean_worker(ml_store, tmp_path):
    url, _ = ml_store
    ds = TileDataset([url], spec_from_config({"s1grd": {"bands": ["VV_asc"]}}, None), "train")
    n = len(ds)  # 6 train tiles
    log = tmp_path / "reads.log"
    eager = EagerLoader(Probe(ds, str(log)), batch_size=2, shuffle=True, num_workers=1,
                        multiprocessing_context="spawn", persistent_workers=True,
                        generator=torch.Generator().manual_seed(7))
    first = list(eager)
    # nobody has asked for epoch 2, yet the worker reads its first batches (prefetch 2 x 2)
    deadline = time.monotonic() + 30
    while len(_reads(log)) < n + 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_reads(log)) == n + 4
    # every epoch is a fresh shuffle of every sample once, also after an epoch left early
    orders = [[int(i) for b in first for i in b["i"]]]
    it = iter(eager)
    partial = [int(i) for i in next(it)["i"]]
    del it
    orders += [[int(i) for b in eager for i in b["i"]] for _ in range(2)]
    assert len(orders) == 3 and all(sorted(o) == list(range(n)) for o in orders)
    assert len({tuple(o) for o in orders} | {tuple(partial)}) == 4
    # the worker unpickled a TileDataset and read chunks without pandas or the SAR stack
    assert set(first[0]["heavy"]) == {""}
    # and sent its batches as named shared memory, not descriptors fetched from its threads
    assert set(first[0]["sharing"]) == {"file_system"}


def test_only_loaders_run_every_epoch_keep_their_workers(ml_store):
    """Train and val are read each epoch: their workers persist (and start epochs early); the
    test pass runs once, so its workers end with it and read nothing ahead."""
    url, _ = ml_store
    dm = TileDataModule(spec_from_config({"s1grd": {"bands": ["VV_asc"]}}, None), [url],
                        num_workers=1)
    dm.setup()
    loaders = {"train": dm.train_dataloader(), "val": dm.val_dataloader(),
               "test": dm.test_dataloader()}
    assert {k: v.persistent_workers for k, v in loaders.items()} == {
        "train": True, "val": True, "test": False}
    assert all(v.worker_init_fn is share_by_name for v in loaders.values())
