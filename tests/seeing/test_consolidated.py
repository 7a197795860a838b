"""Consolidated metadata: written by every run under its lock, true again after a killed run
is rerun, and what lets `xarray.open_zarr(url, group=m)` open without its warning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from m3leo_tiles.store.consolidated import consolidate, stale_nodes
from tests.runner.test_cli_runs import ENV, cli, fetch_args, make_store
from tests.store.test_object_store import _cli


def open_quietly(url: str, group: str, **kw) -> xr.Dataset:
    """`open_zarr` with every warning an error (the no-consolidated-metadata one included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(url, group=group, mask_and_scale=False, **kw)


def test_a_run_leaves_true_consolidated_metadata_and_open_zarr_needs_no_fallback(tmp_path):
    url = make_store(tmp_path / "s.zarr", 3)
    assert stale_nodes(url) == ["<no consolidated metadata>"]
    with pytest.raises(RuntimeWarning, match="consolidated"):
        open_quietly(url, "synth")  # no run yet: xarray falls back, and says so
    cli(*fetch_args(url), check=True)
    assert stale_nodes(url) == []
    ds = open_quietly(url, "synth")
    live = xr.open_zarr(url, group="synth", consolidated=False, mask_and_scale=False)
    assert ds["synth"].shape == live["synth"].shape == (3, 1, 12, 448, 448)
    assert list(ds["period"].values) == ["2020"]
    assert np.array_equal(ds["synth"][:, 0, 0, ::64, ::64].values,
                          live["synth"][:, 0, 0, ::64, ::64].values)


def _period_axis(url: str) -> int:
    meta = json.loads((Path(url) / "synth" / "synth" / "zarr.json").read_text())
    return int(meta["shape"][1])


@pytest.mark.timeout(180)
def test_consolidated_metadata_is_true_after_a_killed_then_rerun_fetch(tmp_path):
    url = make_store(tmp_path / "k.zarr", 6)
    cli(*fetch_args(url), check=True)  # 2020 done and consolidated
    args = ["fetch", "--store", url, "-m", "synth", "--period", "2021", "--source", "synthetic",
            "--source-opt", "synthetic.delay=0.4"]
    proc = subprocess.Popen([sys.executable, "-m", "m3leo_tiles", *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    t0 = time.monotonic()
    while _period_axis(url) < 2 and proc.poll() is None and time.monotonic() - t0 < 60:
        time.sleep(0.02)  # kill once the run has grown the period axis
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _period_axis(url) == 2
    # killed: the consolidated copy is the last finished run's, a store that exists
    assert stale_nodes(url) != []
    ds = open_quietly(url, "synth")
    assert list(ds["period"].values) == ["2020"] and ds["synth"].shape[1] == 1
    cli(*args[:-2], check=True)  # the rerun finishes the job
    assert stale_nodes(url) == []
    ds = open_quietly(url, "synth")
    assert list(ds["period"].values) == ["2020", "2021"] and ds["synth"].shape[:2] == (6, 2)
    assert int(ds["synth"][5, 1, 0, 0, 0]) > 0


def test_stale_nodes_sees_a_change_made_after_consolidating(tmp_path):
    import zarr

    url = make_store(tmp_path / "c.zarr", 2)
    consolidate(url)
    assert stale_nodes(url) == []
    a = zarr.open_array(url, path="tiles/lon", mode="r+")
    a.resize((3,))
    assert stale_nodes(url) == ["tiles/lon"]


def test_an_s3_store_opens_with_consolidated_metadata_and_reports(s3_env, tmp_path):
    make_store(tmp_path / "unused.zarr", 3)  # writes t.wkt around the test tiles
    url = "s3://seeing/consolidated.zarr"
    _cli(s3_env, *fetch_args(url, "--region", str(tmp_path / "t.wkt"), "--limit", "2"))
    assert stale_nodes(url) == []
    ds = open_quietly(url, "synth")
    live = xr.open_zarr(url, group="synth", consolidated=False, mask_and_scale=False)
    assert ds["synth"].shape == live["synth"].shape and ds["synth"].shape[1] == 1
    assert list(ds["tile"].values) == list(live["tile"].values)
    assert int(ds["synth"][0, 0, 0, 0, 0]) > 0
    # the report reads the same store through fsspec (sizes included)
    page = tmp_path / "s3.html"
    p = _cli(s3_env, "report", "--store", url, "--out", str(page))
    assert str(page) in p.stdout
    html = page.read_text()
    assert f"<code>{url}</code>" in html and '<span class="n done">' in html
    assert "<td>synth</td><td>0 B</td>" not in html and "<td>synth</td><td>" in html
