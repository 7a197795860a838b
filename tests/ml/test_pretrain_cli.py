"""The pretrain verb, fine-tuning refusals at the CLI, and `baselines --grid pretrain`."""

from __future__ import annotations

import csv
import json

import pytest

from m3leo_tiles.cli import main
from tests.ml import synthetic_store as ss

QUICK = ["seasons=[2020-MAM]", "trainer.max_steps=3", "loader.batch_size=4"]


@pytest.fixture
def _cli(capsys):
    """The real CLI entry point, in this process (a subprocess re-imports torch: 10 s)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            main(list(args))
        got = capsys.readouterr()
        return int(e.value.code), got.out, got.err

    return run


@pytest.fixture(scope="module")
def other_region(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("other") / "other.zarr")
    ss.build(url, seed=5, region="otherml")
    return url


def test_pretrain_verb_then_a_cross_region_grid(ml_store, other_region, tmp_path, _cli):
    url, _ = ml_store
    mae = tmp_path / "mae"
    code, out, err = _cli("pretrain", "mae-s1", f"store={other_region}", *QUICK, "--fast",
                          "--out", str(mae))
    assert code == 0, err
    assert "masked-patch loss" in out and "(3 steps" in out
    res = json.loads((mae / "results.json").read_text())
    assert res["regions"] == ["otherml"] and res["vit"]["patch"] == 8 and res["steps"] == 3
    ckpt = str(mae / "checkpoints" / "last.ckpt")
    # a checkpoint of other inputs: one line, exit 2, nothing trained
    code, out, err = _cli("train", "train", f"store={url}", "mode=fast", "inputs=s1-asc+coh",
                          "label_year=2020", *QUICK, "model.encoder=vit", f"model.init={ckpt}",
                          "--out", str(tmp_path / "bad"))
    assert code == 2 and "pretrained on 2 channels, the config has 3" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
    # the grid: s1-asc from the other region's encoder, s1-asc+coh pretrained here first
    grid = tmp_path / "grid.yaml"
    grid.write_text("pretrain: mae-s1\ninputs: [s1-asc, s1-asc+coh]\ntargets: [esawc]\n"
                    "fractions: [0.5]\nseeds: [4]\nvariants: [scratch, finetune]\n")
    code, out, err = _cli("baselines", "--store", url, "--out", str(tmp_path / "g"), "--grid",
                          str(grid), "--fast", "--pretrained", ckpt, "--set",
                          "seasons=[2020-MAM]", "--set", "label_year=2020", "--set",
                          "trainer.max_steps=2", "--set", "loader.batch_size=4")
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "g" / "results.csv")))
    assert [(r["inputs"], r["variant"], r["pretrained_on"], r["cross_region"]) for r in rows] == [
        ("s1-asc", "scratch", "-", ""), ("s1-asc", "finetune", "otherml", "yes"),
        ("s1-asc+coh", "scratch", "-", ""), ("s1-asc+coh", "finetune", "synthml", "no")]
    assert all(r["status"] == "done" and r["label_tiles"] == "3" for r in rows)
    # every row drew the same 3 of the 6 train tiles and tests on the same tiles: one letter
    assert {r["cmp"] for r in rows} == {"A"}
    assert (tmp_path / "g" / "pretrain" / "s1-asc+coh" / "checkpoints" / "last.ckpt").is_file()
    assert "compare metrics only within a letter" in (tmp_path / "g" / "results.md").read_text()


def test_a_pretraining_with_nothing_held_out_is_refused(ml_store, tmp_path, _cli):
    url, _ = ml_store
    code, out, err = _cli("pretrain", "mae-s1", f"store={url}", *QUICK, "split.val=null",
                          "split.test=nosuch", "--fast", "--out", str(tmp_path / "mae"))
    assert code == 2 and "no held-out tiles" in err and "split.test (nosuch)" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "mae").exists()
