"""Does the loader keep MAE pretraining fed? The same training steps, fed two ways.

A store of 640 m tiles (64 px at 10 m: one chunk per tile, season and layer, as a whole-tile
pretraining reads at 448 px) holds ascending S1 VV/VH in four seasons. The tiny CPU MAE
(`size=tiny`, built by the `pretrain` code itself) trains on it:

- loader: batches from our PretrainDataModule as a long pretraining on a 2-core CPU configures
  it (`mae-s1 size=tiny loader.num_workers=1`: one spawned, persistent worker, which starts
  each epoch as the previous one ends; BENCH_PRETRAIN_WORKERS changes the count), normalised
  on arrival, then the step; the time spent waiting for the next batch is the loader wait;
- tensors: the very same batches, read and normalised once into memory beforehand, then the
  same steps (the loader's cost removed: the most the model can do here).

Each turn runs one tensor epoch, then two loader epochs back to back of which the second is
timed (as in training, its worker had only the previous epoch's last steps to start it, not
the tensor epoch's idle time). BENCH_PRETRAIN_EPOCHS turns; each loop's fastest epoch counts.
Last line: {"name": "pretrain", "samples_s", "tensor_loop_samples_s", "ratio",
"loader_wait_frac"}. Timings on a shared CPU are indicative.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from m3leo_tiles.ml.pretrain import build  # noqa: E402
from m3leo_tiles.ml.train import compose  # noqa: E402
from m3leo_tiles.modalities import get_modality  # noqa: E402
from m3leo_tiles.store.store import TileStore, write_chunk  # noqa: E402

N_TILES = int(os.environ.get("BENCH_PRETRAIN_TILES", "64"))
WORKERS = int(os.environ.get("BENCH_PRETRAIN_WORKERS", "1"))
EPOCHS = int(os.environ.get("BENCH_PRETRAIN_EPOCHS", "3"))
PX, TILE_M = 64, 640
SEASONS = ["2020-DJF", "2020-MAM", "2020-JJA", "2020-SON"]


def make_store(tmp: Path) -> str:
    ids = [f"31N-{100 + i % 8:04d}-{1200 + i // 8:04d}" for i in range(N_TILES)]
    table = pd.DataFrame({
        "id": ids, "epsg": 32631, "x0": [(100 + i % 8) * 4480.0 for i in range(N_TILES)],
        "y0": [(1201 + i // 8) * 4480.0 for i in range(N_TILES)], "dx": 10.0, "dy": 10.0,
        "size": TILE_M, "split": "train", "lon": 3.0, "lat": 48.0})
    url = str(tmp / "bench.zarr")
    store = TileStore.create(url, "bench", table, TILE_M)
    store.ensure_modality(get_modality("s1grd"))
    store.ensure_periods("s1grd", SEASONS)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:PX, 0:PX] / PX
    for t in range(N_TILES):
        for si in range(len(SEASONS)):
            f = sum(np.cos(2 * np.pi * (a * x + b * y) + c)
                    for a, b, c in rng.uniform(0.5, 3, (3, 3)))
            vv = (-12 + 3 * f + rng.normal(0, 1, (PX, PX))).astype(np.float32)
            vh = vv - 7 + rng.normal(0, 1, (PX, PX)).astype(np.float32)
            count = np.full((PX, PX), 3.0, np.float32)
            write_chunk(url, "s1grd", t, si, np.stack([vv, vh, vv, vh, count, count]))
    return url


def step(task, opt, batch: dict) -> None:
    loss = task.losses(batch)[0]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def loader_epoch(dm, loader, task, opt) -> tuple[float, float]:
    """One epoch fed by the DataModule: (seconds, seconds spent waiting for batches)."""
    t0, wait = time.perf_counter(), 0.0
    it = iter(loader)
    while True:
        w0 = time.perf_counter()
        b = next(it, None)
        if b is None:
            break
        b = dm.on_after_batch_transfer(b, 0)
        wait += time.perf_counter() - w0
        step(task, opt, b)
    return time.perf_counter() - t0, wait


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        url = make_store(Path(tmp))
        cfg = compose("mae-s1", [f"store={url}", "size=tiny", "split.val=null", "split.test=null",
                                 f"loader.num_workers={WORKERS}"])
        dm, task = build(cfg)
        opt = task.configure_optimizers()
        loader = dm.train_dataloader()
        batches = [dm.on_after_batch_transfer(b, 0) for b in loader]  # also starts workers
        n = sum(len(b["image"]) for b in batches)
        best_loader = best_tensor = float("inf")
        wait_at_best = 0.0
        for _ in range(EPOCHS):
            t0 = time.perf_counter()
            for b in batches:
                step(task, opt, b)
            best_tensor = min(best_tensor, time.perf_counter() - t0)
            for _ in range(2):  # the first only makes the second follow a loader epoch
                total, wait = loader_epoch(dm, loader, task, opt)
            if total < best_loader:
                best_loader, wait_at_best = total, wait / total
        print(f"{n} samples per epoch, {len(batches)} batches, {WORKERS} loader worker(s), "
              f"channels {len(dm.channels)}, ViT {task.shape.as_dict()}")
        print(json.dumps({"name": "pretrain", "samples_s": round(n / best_loader, 2),
                          "tensor_loop_samples_s": round(n / best_tensor, 2),
                          "ratio": round(best_tensor / best_loader, 3),
                          "loader_wait_frac": round(wait_at_best, 3)}))


if __name__ == "__main__":
    main()
