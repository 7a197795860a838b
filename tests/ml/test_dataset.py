"""TileDataset: exact placement of every layer, honest nodata, no silent substitutes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from m3leo_tiles.errors import BadInput
from m3leo_tiles.ml.datamodule import Normalize
from m3leo_tiles.ml.dataset import TileDataset
from m3leo_tiles.ml.spec import IGNORE_INDEX, spec_from_config
from tests.ml import synthetic_store as ss

INPUTS = {"s1grd": {"bands": ["VV_asc", "VH_asc"]}, "s1coh": {"bands": ["VV"]}}
ESAWC = {"modality": "esawc"}


def _spec(**kw):
    return spec_from_config(kw.pop("inputs", INPUTS), kw.pop("target", ESAWC), **kw)


def test_sample_is_the_store_data_on_one_grid(ml_store):
    url, data = ml_store
    ds = TileDataset([url], _spec(), "train")
    # splits cycle train, train, val, test over 12 tiles
    assert [ds.readers[0].table["id"][t] for _, t, _ in ds.index] == \
        [ss.table(12, ["train", "train", "val", "test"])["id"][i] for i in (0, 1, 4, 5, 8, 9)]
    assert ds.channels == ["s1grd:VV_asc@2020-MAM", "s1grd:VH_asc@2020-MAM",
                           "s1coh:VV@20200401_20200413"]
    s = ds[2]  # tile 4
    assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 64, 64)
    np.testing.assert_array_equal(s["image"][:2].numpy(), data["s1grd"][4][:2])  # NaN kept
    # the 40 m layer: every 16 x 16 pixel becomes a 4 x 4 block, exactly
    coh = data["s1coh"][4][0]
    np.testing.assert_array_equal(s["image"][2].numpy(), np.kron(coh, np.ones((4, 4))))
    m = s["mask"].numpy()
    assert s["mask"].dtype == torch.int64
    code = data["esawc"][4][0]
    assert (m[code == 0] == IGNORE_INDEX).all() and (code == 0).sum() == 36
    codes = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
    np.testing.assert_array_equal(m[code != 0], [codes.index(c) for c in code[code != 0]])
    assert s["crs"] == "EPSG:32631" and s["tile"] == "31N-0104-1200"
    t = ss.table(12, ["x"]).iloc[4]
    np.testing.assert_allclose(s["transform"].numpy(), [10, 0, t.x0, 0, -10, t.y0])


def test_patches_tile_the_tile_and_coarse_layers_stay_aligned(ml_store):
    url, data = ml_store
    ds = TileDataset([url], _spec(patch=16), "test")
    assert len(ds) == 3 * 16
    whole = np.zeros((3, 64, 64), np.float32)
    for k in range(16):
        s = ds[k]
        y0, x0 = (k // 4) * 16, (k % 4) * 16
        whole[:, y0:y0 + 16, x0:x0 + 16] = s["image"].numpy()
        assert s["transform"][2] == ss.table(12, ["x"]).x0[3] + 10 * x0
    np.testing.assert_array_equal(whole[2], np.kron(data["s1coh"][3][0], np.ones((4, 4))))
    with pytest.raises(BadInput, match="multiple of 4"):
        _spec(patch=18)


def test_stacked_time_and_regression_target_on_its_own_grid(ml_store):
    url, data = ml_store
    ds = TileDataset([url], _spec(inputs={"s1grd": {}}, time_dim="stack",
                                  target={"modality": "ghsbuilt", "task": "regression"}), "val")
    s = ds[0]
    assert s["image"].shape == (1, 6, 64, 64)
    assert s["target"].shape == (16, 16) and s["target"].dtype == torch.float32
    built = data["ghsbuilt"][2][0]
    valid = built != 65535
    np.testing.assert_array_equal(s["target_valid"].numpy(), valid)
    np.testing.assert_array_equal(s["target"].numpy()[valid], built[valid].astype(np.float32))


def test_normalize_zeroes_gaps_and_reports_them(ml_store):
    url, _ = ml_store
    x = TileDataset([url], _spec(), "train")[0]["image"][None]
    assert torch.isnan(x).sum() == 40  # the VH gap
    norm = Normalize(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 4.0]), (3,))
    y, valid = norm(x)
    assert torch.isfinite(y).all() and y[0, 1, 10:14, 20:30].eq(0).all()
    assert (~valid).sum() == 40 and not valid[0, 12, 25]
    torch.testing.assert_close(y[0, 2], (x[0, 2] - 3) / 4)


def test_a_corrupt_chunk_raises_instead_of_a_substitute(store_copy):
    url, _ = store_copy
    ds = TileDataset([url], _spec(), "train")
    chunk = f"{url}/s1grd/s1grd/c/1/0/0/0/0"
    raw = bytearray(open(chunk, "rb").read())
    raw[len(raw) // 2] ^= 0xFF
    open(chunk, "wb").write(bytes(raw))
    ds[0]  # tile 0 is fine
    with pytest.raises(Exception, match="(?i)checksum|crc|decompress|blosc"):
        ds[1]


def test_tiles_missing_a_layer_are_left_out(store_copy):
    import os

    url, _ = store_copy
    os.remove(f"{url}/s1coh/s1coh/c/1/0/0/0/0")
    ds = TileDataset([url], _spec(), "train")
    assert [t for _, t, _ in ds.index] == [0, 4, 5, 8, 9]
    assert len(TileDataset([url], _spec(inputs={"s1grd": {}}), "train")) == 6


@pytest.mark.parametrize("inputs,target,match", [
    ({"nope": {}}, ESAWC, "unknown modality 'nope'"),
    ({"s1grd": {"bands": ["HH"]}}, ESAWC, "no band 'HH'"),
    ({"s1grd": {"bands": ["VV"]}}, ESAWC, "no band 'VV'; bands: VV_asc, VH_asc"),
    ({"s1grd": {"valid": "yes"}}, ESAWC, "valid must be true or false"),
    ({"s1grd": {"periods": ["2021-MAM"]}}, ESAWC, "no period 2021-MAM"),
    ({"s2": {}}, ESAWC, "has no modality s2"),
    ({"s1grd": {"bnds": ["VV"]}}, ESAWC, "unknown key 'bnds'"),
    ({"s1grd": {}}, {"modality": "ghsbuilt", "task": "classify"}, "task 'classify'"),
])
def test_bad_specs_are_one_clear_error(ml_store, inputs, target, match):
    url, _ = ml_store
    with pytest.raises(BadInput, match=match):
        TileDataset([url], spec_from_config(inputs, target), "train")


def test_plot_draws_a_sample(ml_store):
    url, _ = ml_store
    ds = TileDataset([url], _spec(), "train")
    s = ds[0]
    fig = ds.plot(s, prediction=s["mask"])
    assert len(fig.axes) == 5
    fig.savefig(ds.readers[0].url + "-sample.png")


def test_a_split_file_overrides_the_store_column(ml_store, tmp_path):
    from m3leo_tiles.ml.datamodule import TileDataModule

    url, _ = ml_store
    ids = list(ss.table(12, ["x"])["id"])
    f = tmp_path / "splits.csv"
    f.write_text("identifier,split\n" + "".join(
        f"{t},{'train' if i < 9 else 'test'}\n" for i, t in enumerate(ids)))
    dm = TileDataModule(_spec(), [url], val_split=None, split_file=str(f))
    dm.setup()
    assert [t for _, t, _ in dm.datasets["train"].index] == list(range(9))
    assert [t for _, t, _ in dm.datasets["test"].index] == [9, 10, 11]
    assert "val" not in dm.datasets
    bad = tmp_path / "bad.csv"
    bad.write_text("tile,part\n")
    for path, match in ((str(bad), "needs columns id"), (str(tmp_path / "no.csv"), "no split")):
        with pytest.raises(BadInput, match=match):
            TileDataModule(_spec(), [url], split_file=path).setup()


def test_batch_buffers_are_recycled_only_when_released(ml_store):
    from m3leo_tiles.ml.dataset import collate

    url, _ = ml_store
    ds = TileDataset([url], _spec(patch=32), None)
    first = collate(ds.__getitems__([0, 1, 2]))
    keep = first["image"].clone()
    second = collate(ds.__getitems__([5, 6, 7]))  # `first` is alive: a new buffer
    assert second["image"].data_ptr() != first["image"].data_ptr()
    torch.testing.assert_close(first["image"], keep, equal_nan=True)
    view = first["image"][1]
    ptr = first["image"].data_ptr()
    del first
    third = collate(ds.__getitems__([8, 9, 10]))  # a view of it still lives
    assert third["image"].data_ptr() != ptr
    torch.testing.assert_close(view, keep[1], equal_nan=True)
    del view, third
    fourth = collate(ds.__getitems__([3, 4, 11]))
    assert fourth["image"].data_ptr() == ptr  # the first buffer, free again, is reused
    torch.testing.assert_close(fourth["image"][0], ds[3]["image"], equal_nan=True)


PASSES = {"s1grd": {"bands": ["VV_asc", "VH_asc", "VV_des", "VH_des"], "valid": True}}


@pytest.mark.parametrize("time_dim", ["flatten", "stack"])
def test_both_passes_with_validity_channels(ml_store, time_dim):
    """Per-pass S1: a missing pass is NaN in the sample, 0 after normalisation, and its
    validity channel (0/1, never normalised) tells the model which it was."""
    from m3leo_tiles.ml.datamodule import TileDataModule

    url, data = ml_store
    dm = TileDataModule(_spec(inputs=PASSES, time_dim=time_dim), [url])
    dm.setup()
    ds = dm.datasets["train"]  # tiles 0, 1, 4, 5, 8, 9; 5 and 8 have no descending pass
    names = ["VV_asc", "VH_asc", "VV_des", "VH_des"]
    assert ds.channels == [f"s1grd:{b}@2020-MAM" for b in names] + \
        [f"s1grd:{b}@2020-MAM:valid" for b in names]
    for j, tile in ((2, 4), (3, 5)):
        img = ds[j]["image"].reshape(8, 64, 64).numpy()
        np.testing.assert_array_equal(img[:4], data["s1grd"][tile][:4])
        np.testing.assert_array_equal(img[4:], np.isfinite(data["s1grd"][tile][:4]))
    assert np.isnan(ds[3]["image"].reshape(8, 64, 64)[2:4].numpy()).all()
    # statistics: the descending bands over the 4 training tiles that have it; 0/1 after
    x = torch.stack([ds[j]["image"] for j in range(len(ds))])
    y, _ = dm.normalize(x.clone())
    y, x = y.reshape(6, 8, 64, 64), x.reshape(6, 8, 64, 64)
    des = np.stack([data["s1grd"][t][2] for t in (0, 1, 4, 9)])
    torch.testing.assert_close(y[2, 2], (x[2, 2] - des.mean()) / des.std(), atol=1e-4, rtol=1e-4)
    assert y[3, 2:4].eq(0).all() and y[3, 6:8].eq(0).all()  # no pass: 0, validity 0
    torch.testing.assert_close(y[:, 4:], x[:, 4:])  # validity channels pass through as 0/1
    assert set(torch.unique(y[:, 4:]).tolist()) == {0.0, 1.0}
