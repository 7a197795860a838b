"""What unwrapping (`s1unw`, issue 22) adds to a Sentinel-1 block unit.

`m3leo-tiles simulate --size tile --deformation-cm 10` writes a pair over 3 bursts (36 tiles,
a 10 cm deformation bowl: several fringes). The archive source plans its block units; the
bench joins them into ONE unit holding all 36 tiles (the production planner cuts them at
8-tile block boundaries, which this swath straddles), then reads that unit twice through the
production path (`sources.s1work.read_unit`), numba warm:
- `block_s`: the unit's S1 processing without unwrapping (s1coh + s1ifg: resampling, flat
  and topographic phase, coherence and phase at 40 m);
- with s1unw too: the same plus the 80 m phase and coherence, the layover/shadow mask (the
  track geometry per tile) and ONE SNAPHU run on the block mosaic; `unwrap_s` is the
  difference, `snaphu_s` the SNAPHU call alone, `ratio` = unwrap_s / block_s;
  `unwrap_end_s` is timed directly: the unit's end stage (layover/shadow masks, SNAPHU, the
  cut into tiles); `unwrap_direct_s` adds the 80 m phase and coherence timed per tile: what
  unwrap_s measures by difference, `ratio_direct` = unwrap_direct_s / block_s. On a loaded
  machine the difference swings by more than it measures; the direct times do not.
Each is run REPEAT times, alternated; every time is the minimum over the runs (the least
disturbed by other load).
`peak_gb` is the peak RSS of this process, which reads the unit (warm-up and both runs) and
nothing else: the simulation runs in a child process, since its own peak (2.8 GB, the
simulator's rasters) is not what a unit needs. RSS counts resident file-backed pages too
(shared libraries, cached files: droppable by the kernel), so it is an upper bound of the
unit's footprint; `rss_file_gb` and `rss_anon_gb` split the RSS at the end
(/proc/self/status). Timings on a shared machine are indicative; the CPU
seconds (this process's threads and SNAPHU's child process) are less sensitive to load:
`unwrap_cpu_s`, `block_cpu_s`, `cpu_ratio`.

Last line: {"name": "s1_unwrap", "block_tiles", "pairs", "unwrap_s", "block_s", "ratio",
"peak_gb", ...}. `python benchmarks/bench_s1_unwrap.py [SIM_DIR]`: an existing simulation
(`m3leo-tiles simulate --size tile --deformation-cm 10 --out SIM_DIR`) skips the 3-minute
simulation.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPEAT = 3  # runs of each; every figure is the minimum over them
sys.path.insert(0, str(ROOT))

from m3leo_tiles.grid.tileref import TileRef  # noqa: E402
from m3leo_tiles.modalities import get_modality  # noqa: E402
from m3leo_tiles.periods import request  # noqa: E402
from m3leo_tiles.sources.base import PlanRequest, Target, TileResult, WorkUnit  # noqa: E402
from m3leo_tiles.sources.s1 import S1ArchiveSource  # noqa: E402
from m3leo_tiles.sources.s1blocks import PairWork, S1Work  # noqa: E402
from m3leo_tiles.sources.s1unw import BlockUnwrapper  # noqa: E402
from m3leo_tiles.sources.s1work import read_unit  # noqa: E402


def cpu() -> float:
    """CPU seconds of this process (all threads) and its children (SNAPHU runs as one)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def one_unit(units: list[WorkUnit]) -> WorkUnit:
    """The planner's block units of one pair joined into one unit over all their tiles."""
    first = units[0].payload
    assert isinstance(first, S1Work)
    names = [p.name for p in first.products]
    cover: dict[str, tuple[int, ...]] = {}
    tiles: list[str] = []
    for u in units:
        w = u.payload
        assert isinstance(w, S1Work) and [p.name for p in w.products] == names
        cover.update(w.cover)
        tiles.extend(t for pw in w.pairs for t in pw.tiles)
    pw0 = first.pairs[0]
    work = dataclasses.replace(first, cover=cover,
                               pairs=(PairWork(pw0.label, pw0.track, pw0.products,
                                               tuple(tiles)),))
    return WorkUnit("s1coh", pw0.label, tuple(tiles), key="bench", items=tuple(names),
                    payload=work)


def run(sim: Path) -> dict:
    m = json.loads((sim / "simulation.json").read_text())
    refs = [TileRef.from_id(t) for t in m["tiles"]]
    by_id = {t.id: t for t in refs}
    src = S1ArchiveSource(archive=str(sim / "s1"), dem=str(sim / "rasters" / "dem.tif"))
    coh, unw = get_modality("s1coh"), get_modality("s1unw")
    period = src.periods(coh, request("pair", m["dates"][0][:4]), refs)[0]
    units = src.plan_all([PlanRequest(get_modality(n), period, refs)
                          for n in ("s1coh", "s1ifg")])
    base = one_unit(units)
    with_unw = dataclasses.replace(base, more=(Target("s1ifg", period.label, base.tiles),
                                               Target("s1unw", period.label, base.tiles)))
    without = dataclasses.replace(base, more=(Target("s1ifg", period.label, base.tiles),))
    proc = src.options.processing(None)
    paths = [str(p.path) for p in base.payload.products]  # type: ignore[attr-defined]

    import m3leo_tiles.sar.pipeline as pipeline_mod
    import m3leo_tiles.sar.unwrap as unwrap_mod

    stage = {"snaphu": 0.0, "end": 0.0, "layers80": 0.0}  # seconds, per run

    def timer(key: str, fn: Any, when: Any = None) -> Any:
        def timed(*a: Any, **k: Any) -> Any:
            if when is not None and not when(*a, **k):
                return fn(*a, **k)
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                stage[key] += time.perf_counter() - t0
        return timed

    def timed_results(self: BlockUnwrapper) -> Iterator[TileResult]:  # the unit's end stage
        t0 = time.perf_counter()
        out = list(real[2](self))
        stage["end"] += time.perf_counter() - t0
        yield from out

    real = (unwrap_mod.unwrap_phase, pipeline_mod.pair_coherence, BlockUnwrapper.results)
    unwrap_mod.unwrap_phase = timer("snaphu", real[0])  # the SNAPHU call (one per mosaic)
    pipeline_mod.pair_coherence = timer(  # s1unw's 80 m phase and coherence, per tile
        "layers80", real[1], lambda *a, **k: a[3] == unwrap_mod.UNW_RES)
    BlockUnwrapper.results = timed_results  # type: ignore[method-assign]
    # warm-up: numba compilation and the DEM/product caches, on a few tiles
    warm = dataclasses.replace(with_unw, tiles=base.tiles[:2],
                               more=(Target("s1unw", period.label, base.tiles[:2]),))
    list(read_unit(warm, by_id, paths, proc))
    runs: dict[str, list[tuple[float, ...]]] = {"without": [], "with": []}
    last: dict[str, list] = {}
    for _ in range(REPEAT):  # alternated, so a burst of load hits both alike
        for name, unit in (("without", without), ("with", with_unw)):
            stage.update(dict.fromkeys(stage, 0.0))
            t0, c0 = time.perf_counter(), cpu()
            res = list(read_unit(unit, by_id, paths, proc))
            runs[name].append((time.perf_counter() - t0, cpu() - c0, stage["snaphu"],
                               stage["end"], stage["end"] + stage["layers80"]))
            last[name] = res
    unwrap_mod.unwrap_phase, pipeline_mod.pair_coherence = real[0], real[1]
    BlockUnwrapper.results = real[2]  # type: ignore[method-assign]
    block_s, block_cpu = (min(x[k] for x in runs["without"]) for k in range(2))
    with_s, with_cpu, snaphu, end, direct = (min(x[k] for x in runs["with"]) for k in range(5))
    res0, res1 = last["without"], last["with"]
    done = [r for r in res1 if r.modality == "s1unw" and r.status == "done"]
    unwrap_s = with_s - block_s
    grids = [by_id[t].grid_at(80) for t in base.tiles]
    mosaic = (round((max(g.y0 for g in grids) - min(g.y0 for g in grids)) / 80) + 56,
              round((max(g.x0 for g in grids) - min(g.x0 for g in grids)) / 80) + 56)
    return {"name": "s1_unwrap", "block_tiles": len(base.tiles), "pairs": 1,
            "unwrap_s": round(unwrap_s, 2), "block_s": round(block_s, 2),
            "ratio": round(unwrap_s / block_s, 3),
            "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
            "snaphu_s": round(snaphu, 2), "unwrap_end_s": round(end, 2),
            "unwrap_direct_s": round(direct, 2), "ratio_direct": round(direct / block_s, 3),
            "repeats": REPEAT, "mosaic_px": list(mosaic),
            "unwrap_cpu_s": round(with_cpu - block_cpu, 2), "block_cpu_s": round(block_cpu, 2),
            "cpu_ratio": round((with_cpu - block_cpu) / block_cpu, 3),
            "s1unw_done_tiles": len(done),
            "results_without": len(res0), "results_with": len(res1),
            "data": "simulate --size tile --deformation-cm 10", "unw": unw.name}


def rss_split() -> dict[str, float]:
    """Resident anonymous and file-backed memory now (GB), from /proc/self/status."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out[f"rss_{key[3:].lower()}_gb"] = round(int(val.split()[0]) / 2**20, 3)
    return out


def simulate_in_child(sim: Path) -> None:
    """The bench's scene, written by another process (its memory is not the unit's)."""
    import multiprocessing

    from m3leo_tiles.simulator import simulate

    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=simulate, args=(sim,),
                    kwargs={"size": "tile", "seed": 0, "deformation_cm": 10.0})
    p.start()
    p.join()
    if p.exitcode != 0:
        raise SystemExit(f"simulate failed (exit {p.exitcode})")


def main() -> None:
    sim_arg = sys.argv[1] if len(sys.argv) > 1 else None
    if sim_arg:
        print(json.dumps(run(Path(sim_arg)) | rss_split()))
        return
    with tempfile.TemporaryDirectory() as d:
        sim = Path(d) / "tile"
        simulate_in_child(sim)
        print(json.dumps(run(sim) | rss_split()))


if __name__ == "__main__":
    main()
