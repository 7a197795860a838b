"""Stores for the report and STAC tests: a small one made by real runs, a big one made
cheaply (a tile table and state rows written directly, no unit run)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd

import tests.runner.synthetic  # noqa: F401 - registers the synthetic source and modality
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.runner.fetch import FetchRequest, fetch
from m3leo_tiles.runner.state import Outcome, StateDB
from m3leo_tiles.store.store import TileStore
from m3leo_tiles.store.urls import default_state_path
from tests.runner.test_cli_runs import make_store

FAILING = 2, 5  # tile indices whose units fail permanently
NODATA = 3
STALE = 0  # its 2020 unit is marked as made by an older source version


def small_store(folder: Path) -> str:
    """8 tiles; synth 2020 with 2 failures, 1 nodata, 1 stale unit; synth 2021 on 3 tiles."""
    url = make_store(folder / "small.zarr", 8)
    ids = list(TileStore.open(url, mode="r").tile_ids)
    opts = {"synthetic": {"fail": {ids[i]: "permanent" for i in FAILING},
                          "nodata": [ids[NODATA]]}}
    fetch(FetchRequest(store=url, modalities=["synth"], period="2020", source="synthetic",
                       source_options=opts))
    fetch(FetchRequest(store=url, modalities=["synth"], period="2021", source="synthetic",
                       limit=3))
    with sqlite3.connect(default_state_path(url)) as con:
        con.execute("UPDATE units SET version='synthetic:0' WHERE tile=? AND period='2020'",
                    (ids[STALE],))
    return url


def big_store(folder: Path, n: int = 200_000, seed: int = 0) -> str:
    """`n` tiles of zone 31N in one block; synth 2020 and 2021 recorded with every status,
    straight into the state (the store holds metadata only: no chunk is written)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    cols, rows = np.divmod(np.arange(n), side)
    cols, rows = cols + 20, rows + 1000
    size = 4480
    from m3leo_tiles.grid.tiles import to_lonlat

    lon, lat = to_lonlat(32631).transform((cols + 0.5) * size, (rows + 0.5) * size)
    table = pd.DataFrame({
        "id": [f"31N-{c:04d}-{r:04d}" for c, r in zip(cols, rows, strict=True)],
        "epsg": 32631, "x0": cols * size * 1.0, "y0": (rows + 1) * size * 1.0,
        "dx": 10.0, "dy": 10.0, "size": size, "split": "", "lon": lon, "lat": lat})
    url = str(folder / "big.zarr")
    store = TileStore.create(url, "big", table, size)
    m = get_modality("synth")
    store.ensure_modality(m)
    store.ensure_periods("synth", ["2020", "2021"])
    db = StateDB(default_state_path(url), url)
    ids = table["id"].tolist()
    for period, p_done in (("2020", 0.9), ("2021", 0.4)):
        draw = rng.random(n)
        status = np.where(draw < p_done, "done", np.where(draw < p_done + 0.03, "nodata",
                          np.where(draw < p_done + 0.05, "failed", "")))
        db.record(Outcome("synth", period, t, str(s), source="synthetic",
                          version="synthetic:1", error="synthetic HTTP 503" if s == "failed"
                          else None) for t, s in zip(ids, status, strict=True) if s)
    run = db.start_run("fetch synth 2020")
    db.conn.execute("UPDATE runs SET started=? WHERE id=?", (time.time() - 3600, run))
    db.finish_run(run, {"done": int(0.9 * n), "failed": int(0.02 * n), "nodata": 0,
                        "bytes_downloaded": 123_456_789})
    db.close()
    return url
