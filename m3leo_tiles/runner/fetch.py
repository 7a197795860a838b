"""A whole fetch: validate everything, then open or create the store, then execute.

Validation comes first so that bad input (unknown modality, a period that does not fit, a store
of another region, a corrupt state database) leaves nothing created or written.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, M3leoError, StorageFull, is_disk_full
from ..grid.tiles import DEFAULT_TILE_SIZE
from ..modalities import Modality, get_modality
from ..periods import expand
from ..sources import Source, get_source
from ..store.store import TileStore, check_writable_url, default_state_path
from ..store.tiles import refs_from_table, table_from_grid
from .engine import ModalityJob, RetryPolicy, RunSummary, execute, plan_work
from .state import StateDB

log = logging.getLogger(__name__)


class Locked(M3leoError):
    """Another run holds the store's lock."""


class RunLock:
    """An advisory lock beside the state DB; the OS drops it when the holder dies (kill -9)."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise Locked(f"another run holds {self.path}") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


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
    policy: RetryPolicy = field(default_factory=RetryPolicy)


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


def grid_table(region: str, tile_size: int):
    """The store tile table for a region name or AOI path (built with the grid module)."""
    from ..grid.build import build_grid
    from ..grid.regions import load_aoi

    name, aoi = load_aoi(region)
    return name, table_from_grid(build_grid(aoi, tile_size=tile_size))


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
        periods = expand(kind, req.period or "static")
        src_name = req.sources.get(name) or req.source or m.default_source
        source = instances.get(src_name) or get_source(src_name,
                                                       **req.source_options.get(src_name, {}))
        instances[src_name] = source
        if source.modalities and name not in source.modalities:
            raise BadInput(f"source {src_name!r} does not serve modality {name!r} "
                           f"(it serves {', '.join(source.modalities)})")
        jobs.append(ModalityJob(m, source, periods))
    return jobs


@dataclass
class PlanRow:
    modality: str
    period: str
    source: str
    work_units: int
    tiles_to_fetch: int
    already_done: int


def plan_only(jobs: list[ModalityJob], refs, db: StateDB | None,
              req: FetchRequest) -> list[PlanRow]:
    """What a fetch would do, per modality and period, without writing anything (no store,
    no state, no credentials needed; S1 sources still search to find their pairs)."""
    for job in jobs:
        job.periods = job.source.periods(job.modality, job.periods, refs)
    plan = plan_work(jobs, refs, db, req.retry_failed, req.policy)
    per = plan.per_target()
    rows = []
    for job in jobs:
        for period in job.periods:
            key = (job.modality.name, period.label)
            n, k = per.get(key, (0, 0))
            rows.append(PlanRow(key[0], key[1], job.source.name, n, k, plan.skipped[key]))
    if db is not None:
        db.close()
    return rows


def fetch(req: FetchRequest) -> RunSummary | list[PlanRow]:
    if not req.dry_run:
        check_writable_url(req.store)
    jobs = resolve_jobs(req)
    state_path = req.state or default_state_path(req.store)
    existing = TileStore.exists(req.store)
    if existing:
        store = TileStore.open(req.store)
        if req.region:
            from ..grid.regions import load_aoi

            store.check_compatible(load_aoi(req.region)[0], req.tile_size)
        table = store.tile_table()
    else:
        if not req.region:
            raise BadInput(f"no store at {req.store}: give --region to create one")
        if Path(state_path).exists():
            raise BadInput(f"state database {state_path} exists but its store {req.store} "
                           "does not; move it away or pass --state")
        name, table = grid_table(req.region, req.tile_size)
        if table.empty:
            raise BadInput(f"region {req.region} has no tiles")
    ids = list(table["id"])
    if req.tiles is not None:
        known = set(ids)
        unknown = [t for t in req.tiles if t not in known]
        if unknown:
            raise BadInput(f"{len(unknown)} tile ids are not in this region, e.g. {unknown[0]}")
        ids = [t for t in ids if t in set(req.tiles)]
    if req.limit is not None:
        if req.limit < 1:
            raise BadInput("--limit must be positive")
        ids = ids[: req.limit]
    # a corrupt or foreign state DB is refused here, before anything is created
    db = StateDB(state_path, req.store) if Path(state_path).exists() else None
    if req.dry_run:
        return plan_only(jobs, refs_from_table(table, ids), db, req)
    for job in jobs:
        check = getattr(job.source, "check", None)
        if check:
            check()  # e.g. credentials: one clear error before any work
    try:
        return _locked_run(req, jobs, store if existing else None, table, ids, state_path, db,
                           None if existing else name)
    except OSError as e:  # store metadata or the lock file on a full disk
        if is_disk_full(e):
            raise StorageFull(f"no space left on device ({e.filename or req.store}): free "
                              "space and rerun (an interrupted change is healed then)") from None
        raise


def _locked_run(req: FetchRequest, jobs: list[ModalityJob], store: TileStore | None, table,
                ids: list[str], state_path: str, db: StateDB | None,
                name: str | None) -> RunSummary:
    """Create or heal the store, then execute, all under the run lock."""
    with RunLock(state_path + ".lock"):
        if store is None:
            store = TileStore.create(req.store, name or "", table, req.tile_size)
        if db is None:
            db = StateDB(state_path, req.store)
        removed = store.cleanup_partials()
        if removed:
            log.info("removed %d leftover .partial files", removed)
        for repair in store.heal():
            log.warning("store repaired after an interrupted run: %s", repair)
        refs = refs_from_table(table, ids)
        for job in jobs:
            job.periods = job.source.periods(job.modality, job.periods, refs)
        run_id = db.start_run(f"fetch {','.join(req.modalities)} {req.period}")
        summary = execute(store, db, jobs, refs, workers=req.workers, scheduler=req.scheduler,
                          retry_failed=req.retry_failed, policy=req.policy,
                          progress=req.progress)
        db.finish_run(run_id, summary.as_dict())
    db.close()
    return summary
