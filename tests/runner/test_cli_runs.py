"""fetch / refresh / status / verify from the command line, including kill -9 mid-run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from m3leo_tiles.runner.runstore import RunLock
from m3leo_tiles.store.store import TileStore
from tests.runner.helpers import tiles_table
from tests.runner.test_engine import chunk_digests

ENV = {**os.environ, "M3LEO_TILES_PLUGINS": "tests.runner.synthetic"}


def cli(*args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "m3leo_tiles", *args], env=kw.pop("env", ENV),
                       text=True, capture_output=True, **kw)
    if check and p.returncode:
        raise AssertionError(p.stderr)
    return p


def make_store(path: Path, n: int = 8) -> str:
    """A store for region `t`, the AOI file t.wkt beside it (around the tiles)."""
    table = tiles_table(n)
    (path.parent / "t.wkt").write_text(
        f"POLYGON(({table.lon.min()} {table.lat.min()}, {table.lon.max()} {table.lat.min()}, "
        f"{table.lon.max()} {table.lat.max()}, {table.lon.min()} {table.lat.min()}))")
    TileStore.create(str(path), "t", table, 4480)
    return str(path)


def fetch_args(url: str, *extra: str) -> list[str]:
    return ["fetch", "--store", url, "-m", "synth", "--period", "2020", "--source", "synthetic",
            *extra]


def test_fetch_status_and_rerun(tmp_path):
    url = make_store(tmp_path / "s.zarr", 4)
    p = cli(*fetch_args(url, "--json"), check=True)
    assert json.loads(p.stdout.strip().splitlines()[-1])["done"] == 4
    p = cli(*fetch_args(url, "--json"), check=True)
    d = json.loads(p.stdout.strip().splitlines()[-1])
    assert (d["done"], d["already_done"]) == (0, 4)
    p = cli("status", "--store", url, "--json", check=True)
    rows = json.loads(p.stdout)["rows"]
    assert rows == [{"modality": "synth", "period": "2020", "done": 4, "nodata": 0,
                     "failed": 0, "missing": 0}]
    assert "checked 4 chunks: 0 corrupt" in cli("verify", "--store", url, check=True).stdout


@pytest.mark.timeout(300)
def test_kill_9_at_random_moments_then_rerun_gives_identical_chunks(tmp_path):
    ref = make_store(tmp_path / "ref.zarr")
    cli(*fetch_args(ref, "--workers", "2"), check=True)
    url = make_store(tmp_path / "k.zarr")
    rng = random.Random(7)
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "m3leo_tiles", *fetch_args(
                url, "--workers", "2", "--source-opt", "synthetic.delay=0.15")],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.5, 2.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 3
    p = cli(*fetch_args(url, "--workers", "2", "--json"), check=True)
    assert json.loads(p.stdout.strip().splitlines()[-1])["failed"] == 0
    status = json.loads(cli("status", "--store", url, "--json", check=True).stdout)["rows"]
    assert status[0]["done"] == 8 and status[0]["missing"] == 0
    assert chunk_digests(url) == chunk_digests(ref)
    assert not list(Path(url).rglob("*.partial"))
    assert cli("verify", "--store", url).returncode == 0


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    cfg = tmp_path / "m3leo.toml"
    cfg.write_text(f"""
store = "{url}"
log = "refresh.log"
workers = 1
{extra}
[[job]]
region = "t.wkt"
modalities = ["synth"]
period = "2020"
source = "synthetic"
""")
    return cfg


def test_refresh_logs_json_and_is_incremental(tmp_path):
    url = make_store(tmp_path / "s.zarr", 3)
    cfg = write_config(tmp_path, url)
    p = cli("refresh", "--config", str(cfg), check=True)
    assert "done 3" in p.stdout
    p = cli("refresh", "--config", str(cfg), check=True)
    assert "done 0" in p.stdout and "already done 3" in p.stdout
    events = [json.loads(line) for line in (tmp_path / "refresh.log").read_text().splitlines()]
    assert [e["event"] for e in events] == ["start", "done", "end"] * 2
    assert events[1]["done"] == 3 and events[4]["already_done"] == 3


def test_overlapping_refresh_exits_0_saying_so(tmp_path):
    url = make_store(tmp_path / "s.zarr", 2)
    cfg = write_config(tmp_path, url)
    with RunLock(url + ".state.sqlite.lock"):
        p = cli("refresh", "--config", str(cfg))
    assert p.returncode == 0 and "another run holds the lock" in p.stdout
    assert not (tmp_path / "s.zarr.state.sqlite").exists()


def test_refresh_exit_code_only_for_permanent_failures(tmp_path):
    url = make_store(tmp_path / "s.zarr", 2)
    t = tiles_table(2)["id"][0]
    cfg = write_config(tmp_path, url, f'[sources.synthetic]\nfail = {{"{t}" = "permanent"}}\n')
    p = cli("refresh", "--config", str(cfg))
    assert p.returncode == 1 and "failed 1" in p.stdout


@pytest.mark.parametrize("args, message", [
    (["-m", "nope", "--period", "2020"], "unknown modality 'nope'"),
    (["-m", "synth", "--period", "2020-13"], "bad month"),
    (["-m", "synth", "--period", "2021/2020"], "ends before it starts"),
    (["-m", "synth"], "needs --period"),
    (["-m", "synth", "--period", "2020-03"], "holds no whole annual period"),
    (["-m", "synth", "--period", "2020", "--source", "nope"], "unknown source 'nope'"),
])
def test_bad_fetch_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    url = str(tmp_path / "s.zarr")
    p = cli("fetch", "--store", url, "--region", "t", *args)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_store_of_another_region_and_corrupt_state_are_refused(tmp_path):
    url = make_store(tmp_path / "s.zarr", 2)
    p = cli(*fetch_args(url, "--region", "europe"))
    assert p.returncode == 2 and "belongs to region 't'" in p.stderr
    Path(url + ".state.sqlite").write_bytes(b"this is not sqlite" * 100)
    p = cli(*fetch_args(url))
    assert p.returncode == 2 and "corrupt" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    nonstore = tmp_path / "plain"
    nonstore.mkdir()
    p = cli(*fetch_args(str(nonstore)))
    assert p.returncode == 2 and "not a Zarr v3 store" in p.stderr or "no store" in p.stderr


def test_refresh_config_with_unknown_keys_is_refused(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('store = "x.zarr"\nbogus = 1\n[[job]]\nregion = "t"\nmodalities = ["synth"]\n')
    p = cli("refresh", "--config", str(cfg))
    assert p.returncode == 2 and "unknown keys ['bogus']" in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.toml"]


def test_fetch_creates_the_store_from_the_region_grid(tmp_path):
    import shapely

    from m3leo_tiles.grid.build import build_grid

    aoi = tmp_path / "box.wkt"
    aoi.write_text("POLYGON((2.0 48.0, 2.15 48.0, 2.15 48.1, 2.0 48.1, 2.0 48.0))")
    url = str(tmp_path / "s.zarr")
    p = cli(*fetch_args(url, "--region", str(aoi), "--limit", "3", "--json"), check=True)
    assert json.loads(p.stdout.strip().splitlines()[-1])["done"] == 3
    grid = build_grid(shapely.from_wkt(aoi.read_text()))
    store = TileStore.open(url)
    assert list(store.tile_ids) == list(grid["id"]) and store.info.region == "box"
    rows = json.loads(cli("status", "--store", url, "--json", check=True).stdout)["rows"]
    assert rows[0]["done"] == 3 and rows[0]["missing"] == len(grid) - 3
    ids = ",".join(grid["id"][3:5])
    p = cli(*fetch_args(url, "--tiles", ids, "--json"), check=True)
    assert json.loads(p.stdout.strip().splitlines()[-1])["done"] == 2


def test_cadence_makes_monthly_composites_of_an_annual_modality(tmp_path):
    import xarray as xr

    from tests.runner.synthetic import synth_tile

    url = make_store(tmp_path / "s.zarr", 2)
    p = cli("fetch", "--store", url, "-m", "synth", "--period", "2020-01-01/2020-03-31",
            "--cadence", "monthly", "--source", "synthetic", "--json", check=True)
    assert json.loads(p.stdout.strip().splitlines()[-1])["done"] == 6
    ds = xr.open_zarr(url, group="synth", consolidated=False, mask_and_scale=False)
    assert list(ds["period"].values) == ["2020-01", "2020-02", "2020-03"]
    tid = str(ds["tile"].values[1])
    assert (ds["synth"].sel(tile=tid, period="2020-02").values == synth_tile(tid, "2020-02")).all()
    p = cli("fetch", "--store", url, "-m", "synth", "--period", "2020", "--cadence", "weekly",
            "--source", "synthetic")
    assert p.returncode == 2 and "weekly" in p.stderr


def test_dry_run_plans_and_writes_nothing(tmp_path):
    aoi = tmp_path / "t.wkt"
    make_store(tmp_path / "ref.zarr", 3)  # writes t.wkt around 3 tiles
    url = str(tmp_path / "new.zarr")
    args = ["fetch", "--region", str(aoi), "--store", url, "-m", "synth", "--period",
            "2020/2021-12-31", "--source", "synthetic", "--dry-run"]
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "xdg")}  # no calibration database
    p = cli(*args, "--json", check=True, env=env)
    dry = json.loads(p.stdout)
    rows = dry["rows"]
    assert [(r["period"], r["already_done"]) for r in rows] == [("2020", 0), ("2021", 0)]
    n = rows[0]["tiles_to_fetch"]
    assert n >= 3 and not Path(url).exists() and not Path(url + ".state.sqlite").exists()
    # nothing measured yet: no core-hours, raw chunk bytes as the store's size
    assert dry["core_hours"] is None and dry["costs_from"] == "none"
    assert dry["tile_dates"] == 2 * n and dry["download_bytes"] == dry["needed_bytes"] == 0
    assert dry["store_bytes"] == 2 * n * 12 * 448 * 448 * 2  # synth: 12 uint16 bands, raw
    cli(*args[:-1], "--period", "2020", check=True, env=env)  # fetch 2020 for real
    dry = json.loads(cli(*args, "--json", check=True, env=env).stdout)
    rows = dry["rows"]
    assert [(r["period"], r["tiles_to_fetch"], r["already_done"]) for r in rows] == \
        [("2020", 0, n), ("2021", n, 0)]
    # the 2020 run's own cost records price 2021 (n tile-dates at its measured rate; the
    # first unit of the run's process carries its warm-up and is left out)
    import sqlite3

    with sqlite3.connect(url + ".state.sqlite") as c:
        assert c.execute("SELECT sum(reads), sum(cold) FROM costs").fetchone() == (n, 1)
        reads, seconds = c.execute("SELECT sum(reads), sum(seconds) FROM costs "
                                   "WHERE cold = 0").fetchone()
    assert reads == n - 1 and seconds > 0
    assert dry["costs_from"] == "run" and dry["tile_dates"] == n
    assert abs(dry["core_hours"] - n * seconds / reads / 3600) < 1e-9
    text = cli(*args, check=True, env=env).stdout
    assert f"{n} tile-periods to fetch" in text and "nothing written" in text


def test_refresh_dry_run_reports_without_writing(tmp_path):
    url = make_store(tmp_path / "s.zarr", 3)
    cfg = write_config(tmp_path, url)
    p = cli("refresh", "--config", str(cfg), "--dry-run", check=True)
    assert "3 tile-periods to fetch" in p.stdout
    assert not (tmp_path / "s.zarr.state.sqlite").exists() and not (tmp_path / "refresh.log").exists()
    cli("refresh", "--config", str(cfg), check=True)
    assert "0 tile-periods to fetch" in cli("refresh", "--config", str(cfg), "--dry-run",
                                            check=True).stdout


def test_cadence_leaves_products_that_are_not_composites_alone():
    from m3leo_tiles.runner.fetch import FetchRequest, resolve_jobs

    jobs = resolve_jobs(FetchRequest(store="unused.zarr", modalities=["s2", "esawc"],
                                     period="2021", cadence="monthly"))
    periods = {j.modality.name: [getattr(p, "label", None) for p in j.request] for j in jobs}
    assert periods["s2"][:2] == ["2021-01", "2021-02"] and len(periods["s2"]) == 12
    assert periods["esawc"] == ["2021"]  # WorldCover is a yearly map, not a composite
