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
2. `m3leo-tiles simulate --size tile` writes a 4-date stack over 3 bursts (36 tiles); its units
   (one per tile here, every S1 layer each: 36 units, 18 per worker, as a region run has many
   units per worker) run through the engine with 2 workers; each unit's processing time
   (inside the worker) and its worker's peak RSS are logged, so busy time / (workers x wall)
   is measured, not guessed. The wall is the engine's whole run, worker start-up included.
   Until 2026-11-30 the run used `--size small` (4 tiles): 4 units on 2 workers in ~6 s, of
   which each worker's start-up (spawn and imports, ~1.2 s before its first unit can start, a
   fixed cost a region run pays once for thousands of units) was a fifth, so the ratio read
   0.76-0.85 whatever the engine did, and fell as units got faster.

Last line: {"name": "s1_region", "bursts", "acquisitions", "units", "max_tiles_per_unit",
"plan_s", "plan_peak_gb", "worker_peak_gb", "workers_busy_ratio", ...}.
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
            "plan_peak_gb": round(peak, 2), **resolved}


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


def run_stack(tmp: Path, dates: int = 4, size: str = "tile") -> dict:
    from m3leo_tiles.runner.fetch import FetchRequest, fetch
    from m3leo_tiles.sources import register_source

    sim = tmp / "sim"
    subprocess.run([sys.executable, "-m", "m3leo_tiles", "simulate", "--size", size,
                    "--dates", str(dates), "--out", str(sim)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    log = tmp / "units.jsonl"
    register_source("timed", "__main__:TimedArchive")
    s = fetch(FetchRequest(store=str(tmp / "sim.zarr"), region=str(sim / "aoi.geojson"),
                           modalities=LAYERS, period="2025-MAM", source="timed",
                           source_options={"timed": {"archive": str(sim / "s1"),
                                                     "dem": str(sim / "rasters" / "dem.tif"),
                                                     "block": 1, "log": str(log)}},
                           workers=2, progress=False))
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    busy = sum(r["s"] for r in rows)
    return {"dates": dates, "sim_size": size, "sim_units": s.units, "sim_done": s.done,
            "sim_failed": s.failed,
            "sim_wall_s": round(s.seconds, 1), "busy_s": round(busy, 1),
            "worker_peak_gb": round(max(r["rss_gb"] for r in rows), 2),
            "workers_busy_ratio": round(busy / (2 * s.seconds), 3)}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_s1_region_") as d:
        tmp = Path(d)
        plan = plan_conus(tmp)
        print(json.dumps({"stage": "plan", **plan}), flush=True)
        run = run_stack(tmp)
    out = {"name": "s1_region", "bursts": plan["bursts"], "acquisitions": plan["acquisitions"],
           "units": plan["units"], "max_tiles_per_unit": plan["max_tiles_per_unit"],
           "plan_s": plan["plan_s"], "plan_peak_gb": plan["plan_peak_gb"],
           "worker_peak_gb": run["worker_peak_gb"],
           "workers_busy_ratio": run["workers_busy_ratio"]}
    print(json.dumps({"stage": "detail", **plan, **run}), flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
