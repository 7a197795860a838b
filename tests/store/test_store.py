"""The store layout: reopenable, labelled, growable without rewriting chunks, checksummed."""

from __future__ import annotations

import os

import numpy as np
import pytest
import xarray as xr
import zarr

import tests.runner.synthetic as syn
from m3leo_tiles.errors import BadInput
from m3leo_tiles.grid.tileref import refs_from_table
from m3leo_tiles.periods import expand
from m3leo_tiles.runner.engine import ModalityJob, execute
from m3leo_tiles.runner.state import StateDB
from m3leo_tiles.store.store import TileStore, open_store
from m3leo_tiles.store.verify import verify
from tests.runner.helpers import tiles_table


def _run(tmp_path, table, periods="2020", source=None, url=None):
    url = url or str(tmp_path / "s.zarr")
    store = TileStore.open(url) if TileStore.exists(url) else TileStore.create(url, "t", table, 4480)
    db = StateDB(url + ".state.sqlite")
    job = ModalityJob(syn.SYNTH, source or syn.SyntheticSource(), expand("annual", periods))
    s = execute(store, db, [job], refs_from_table(table))
    db.close()
    return url, s


def test_chunks_reopen_with_labels_and_exact_values(tmp_path):
    table = tiles_table(4)
    url, s = _run(tmp_path, table)
    assert s.done == 4
    ds = xr.open_zarr(url, group="synth", consolidated=False, mask_and_scale=False)
    assert ds["synth"].dims == ("tile", "period", "band", "y", "x")
    assert ds["synth"].shape == (4, 1, 12, 448, 448)
    tid = table["id"][2]
    got = ds["synth"].sel(tile=tid, period="2020").values
    np.testing.assert_array_equal(got, syn.synth_tile(tid, "2020"))
    # the CF scale factor decodes to reflectance
    tree = open_store(url)
    refl = tree["synth"].ds["synth"].sel(tile=tid, period="2020", band="b00").values
    np.testing.assert_allclose(refl, syn.synth_tile(tid, "2020")[0] * 1e-4)
    assert list(tree["tiles"].ds["tile"].values) == list(table["id"])


def test_adding_periods_and_tiles_never_rewrites_chunks(tmp_path):
    table = tiles_table(3)
    url, _ = _run(tmp_path, table, "2020")
    chunk = tmp_path / "s.zarr" / "synth" / "synth" / "c" / "0" / "0" / "0" / "0" / "0"
    before = (chunk.stat().st_ino, chunk.stat().st_mtime_ns, chunk.read_bytes())
    _, s = _run(tmp_path, table, "2021", url=url)
    assert s.done == 3
    store = TileStore.open(url)
    assert store.periods("synth") == ["2020", "2021"]
    added = store.add_tiles(tiles_table(5))
    assert added == 2
    assert zarr.open_array(url, path="synth/synth").shape[:2] == (5, 2)
    after = (chunk.stat().st_ino, chunk.stat().st_mtime_ns, chunk.read_bytes())
    assert before == after


def _verify(url: str, repair: bool = False):
    db = StateDB(url + ".state.sqlite", create=False)
    try:
        return verify(url, db, repair=repair)
    finally:
        db.close()


def test_codec_has_checksum_and_verify_finds_corruption(tmp_path):
    table = tiles_table(3)
    url, _ = _run(tmp_path, table)
    rep = _verify(url)
    assert rep.ok and rep.checked == 3
    chunk = tmp_path / "s.zarr" / "synth" / "synth" / "c" / "1" / "0" / "0" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    rep = _verify(url)
    assert [c[2] for c in rep.corrupt] == [table["id"][1]]
    rep = _verify(url, repair=True)
    assert not chunk.exists()
    # the repaired unit is fetched again by the next run and then verifies clean
    _, s = _run(tmp_path, table, url=url)
    assert s.done == 1
    assert _verify(url).ok


def test_foreign_paths_are_refused(tmp_path):
    with pytest.raises(BadInput, match="no store"):
        TileStore.open(str(tmp_path / "nope.zarr"))
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    with pytest.raises(BadInput, match="not an m3leo-tiles store"):
        TileStore.open(str(tmp_path / "other.zarr"))
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(BadInput):
        TileStore.open(str(tmp_path / "file.zarr"))


def test_partial_files_are_cleaned(tmp_path):
    table = tiles_table(1)
    url, _ = _run(tmp_path, table)
    junk = tmp_path / "s.zarr" / "synth" / "synth" / "c" / "0" / "0" / "0" / "0" / "0.abc.partial"
    junk.write_bytes(b"torn")
    assert TileStore.open(url).cleanup_partials() == 1
    assert not junk.exists()
    assert os.listdir(junk.parent) == ["0"]


def test_fsspec_urls_read_any_but_write_only_where_atomic(tmp_path):
    """memory:// (like sftp://) writes in place: refused for writing; any URL reads."""
    import fsspec

    table = tiles_table(2)
    url = f"memory://m3leo-test-{os.getpid()}/s.zarr"
    with pytest.raises(BadInput, match="not crash-safe"):
        TileStore.create(url, "t", table, 4480)
    local = str(tmp_path / "s.zarr")
    store = TileStore.create(local, "t", table, 4480)
    db = StateDB(str(tmp_path / "state.sqlite"))
    job = ModalityJob(syn.SYNTH, syn.SyntheticSource(), expand("annual", "2020"))
    assert execute(store, db, [job], refs_from_table(table)).done == 2
    fsspec.filesystem("memory").put(local, url[len("memory://"):], recursive=True)
    assert TileStore.open(url, mode="r").info.region == "t"
    arr = zarr.open_array(url, path="synth/synth", mode="r")
    np.testing.assert_array_equal(arr[1, 0], syn.synth_tile(table["id"][1], "2020"))
    with pytest.raises(BadInput, match="not crash-safe"):
        TileStore.open(url)  # r+


def _damage_then_heal(tmp_path, damage):
    """Do a run, apply `damage` (a metadata write cut short), heal, rerun: all done, exact."""
    table = tiles_table(3)
    url, _ = _run(tmp_path, table, "2020")
    store = TileStore.open(url)
    damage(store)
    fixed = TileStore.open(url).heal()
    assert fixed
    assert TileStore.open(url).heal() == []  # healing is idempotent
    _, s = _run(tmp_path, table, "2020/2021", url=url)
    assert s.failed == 0
    ds = xr.open_zarr(url, group="synth", consolidated=False, mask_and_scale=False)
    for tid in table["id"]:
        for p in ("2020", "2021"):
            np.testing.assert_array_equal(ds["synth"].sel(tile=tid, period=p).values,
                                          syn.synth_tile(tid, p))
    return fixed


def test_heal_a_period_label_slot_never_filled(tmp_path):
    def cut(store):  # killed between growing the label array and writing the label
        store.root["synth"]["period"].resize((2,))

    assert "unfilled label" in " ".join(_damage_then_heal(tmp_path, cut))


def test_heal_a_period_label_written_before_the_array_grew(tmp_path):
    def cut(store):
        pa = store.root["synth"]["period"]
        pa.resize((2,))
        pa[1:2] = np.array(["2021"])

    assert "period axis set to 2" in " ".join(_damage_then_heal(tmp_path, cut))


def test_heal_a_half_created_modality_group(tmp_path, monkeypatch):
    table = tiles_table(3)
    url = str(tmp_path / "s.zarr")
    store = TileStore.create(url, "t", table, 4480)
    real = zarr.Group.create_array

    def killed_at_period(self, name, **kw):  # the run dies creating the period coordinate
        if name == "period":
            raise KeyboardInterrupt
        return real(self, name, **kw)

    monkeypatch.setattr(zarr.Group, "create_array", killed_at_period)
    with pytest.raises(KeyboardInterrupt):
        store.ensure_modality(syn.SYNTH)
    monkeypatch.undo()
    with pytest.raises(KeyError):  # what the rerun tripped over before healing existed
        TileStore.open(url).ensure_modality(syn.SYNTH)
    assert TileStore.open(url).heal() == ["synth: half-created group removed"]
    _, s = _run(tmp_path, table, "2020", url=url)
    assert s.done == 3 and s.failed == 0
    ds = xr.open_zarr(url, group="synth", consolidated=False, mask_and_scale=False)
    tid = table["id"][1]
    np.testing.assert_array_equal(ds["synth"].sel(tile=tid, period="2020").values,
                                  syn.synth_tile(tid, "2020"))


def test_heal_tile_rows_appended_only_in_part(tmp_path):
    def cut(store):  # an append that wrote some columns but not the tile ids
        for name in ("epsg", "x0"):
            store.root["tiles"][name].resize((5,))
        store.root["synth"]["synth"].resize((5,) + store.root["synth"]["synth"].shape[1:])

    fixed = " ".join(_damage_then_heal(tmp_path, cut))
    assert "tiles/epsg: cut back to 3" in fixed and "synth: tile axis set to 3" in fixed


def test_create_killed_half_way_leaves_no_store(tmp_path, monkeypatch):
    url = str(tmp_path / "s.zarr")

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(TileStore, "_write_tile_rows", boom)
    with pytest.raises(KeyboardInterrupt):
        TileStore.create(url, "t", tiles_table(2), 4480)
    monkeypatch.undo()
    assert not TileStore.exists(url)
    TileStore.create(url, "t", tiles_table(2), 4480)  # and the rerun creates it
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]


def test_done_units_are_recorded_only_after_a_sync(tmp_path, monkeypatch):
    """A power cut must not leave a unit the DB calls done with its chunk still in the page
    cache: outcomes wait for an os.sync() before they are recorded (one per batch)."""
    import m3leo_tiles.runner.engine as engine

    events: list[str] = []
    monkeypatch.setattr(engine.os, "sync", lambda: events.append("sync"))
    real_record = StateDB.record

    def record(self, outs):
        events.append(f"record {sum(o.status == 'done' for o in outs)}")
        return real_record(self, outs)

    monkeypatch.setattr(StateDB, "record", record)
    monkeypatch.setattr(engine.DurableRecorder.__init__, "__defaults__", (True, 0.0))
    url, s = _run(tmp_path, tiles_table(4))
    assert s.done == 4
    recorded = [e for e in events if e.startswith("record")]
    assert sum(int(e.split()[1]) for e in recorded) == 4
    for i, e in enumerate(events):  # every record of done units follows a sync
        if e.startswith("record") and int(e.split()[1]):
            assert events[i - 1] == "sync"
