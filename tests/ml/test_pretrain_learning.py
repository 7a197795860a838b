"""The MAE learns spatial structure: on tiles whose backscatter varies smoothly over the tile,
the hidden patches are predicted from the visible ones far better than by their mean.

The store: 640 m tiles (64 px, 8 x 8 tokens of 8 px), VV a sum of two plane waves of 0.3 to
1 cycles per tile, VH following it 6 dB lower with its own wave. With per-patch normalised
targets any constant prediction scores at least 1.0 (1.0 being the hidden patch's own mean,
which the model cannot see), and the visible patches' mean far more; the full check asks for at
most half of both after 800 steps (slow). The fast variant checks the training loop itself:
120 steps bring the untrained loss down to the level of the patch mean (that is all a tiny ViT
learns that fast; structure comes after a few hundred steps).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from m3leo_tiles.ml.mae import MAETask
from m3leo_tiles.ml.pretrain import build, pretrain
from m3leo_tiles.ml.train import compose
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.store.store import TileStore, write_chunk
from tests.ml.synthetic_store import PX, SEASON, TILE_M, table

RUN = ["size=tiny", "seasons=[2020-MAM]", "optim.lr=2e-3", "trainer.max_epochs=1000",
       "trainer.checkpoint_every=1000"]


def waves(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:PX, 0:PX] / PX
    f = np.zeros((PX, PX))
    for _ in range(2):
        fx, fy = rng.uniform(0.3, 1.0, 2) * rng.choice([-1, 1], 2)
        f += np.cos(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 6.3))
    return f.astype(np.float32)


@pytest.fixture(scope="module")
def structured_store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("mae-learn") / "waves.zarr")
    n = 56
    store = TileStore.create(url, "waves", table(n, ["train"] * 6 + ["val"]), TILE_M)
    store.ensure_modality(get_modality("s1grd"))
    store.ensure_periods("s1grd", [SEASON])
    rng = np.random.default_rng(0)
    for t in range(n):
        vv = -12.0 + 3.0 * waves(rng)
        vh = vv - 6.0 + waves(rng)
        counts = np.full((2, PX, PX), 3.0, np.float32)
        write_chunk(url, "s1grd", t, 0, np.concatenate([np.stack([vv, vh, vv, vh]), counts]))
    return url


def eval_loss(task: MAETask, dm) -> float:
    """The masked loss on the eval split with the fixed masks validation uses."""
    num = den = 0.0
    task.eval()
    with torch.no_grad():
        for i, batch in enumerate(dm.test_dataloader()):
            batch = dm.on_after_batch_transfer(batch, 0)
            loss, _, n = task.losses(batch, torch.Generator().manual_seed(1000 + i))
            num, den = num + float(loss) * float(n), den + float(n)
    return num / den


def test_a_short_pretraining_lowers_the_masked_loss(structured_store, tmp_path):
    cfg = compose("mae-s1", [f"store={structured_store}", *RUN, "trainer.max_steps=120"])
    torch.manual_seed(int(cfg.seed))
    dm, untrained = build(cfg)
    before = eval_loss(untrained, dm)
    res = pretrain(cfg, tmp_path)
    assert res["eval_split"] == "val" and res["steps"] == 120
    assert res["eval_loss"] == pytest.approx(eval_loss(res["_model"], res["_datamodule"]))
    assert res["eval_loss"] < 0.8 * before and res["eval_loss"] < 1.1, (res["eval_loss"], before)


@pytest.mark.slow
def test_pretraining_learns_structure_not_the_mean(structured_store, tmp_path):
    res = pretrain(compose("mae-s1", [f"store={structured_store}", *RUN,
                                      "trainer.max_steps=800"]), tmp_path)
    loss, mean = res["eval_loss"], res["eval_visible_mean_loss"]
    assert loss <= 0.5 * mean, res  # the issue's bar: half the visible patches' mean
    assert loss <= 0.5, res  # and half of the best constant, the hidden patch's own mean
