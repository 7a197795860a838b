"""Normalisation statistics: whole training split, NaN-aware, kept in the store, refreshed."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from m3leo_tiles.ml import stats
from m3leo_tiles.ml.dataset import TileDataset
from m3leo_tiles.ml.spec import spec_from_config
from m3leo_tiles.store.store import write_chunk

SPEC = spec_from_config({"s1grd": {"bands": ["VH_asc", "VV_asc"]}, "s1coh": {}},
                        {"modality": "esawc"})
TRAIN = [0, 1, 4, 5, 8, 9]


def _direct(data, modality, tiles):
    x = np.stack([data[modality][t] for t in tiles]).astype(np.float64)  # (tile, band, y, x)
    return np.nanmean(x, axis=(0, 2, 3)), np.nanstd(x, axis=(0, 2, 3))


def test_stats_equal_numpy_over_the_training_split(store_copy):
    url, data = store_copy
    ds = TileDataset([url], SPEC, "train")
    mean_vh_vv, std_vh_vv = stats.layer_stats(ds.readers, ds.inputs[0])
    mean, std = _direct(data, "s1grd", TRAIN)
    np.testing.assert_allclose(mean_vh_vv, mean[[1, 0]], rtol=1e-6)
    np.testing.assert_allclose(std_vh_vv, std[[1, 0]], rtol=1e-6)
    assert np.isfinite(mean_vh_vv).all()  # the NaN gap in VH is left out, not counted
    cm, cs = stats.layer_stats(ds.readers, ds.inputs[1])
    m2, s2 = _direct(data, "s1coh", TRAIN)
    np.testing.assert_allclose(cm, m2, rtol=1e-6)
    np.testing.assert_allclose(cs, s2, rtol=1e-6)
    entry = zarr.open_group(url, mode="r").attrs["ml_stats"]["s1grd"]["2020-MAM"]["train"]
    assert entry["tiles"] == 6 and len(entry["fingerprint"]) == 64
    # VV, VH per pass, then counts; tiles 5 and 8 have no descending pass: not counted
    px = 64 * 64
    assert entry["count"] == [px * 6, (px - 40) * 6, px * 4, (px - 40) * 4, px * 6, px * 6]
    des = stats.Moments.from_json(entry)
    want, want_sd = _direct(data, "s1grd", TRAIN)
    np.testing.assert_allclose(des.mean[2:4], want[2:4], rtol=1e-6)
    np.testing.assert_allclose(des.std[2:4], want_sd[2:4], rtol=1e-6)


def test_kept_stats_are_reused_until_the_data_changes(store_copy, monkeypatch):
    url, data = store_copy
    ds = TileDataset([url], SPEC, "train")
    stats.layer_stats(ds.readers, ds.inputs[0])
    calls = []
    real = stats.compute
    monkeypatch.setattr(stats, "compute", lambda *a: calls.append(a) or real(*a))
    stats.layer_stats(ds.readers, ds.inputs[0])
    assert calls == []  # same fingerprint: read from the store's attributes
    new = data["s1grd"][4] + 3.0
    write_chunk(url, "s1grd", 4, 0, new)
    mean, _ = stats.layer_stats(ds.readers, ds.inputs[0])
    assert len(calls) == 1
    changed = [new if t == 4 else data["s1grd"][t] for t in range(12)]
    want, _ = _direct({"s1grd": changed}, "s1grd", TRAIN)
    np.testing.assert_allclose(mean, want[[1, 0]], rtol=1e-6)


def test_moments_merge_like_one_pass():
    rng = np.random.default_rng(3)
    a, b = rng.normal(5, 2, (2, 30, 30)), rng.normal(-1, 0.5, (2, 10, 10))
    b[0, :2] = np.nan
    m = stats.Moments.of(a).merge(stats.Moments.of(b))
    flat = np.concatenate([a.reshape(2, -1), b.reshape(2, -1)], axis=1)
    np.testing.assert_allclose(m.mean, np.nanmean(flat, axis=1))
    np.testing.assert_allclose(m.std, np.nanstd(flat, axis=1))
    assert stats.Moments.of(np.ones((1, 4, 4))).std[0] == 1.0  # flat band: never divide by 0


@pytest.mark.parametrize("split", ["val"])
def test_stats_follow_the_split_asked_for(ml_store, split):
    url, data = ml_store
    ds = TileDataset([url], SPEC, split)
    mean, _ = stats.layer_stats(ds.readers, ds.inputs[1], split=split, write=False)
    np.testing.assert_allclose(mean, _direct(data, "s1coh", [2, 6, 10])[0], rtol=1e-6)
