"""A whole fetch: validate everything, then take the store for the run (`RunStore`), then
execute.

Validation comes first so that bad input (unknown modality, a period that does not fit, a store
of another region, a corrupt state database) leaves nothing created or written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, StorageFull, is_disk_full
from ..grid.tileref import refs_from_table
from ..grid.tiles import DEFAULT_TILE_SIZE
from ..modalities import Modality, get_modality
from ..periods import request
from ..sources import Source, get_source
from ..store.urls import check_writable_url
from .engine import ModalityJob, RunSummary, UnitRetryPolicy, execute, plan_work
from .estimate import Estimate, estimate, load_model
from .runstore import RunStore
from .state import StateDB

log = logging.getLogger(__name__)


@dataclass
class FetchRequest:
    store: str
    region: str | None = None
    modalities: Sequence[str] = ()
    period: str = ""
    tiles: Sequence[str] | None = None
    limit: int | None = None
    workers: int = 1
    source: str | None = None  # overrides every modality's default source
    sources: dict[str, str] = field(default_factory=dict)  # modality -> source name
    source_options: dict[str, dict] = field(default_factory=dict)  # source name -> options
    scheduler: str | None = None
    state: str | None = None
    retry_failed: bool = False
    tile_size: int = DEFAULT_TILE_SIZE
    progress: bool | None = None
    cadence: str | None = None  # composites' period kind instead of each modality's default
    dry_run: bool = False  # plan and report, write nothing
    policy: UnitRetryPolicy = field(default_factory=UnitRetryPolicy)


#: period kinds of composites, which any of them can be made at (`--cadence`)
COMPOSITE_KINDS = ("annual", "seasonal", "monthly")


def parse_tiles_arg(value: str | None) -> list[str] | None:
    """`--tiles` takes comma-separated ids, a text file of ids, or a grid GeoParquet."""
    if not value:
        return None
    p = Path(value)
    if p.is_file():
        if p.suffix in (".parquet", ".geoparquet"):
            import pandas as pd

            return [str(x) for x in pd.read_parquet(p, columns=["id"])["id"]]
        return [ln.strip().split(",")[0] for ln in p.read_text().splitlines()
                if ln.strip() and not ln.startswith(("#", "id"))]
    return [t.strip() for t in value.split(",") if t.strip()]


def resolve_jobs(req: FetchRequest) -> list[ModalityJob]:
    """Modalities, their sources and requested periods; raises BadInput before any write."""
    if not req.modalities:
        raise BadInput("no modality given (see `m3leo-tiles modalities`)")
    jobs = []
    # one instance per source name: a source serving several requested layers (S1) plans
    # them together and computes them in the same units
    instances: dict[str, Source] = {}
    for name in req.modalities:
        m: Modality = get_modality(name)
        if m.period_kind != "static" and not req.period:
            raise BadInput(f"modality {name} needs --period (its periods are {m.period_kind})")
        kind = m.period_kind
        if req.cadence:
            if req.cadence not in COMPOSITE_KINDS:
                raise BadInput(f"--cadence must be one of {', '.join(COMPOSITE_KINDS)}")
            if m.composite:  # products made per year or per pair keep their own periods
                kind = req.cadence
        asked = request(kind, req.period or "static")
        src_name = req.sources.get(name) or req.source or m.default_source
        source = instances.get(src_name) or get_source(src_name,
                                                       **req.source_options.get(src_name, {}))
        instances[src_name] = source
        if source.modalities and name not in source.modalities:
            raise BadInput(f"source {src_name!r} does not serve modality {name!r} "
                           f"(it serves {', '.join(source.modalities)})")
        jobs.append(ModalityJob(m, source, [], asked))
    return jobs


@dataclass
class PlanRow:
    modality: str
    period: str
    source: str
    work_units: int
    tiles_to_fetch: int
    already_done: int


@dataclass(frozen=True)
class DryRun:
    """A dry run's answer: per (modality, period) rows, and what the run will cost."""

    rows: list[PlanRow]
    estimate: Estimate


def plan_only(jobs: list[ModalityJob], refs, db: StateDB | None,
              req: FetchRequest) -> DryRun:
    """What a fetch would do, per modality and period, without writing anything (no store,
    no state, no credentials needed; S1 sources still search to find their pairs), and its
    estimated costs (runner/estimate.py)."""
    for job in jobs:
        job.periods = job.source.periods(job.modality, job.request, refs)
    plan = plan_work(jobs, refs, db, req.retry_failed, req.policy)
    per = plan.per_target()
    rows = []
    for job in jobs:
        for period in job.periods:
            key = (job.modality.name, period.label)
            n, k = per.get(key, (0, 0))
            rows.append(PlanRow(key[0], key[1], job.source.name, n, k, plan.skipped[key]))
    try:
        est = estimate(plan.units, refs, load_model(db))
    finally:
        if db is not None:
            db.close()
    return DryRun(rows, est)


def fetch(req: FetchRequest) -> RunSummary | DryRun:
    if not req.dry_run:
        check_writable_url(req.store)
    jobs = resolve_jobs(req)
    target = RunStore.resolve(req.store, req.region, req.tile_size, req.state, req.tiles,
                              req.limit)
    if req.dry_run:
        return plan_only(jobs, refs_from_table(target.table, target.ids), target.db, req)
    for job in jobs:
        job.source.check_for(job.modality.name)  # e.g. credentials: one clear error first
    try:
        return _run(req, jobs, target)
    except OSError as e:  # store metadata or the lock file on a full disk
        if is_disk_full(e):
            raise StorageFull(f"no space left on device ({e.filename or req.store}): free "
                              "space and rerun (an interrupted change is healed then)") from None
        raise


def _run(req: FetchRequest, jobs: list[ModalityJob], target: RunStore) -> RunSummary:
    """Execute the jobs on the store taken for the run (locked, created, cleaned, healed)."""
    with target.session() as (store, db):
        refs = refs_from_table(target.table, target.ids)
        for job in jobs:
            job.periods = job.source.periods(job.modality, job.request, refs)
        run_id = db.start_run(f"fetch {','.join(req.modalities)} {req.period}")
        summary = execute(store, db, jobs, refs, workers=req.workers, scheduler=req.scheduler,
                          retry_failed=req.retry_failed, policy=req.policy,
                          progress=req.progress)
        db.finish_run(run_id, summary.as_dict())
    return summary


__all__ = ["COMPOSITE_KINDS", "DryRun", "FetchRequest", "PlanRow", "fetch", "parse_tiles_arg", "plan_only",
           "resolve_jobs"]
