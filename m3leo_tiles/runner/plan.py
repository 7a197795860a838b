"""The plan of a run: the (tile, modality, period) units not yet done, handed to their sources.

A tile is to do when it is missing, stale (another source version wrote it), a nodata answer
too recent to trust, or a failure still to retry (`UnitRetryPolicy`); the sources turn the
missing tiles into work units (`Source.plan_all`).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..modalities import Modality
from ..periods import DateWindow, Period
from ..sources.base import PlanRequest, Source, TileRef, WorkUnit
from .state import StateDB, UnitState

#: a nodata answer for a period that ended less than this long before it was recorded is
#: re-checked later (archives fill in late)
NODATA_SETTLE = dt.timedelta(days=20)


@dataclass(frozen=True)
class UnitRetryPolicy:
    tries_per_run: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_attempts: int = 5  # runs in which a transient failure is retried

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with full jitter."""
        uniform = rng.uniform if rng is not None else random.uniform
        return uniform(0, min(self.max_delay, self.base_delay * 2**attempt))



@dataclass
class ModalityJob:
    """One modality's part of a run, after validation."""

    modality: Modality
    source: Source
    periods: list[Period]
    #: what the run asked (`periods.request`): periods, or the window a pair source searches;
    #: `Source.periods` turns it into `periods` once the tiles are known
    request: Sequence[DateWindow] = ()



def pending_tiles(states: dict[str, UnitState], tiles: Sequence[str], period: Period,
                  retry_failed: bool, policy: UnitRetryPolicy, version: str) -> list[str]:
    """Tiles of a (modality, period) still to do: missing, stale or retryable."""
    out = []
    for t in tiles:
        s = states.get(t)
        if s is None:
            out.append(t)
        elif s.status == "done":
            if s.version and version and s.version != version:
                out.append(t)  # produced by another source version: stale
        elif s.status == "nodata":
            recorded = dt.datetime.fromtimestamp(s.updated, dt.UTC).date()
            if period.kind != "static" and recorded < period.end + NODATA_SETTLE:
                out.append(t)  # the archive may not have been complete then
        elif s.status == "failed":
            if retry_failed or (s.transient and s.attempts < policy.max_attempts):
                out.append(t)
    return out


def plan_units(job: ModalityJob, period: Period, refs: Sequence[TileRef], db: StateDB,
               retry_failed: bool, policy: UnitRetryPolicy) -> tuple[list[WorkUnit], int]:
    """One (modality, period) planned alone (benchmarks and single-layer callers)."""
    states = db.states(job.modality.name, period.label)
    ids = [r.id for r in refs]
    version = source_version(job.source)
    todo = set(pending_tiles(states, ids, period, retry_failed, policy, version))
    units = job.source.plan(job.modality, period, [r for r in refs if r.id in todo])
    return units, len(ids) - len(todo)


@dataclass(frozen=True)
class TargetSpec:
    """What a worker needs to write one (modality, period): its definition and period slot."""

    modality: Modality
    period: Period
    period_index: int


@dataclass
class Plan:
    """The units of a run, each with its source, and how many tiles were already done."""

    units: list[tuple[Source, WorkUnit]]
    skipped: Counter  # (modality, period) -> tiles already done

    def per_target(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(modality, period) -> (units touching it, tiles to fetch)."""
        out: dict[tuple[str, str], tuple[int, int]] = {}
        for _, u in self.units:
            for t in u.targets:
                n, k = out.get((t.modality, t.period), (0, 0))
                out[(t.modality, t.period)] = (n + 1, k + len(t.tiles))
        return out


def plan_work(jobs: Sequence[ModalityJob], refs: Sequence[TileRef], db: StateDB | None,
              retry_failed: bool, policy: UnitRetryPolicy) -> Plan:
    """Every job's missing (tile, modality, period) handed to its source at once.

    Jobs that share a source object are planned together (`Source.plan_all`), so a source
    can serve several layers from one unit; without a state DB everything is missing.
    """
    ids = [r.id for r in refs]
    groups: dict[int, list[ModalityJob]] = {}
    for job in jobs:
        groups.setdefault(id(job.source), []).append(job)
    plan = Plan([], Counter())
    for group in groups.values():
        source = group[0].source
        version = source_version(source)
        requests = []
        everything = list(refs)  # one shared list where nothing is done yet (region scale)
        for job in group:
            for period in job.periods:
                if db is None:
                    todo = ids
                else:
                    states = db.states(job.modality.name, period.label)
                    todo = pending_tiles(states, ids, period, retry_failed, policy, version)
                plan.skipped[(job.modality.name, period.label)] += len(ids) - len(todo)
                if len(todo) == len(ids):
                    requests.append(PlanRequest(job.modality, period, everything))
                elif todo:
                    keep = set(todo)
                    requests.append(PlanRequest(job.modality, period,
                                                [r for r in refs if r.id in keep]))
        if requests:
            plan.units.extend((source, u) for u in source.plan_all(requests))
    return plan


def source_version(source: Source) -> str:
    return f"{source.name}:{source.version}"
