"""A run on a filesystem that fills up: a clear error, nothing recorded done that is not on
disk, and a rerun after space is freed that completes with the same bytes.

Two ways to fill the disk: a small tmpfs mounted for the test (root only; skipped with the
reason where mounting is not allowed), and, everywhere, ENOSPC injected at the chunk file's
write call (the store's chunk writer, store/chunks.py) and SQLite's own SQLITE_FULL
(`max_page_count`), the errors a full filesystem gives at those two places.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import zarr

import tests.runner.synthetic as syn
from m3leo_tiles.errors import StorageFull
from m3leo_tiles.runner.state import Outcome, StateDB
from m3leo_tiles.store import chunks
from tests.runner.helpers import tiles_table
from tests.runner.test_cli_runs import cli, fetch_args, make_store
from tests.runner.test_engine import chunk_digests, run


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {p.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _resize(mnt: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)


def _check_done_are_on_disk(url: str, ref: str) -> int:
    """Every unit the state calls done has its chunk, and it is the reference's chunk."""
    db = StateDB(url + ".state.sqlite", create=False)
    done = db.done_units("synth")
    db.close()
    have, want = chunk_digests(url), chunk_digests(ref)
    ids = list(zarr.open_group(url, mode="r")["tiles"]["tile"][:])
    for _period, tile in done:
        key = f"{ids.index(tile)}/0/0/0/0"
        assert have.get(key) == want[key], f"{tile} recorded done but its chunk is not on disk"
    return len(done)


def _one_clear_error(p: subprocess.CompletedProcess) -> None:
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "no space left" in errors[0], p.stderr
    assert "free space and rerun" in errors[0]


@pytest.mark.slow  # about 30 s: eight CLI runs
@pytest.mark.timeout(180)
def test_disk_fills_mid_run_then_rerun_completes_identically(small_disk, tmp_path):
    ref = make_store(tmp_path / "ref.zarr")  # region t.wkt beside it
    aoi = str(tmp_path / "t.wkt")
    cli(*fetch_args(ref), check=True)
    n = len(chunk_digests(ref))
    assert n == 8
    # 9 MiB hold about four of the eight 2 MB chunks: the disk fills mid-run
    url = str(small_disk / "s.zarr")
    make_store(small_disk / "s.zarr")
    (small_disk / "t.wkt").unlink()
    p = cli(*fetch_args(url, "--workers", "2", "--json", "--region", aoi))
    _one_clear_error(p)
    done = _check_done_are_on_disk(url, ref)
    assert 0 < done < n
    status = cli("status", "--store", url, "--json", check=True)
    import json

    row = json.loads(status.stdout)["rows"][0]
    assert (row["done"], row["failed"], row["missing"]) == (done, 0, n - done)
    assert cli("verify", "--store", url).returncode == 0  # what is done decodes

    # a disk already full before the run starts: refused just as clearly, nothing recorded
    filler = small_disk / "filler"
    _fill(filler)
    p = cli(*fetch_args(url, "--json"))
    _one_clear_error(p)

    # space freed: the rerun does only what is missing, and the store equals the reference
    filler.unlink()
    assert _check_done_are_on_disk(url, ref) == done  # (SQLite itself needs room to read)
    _resize(small_disk, "64m")
    p = cli(*fetch_args(url, "--json"), check=True)
    assert json.loads(p.stdout.strip().splitlines()[-1])["done"] == n - done
    assert chunk_digests(url) == chunk_digests(ref)
    assert _check_done_are_on_disk(url, ref) == n
    assert not list(Path(url).rglob("*.partial"))
    v = cli("verify", "--store", url, check=True)
    assert f"checked {n} chunks: 0 corrupt" in v.stdout
    a = zarr.open_group(url, mode="r")["synth"]["synth"][:]
    b = zarr.open_group(ref, mode="r")["synth"]["synth"][:]
    np.testing.assert_array_equal(a, b)


def _fill(path: Path) -> None:
    """Write zeros until the disk is full (unbuffered: no flush left to fail at close)."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


def test_a_full_disk_under_the_state_database_is_storage_full(small_disk):
    """SQLite's "database or disk is full" (or its I/O error when it cannot even grow its
    journal) becomes the run's clear StorageFull, and the batch is rolled back."""
    db = StateDB(str(small_disk / "s.state.sqlite"), "s.zarr")
    db.record([Outcome("synth", "2020", "t0", "done")])
    _fill(small_disk / "filler")
    many = [Outcome("synth", "2020", f"t{i}", "done", error="x" * 2000) for i in range(1, 3000)]
    with pytest.raises(StorageFull, match="no space left for the state database"):
        db.record(many)
    db.close()
    (small_disk / "filler").unlink()
    db = StateDB(str(small_disk / "s.state.sqlite"), create=False)
    assert [t for _, t in db.done_units("synth")] == ["t0"]  # the full batch left no trace
    db.close()


class FullAfter:
    """`open` as the store's chunk writer (store/chunks.py) sees it on a disk with room for
    `room` more chunks: the next chunk's `.partial` file is created, some bytes land, then
    its write fails with ENOSPC, as on a full disk. Cleaning up is left to the writer."""

    def __init__(self, room: int):
        self.room, self.refused = room, 0

    def __call__(self, file, mode="r", *args, **kwargs):
        f = open(file, mode, *args, **kwargs)
        if "w" not in mode:
            return f
        if self.room > 0:
            self.room -= 1
            return f
        self.refused += 1
        return _FullFile(f)


class _FullFile:
    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        self.f.close()
        return False

    def write(self, data) -> int:
        self.f.write(b"\0" * 512)  # some bytes landed before the disk filled
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.f.name)


def test_enospc_at_the_chunk_write_stops_the_run_and_the_rerun_completes(tmp_path, monkeypatch):
    """No mount needed: the run stops with StorageFull naming the cause, every unit it
    recorded done has its chunk on disk, no `.partial` is left, and the rerun after space
    is freed writes only what is missing, byte for byte the reference."""
    table = tiles_table(4)
    ref, url = str(tmp_path / "ref.zarr"), str(tmp_path / "s.zarr")
    run(ref, table, syn.SyntheticSource())
    full = FullAfter(room=2)
    monkeypatch.setattr(chunks, "open", full, raising=False)
    with pytest.raises(StorageFull, match=r"^no space left on device \(.*\.partial\): the run "
                                          r"stopped after 2 units done; free space and rerun"):
        run(url, table, syn.SyntheticSource())
    assert full.refused == 1  # the run stopped at the first refused write
    monkeypatch.undo()  # space freed
    assert _check_done_are_on_disk(url, ref) == 2
    assert not list(Path(url).rglob("*.partial"))
    s, failures = run(url, table, syn.SyntheticSource())
    assert (s.done, s.failed, failures) == (2, 0, [])
    assert chunk_digests(url) == chunk_digests(ref) and len(chunk_digests(ref)) == 4


def test_sqlite_full_under_the_state_database_is_storage_full(tmp_path):
    """No mount needed: SQLite's own SQLITE_FULL ("database or disk is full"), here from a
    page limit, becomes StorageFull and the batch leaves no trace."""
    path = str(tmp_path / "s.state.sqlite")
    db = StateDB(path, "s.zarr")
    db.record([Outcome("synth", "2020", "t0", "done")])
    pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
    db.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    many = [Outcome("synth", "2020", f"t{i}", "done", error="x" * 2000) for i in range(1, 300)]
    with pytest.raises(StorageFull, match="no space left for the state database .*s.state.sqlite"):
        db.record(many)
    db.close()
    db = StateDB(path, create=False)
    assert [t for _, t in db.done_units("synth")] == ["t0"]
    db.close()
