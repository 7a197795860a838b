"""Pairs by temporal baseline (issue 22 item 4): M3LEO's short / medium / long GUNW channels.

A store holds `gunw` and `s1unw` pairs of many baselines; each chunk's value is its own
baseline in days, so the channels the dataset returns say which pair was read.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from m3leo_tiles.errors import BadInput
from m3leo_tiles.ml import baselines
from m3leo_tiles.ml.dataset import TileDataset
from m3leo_tiles.ml.spec import M3LEO_BASELINES, select_pairs, spec_from_config
from m3leo_tiles.ml.train import compose
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.store.store import TileStore, write_chunk
from tests.ml import synthetic_store

# (first date, days): 2019-12-20 starts outside 2020; the longest of each range should win
PAIRS = [("2019-12-20", 21), ("2020-01-01", 12), ("2020-01-01", 60), ("2020-01-05", 46),
         ("2020-03-01", 92), ("2020-03-01", 126), ("2020-02-01", 132), ("2020-01-01", 196),
         ("2020-06-01", 200), ("2020-07-01", 216), ("2020-03-01", 66)]


def label(first: str, days: int) -> str:
    a = dt.date.fromisoformat(first)
    return f"{a:%Y%m%d}_{a + dt.timedelta(days=days):%Y%m%d}"


LABELS = [label(*p) for p in PAIRS]


def test_the_longest_pair_of_each_range_starting_in_the_window_is_chosen():
    got = select_pairs(LABELS, M3LEO_BASELINES, "2020")
    assert got == (label("2020-01-01", 60), label("2020-02-01", 132),
                   label("2020-07-01", 216))
    # ties in baseline: the earliest (none here); a season: pairs starting in it only
    assert select_pairs(LABELS, ((0, 30),), None) == (label("2019-12-20", 21),)
    assert select_pairs(LABELS, ((0, 30),), "2020") == (label("2020-01-01", 12),)
    assert select_pairs(LABELS, M3LEO_BASELINES, "2020-JJA") == \
        "no pair with a 0-60 day baseline starting in 2020-JJA"
    assert select_pairs(LABELS, ((61, 71),), "2020-01-01/2020-12-31") == \
        (label("2020-03-01", 66),)


@pytest.fixture(scope="module")
def pair_store(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("pairs") / "p.zarr")
    synthetic_store.build(url, n=4, splits=["train"])
    store = TileStore.open(url)
    for name in ("gunw", "s1unw"):
        m = get_modality(name)
        store.ensure_modality(m)
        idx = store.ensure_periods(name, LABELS)
        for t in range(4):
            for (_first, days), lb in zip(PAIRS, LABELS, strict=True):
                arr = np.full((len(m.bands), 8, 8), float(days), np.float32)
                write_chunk(url, name, t, idx[lb], arr)
    return url


@pytest.mark.parametrize("name,band", [("gunw", "unwrappedPhase"), ("s1unw", "unw_VV")])
def test_the_dataset_reads_the_three_m3leo_channels(pair_store, name, band):
    spec = spec_from_config({name: {"bands": [band], "baselines": "m3leo", "within": 2020}},
                            None, res=80)
    ds = TileDataset([pair_store], spec, split=None)
    assert ds.channels == [f"{name}:{band}@{lb}" for lb in
                           (label("2020-01-01", 60), label("2020-02-01", 132),
                            label("2020-07-01", 216))]
    img = ds[0]["image"].numpy()
    assert [float(img[k].mean()) for k in range(3)] == [60.0, 132.0, 216.0]
    spec = spec_from_config({name: {"bands": [band], "baselines": "m3leo",
                                    "within": "2020-JJA"}}, None, res=80)
    with pytest.raises(BadInput, match="no pair with a 0-60 day baseline starting in 2020-JJA"):
        TileDataset([pair_store], spec, split=None)


@pytest.mark.parametrize("node,match", [
    ({"baselines": "m3leo", "periods": ["20200101_20200113"]}, "not both"),
    ({"baselines": [[60, 0]]}, "is empty"),
    ({"baselines": "short"}, "must be"),
])
def test_bad_baseline_specs_are_one_clear_error(node, match):
    with pytest.raises(BadInput, match=match):
        spec_from_config({"gunw": {"bands": ["unwrappedPhase"], **node}}, None, res=80)
    with pytest.raises(BadInput, match="baselines select pairs"):
        spec_from_config({"s1grd": {"baselines": "m3leo"}}, None, res=10)


def test_the_grid_has_the_gunw_rows_skipped_where_the_store_lacks_them(tmp_path):
    url = str(tmp_path / "s.zarr")
    synthetic_store.build(url, n=4)
    grid = baselines.load_grid("m3leo")  # (the whole grid composes in test_cli_ml)
    assert {"gunw", "gunw+s2rgb", "s1unw", "s1unw+s2rgb"} <= set(grid["inputs"])
    assert "esawc" in grid["targets"]
    cfg = compose("train", ["inputs=gunw+s2rgb", f"stores=[{url}]", "mode=fast"])
    spec = baselines.data_spec(cfg)
    assert spec.inputs[0].baselines == M3LEO_BASELINES and spec.inputs[0].within == "2020"
    from m3leo_tiles.ml.train import train

    with pytest.raises(BadInput, match="has no modality gunw"):  # the grid's skip reason
        train(cfg, tmp_path / "g")
