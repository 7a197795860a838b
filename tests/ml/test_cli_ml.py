"""The train and baselines verbs: results on disk, and one-line exit 2 for bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from m3leo_tiles.cli import main
from m3leo_tiles.ml import baselines
from m3leo_tiles.ml.train import compose, train

FAST = ["seasons=[2020-MAM]", "label_year=2020", "trainer.max_steps=6", "patch=32"]


class Ran:
    def __init__(self, code: int, out: str, err: str):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def _cli(capsys):
    """The real CLI entry point, in this process (a subprocess re-imports torch: 10 s)."""

    def run(*args: str) -> Ran:
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(list(args))
        got = capsys.readouterr()
        return Ran(int(e.value.code), got.out, got.err)

    return run


def test_train_verb_writes_results(ml_store, tmp_path, _cli):
    url, _ = ml_store
    p = _cli("train", "train", f"store={url}", "mode=fast", *FAST, "--out", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["name"] == "s1-vv-vh-to-esawc" and res["steps"] == 6
    assert res["checkpoint"] == "best val/loss" and 0.0 <= res["miou"] <= 1.0
    assert len(res["per_class_iou"]) == 11
    # the labels hold 4 of the 11 classes (codes 10, 50, 60, 80): those have an IoU; a class
    # in neither labels nor predictions is null (strict JSON), not 0
    iou = res["per_class_iou"]
    assert all(iou[k] is not None and 0 <= iou[k] <= 1 for k in (0, 4, 5, 7))
    assert any(x is None for x in iou)
    assert "NaN" not in (tmp_path / "r" / "results.json").read_text()
    assert f"miou {res['miou']:.4f}" in p.stdout


@pytest.mark.parametrize("args,match", [
    (["train", "store=STORE", "bogus=1"], "Could not override 'bogus'"),
    (["train", "store=/nowhere/x.zarr"], "no store at /nowhere/x.zarr"),
    (["train", "store=STORE", "inputs=s2rgb"], "has no modality s2rgb"),
    (["train", "store=STORE", "++inputs.nope.bands=[x]"], "unknown modality 'nope'"),
    (["train", "store=STORE", "target=nope"], "Could not find 'target/nope'"),
    (["missing.yaml"], "no config file missing.yaml"),
    # model settings torch would refuse with a traceback are checked before any data is read
    (["train", "store=STORE", "model.padding_mode=mirror"], "model.padding_mode 'mirror'"),
    (["train", "store=STORE", "model.depth=0"], "model.depth 0: both must be at least 1"),
])
def test_train_bad_input_is_exit_2_one_line(ml_store, args, match, _cli, tmp_path,
                                           monkeypatch):
    url, _ = ml_store
    monkeypatch.chdir(tmp_path)
    p = _cli("train", *[a.replace("STORE", url) for a in args], *FAST)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and match in p.stderr, p.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-done: no run directory


@pytest.mark.parametrize("node,match", [
    ("target: esawc", "config: target must map"),
    ("inputs: s1-vv-vh", "config: inputs must map"),
])
def test_user_yaml_with_a_scalar_node_is_exit_2(ml_store, tmp_path, _cli, node, match):
    """A plain value where a mapping belongs was a ValueError traceback from OmegaConf."""
    url, _ = ml_store
    f = tmp_path / "mine.yaml"
    f.write_text(f"defaults:\n  - train\n  - _self_\nstore: {url}\n{node}\n")
    p = _cli("train", str(f), *FAST, "--out", str(tmp_path / "r"))
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and match in p.stderr, p.stderr
    assert not (tmp_path / "r").exists()


def test_user_yaml_builds_on_shipped_groups(ml_store, tmp_path):
    url, _ = ml_store
    f = tmp_path / "mine.yaml"
    f.write_text(f"defaults:\n  - train\n  - _self_\nstore: {url}\nseasons: [2020-MAM]\n")
    cfg = compose(str(f), ["mode=fast"])
    assert cfg.store == url and cfg.inputs_name == "s1-vv-vh" and cfg.patch == 64


def test_regression_rmse_is_float_and_on_the_target_grid(ml_store, tmp_path):
    url, data = ml_store
    cfg = compose("train", [f"store={url}", "mode=fast", "target=ghsbuilt", *FAST,
                            "split.val=null"])
    res = train(cfg, tmp_path / "reg")
    model, dm = res["_model"], res["_datamodule"]
    assert model.hparams.target_factor == 4
    model.eval()
    sq, n = 0.0, 0
    ds = dm.datasets["test"]
    for i in range(len(ds)):
        s = ds[i]
        with torch.no_grad():
            pred = model.predict_target(dm.normalize(s["image"][None])[0])[0].numpy()
        assert pred.shape == (8, 8)  # a 32 px patch at 10 m is 8 px of the 40 m target
        v = s["target_valid"].numpy()
        sq += float(((pred.astype(np.float64) - s["target"].numpy()) ** 2)[v].sum())
        n += int(v.sum())
    assert n == 3 * 64 * 64 // 16 - 3 * 3  # 3 test tiles, 3 nodata cells each
    np.testing.assert_allclose(res["rmse"], np.sqrt(sq / n), rtol=1e-5)


def test_baselines_write_csv_markdown_and_png(ml_store, tmp_path, _cli):
    url, _ = ml_store
    grid = tmp_path / "g.yaml"
    grid.write_text("inputs: [s1-vv-vh, s1cohs]\ntargets: [esawc]\n"
                    "overrides: ['seasons=[2020-MAM]', 'label_year=2020', 'split.val=null']\n")
    out = tmp_path / "b"
    p = _cli("baselines", "--store", url, "--out", str(out), "--grid", str(grid), "--fast",
             "--set", "trainer.max_steps=4", "--set", "patch=32")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["run"] for r in rows] == ["s1-vv-vh-to-esawc", "s1cohs-to-esawc"]
    assert len(rows) == 2 and all(r["status"] == "done" and 0 <= float(r["miou"]) <= 1
                                  for r in rows)
    # both passes' VV, VH + validity; 12-day VV, VH coherence + validity
    assert rows[0]["channels"] == "8" and rows[1]["channels"] == "4"
    md = (out / "results.md").read_text()
    assert "| s1cohs-to-esawc | done |" in md and "not baselines" in md
    png = (out / "predictions-esawc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_baselines_check_every_run_before_training(ml_store, tmp_path, _cli):
    url, _ = ml_store
    with pytest.raises(Exception, match="unknown modality 'nope'"):
        baselines.plan([url], "seed", True, ["++inputs.nope.bands=[x]"])
    p = _cli("baselines", "--store", url, "--out", str(tmp_path / "b"), "--grid", "nogrid")
    assert p.returncode == 2 and "no grid 'nogrid'" in p.stderr
    p = _cli("baselines", "--store", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "b"))
    assert p.returncode == 2 and "no store at" in p.stderr
    assert not (tmp_path / "b").exists()


def test_cross_region_tests_on_every_tile_of_the_other_store(ml_store, tmp_path):
    from tests.ml import synthetic_store as ss

    url, _ = ml_store
    other = str(tmp_path / "other.zarr")
    ss.build(other, n=5, seed=7, region="elsewhere")
    cfg = compose("cross-region", [f"stores=[{url}]", f"test_stores=[{other}]", "mode=fast",
                                   *FAST])
    res = train(cfg, tmp_path / "x")
    assert res["test_regions"] == ["elsewhere"] and res["test_samples"] == 5 * 4
    assert res["train_samples"] == 6 * 4 and res["val_samples"] == 3 * 4


def test_m3leo_grid_composes_every_run_and_skips_what_the_store_lacks(ml_store, tmp_path):
    url, _ = ml_store
    cfgs = baselines.plan([url], "m3leo", True, ["seasons=[2020-MAM]", "label_year=2020"])
    assert len(cfgs) == 13 * 4  # with the GUNW rows (gunw, s1unw, each + s2rgb)
    assert {c.target_name for c in cfgs} == {"esawc", "ghsbuilt", "treecover", "agb"}
    assert "s1cohs" in {c.inputs_name for c in cfgs}
    agb = next(c for c in cfgs if c.target_name == "agb" and c.inputs_name == "s1-vv-vh")
    spec = baselines.data_spec(agb)
    assert spec.target.resolve()[1] == "agb" and spec.factor("agb") == 4
    with pytest.raises(Exception, match="has no modality s2rgb"):
        train(next(c for c in cfgs if c.inputs_name == "s2rgb"), tmp_path / "s2")
    # the coherence options outside the grid: the per-pair layer and GSSIC itself
    for name, want in (("s1coh", ("s1coh", ("VV",), None, False)),
                       ("gssic", ("gssic", ("VV_12",), ("2020-MAM",), True))):
        spec = baselines.data_spec(compose("train", [f"inputs={name}", "seasons=[2020-MAM]"]))
        assert [(i.modality, i.bands, i.periods, i.valid) for i in spec.inputs] == [want]


def test_agb_regression_trains_on_valid_pixels_only(ml_store, tmp_path):
    url, data = ml_store
    cfg = compose("train", [f"store={url}", "mode=fast", "target=agb", "inputs=s1cohs", *FAST,
                            "split.val=null"])
    res = train(cfg, tmp_path / "agb")
    ds = res["_datamodule"].datasets["test"]
    s = ds[0]  # tile 3, first 32 px patch: 8 x 8 cells of 40 m
    agb = data["agb"][3][0][:8, :8]
    np.testing.assert_array_equal(s["target"].numpy(), agb.astype(np.float32))
    assert s["target_valid"].all()
    last = ds[3]["target_valid"].numpy()  # the bottom-right patch holds the 2 nodata cells
    assert (~last).sum() == 2 and not last[-1, -2:].any()
    assert res["task"] == "regression" and np.isfinite(res["rmse"]) and res["rmse"] > 0
    # the loss and the RMSE ignore invalid pixels: whatever their target holds (the dataset
    # writes 0, which an unmasked loss would also fit), the same loss and RMSE; a valid
    # pixel's target does count
    model, dm = res["_model"], res["_datamodule"]
    model.log = lambda *a, **k: None  # outside a Trainer
    batch = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)
    valid = batch["target_valid"]
    assert (~valid).sum() >= 2 and valid.sum() > 10 * (~valid).sum()

    def loss_and_rmse(where: torch.Tensor, value: float) -> tuple[float, float]:
        b = dict(batch, target=batch["target"].masked_fill(where, value))
        metric = model._metric("test")
        metric.reset()
        with torch.no_grad():
            loss = float(model._step(b, "test"))
        return loss, float(metric.compute()["rmse"])

    low, high = loss_and_rmse(~valid, -1e6), loss_and_rmse(~valid, 1e6)
    assert low == high == loss_and_rmse(~valid, 0.0), (low, high)
    first = torch.zeros_like(valid)
    first[0, 0, 0] = True
    assert valid[0, 0, 0] and loss_and_rmse(first, 1e6) != low
