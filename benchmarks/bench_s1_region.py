"""Sentinel-1 at region scale: plan conus 2020-JJA for every S1 layer, then run real units.

1. A loopback CMR (tests/sources/asf_server.py, in a subprocess) serves the IW burst
   catalogue of conus for June-August 2020 built from ESA's burst-id rule and the real
   track geometry (tests/sources/burst_catalogue.py: S1A + S1B, 6-day repeat), and the SLC
   frames those bursts make up. The planner (`fetch`'s own path: grid, source periods, pair
   search, `plan_work`) plans s1grd + s1coh + s1ifg + s1geom through the ASF source in its
   default burst mode, which plans from the frames (searching the ~100k bursts one by one
   costs asf_search about 4 ms each) and cuts the region into bounded block units; then 20
   units spread over the plan resolve their bursts as a worker does (one CMR burst search
   each: `resolve_s_per_unit`, `bursts_per_unit`).
2. `m3leo-tiles simulate --size tile` writes a 4-date stack over 3 bursts (36 tiles; in a
   second process while step 1 plans, so `plan_s` is measured beside it); its units
   (one per tile here, every S1 layer each: 36 units, 18 per worker, as a region run has many
   units per worker) run through the engine with 2 workers; each unit's processing time
   (inside the worker) and its worker's peak RSS are logged, so busy time / (workers x wall)
   is measured, not guessed. The wall is the engine's whole run, worker start-up included.
   Until 2026-11-30 the run used `--size small` (4 tiles): 4 units on 2 workers in ~6 s, of
   which each worker's start-up (spawn and imports, ~1.2 s before its first unit can start, a
   fixed cost a region run pays once for thousands of units) was a fifth, so the ratio read
   0.76-0.85 whatever the engine did, and fell as units got faster.

3. Fetch ratios (issue 20), a REPLAY, not a download: the run's real schedule (the engine's
   locality schedule of the conus plan, runner/locality.py) and today's longest-first order
   are played against a simulated cache per node (`locality.replay`), each unit needing the
   bursts the region catalogue has for its frames over its tiles' hull (what its one CMR
   burst search returns), each burst of the size CMR publishes for its frame spread over the
   frame's bursts (the plan's sizes: the loopback catalogue's frames are 1 GiB each). Nodes
   have 8 workers and a 200 GB cache. Also at real SLC sizes (7.2 GB a 30-burst frame:
   1500 lines x 20k samples x CInt16 x 2 polarisations per burst), `*_7gb` keys.
   `distinct_over_needed` is the distinct bursts' bytes over the bytes the tiles need
   (runner/inputs.py: each tile's share of its frames' area).
4. `estimate_error`: the stack run of step 2 estimated before it runs from costs calibrated
   on another simulated scene (`m3leo-tiles calibrate --size small --dates 3` in its own
   process: another scene, fewer dates, two unit sizes), against the core-seconds the engine then records for its units
   (CPU seconds, the quantity the estimate prices; `estimate_error_vs_read_s` compares with
   the wall seconds the source's reads took instead). Until 2026-12-08 the calibration was
   the tile scene at 3 dates, one unit size, priced by one average per read, against wall
   seconds: 0.27-0.35, and the two tile-scene simulations made the benchmark run over 25 min
   on a loaded machine.

Last line: {"name": "s1_region", "bursts", "acquisitions", "units", "max_tiles_per_unit",
"plan_s", "plan_peak_gb", "worker_peak_gb", "workers_busy_ratio", "fetch_ratio_1node",
"fetch_ratio_16nodes", "fetch_ratio_longest_first_1node", "distinct_over_needed",
"estimate_error", ...}.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from m3leo_tiles.sources.s1 import S1ArchiveSource  # noqa: E402

LAYERS = ["s1grd", "s1coh", "s1ifg", "s1geom"]
#: the calibration `estimate_error` prices the run from: another simulated scene, other dates
CAL_SIZE, CAL_DATES = "small", 3


class TimedArchive(S1ArchiveSource):
    """The archive source, logging each unit's processing seconds and its worker's peak RSS."""

    name = "archive"

    def __init__(self, log: str, **options) -> None:
        super().__init__(**options)
        self.log = log

    def read(self, unit, tiles, modality, period):
        t0 = time.perf_counter()
        results = list(super().read(unit, tiles, modality, period))  # one tile: small
        with open(self.log, "a") as f:
            f.write(json.dumps({"unit": unit.key, "s": time.perf_counter() - t0,
                                "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                / 2**20}) + "\n")
        yield from results


def _gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def plan_conus(tmp: Path) -> dict:
    from m3leo_tiles.grid.tileref import refs_from_table
    from m3leo_tiles.runner.engine import UnitRetryPolicy, plan_work
    from m3leo_tiles.runner.fetch import FetchRequest, resolve_jobs
    from m3leo_tiles.runner.runstore import grid_table
    from tests.loopback import spawn

    with spawn("tests.sources.asf_server", "conus", "2020-06-01", "2020-09-01") as info:
        t0 = time.perf_counter()
        req = FetchRequest(store=str(tmp / "conus.zarr"), region="conus", modalities=LAYERS,
                           period="2020-JJA", source="asf",
                           source_options={"asf": {"host": info["host"],  # bursts: default
                                                   "cache": str(tmp / "cache")}})
        jobs = resolve_jobs(req)
        _, table = grid_table("conus", 4480)
        refs = refs_from_table(table, list(table["id"]))
        t1 = time.perf_counter()
        for job in jobs:  # the searches and the pairing happen here
            job.periods = job.source.periods(job.modality, job.request, refs)
        t2 = time.perf_counter()
        plan = plan_work(jobs, refs, None, False, UnitRetryPolicy())
        t3 = time.perf_counter()
        plan_s = t3 - t0
        peak = _gb()
        resolved = resolve_sample(jobs[0].source, [u for _, u in plan.units], refs)
        ratios = fetch_ratios([u for _, u in plan.units], refs, jobs[0].source)
    units = [u for _, u in plan.units]
    sizes = [len(u.all_tiles) for u in units]
    planned = {(p.track, p.date) for u in units for p in u.payload.products}
    return {"bursts": info["bursts"], "frames": info["frames"],
            "acquisitions": info["acquisitions"], "acquisitions_planned": len(planned),
            "tiles": len(refs), "units": len(units), "max_tiles_per_unit": max(sizes),
            "mean_tiles_per_unit": round(sum(sizes) / len(sizes), 1),
            "targets": sum(len(u.targets) for u in units),
            "pair_periods": len(next(j for j in jobs if j.modality.name == "s1coh").periods),
            "grid_s": round(t1 - t0, 1), "search_pair_s": round(t2 - t1, 1),
            "blocks_s": round(t3 - t2, 1), "plan_s": round(plan_s, 1),
            "plan_peak_gb": round(peak, 2), **resolved, **ratios}


def fetch_ratios(units: list, refs: list, source) -> dict:
    """Step 3 of the module docstring."""
    import datetime as dt

    import shapely

    from m3leo_tiles.grid.regions import load_aoi
    from m3leo_tiles.runner.engine import unit_weight
    from m3leo_tiles.runner.inputs import UnitInputs, plan_inputs
    from m3leo_tiles.runner.locality import longest_first, replay, schedule
    from tests.sources.burst_catalogue import catalogue

    t0 = time.perf_counter()
    _, aoi = load_aoi("conus")
    bursts, _ = catalogue(aoi, dt.date(2020, 6, 1), dt.date(2020, 9, 1))
    tree = shapely.STRtree([b.footprint for b in bursts])
    by_id = {r.id: r for r in refs}
    model = plan_inputs(units, refs, source.footprints())  # needed bytes, burst-cell model
    per_frame: dict[str, int] = {}
    for b in bursts:
        per_frame[b.extra["slc"]] = per_frame.get(b.extra["slc"], 0) + 1
    sizes = {p.name: p.size or 0 for u in units for p in u.payload.products}
    needs = []
    for u in units:
        hull = shapely.GeometryCollection([by_id[t].polygon for t in u.all_tiles]).convex_hull
        names = {p.name for p in u.payload.products}
        needs.append({(bursts[i].extra["slc"], bursts[i].name)
                      for i in tree.query(hull, predicate="intersects").tolist()
                      if bursts[i].extra["slc"] in names})
    weights = [unit_weight(u) for u in units]
    cap, out = 200 * 10**9, {}
    for tag, size_of in (("", lambda f: sizes[f] // per_frame[f]),
                         ("_7gb", lambda f: 1500 * 20000 * 4 * 2)):
        inputs = [UnitInputs(u.key, {f"{f}#{b}": size_of(f) for f, b in n})
                  for u, n in zip(units, needs, strict=True)]
        distinct = sum({f"{f}#{b}": size_of(f) for n in needs for f, b in n}.values())
        one = schedule(units, by_id, weights, 1)
        sixteen = schedule(units, by_id, weights, 16)
        out[f"fetch_ratio_1node{tag}"] = round(replay(one, inputs, weights, cap, 8) / distinct, 3)
        out[f"fetch_ratio_16nodes{tag}"] = round(
            replay(sixteen, inputs, weights, cap, 8) / distinct, 3)
        out[f"fetch_ratio_longest_first_1node{tag}"] = round(
            replay(longest_first(weights, 1), inputs, weights, cap, 8, policy="lru") / distinct,
            3)
        if not tag:
            out["distinct_bytes"] = distinct
            out["needed_bytes"] = sum(m.needed_bytes for m in model)
            out["distinct_over_needed"] = round(distinct / max(1, out["needed_bytes"]), 3)
            out["download_bytes_estimated"] = sum(
                {k: v for m in model for k, v in m.bursts.items()}.values())
    out["replay_s"] = round(time.perf_counter() - t0, 1)
    return out


def resolve_sample(source, units: list, refs: list, n: int = 20) -> dict:
    """The read-time half of burst mode on `n` units spread over the plan: each unit's ONE
    CMR burst search (its frames' bursts over its tiles), as a worker makes it."""
    by_id = {r.id: r for r in refs}
    step = max(1, len(units) // n)
    sample = units[::step][:n]
    times, bursts, frames = [], [], []
    for u in sample:
        recs = [r for r in u.payload.products if r.as_bursts]
        t0 = time.perf_counter()
        found = source.burst_search(recs, [by_id[t] for t in u.all_tiles])
        times.append(time.perf_counter() - t0)
        bursts.append(sum(len(v) for v in found.values()))
        frames.append(sum(1 for r in recs if found.get(r.name)) / max(1, len(recs)))
    return {"resolve_units": len(sample),
            "resolve_s_per_unit": round(sum(times) / len(times), 3),
            "resolve_s_max": round(max(times), 3),
            "bursts_per_unit": round(sum(bursts) / len(bursts), 1),
            "frames_with_bursts": round(sum(frames) / len(frames), 3)}


def start_simulation(tmp: Path, dates: int = 4, size: str = "tile") -> subprocess.Popen:
    """Step 2's scene, simulated by a second process while step 1 plans (planning is one
    Python thread: the machine's other core simulates meanwhile, and nothing is measured on
    the stack before the plan is done)."""
    return subprocess.Popen([sys.executable, "-m", "m3leo_tiles", "simulate", "--size", size,
                             "--dates", str(dates), "--out", str(tmp / "sim")],
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL)


def run_stack(tmp: Path, simulation: subprocess.Popen, dates: int = 4,
              size: str = "tile") -> dict:
    from m3leo_tiles.runner.fetch import DryRun, FetchRequest, fetch
    from m3leo_tiles.runner.state import StateDB
    from m3leo_tiles.sources import register_source
    from m3leo_tiles.store.urls import default_state_path

    t0 = time.perf_counter()
    sim = tmp / "sim"
    if simulation.wait() != 0:
        raise RuntimeError(f"simulate --size {size} --dates {dates} failed")
    log = tmp / "units.jsonl"
    register_source("timed", "__main__:TimedArchive")
    os.environ["XDG_CACHE_HOME"] = str(tmp / "xdg")  # a calibration of its own
    t1 = time.perf_counter()
    # another scene and fewer dates, in its own process as a user runs it: its workers
    # must not warm (or swell) the run's, whose start-up the busy ratio and peak include
    subprocess.run([sys.executable, "-m", "m3leo_tiles", "calibrate", "--size", CAL_SIZE,
                    "--dates", str(CAL_DATES), "--workers", "2"], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    cal_s = time.perf_counter() - t1
    req = FetchRequest(store=str(tmp / "sim.zarr"), region=str(sim / "aoi.geojson"),
                       modalities=LAYERS, period="2025-MAM", source="timed",
                       source_options={"timed": {"archive": str(sim / "s1"),
                                                 "dem": str(sim / "rasters" / "dem.tif"),
                                                 "block": 1, "log": str(log)}},
                       workers=2, progress=False)
    dry = fetch(FetchRequest(**{**req.__dict__, "dry_run": True}))
    assert isinstance(dry, DryRun)
    estimated = (dry.estimate.total.core_hours or 0) * 3600
    s = fetch(req)
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    busy = sum(r["s"] for r in rows)
    # the core-seconds the estimate prices: each unit's worker seconds as the engine
    # measures them (reading, processing and writing its chunks), from the run's records
    db = StateDB(default_state_path(req.store), create=False)
    measured = float(db.conn.execute("SELECT sum(seconds) FROM costs").fetchone()[0] or 0)
    db.close()
    return {"dates": dates, "sim_size": size, "sim_units": s.units, "sim_done": s.done,
            "sim_failed": s.failed,
            "sim_wall_s": round(s.seconds, 1), "busy_s": round(busy, 1),
            "worker_peak_gb": round(max(r["rss_gb"] for r in rows), 2),
            "workers_busy_ratio": round(busy / (2 * s.seconds), 3),
            "estimated_core_s": round(estimated, 1), "measured_core_s": round(measured, 1),
            "estimate_error": round(abs(estimated - measured) / measured, 3),
            "estimate_error_vs_read_s": round(abs(estimated - busy) / busy, 3),
            "calibration_s": round(cal_s, 1), "stack_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_s1_region_") as d:
        tmp = Path(d)
        simulation = start_simulation(tmp)
        try:
            plan = plan_conus(tmp)
            print(json.dumps({"stage": "plan", **plan}), flush=True)
            run = run_stack(tmp, simulation)
        finally:
            if simulation.poll() is None:
                simulation.kill()
                simulation.wait()
    out = {"name": "s1_region", "bursts": plan["bursts"], "acquisitions": plan["acquisitions"],
           "units": plan["units"], "max_tiles_per_unit": plan["max_tiles_per_unit"],
           "plan_s": plan["plan_s"], "plan_peak_gb": plan["plan_peak_gb"],
           "worker_peak_gb": run["worker_peak_gb"],
           "workers_busy_ratio": run["workers_busy_ratio"],
           "fetch_ratio_1node": plan["fetch_ratio_1node"],
           "fetch_ratio_16nodes": plan["fetch_ratio_16nodes"],
           "fetch_ratio_longest_first_1node": plan["fetch_ratio_longest_first_1node"],
           "distinct_over_needed": plan["distinct_over_needed"],
           "estimate_error": run["estimate_error"]}
    print(json.dumps({"stage": "detail", **plan, **run,
                      "bench_s": round(time.perf_counter() - t0, 1)}), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
