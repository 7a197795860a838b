"""store/chunks.py: a worker's chunk write without zarr gives zarr's bytes, or leaves it to zarr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from m3leo_tiles.modalities import get_modality
from m3leo_tiles.store import chunks
from m3leo_tiles.store.chunks import ChunkLayout, write_chunk
from m3leo_tiles.store.store import TileStore
from tests.runner.helpers import tiles_table

ROOT = Path(__file__).resolve().parents[2]


def _store(tmp_path: Path, name: str, modality: str = "s2") -> tuple[str, np.ndarray]:
    """A store with one modality sized for 3 tiles x 2 periods, and a chunk of data for it."""
    url = str(tmp_path / name)
    store = TileStore.create(url, "t", tiles_table(3), 4480)
    m = get_modality(modality)
    store.ensure_modality(m)
    store.ensure_periods(m.name, ["2020", "2021"])
    n = int(round(4480 / m.res))
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.integers(0, 9, (len(m.bands), n, n)), axis=2) % 5000
    return url, smooth.astype(m.dtype)


def test_chunk_bytes_are_zarrs(tmp_path):
    chunks._LAYOUTS.clear()
    ours, data = _store(tmp_path, "ours.zarr")
    theirs, _ = _store(tmp_path, "theirs.zarr")
    assert ChunkLayout.read(Path(ours) / "s2" / "s2") is not None  # the fast path is taken
    write_chunk(ours, "s2", 2, 1, data)
    arr = zarr.open_array(theirs, path="s2/s2", mode="r+")
    arr[2, 1] = data
    key = Path("s2/s2/c/2/1/0/0/0")
    assert (Path(ours) / key).read_bytes() == (Path(theirs) / key).read_bytes()
    back = zarr.open_array(ours, path="s2/s2", mode="r")
    np.testing.assert_array_equal(back[2, 1], data)
    assert not list(Path(ours).rglob("*.partial"))


def test_an_array_with_other_codecs_is_written_by_zarr(tmp_path):
    chunks._LAYOUTS.clear()
    url, data = _store(tmp_path, "s.zarr")
    meta_path = Path(url) / "s2" / "s2" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["codecs"] = meta["codecs"][:2]  # no checksum: not the layout chunks.py encodes
    meta_path.write_text(json.dumps(meta))
    assert ChunkLayout.read(meta_path.parent) is None
    write_chunk(url, "s2", 0, 0, data)
    stored = (meta_path.parent / "c/0/0/0/0/0").read_bytes()
    assert zarr.open_array(url, path="s2/s2", mode="r")[0, 0].tolist() == data.tolist()
    # zarr wrote it: no CRC32C appended, so it decodes without the checksum codec
    assert len(stored) == len(zarr.codecs.BloscCodec(typesize=2, cname="zstd", clevel=3,
                                                     shuffle="shuffle")._blosc_codec.encode(
        data.view(np.uint8).ravel()))


def test_a_grown_array_is_read_again_and_bad_chunks_refused(tmp_path):
    chunks._LAYOUTS.clear()
    url, data = _store(tmp_path, "s.zarr")
    write_chunk(url, "s2", 0, 1, data)  # caches the 3 x 2 layout
    store = TileStore.open(url)
    store.ensure_periods("s2", ["2022"])
    write_chunk(url, "s2", 1, 2, data)  # outside the cached shape: the layout is read again
    np.testing.assert_array_equal(zarr.open_array(url, path="s2/s2")[1, 2], data)
    with pytest.raises(IndexError, match="outside"):
        write_chunk(url, "s2", 1, 3, data)
    with pytest.raises(ValueError, match="store expects"):
        write_chunk(url, "s2", 0, 0, data[:, :10])


def test_a_worker_writes_a_chunk_without_importing_zarr(tmp_path):
    url, data = _store(tmp_path, "s.zarr")
    np.save(tmp_path / "d.npy", data)
    code = ("import sys, numpy as np\n"
            "from m3leo_tiles.runner import engine\n"
            "from m3leo_tiles.store.store import write_chunk\n"
            f"write_chunk({url!r}, 's2', 1, 0, np.load({str(tmp_path / 'd.npy')!r}))\n"
            "print('zarr' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["False"]
    np.testing.assert_array_equal(zarr.open_array(url, path="s2/s2")[1, 0], data)


def test_a_chunk_reads_back_without_zarr_as_zarr_wrote_it(tmp_path):
    """A loader's read: zarr's chunk decoded directly is zarr's array; a chunk never written
    is left to zarr (its fill value); a corrupt one raises naming the checksum."""
    chunks._LAYOUTS.clear()
    url, data = _store(tmp_path, "s.zarr")
    zarr.open_array(url, path="s2/s2", mode="r+")[1, 0] = data
    got = chunks.read_chunk(url, "s2", 1, 0)
    assert got is not None and got.dtype == data.dtype and got.flags.writeable
    np.testing.assert_array_equal(got, data)
    assert chunks.read_chunk(url, "s2", 2, 1) is None
    key = Path(url) / "s2/s2/c/1/0/0/0/0"
    raw = bytearray(key.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    key.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="CRC32C checksum mismatch"):
        chunks.read_chunk(url, "s2", 1, 0)
