"""What a run will cost before it starts: bytes to download, bytes needed, Earth Engine
requests, core-hours and store size, per modality and in total (issue 20).

Per-unit costs are measurements, not constants: per modality, a unit's seconds are fitted
as `seconds_per_unit x share + seconds_per_read x reads` (`fit_rate`) over the cost records
real units leave in a state database (`StateDB.cost_rows`: the modality's reads, i.e.
tile-dates, its seconds, and its share of its unit's reads, which is the part of the unit's
fixed cost it carries), the run's own first, else the calibration database `m3leo-tiles
calibrate` fills on the simulator at two unit sizes. A fixed cost per unit (opening its
products, orbits, the DEM) does not scale with the dates a tile reads: one average per read
missed by 0.27-0.35 when the dates or the unit size changed. Records of one unit size only
cannot separate the two: then it is one average per read, as before. Stored bytes per chunk
are measured on the calibration store. A modality with no measurement has no core-hour
figure (None: run `calibrate`), and its store size is the raw chunk size (an upper bound,
said so). Bytes come from the search metadata (inputs.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..modalities import get_modality
from ..sources.base import Source, TileRef, WorkUnit
from .inputs import UnitInputs, distinct_bytes, plan_inputs
from .state import StateDB

#: Earth Engine's cap per computePixels request (DESIGN.md): larger chunks take several
EE_REQUEST_BYTES = 48 * 2**20
EE_SOURCES = ("earthengine",)


def calibration_path() -> Path:
    """Where `calibrate` keeps its measurements (a state database of cost records)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "m3leo-tiles" / "calibration.sqlite"


@dataclass(frozen=True)
class Rate:
    """A modality's measured cost: seconds per unit (times the modality's share of it) and
    per read, and stored bytes per chunk."""

    seconds_per_read: float | None
    store_bytes_per_chunk: float | None
    origin: str  # "run", "calibration" or "none"
    seconds_per_unit: float = 0.0

    def seconds(self, share: float, reads: float) -> float:
        """Estimated worker seconds of `reads` reads carrying `share` of units."""
        return self.seconds_per_unit * share + (self.seconds_per_read or 0.0) * reads


def fit_rate(rows: Sequence[tuple[float, float, float]]) -> tuple[float, float] | None:
    """(seconds per unit, seconds per read) by least squares over (share, reads, seconds)
    records; one average per read (no unit term) where the records cannot tell the two
    apart (one unit size) or the fit goes negative; None without reads."""
    a = np.asarray(rows, dtype=float).reshape(-1, 3)
    if not len(a) or a[:, 1].sum() <= 0:
        return None
    average = (0.0, float(a[:, 2].sum() / a[:, 1].sum()))
    x = a[:, :2]
    sv = np.linalg.svd(x / np.maximum(np.abs(x).max(axis=0), 1e-12), compute_uv=False)
    if len(a) < 2 or sv[-1] < 1e-3 * sv[0]:
        return average
    (per_unit, per_read), *_ = np.linalg.lstsq(x, a[:, 2], rcond=None)
    if per_unit < 0 or per_read <= 0:
        return average
    return float(per_unit), float(per_read)


@dataclass(frozen=True)
class CostModel:
    rates: Mapping[str, Rate] = field(default_factory=dict)

    def rate(self, modality: str) -> Rate:
        return self.rates.get(modality, Rate(None, None, "none"))

    @classmethod
    def load(cls, *dbs: tuple[StateDB | None, str]) -> CostModel:
        """From state databases in order of preference (first measurement wins)."""
        rates: dict[str, Rate] = {}
        for db, origin in dbs:
            if db is None:
                continue
            for m in db.costs():
                fit = fit_rate(db.cost_rows(m))
                stored = db.meta(f"store_bytes_per_chunk:{m}")
                if m not in rates and fit is not None:
                    rates[m] = Rate(fit[1], float(stored) if stored else None, origin, fit[0])
        return cls(rates)


def load_model(run_db: StateDB | None) -> CostModel:
    """The run's own records, then the calibration database if there is one."""
    cal = calibration_path()
    cal_db = StateDB(str(cal), create=False) if cal.exists() else None
    try:
        return CostModel.load((run_db, "run"), (cal_db, "calibration"))
    finally:
        if cal_db is not None:
            cal_db.close()


@dataclass(frozen=True)
class LayerEstimate:
    """One modality's share (`download_bytes` of a unit serving several layers counts in
    each of them; the total counts every distinct burst once)."""

    modality: str
    units: int
    tile_dates: int  # chunks to write: (tile, period) pairs
    reads: int  # tile x acquisition reads
    download_bytes: int
    needed_bytes: int
    ee_requests: int
    core_hours: float | None
    store_bytes: int
    costs_from: str


@dataclass(frozen=True)
class Estimate:
    layers: tuple[LayerEstimate, ...]
    total: LayerEstimate

    def as_dict(self) -> dict:
        t = asdict(self.total)
        del t["modality"]
        return {**t, "modalities": [asdict(x) for x in self.layers]}


def raw_chunk_bytes(modality: str, tile: TileRef) -> int:
    m = get_modality(modality)
    h, w = tile.grid_at(m.res).shape
    return len(m.bands) * h * w * np.dtype(m.dtype).itemsize


def footprints(sources: Sequence[Source]) -> dict:
    """Product footprints the sources found while planning (S1 searches), by name."""
    out: dict = {}
    for s in sources:
        get = getattr(s, "footprints", None)
        if callable(get):
            out.update(get())
    return out


def share(got: UnitInputs, modality: str) -> float:
    """The modality's share of its unit's reads (as `DurableRecorder.costs` records it)."""
    reads = {m: got.tile_dates.get(m, n) for m, n in got.chunks.items()}
    return reads.get(modality, 0) / (sum(reads.values()) or 1)


def estimate(units: Sequence[tuple[Source, WorkUnit]], refs: Sequence[TileRef],
             model: CostModel, inputs: Sequence[UnitInputs] | None = None) -> Estimate:
    """The plan's costs (module docstring)."""
    if inputs is None:
        inputs = plan_inputs([u for _, u in units], refs, footprints([s for s, _ in units]))
    first = refs[0] if refs else None
    acc: dict[str, dict] = {}
    seen: dict[str, dict[str, int]] = {}
    for (source, _), got in zip(units, inputs, strict=True):
        for m, n in got.chunks.items():
            a = acc.setdefault(m, {"units": 0, "tile_dates": 0, "reads": 0, "needed": 0,
                                   "ee": 0, "share": 0.0})
            a["units"] += 1
            a["tile_dates"] += n
            a["reads"] += got.tile_dates.get(m, n)
            a["share"] += share(got, m)
            a["needed"] += got.needed_bytes
            seen.setdefault(m, {}).update(got.bursts)
            if source.name in EE_SOURCES and first is not None:
                a["ee"] += n * max(1, math.ceil(raw_chunk_bytes(m, first) / EE_REQUEST_BYTES))
    layers = []
    for m in sorted(acc):
        a, rate = acc[m], model.rate(m)
        hours = (rate.seconds(a["share"], a["reads"]) / 3600
                 if rate.seconds_per_read is not None else None)
        per_chunk = rate.store_bytes_per_chunk
        if per_chunk is None:
            per_chunk = raw_chunk_bytes(m, first) if first is not None else 0
        layers.append(LayerEstimate(m, a["units"], a["tile_dates"], a["reads"],
                                    sum(seen[m].values()), a["needed"], a["ee"], hours,
                                    int(a["tile_dates"] * per_chunk), rate.origin))
    per_layer = [x.core_hours for x in layers]
    total = LayerEstimate(
        "total", len(units), sum(x.tile_dates for x in layers), sum(x.reads for x in layers),
        distinct_bytes(inputs), sum(g.needed_bytes for g in inputs),
        sum(x.ee_requests for x in layers),
        None if any(h is None for h in per_layer) else sum(h for h in per_layer if h is not None),
        sum(x.store_bytes for x in layers),
        ",".join(sorted({x.costs_from for x in layers})) or "none")
    return Estimate(tuple(layers), total)


class RunMeter:
    """A running fetch's progress from the same model: bytes its finished units downloaded
    (their bursts, estimated) and an ETA from the estimated seconds of the units left."""

    def __init__(self, units: Sequence[WorkUnit], inputs: Sequence[UnitInputs],
                 model: CostModel, workers: int) -> None:
        self.workers = max(1, workers)
        self.unit_of = {(t.modality, t.period, tile): k for k, u in enumerate(units)
                        for t in u.targets for tile in t.tiles}
        self.inputs = inputs
        self.secs = [sum(model.rate(m).seconds(share(g, m), n) for m, n in g.tile_dates.items())
                     for g in inputs]
        self.left = sum(self.secs)
        self.seen: set[int] = set()
        self.seen_bytes: dict[str, int] = {}

    def add(self, outs: Sequence) -> dict[str, str]:
        """Postfix for a progress bar after a unit's outcomes arrived."""
        from .inputs import human_bytes

        for o in outs[:1]:
            k = self.unit_of.get((o.modality, o.period, o.tile))
            if k is not None and k not in self.seen:
                self.seen.add(k)
                self.left -= self.secs[k]
                self.seen_bytes.update(self.inputs[k].bursts)
        eta = max(0.0, self.left) / self.workers
        return {"dl": human_bytes(sum(self.seen_bytes.values())),
                "eta": f"{eta / 3600:.1f}h" if eta >= 3600 else f"{eta / 60:.0f}min"}


__all__ = ["RunMeter", "CostModel", "Estimate", "LayerEstimate", "Rate", "calibration_path", "estimate",
           "fit_rate", "footprints", "load_model", "raw_chunk_bytes", "share"]
