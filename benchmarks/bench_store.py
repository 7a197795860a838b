"""Store write throughput against a plain zarr loop (the floor we add to), and planning cost.

Writes N synthetic 12 x 448 x 448 uint16 tiles (smooth, realistic) through the runner and the
store with the default codec and workers; the same arrays with the same codec in a plain zarr
loop; the same arrays with numpy.save to loose files (context). Then plans 100,000 units against
a state database holding 50,000 done ones and records 100,000 outcomes.
Last line: {"name": "store", "ours_mb_s", "plain_zarr_mb_s", "np_save_mb_s", "ratio",
"compression", "plan_ms_per_unit", ..., "first_chunk_s"}. `first_chunk_s` is when the first
chunk was recorded: the workers' start-up (spawn, imports), which a 64-tile run (~2 s of plain
zarr writing) does not amortise; past it, a chunk costs what it costs plain zarr (one cached
array handle per process, no metadata read, lock or fsync per chunk; one os.sync per 2 s batch
before outcomes are recorded).
`worker_start_s` ({"ee", "local", "s1"}): a fresh one-worker pool, from creating it to the
worker holding an unpickled unit of that source kind (spawn, loky, the engine's worker side,
the store writer, the source's module), the median of 3; `worker_modules` names the heavy
libraries each kind's worker then holds (an EE or local worker never holds the SAR stack);
`worker_start_cpu_s` the CPU seconds the worker spent until then (stable where the wall clock
is not: on a machine others load, compare these). Workers fork from a fork server the
coordinator starts with its first pool (runner/executors.py); `worker_start_cold_s` is that
first pool of a fresh coordinator process, server start included (median of 3 processes).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = str(ROOT)

import tests.runner.synthetic as syn  # noqa: E402
from benchmarks import workerprobe  # noqa: E402
from m3leo_tiles.grid import TileRef, refs_from_table  # noqa: E402
from m3leo_tiles.grid.tiles import BASE_RES, Tile  # noqa: E402
from m3leo_tiles.modalities import get_modality  # noqa: E402
from m3leo_tiles.periods import expand  # noqa: E402
from m3leo_tiles.runner.engine import (  # noqa: E402
    ModalityJob,
    UnitRetryPolicy,
    execute,
    plan_units,
    run_unit,
)
from m3leo_tiles.runner.executors import WorkerPool  # noqa: E402
from m3leo_tiles.runner.state import Outcome, StateDB  # noqa: E402
from m3leo_tiles.sources import get_source  # noqa: E402
from m3leo_tiles.sources.base import Source, WorkUnit  # noqa: E402
from m3leo_tiles.store.store import TileStore, codecs  # noqa: E402
from tests.runner.helpers import tiles_table  # noqa: E402

N_TILES = int(os.environ.get("BENCH_STORE_TILES", "64"))
N_PLAN = 100_000


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class _PlanOnly(Source):
    name = "planonly"

    def read(self, unit: WorkUnit, tiles, modality, period):  # pragma: no cover - never run
        raise NotImplementedError


def bench_plan(tmp: Path) -> float:
    g = Tile(31, "N", 0, 0).grid(BASE_RES)
    refs = [TileRef(f"31N-{i // 1000:04d}-{i % 1000:04d}", g, None) for i in range(N_PLAN)]
    db = StateDB(str(tmp / "plan.sqlite"))
    db.record(Outcome("synth", "2020", r.id, "done", items=("x",), source="planonly",
                      version="planonly:1") for r in refs[::2])
    period = expand("annual", "2020")[0]
    job = ModalityJob(syn.SYNTH, _PlanOnly(), [period])
    t0 = time.perf_counter()
    units, skipped = plan_units(job, period, refs, db, False, UnitRetryPolicy())
    db.record(Outcome("synth", "2020", u.tiles[0], "done", source="planonly", version="planonly:1")
              for u in units)
    t = time.perf_counter() - t0
    assert skipped == N_PLAN // 2 and len(units) == N_PLAN // 2
    db.close()
    return t * 1000 / N_PLAN


#: source kind -> (source name, its options, a modality it serves)
KINDS = {"ee": ("earthengine", {"project": "bench"}, "s2"),
         "local": ("local", {"root": "{tmp}"}, "s2"),
         "s1": ("archive", {"archive": "{tmp}"}, "s1coh")}


def worker_start(tmp: Path, kind: str, runs: int = 3,
                 cold: bool = False) -> tuple[float, list[str], float]:
    """Seconds from a fresh one-worker pool to its worker holding a unit of `kind`, the
    heavy modules it then holds, and the CPU seconds the worker spent getting there.
    `cold`: one pool, the first of this process (its fork server starts with it)."""
    name, opts, mod = KINDS[kind]
    source = get_source(name, **{k: v.format(tmp=tmp) for k, v in opts.items()})
    tile = Tile(31, "N", 100, 1000)
    ref = TileRef.of(tile)
    period = expand("annual", "2020")[0]
    unit = WorkUnit(mod, period.label, (ref.id,))
    task = (run_unit, source, unit, {ref.id: ref}, get_modality(mod), period,
            str(tmp / "x.zarr"), {ref.id: 0}, 0, UnitRetryPolicy(), {})
    times, cpus, mods = [], [], []
    for _ in range(runs):
        if not cold:
            WorkerPool(1).stop()  # no warm worker left from the run above or the last kind
        t0 = time.time()
        pool = WorkerPool(1)
        try:
            t, mods, cpu = next(pool.run(workerprobe.ready, [task]))
        finally:
            pool.stop()
        times.append(t - t0)
        cpus.append(cpu)
    return float(np.median(times)), mods, float(np.median(cpus))


def cold_start(tmp: Path, kind: str, runs: int = 3) -> float:
    """worker_start of the first pool of a fresh coordinator process (which starts its fork
    server with it), the median of `runs` processes."""
    import statistics
    import subprocess

    out = []
    for _ in range(runs):
        r = subprocess.run([sys.executable, __file__, "--cold", kind, str(tmp)], check=True,
                           capture_output=True, text=True)
        out.append(float(r.stdout.strip().splitlines()[-1]))
    return statistics.median(out)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        table = tiles_table(N_TILES)
        ids = list(table["id"])
        stack = np.stack([syn.synth_tile(t, "2020") for t in ids])
        np.save(tmp / "stack.npy", stack)
        mb = stack.nbytes / 1e6
        workers = os.cpu_count() or 1

        # ours: runner + store, default codec, default workers
        url = str(tmp / "ours.zarr")
        store = TileStore.create(url, "bench", table, 4480)
        db = StateDB(url + ".state.sqlite")
        job = ModalityJob(syn.SYNTH, syn.ArraySource(str(tmp / "stack.npy"), ids),
                          expand("annual", "2020"))
        first: list[float] = []  # when the first chunk was recorded: worker start-up
        t0 = time.perf_counter()
        s = execute(store, db, [job], refs_from_table(table), workers=workers, progress=False,
                    on_outcomes=lambda outs: first or first.append(time.perf_counter() - t0))
        ours = time.perf_counter() - t0
        assert s.done == N_TILES, s.as_dict()
        stored = du(Path(url) / "synth" / "synth" / "c")

        # floor: a plain zarr loop, same codec and chunks
        plain = zarr.create_array(str(tmp / "plain.zarr"), shape=(N_TILES, 1, 12, 448, 448),
                                  chunks=(1, 1, 12, 448, 448), dtype="uint16", fill_value=0,
                                  config={"write_empty_chunks": True}, **codecs())
        t0 = time.perf_counter()
        for i in range(N_TILES):
            plain[i, 0] = stack[i]
        plain_s = time.perf_counter() - t0

        # context: loose .npy files
        (tmp / "npy").mkdir()
        t0 = time.perf_counter()
        for i, t in enumerate(ids):
            np.save(tmp / "npy" / f"{t}.npy", stack[i])
        npy_s = time.perf_counter() - t0

        plan_ms = bench_plan(tmp)
        starts = {k: worker_start(tmp, k) for k in KINDS}
        colds = {k: cold_start(tmp, k) for k in KINDS}
        res = {
            "name": "store",
            "ours_mb_s": round(mb / ours, 1),
            "plain_zarr_mb_s": round(mb / plain_s, 1),
            "np_save_mb_s": round(mb / npy_s, 1),
            "ratio": round(plain_s / ours, 3),
            "compression": round(stack.nbytes / stored, 3),
            "plan_ms_per_unit": round(plan_ms, 4),
            "tiles": N_TILES,
            "workers": workers,
            "first_chunk_s": round(first[0], 2),
            "worker_start_s": {k: round(v[0], 3) for k, v in starts.items()},
            "worker_modules": {k: v[1] for k, v in starts.items()},
            "worker_start_cpu_s": {k: round(v[2], 3) for k, v in starts.items()},
            "worker_start_cold_s": {k: round(v, 3) for k, v in colds.items()},
        }
        print(f"{N_TILES} tiles x 12 x 448 x 448 uint16 = {mb:.0f} MB; workers={workers}")
        print(json.dumps(res))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--cold"]:  # one cold start, in this fresh process (cold_start)
        print(worker_start(Path(sys.argv[3]), sys.argv[2], runs=1, cold=True)[0])
    else:
        main()
