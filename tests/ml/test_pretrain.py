"""MAE pretraining: nodata stays out of the loss, checkpoints restore and resume, probes stay
frozen, few-label runs draw their tiles reproducibly, mismatched checkpoints are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from m3leo_tiles.errors import BadInput
from m3leo_tiles.ml.dataset import TileDataset
from m3leo_tiles.ml.finetune import label_fraction, read_encoder
from m3leo_tiles.ml.mae import masked_loss, normalised_targets, patchify
from m3leo_tiles.ml.pretrain import pretrain
from m3leo_tiles.ml.spec import spec_from_config
from m3leo_tiles.ml.train import compose, train

TINY = ["size=tiny", "seasons=[2020-MAM]", "split.val=null", "loader.batch_size=4",
        "trainer.max_steps=6", "trainer.checkpoint_every=3"]
FT = ["mode=fast", "inputs=s1-asc", "seasons=[2020-MAM]", "label_year=2020", "split.val=null",
      "loader.batch_size=4", "trainer.max_steps=4", "model.encoder=vit"]


@pytest.fixture(scope="module")
def pretrained(ml_store, tmp_path_factory) -> dict:
    url, _ = ml_store
    out = tmp_path_factory.mktemp("mae")
    return pretrain(compose("mae-s1", [f"store={url}", *TINY]), out)


def test_nodata_never_enters_the_loss():
    g = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, 16, 16, generator=g)
    image[0, 1, 2:7, 3:9] = float("nan")  # holes in one channel, as NaN in the store
    image[1, :, 8:16, 8:16] = float("nan")  # a whole patch with no data in any channel
    present = torch.isfinite(image)
    masked = torch.rand(2, 4, generator=g) < 0.6
    masked[:, 0] = True
    pred = torch.randn(2, 4, 3 * 64, generator=g)
    # what the DataModule hands over (holes as 0) and any other filling: the same loss
    zeros = masked_loss(pred, torch.nan_to_num(image, 0.0), present, masked, 8)
    huge = masked_loss(pred, torch.nan_to_num(image, 1e6), present, masked, 8)
    assert torch.isfinite(zeros) and float(zeros) == pytest.approx(float(huge), rel=1e-6)
    # by hand: per patch and channel, normalise over the present pixels, score hidden ones
    t, m = patchify(image, 8).numpy(), patchify(present, 8).numpy()
    p = pred.reshape(t.shape).numpy()
    num = den = 0.0
    for b, n, c in np.ndindex(*t.shape[:3]):
        keep = m[b, n, c]
        if not masked[b, n] or keep.sum() < 2:
            continue
        v = t[b, n, c, keep]
        z = (v - v.mean()) / np.sqrt(v.var() + 1e-6)
        num += float(((p[b, n, c, keep] - z) ** 2).sum())
        den += keep.sum()
    assert den > 0 and float(zeros) == pytest.approx(num / den, rel=1e-5)


def test_the_datamodule_marks_holes_as_absent(ml_store):
    """The synthetic VH has a NaN gap at [10:14, 20:30]: `present` is False exactly there."""
    from m3leo_tiles.ml.pretrain import build

    url, data = ml_store
    dm, _ = build(compose("mae-s1", [f"store={url}", *TINY]))
    batch = next(iter(dm.test_dataloader()))
    raw = batch["image"].clone()
    batch = dm.on_after_batch_transfer(batch, 0)
    assert torch.equal(batch["present"], torch.isfinite(raw))
    assert torch.equal(batch["valid"], torch.isfinite(raw).all(dim=1))  # from `present`
    assert torch.isfinite(batch["image"]).all() and not batch["image"][:, 1, 10:14, 20:30].any()
    assert not batch["present"][:, 1, 10:14, 20:30].any() and batch["present"][:, 0].all()
    _, w = normalised_targets(batch["image"], batch["present"], 8)
    assert float(w.sum()) == float(batch["present"].sum())  # every present pixel counts


def test_the_checkpoint_restores_every_encoder_weight(pretrained, ml_store, tmp_path):
    url, _ = ml_store
    ck = read_encoder(pretrained["checkpoint"])
    mae_encoder = pretrained["_model"].mae.encoder.state_dict()
    assert set(ck.state) == set(mae_encoder) and len(ck.state) > 10
    res = train(compose("train", [f"store={url}", *FT, f"model.init={ck.path}",
                                  "trainer.max_steps=1"]), tmp_path / "ft")
    fresh = type(res["_model"])(**res["_model"].hparams).model.encoder  # random init
    missing, unexpected = fresh.load_state_dict(ck.state, strict=False)
    assert missing == [] and unexpected == []
    for k, v in mae_encoder.items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_a_frozen_probe_leaves_the_encoder_bit_identical(pretrained, ml_store, tmp_path):
    url, _ = ml_store
    ck = read_encoder(pretrained["checkpoint"])
    res = train(compose("train", [f"store={url}", *FT, f"model.init={ck.path}",
                                  "model.freeze=true", "optim.lr=0.05"]), tmp_path / "probe")
    model = res["_model"].model
    assert res["steps"] == 4 and res["trainable_params"] < res["params"]
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, ck.state[k]), k
    head0 = type(res["_model"])(**res["_model"].hparams).model.head  # the head did train
    assert not all(torch.equal(a, b) for a, b in zip(head0.state_dict().values(),
                                                     model.head.state_dict().values(),
                                                     strict=True))
    # fine-tuning (not frozen) moves the encoder
    res = train(compose("train", [f"store={url}", *FT, f"model.init={ck.path}",
                                  "optim.lr=0.05"]), tmp_path / "ft")
    assert not all(torch.equal(v, ck.state[k])
                   for k, v in res["_model"].model.encoder.state_dict().items())


def test_a_pretrained_encoder_fine_tunes_to_a_regression_target(pretrained, ml_store, tmp_path):
    """AGB (Mg/ha, 40 m): the ViT's per-pixel output is pooled onto the target's grid."""
    url, _ = ml_store
    res = train(compose("train", [f"store={url}", *FT, "target=agb",
                                  f"model.init={pretrained['checkpoint']}",
                                  "model.head=shallow"]), tmp_path / "agb")
    assert res["task"] == "regression" and res["encoder"] == "vit" and res["steps"] == 4
    assert np.isfinite(res["rmse"]) and res["rmse"] > 0


@pytest.mark.parametrize("override, said", [
    ("inputs=s1-asc+coh", "pretrained on 2 channels, the config has 3"),
    ("model.vit.patch=16", "patch size 8, the config has model.vit.patch 16"),
])
def test_a_checkpoint_of_other_inputs_is_refused(pretrained, ml_store, tmp_path, override, said):
    url, _ = ml_store
    cfg = compose("train", [f"store={url}", *FT, f"model.init={pretrained['checkpoint']}",
                            "++inputs.s1coh.periods=null", override])
    with pytest.raises(BadInput, match=said):
        train(cfg, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_few_label_runs_use_exactly_the_tiles_drawn(ml_store, tmp_path):
    url, _ = ml_store
    spec = spec_from_config({"s1grd": {"bands": ["VV_asc"]}}, None)

    def drawn(frac: float, seed: int) -> list[str]:
        return label_fraction(TileDataset([url], spec, None), frac, seed)

    assert drawn(0.5, 3) == drawn(0.5, 3) and len(drawn(0.5, 3)) == 6  # 12 tiles
    assert drawn(0.5, 3) != drawn(0.5, 4)
    assert len(drawn(0.01, 3)) == 1 and set(drawn(0.25, 3)) <= set(drawn(0.5, 3))
    assert len(drawn(1.0, 3)) == 12
    with pytest.raises(BadInput, match="split.fraction 0.0"):
        drawn(0.0, 1)
    # a training run records the draw, and trains on those tiles' patches only
    res = train(compose("train", [f"store={url}", *FT, "split.fraction=0.5",
                                  "split.fraction_seed=7"]), tmp_path / "few")
    train_ds = res["_datamodule"].datasets["train"]
    want = label_fraction(TileDataset([url], spec, "train"), 0.5, 7)
    assert res["label_tiles"] == want and len(want) == 3  # 6 train tiles
    got = sorted({f"synthml/{train_ds.readers[0].table['id'].iloc[t]}"
                  for _, t, _ in train_ds.index})
    assert got == want
    assert json.loads((tmp_path / "few" / "results.json").read_text())["label_tiles"] == want


class _Killed(Callback):
    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == 5:
            raise RuntimeError("killed")


class _Count(Callback):
    steps = 0

    def on_train_batch_end(self, trainer, *args) -> None:
        _Count.steps += 1


def test_a_killed_pretraining_continues_from_its_last_checkpoint(ml_store, tmp_path,
                                                                 monkeypatch):
    url, _ = ml_store
    cfg = compose("mae-s1", [f"store={url}", *TINY])
    import lightning

    real = lightning.Trainer

    def dying(*a, **k):
        k["callbacks"] = [*k["callbacks"], _Killed()]
        return real(*a, **k)

    monkeypatch.setattr(lightning, "Trainer", dying)
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(cfg, tmp_path)
    assert not (tmp_path / "results.json").exists()
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False
                      )["global_step"] == 3

    def counting(*a, **k):
        k["callbacks"] = [*k["callbacks"], _Count()]
        return real(*a, **k)

    monkeypatch.setattr(lightning, "Trainer", counting)
    res = pretrain(cfg, tmp_path)
    monkeypatch.setattr(lightning, "Trainer", real)
    # the rerun trained the 3 steps that were missing, not 6 from scratch
    assert res["resumed_from_step"] == 3 and res["steps"] == 6 and _Count.steps == 3
    # another pretraining into the same directory is refused
    with pytest.raises(BadInput, match="holds a different pretraining"):
        pretrain(compose("mae-s1", [f"store={url}", *TINY, "mae.mask_ratio=0.5"]), tmp_path)
