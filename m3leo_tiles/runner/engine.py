"""plan -> execute -> record.

The coordinator (this process) owns the state database and all store metadata. Workers
(local loky processes, fed the longest units first, or Dask workers with `scheduler=`) receive
whole work units, read them from their source, write whole chunks no other worker touches, and
hand back small outcomes that the coordinator records. Everything a worker does is a pure
function of its unit, so the chunks do not depend on the worker count or the scheduler.

Retries compose with the clients' own: a source client (the EE client retries 429/5xx five
times itself) gives up with `TransientError`; the worker retries the unit a bounded number of
times with exponential backoff and jitter; what still fails is recorded as a transient failure
that the next run retries, up to `max_attempts` runs; permanent errors wait for `--retry-failed`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import M3leoError, NoData, StorageFull, TransientError, is_disk_full
from ..modalities import Modality
from ..periods import Period
from ..sources.base import Source, TileRef, WorkUnit
from ..store.store import TileStore, write_chunk
from .executors import WorkerPool, dask_workers, run_dask, run_inline
from .inputs import tile_dates
from .locality import hinted, schedule
from .plan import (
    ModalityJob,
    Plan,
    TargetSpec,
    UnitRetryPolicy,
    pending_tiles,
    plan_units,
    plan_work,
    source_version,
)
from .state import Outcome, StateDB, UnitCost

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    done: int = 0
    nodata: int = 0
    failed: int = 0
    transient_failed: int = 0
    skipped: int = 0
    units: int = 0
    reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    bytes: int = 0

    def add(self, o: Outcome) -> None:
        setattr(self, o.status, getattr(self, o.status) + 1)
        if o.status == "failed":
            self.transient_failed += int(o.transient)
            self.reasons[(o.error or "unknown").splitlines()[0][:160]] += 1

    def as_dict(self) -> dict:
        return {"done": self.done, "nodata": self.nodata, "failed": self.failed,
                "failed_transient": self.transient_failed,
                "already_done": self.skipped, "work_units": self.units,
                "seconds": round(self.seconds, 3),
                "failed_by_reason": dict(self.reasons.most_common())}


# --------------------------------------------------------------------------------------------
# the worker side
def run_unit(source: Source, unit: WorkUnit, refs: dict[str, TileRef], modality: Modality,
             period: Period, store_url: str, tile_index: dict[str, int], period_index: int,
             policy: UnitRetryPolicy,
             more: Mapping[tuple[str, str], TargetSpec] | None = None) -> list[Outcome]:
    """`read_unit`, its core-seconds shared over its outcomes by their reads (tile-dates):
    the cost records the estimator learns from (issue 20). Core-seconds are the worker
    process's CPU time over the unit (a worker runs one unit at a time), not wall time,
    which every other process on the machine inflates: a calibration on a busy machine then
    priced a quiet run wrong, and the other way round."""
    global _UNITS_HERE
    cold = _UNITS_HERE == 0
    _UNITS_HERE += 1
    t0 = time.process_time()
    outs = read_unit(source, unit, refs, modality, period, store_url, tile_index,
                     period_index, policy, more)
    seconds = time.process_time() - t0
    per = tile_dates(unit)
    chunks = Counter(o.modality for o in outs)
    reads = [per.get(o.modality, 0) / max(1, chunks[o.modality]) for o in outs]
    total = sum(reads) or 1.0
    return [dataclasses.replace(o, reads=r, seconds=seconds * r / total, cold=cold)
            for o, r in zip(outs, reads, strict=True)]


#: units this process has run: its first pays the process's warm-up (kernels compiled,
#: modules and files first touched), up to 4x a warm unit; the estimator leaves it out
_UNITS_HERE = 0


def read_unit(source: Source, unit: WorkUnit, refs: dict[str, TileRef], modality: Modality,
              period: Period, store_url: str, tile_index: dict[str, int], period_index: int,
              policy: UnitRetryPolicy,
              more: Mapping[tuple[str, str], TargetSpec] | None = None) -> list[Outcome]:
    """Read a unit from its source and write its chunks; never raises.

    `more` describes the unit's further targets (`WorkUnit.more`); each TileResult names its
    target, and each (target, tile) gets exactly one outcome.
    """
    version = source_version(source)
    rng = random.Random(hash((unit.modality, unit.period, unit.tiles)))
    specs = {(modality.name, period.label): TargetSpec(modality, period, period_index)}
    specs.update(more or {})
    wanted = {(t.modality, t.period): set(t.tiles) for t in unit.targets}
    first = refs[unit.all_tiles[0]]
    shapes = {k: (len(s.modality.bands),) + first.grid_at(s.modality.res).shape
              for k, s in specs.items()}

    def outcome(key: tuple[str, str], tile: str, status: str, **kw) -> Outcome:
        return Outcome(key[0], key[1], tile, status, source=source.name, version=version, **kw)

    def every(status: str, **kw) -> list[Outcome]:
        return [outcome((t.modality, t.period), tile, status, **kw)
                for t in unit.targets for tile in t.tiles]

    last: Exception | None = None
    # a source whose client already retries with backoff (EE) gets no in-run retries on top:
    # its transient failures are retried by later runs instead
    tries = 1 if source.retries_inside else policy.tries_per_run
    for attempt in range(tries):
        try:
            got: dict[tuple[str, str, str], Outcome] = {}
            for r in source.read(unit, refs, modality, period):
                key = (r.modality or unit.modality, r.period or unit.period)
                if r.tile not in wanted.get(key, ()):
                    continue
                spec = specs[key]
                if r.status == "done":
                    data = np.asarray(r.data)
                    if data.shape != shapes[key]:
                        got[key + (r.tile,)] = outcome(
                            key, r.tile, "failed", error=f"source returned shape {data.shape}, "
                            f"expected {shapes[key]}")
                        continue
                    write_chunk(store_url, spec.modality.name, tile_index[r.tile],
                                spec.period_index, data)
                    got[key + (r.tile,)] = outcome(key, r.tile, "done", items=tuple(r.items))
                else:
                    got[key + (r.tile,)] = outcome(key, r.tile, r.status, items=tuple(r.items),
                                                   error=r.error, transient=r.transient)
            return [got.get((t.modality, t.period, tile)) or
                    outcome((t.modality, t.period), tile, "failed",
                            error="source returned no result")
                    for t in unit.targets for tile in t.tiles]
        except NoData as e:
            return every("nodata", error=str(e) or None)
        except TransientError as e:
            last = e
            if attempt + 1 < tries:
                time.sleep(policy.delay(attempt, rng))
        except M3leoError as e:
            return every("failed", error=f"{type(e).__name__}: {e}")
        except OSError as e:
            if is_disk_full(e):  # not the unit's fault: what was written stays done
                full = f"no space left on device ({e.filename or store_url})"
                return [got.get((t.modality, t.period, tile)) or
                        outcome((t.modality, t.period), tile, "failed", error=full,
                                transient=True, disk_full=True)
                        for t in unit.targets for tile in t.tiles]
            return every("failed", error=f"{type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - a bug in one unit must not stop the run
            return every("failed", error=f"{type(e).__name__}: {e}")
    return every("failed", error=f"TransientError: {last}", transient=True)


# --------------------------------------------------------------------------------------------
# executors
Task = tuple  # the positional arguments of run_unit


def unit_weight(unit: WorkUnit) -> int:
    """The chunks a unit writes: the engine's measure of its work, to run the longest first."""
    return sum(len(t.tiles) for t in unit.targets)


class Progress:
    """A tqdm bar on stderr with tiles/s and ETA, only where someone is watching."""

    def __init__(self, total: int, desc: str, enabled: bool | None):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        if enabled and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="tile", dynamic_ncols=True,
                            file=sys.stderr)

    def update(self, n: int, **post) -> None:
        if self.bar:
            self.bar.update(n)
            if post:
                self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.bar:
            self.bar.close()


class DurableRecorder:
    """Records outcomes in the state DB only once their chunks are on disk.

    zarr's LocalStore renames a finished chunk into place, which survives kill -9 but not a
    power cut (the rename can reach the disk before the bytes). So done outcomes wait here
    until an `os.sync()`, at most one per `every` seconds, then are recorded: a unit the DB
    calls done has its chunk on disk, and a unit lost with the batch is fetched again. One
    sync per batch instead of an fsync per chunk keeps the write rate.
    """

    def __init__(self, db: StateDB, durable: bool = True, every: float = 2.0):
        self.db, self.durable, self.every = db, durable, every
        self.pending: list[Outcome] = []
        self.spent: list[UnitCost] = []
        self.last = time.monotonic()

    def costs(self, outs: list[Outcome]) -> None:
        """One cost record per modality of a finished unit (done chunks only), with the
        modality's share of the unit's reads."""
        by: dict[tuple[str, str], list[Outcome]] = {}
        for o in outs:
            if o.status == "done" and o.reads:
                by.setdefault((o.modality, o.source), []).append(o)
        total = sum(o.reads for o in outs) or 1.0
        cold = any(o.cold for o in outs)
        self.spent.extend(UnitCost(m, src, sum(o.reads for o in os_), sum(o.seconds for o in os_),
                                   len(os_), sum(o.reads for o in os_) / total, cold)
                          for (m, src), os_ in by.items())

    def add(self, outs: list[Outcome]) -> None:
        self.pending.extend(outs)
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            if self.durable and any(o.status == "done" for o in self.pending):
                os.sync()
            self.db.record(self.pending)
            self.pending = []
        if self.spent:
            self.db.record_costs(self.spent)
            self.spent = []
        self.last = time.monotonic()


def execute(store: TileStore, db: StateDB, jobs: Sequence[ModalityJob], refs: Sequence[TileRef],
            workers: int = 1, scheduler: str | None = None, retry_failed: bool = False,
            policy: UnitRetryPolicy | None = None, progress: bool | None = None,
            on_outcomes: Callable[[list[Outcome]], None] | None = None) -> RunSummary:
    """Plan every job's missing units, run them, record outcomes as they arrive."""
    policy = policy or UnitRetryPolicy()
    summary = RunSummary()
    t0 = time.perf_counter()
    ref_by_id = {r.id: r for r in refs}
    # metadata first, by the coordinator alone, then a fresh handle for indices
    for job in jobs:
        store.ensure_modality(job.modality)
        store.ensure_periods(job.modality.name, [p.label for p in job.periods])
    store = store.reopen()
    tile_index = store.tile_index()
    missing = [r.id for r in refs if r.id not in tile_index]
    if missing:
        raise M3leoError(f"{len(missing)} tiles are not in the store's tile table, e.g. {missing[0]}")
    specs: dict[tuple[str, str], TargetSpec] = {}
    for job in jobs:
        pidx = {p: i for i, p in enumerate(store.periods(job.modality.name))}
        for period in job.periods:
            specs[(job.modality.name, period.label)] = TargetSpec(job.modality, period,
                                                                  pidx[period.label])
    plan = plan_work(jobs, refs, db, retry_failed, policy)
    summary.skipped += sum(plan.skipped.values())
    tasks: list[Task] = []
    for source, u in plan.units:
        keys = [(t.modality, t.period) for t in u.targets]
        unknown = [k for k in keys if k not in specs]
        if unknown:
            raise M3leoError(f"source {source.name!r} planned {unknown[0]}, which the run did "
                             "not ask for")
        main = specs[keys[0]]
        tiles = u.all_tiles
        tasks.append((source, u, {t: ref_by_id[t] for t in tiles}, main.modality, main.period,
                      store.url, {t: tile_index[t] for t in tiles}, main.period_index, policy,
                      {k: specs[k] for k in keys[1:]}))
    # units sharing inputs together (one node's sweep), longest group first (locality.py);
    # on Dask each worker is a node with its own cache
    nodes = dask_workers(scheduler) if scheduler else []
    units = [t[1] for t in tasks]
    plan_s = schedule(units, ref_by_id, [unit_weight(u) for u in units], max(1, len(nodes)))
    order = hinted(units, plan_s, ref_by_id)
    tasks = [(tasks[i][0], u, *tasks[i][2:]) for i, _, u in order]
    where = [nodes[n] for _, n, _ in order] if nodes else None
    summary.units = len(tasks)
    total = sum(unit_weight(u) for _, u in plan.units)
    bar = Progress(total, "fetch", progress)
    meter = None
    if bar.bar is not None:  # someone is watching: bytes and an ETA from the cost model
        from .estimate import RunMeter, footprints, load_model
        from .inputs import plan_inputs

        units = [t[1] for t in tasks]
        meter = RunMeter(units, plan_inputs(units, refs, footprints([t[0] for t in tasks])),
                         load_model(db), max(workers, len(nodes)))
    recorder = DurableRecorder(db, durable=store.is_local)
    full: str | None = None
    results: Generator[list[Outcome]]
    if scheduler:
        results = run_dask(run_unit, tasks, scheduler, where)
    elif workers > 1 and len(tasks) > 1:
        results = WorkerPool(workers).run(run_unit, tasks)
    else:
        results = run_inline(run_unit, tasks)
    try:
        for outs in results:
            if any(o.disk_full for o in outs):
                # the disk is full: keep what was written, leave the rest missing, stop
                full = next(o.error for o in outs if o.disk_full)
                outs = [o for o in outs if not o.disk_full]
            recorder.add(outs)
            recorder.costs(outs)
            for o in outs:
                summary.add(o)
            if on_outcomes:
                on_outcomes(outs)
            bar.update(len(outs), done=summary.done, nodata=summary.nodata, failed=summary.failed,
                       **(meter.add(outs) if meter is not None else {}))
            if full:
                break
    finally:
        results.close()  # stops the workers' remaining units after a break
        recorder.flush()  # also on Ctrl-C: what finished is synced and recorded
        bar.close()
    summary.seconds = time.perf_counter() - t0
    if full:
        raise StorageFull(f"{full}: the run stopped after {summary.done} units done; free "
                          "space and rerun (units not written were not recorded)")
    return summary


__all__ = ["DurableRecorder", "ModalityJob", "Plan", "Progress", "RunSummary", "TargetSpec",
           "UnitRetryPolicy", "execute", "pending_tiles", "plan_units", "plan_work", "read_unit",
           "run_unit", "source_version", "unit_weight"]
