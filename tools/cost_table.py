"""The region-year cost table of docs/cost.md, made by the estimator (runner/estimate.py).

One season of every S1 layer over conus is planned exactly as `fetch --dry-run` plans it
(the loopback CMR serving conus's burst catalogue for 2020-JJA, tests/sources/asf_server.py),
and s2 for the same tiles and season (one Earth Engine request per tile); the estimator
prices it with the calibration database (`m3leo-tiles calibrate`). A year is four such
seasons, and the other regions are conus scaled by their M3LEO tile counts (DESIGN.md): a
scaling, not a plan of each region (their burst catalogues would take hours to plan here).

Usage: python tools/cost_table.py > table.md   (one JSON line per layer goes to stderr)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: M3LEO's unique tile locations per region (DESIGN.md, arXiv 2406.04230)
M3LEO_TILES = {"conus": 167_406, "europe": 200_489, "middleeast": 163_986, "pakin": 147_791,
               "china": 285_402, "southamerica": 83_756}
S1 = ["s1grd", "s1coh", "s1ifg", "s1geom"]


def season_estimates() -> tuple[dict, int]:
    from m3leo_tiles.grid.tileref import refs_from_table
    from m3leo_tiles.runner.engine import UnitRetryPolicy, plan_work
    from m3leo_tiles.runner.estimate import estimate, load_model
    from m3leo_tiles.runner.fetch import FetchRequest, resolve_jobs
    from m3leo_tiles.runner.runstore import grid_table
    from tests.loopback import spawn

    model = load_model(None)
    _, table = grid_table("conus", 4480)
    refs = refs_from_table(table, list(table["id"]))
    out = {}
    with tempfile.TemporaryDirectory() as d, \
            spawn("tests.sources.asf_server", "conus", "2020-06-01", "2020-09-01") as info:
        for mods, source, opts in ((S1, "asf", {"host": info["host"], "cache": d}),
                                   (["s2"], "earthengine", {"project": "cost-table"})):
            jobs = resolve_jobs(FetchRequest(store=str(Path(d) / "x.zarr"), region="conus",
                                             modalities=mods, period="2020-JJA", source=source,
                                             source_options={source: opts}))
            for job in jobs:
                job.periods = job.source.periods(job.modality, job.request, refs)
            plan = plan_work(jobs, refs, None, False, UnitRetryPolicy())
            est = estimate(plan.units, refs, model)
            for x in est.layers:
                out[x.modality] = x
            out["s1 total" if source == "asf" else "s2 total"] = est.total
    return out, len(refs)


def main() -> None:
    rows, tiles = season_estimates()
    print("| layer | span | region | downloaded | needed | EE requests | core-hours | store |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, x in rows.items():
        print(json.dumps({"layer": name, **x.__dict__}), file=sys.stderr)
        for span, k in (("season", 1), ("year", 4)):
            for region, scale in (("conus", M3LEO_TILES["conus"] / tiles),
                                  ("all six", sum(M3LEO_TILES.values()) / tiles)):
                f = k * scale
                hours = "?" if x.core_hours is None else f"{x.core_hours * f:,.0f}"
                print(f"| {name} | {span} | {region} | {x.download_bytes * f / 1e12:,.1f} TB "
                      f"| {x.needed_bytes * f / 1e12:,.1f} TB | {x.ee_requests * f:,.0f} "
                      f"| {hours} | {x.store_bytes * f / 1e12:,.2f} TB |")


if __name__ == "__main__":
    main()
