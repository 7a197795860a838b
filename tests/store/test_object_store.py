"""`--store s3://...` end to end against moto's S3 server on 127.0.0.1 (started here).

The endpoint and the (dummy) credentials reach s3fs, in the CLI, its joblib workers and Dask
workers alike, through the standard AWS variables (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY), as a user would set them for any S3-compatible service.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tests.runner.synthetic  # noqa: F401 - registers the synthetic source
from tests.loopback import moto_s3
from tests.runner.test_cli_runs import fetch_args, make_store
from tests.runner.test_engine import chunk_digests

BUCKET = "m3leo"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    """A moto S3 server in this process, a bucket, and the environment that reaches it."""
    with moto_s3(BUCKET, tmp_path_factory.mktemp("cache")) as env:
        yield env


def _cli(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "M3LEO_TILES_PLUGINS": "tests.runner.synthetic"}
    p = subprocess.run([sys.executable, "-m", "m3leo_tiles", *args], env=full, text=True,
                       capture_output=True)
    if check and p.returncode:
        raise AssertionError(p.stderr)
    return p


def s3_digests(url: str) -> dict[str, str]:
    """sha256 of every stored chunk object, keyed like `chunk_digests` keys local files."""
    import hashlib

    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    root = url[len("s3://"):] + "/synth/synth/c"
    return {k[len(root) + 1:]: hashlib.sha256(fs.cat_file(k)).hexdigest()
            for k in sorted(fs.find(root))}


def _local_reference(ref: str, aoi: str) -> None:
    """The same fetch into a local store, in this process (what the S3 chunks must equal)."""
    from m3leo_tiles.runner.fetch import FetchRequest, fetch

    fetch(FetchRequest(store=ref, region=aoi, modalities=["synth"], period="2020",
                       source="synthetic", progress=False))


def _chunk_keys(url: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    root = url[len("s3://"):] + "/synth/synth/c"
    return fs.find(root) if fs.exists(root) else []


def _wkt(tmp_path: Path) -> str:
    make_store(tmp_path / "unused.zarr")  # writes t.wkt around the 8 test tiles
    return str(tmp_path / "t.wkt")


def _check_against_local(env: dict, url: str, ref: str) -> None:
    """status, verify, byte-identical chunk objects, and both readers."""
    local = chunk_digests(ref)
    n = len(local)  # the AOI's grid: 7 tiles
    assert n >= 6
    status = json.loads(_cli(env, "status", "--store", url, "--json").stdout)["rows"]
    assert status[0]["done"] == n and status[0]["missing"] == 0
    assert s3_digests(url) == local
    v = _cli(env, "verify", "--store", url)
    assert f"checked {n} chunks: 0 corrupt" in v.stdout and "0 orphan" in v.stdout, v.stdout
    import xarray as xr

    import m3leo_tiles

    tree = m3leo_tiles.open_store(url)
    want = xr.open_zarr(ref, group="synth", consolidated=False)["synth"].load()
    got = xr.open_zarr(url, group="synth", consolidated=False)["synth"].load()
    assert got.shape == want.shape == (n, 1, 12, 448, 448)
    assert (got.values == want.values).all() and (got.values > 0).all()
    t = str(want["tile"].values[3])
    np.testing.assert_array_equal(
        tree["synth"].ds["synth"].sel(tile=t, period="2020").values,
        want.sel(tile=t, period="2020").values)


@pytest.mark.timeout(120)
def test_s3_store_end_to_end(s3_env, tmp_path):
    aoi = _wkt(tmp_path)
    ref = str(tmp_path / "ref.zarr")
    _local_reference(ref, aoi)
    url = f"s3://{BUCKET}/plain.zarr"
    p = _cli(s3_env, *fetch_args(url, "--region", aoi, "--workers", "2", "--json"))
    assert json.loads(p.stdout.strip().splitlines()[-1])["done"] == len(chunk_digests(ref))
    # the state lives under the user cache, named after the URL (no store to put it beside)
    import hashlib

    state = (Path(s3_env["XDG_CACHE_HOME"]) / "m3leo-tiles" /
             (hashlib.sha256(url.encode()).hexdigest()[:16] + ".state.sqlite"))
    assert state.is_file()
    _check_against_local(s3_env, url, ref)
    p = _cli(s3_env, *fetch_args(url, "--json"))  # a rerun does nothing
    d = json.loads(p.stdout.strip().splitlines()[-1])
    assert d["done"] == 0 and d["already_done"] == len(chunk_digests(ref))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_s3_store_survives_kill_9(s3_env, tmp_path):
    aoi = _wkt(tmp_path)
    ref = str(tmp_path / "ref.zarr")
    _local_reference(ref, aoi)
    url = f"s3://{BUCKET}/kill.zarr"
    full = {**os.environ, **s3_env, "M3LEO_TILES_PLUGINS": "tests.runner.synthetic"}
    rng = random.Random(3)
    kills, seen = 0, 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "m3leo_tiles", *fetch_args(
                url, "--region", aoi, "--workers", "2", "--source-opt",
                "synthetic.delay=0.5")],
            env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        # kill mid-run: once this run has stored a new chunk, at a random moment after
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if len(_chunk_keys(url)) > seen:
                time.sleep(rng.uniform(0.0, 0.6))
                break
            time.sleep(0.1)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        seen = len(_chunk_keys(url))
    assert kills >= 2 and 0 < seen
    p = _cli(s3_env, *fetch_args(url, "--region", aoi, "--workers", "2", "--json"))
    assert json.loads(p.stdout.strip().splitlines()[-1])["failed"] == 0
    _check_against_local(s3_env, url, ref)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_dask_local_cluster_writes_to_s3(s3_env, tmp_path):
    distributed = pytest.importorskip("distributed")
    from m3leo_tiles.runner.fetch import FetchRequest, fetch

    aoi = _wkt(tmp_path)
    ref = str(tmp_path / "ref.zarr")
    _local_reference(ref, aoi)
    url = f"s3://{BUCKET}/dask.zarr"

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, processes=True) as cluster:
        summary = fetch(FetchRequest(store=url, region=aoi, modalities=["synth"], period="2020",
                                     source="synthetic", scheduler=cluster.scheduler_address,
                                     progress=False))
    local = chunk_digests(ref)
    assert summary.done == len(local) >= 6
    assert s3_digests(url) == local


@pytest.mark.parametrize("url", ["sftp://host/data/r.zarr", "smb://server/share/r.zarr",
                                 "simplecache::s3://bucket/r.zarr", "memory://r.zarr",
                                 "http://host/r.zarr"])
def test_stores_that_write_in_place_are_refused(tmp_path, url):
    from m3leo_tiles.errors import BadInput
    from m3leo_tiles.runner.fetch import FetchRequest, fetch

    with pytest.raises(BadInput, match="not crash-safe") as e:
        fetch(FetchRequest(store=url, region=_wkt(tmp_path), modalities=["synth"],
                           period="2020", source="synthetic"))
    assert "\n" not in str(e.value)


def test_cli_refuses_an_unsafe_store_in_one_line(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    p = _cli(env, *fetch_args("sftp://host/r.zarr", "--region", _wkt(tmp_path)), check=False)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "sftp:// is not crash-safe" in p.stderr, p.stderr
    assert not list(tmp_path.glob("m3leo-tiles/*"))


def test_an_unknown_protocol_is_one_clear_error():
    from m3leo_tiles.errors import BadInput
    from m3leo_tiles.store.store import TileStore

    with pytest.raises(BadInput, match="nosuch://b/r.zarr: Protocol not known: nosuch"):
        TileStore.open("nosuch://b/r.zarr", mode="r")
