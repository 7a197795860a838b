"""The cron entry point: a TOML config of regions x modalities x periods, done incrementally.

    store = "stores/{region}.zarr"      # one store per region; {region} is filled in
    log = "refresh.log"                 # JSON lines, appended
    workers = 2
    # scheduler = "tcp://10.0.0.5:8786"

    [[job]]
    region = "conus"                    # or a path to an AOI file
    modalities = ["s2", "dem"]
    period = "last-3-months"            # any --period form; rolling ones move with the date
    # cadence = "monthly"               # composites per month instead of the default

    [sources.local]                     # options per source name
    root = "rasters"

Relative paths are taken relative to the config file. Unknown keys are refused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, StorageFull
from ..grid.tiles import DEFAULT_TILE_SIZE
from .engine import RunSummary
from .fetch import DryRun, FetchRequest, fetch
from .runstore import Locked

log = logging.getLogger(__name__)

TOP_KEYS = {"store", "state", "log", "workers", "scheduler", "tile_size", "job", "sources",
            "retry_failed"}
JOB_KEYS = {"region", "modalities", "period", "source", "tiles", "limit", "store", "cadence"}
PATH_OPTIONS = {"root", "archive", "dem", "orbits", "cache", "credentials"}


@dataclass
class RefreshResult:
    summaries: list[tuple[str, RunSummary]] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)

    @property
    def permanent_failures(self) -> int:
        return sum(s.failed - s.transient_failed for _, s in self.summaries)


def _resolve(base: Path, value: str) -> str:
    if "://" in value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def load_config(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"config {path} not found")
    try:
        cfg = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"config {path} is not valid TOML: {e}") from None
    unknown = set(cfg) - TOP_KEYS
    if unknown:
        raise BadInput(f"config {path}: unknown keys {sorted(unknown)}")
    jobs = cfg.get("job")
    if not isinstance(jobs, list) or not jobs:
        raise BadInput(f"config {path}: needs at least one [[job]]")
    for i, j in enumerate(jobs):
        bad = set(j) - JOB_KEYS
        if bad:
            raise BadInput(f"config {path}: job {i + 1} has unknown keys {sorted(bad)}")
        if "region" not in j or "modalities" not in j:
            raise BadInput(f"config {path}: job {i + 1} needs region and modalities")
    if "store" not in cfg and not all("store" in j for j in jobs):
        raise BadInput(f"config {path}: no store given")
    base = p.resolve().parent
    for name, opts in cfg.get("sources", {}).items():
        if not isinstance(opts, dict):
            raise BadInput(f"config {path}: [sources.{name}] must be a table")
        for k, v in opts.items():
            if k in PATH_OPTIONS and isinstance(v, str):
                opts[k] = _resolve(base, v)
    cfg["_base"] = base
    return cfg


class JsonLog:
    """Append-only JSON lines, one object per event; never holds credentials."""

    def __init__(self, path: str | None):
        self.path = path

    def __call__(self, event: str, **fields) -> None:
        if not self.path:
            return
        rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")


def requests_from_config(cfg: dict, progress: bool | None = None) -> list[FetchRequest]:
    base: Path = cfg["_base"]
    out = []
    for j in cfg["job"]:
        region = j["region"]
        rpath = Path(region)
        if rpath.suffix or "/" in region:
            region = _resolve(base, region)
        rname = Path(region).stem if Path(region).suffix else region
        store = _resolve(base, (j.get("store") or cfg["store"]).replace("{region}", rname))
        mods = j["modalities"]
        if isinstance(mods, str):
            mods = [mods]
        sources = {}
        if "source" in j:
            src = j["source"]
            sources = dict(src) if isinstance(src, dict) else {m: src for m in mods}
        out.append(FetchRequest(
            store=store, region=region, modalities=list(mods), period=str(j.get("period", "")),
            tiles=j.get("tiles"), limit=j.get("limit"), workers=int(cfg.get("workers", 1)),
            sources=sources, source_options=cfg.get("sources", {}),
            scheduler=cfg.get("scheduler") or None,
            state=_resolve(base, cfg["state"]) if cfg.get("state") else None,
            retry_failed=bool(cfg.get("retry_failed", False)),
            tile_size=int(cfg.get("tile_size", DEFAULT_TILE_SIZE)), progress=progress,
            cadence=j.get("cadence")))
    return out


def plan_refresh(config_path: str) -> list[DryRun]:
    """The dry run of a refresh: what each job would fetch now (rolling periods resolved),
    and what it would cost."""
    out: list[DryRun] = []
    for req in requests_from_config(load_config(config_path), False):
        plan = fetch(FetchRequest(**{**req.__dict__, "dry_run": True}))
        assert isinstance(plan, DryRun)  # a dry run answers its plan
        out.append(plan)
    return out


#: layers that one S1 unit computes together (from one resampling), so a job runs them at once
S1_TOGETHER = ("s1grd", "s1coh", "s1ifg", "s1geom", "s1cohs")


def _batches(modalities: Sequence[str]) -> list[list[str]]:
    """Each modality alone, except the S1 layers of a job, which go in one fetch."""
    s1 = [m for m in modalities if m in S1_TOGETHER]
    out = [[m] for m in modalities if m not in S1_TOGETHER]
    return out + ([s1] if s1 else [])


def refresh(config_path: str, progress: bool | None = None) -> RefreshResult:
    cfg = load_config(config_path)
    reqs = requests_from_config(cfg, progress)
    jlog = JsonLog(_resolve(cfg["_base"], cfg["log"]) if cfg.get("log") else None)
    result = RefreshResult()
    jlog("start", config=str(Path(config_path).resolve()), jobs=len(reqs))
    for req in reqs:
        for mods in _batches(req.modalities):  # one at a time keeps the log readable
            m = ",".join(mods)
            sub = FetchRequest(**{**req.__dict__, "modalities": mods})
            try:
                s = fetch(sub)
            except Locked as e:
                jlog("locked", store=req.store, modality=m, message=str(e))
                result.locked.append(req.store)
                return result
            except BadInput as e:
                jlog("error", store=req.store, modality=m, message=str(e))
                raise
            except StorageFull as e:
                with contextlib.suppress(OSError):  # the log may sit on the full disk too
                    jlog("error", store=req.store, modality=m, message=str(e))
                raise
            assert isinstance(s, RunSummary)  # a run, not a dry run, answers a summary
            result.summaries.append((m, s))
            jlog("done", store=req.store, modality=m, period=req.period, **s.as_dict())
    jlog("end", permanent_failures=result.permanent_failures)
    return result
