"""What the report shows, read from a store and its state database (read only).

Per tile and layer (modality x period) one status code: missing (no unit recorded), done,
nodata, failed, or stale (done by a source version other than the one that source is now,
the units the next run refetches). Counts per layer follow `status --json`: its `done`
includes the stale ones, which are also counted apart.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..runner.state import StateDB
from ..store.store import TileStore
from ..store.urls import default_state_path

log = logging.getLogger(__name__)

#: status codes, in the order the page numbers them
STATUSES = ("missing", "done", "nodata", "failed", "stale")
CODE = {s: i for i, s in enumerate(STATUSES)}
EXAMPLES = 5  # example tiles per failure reason
QUICKLOOK_BUDGET = 16 << 20  # bytes of PNG embedded at most


@dataclass(frozen=True)
class Layer:
    modality: str
    period: str
    codes: np.ndarray  # uint8 per tile, store order
    counts: dict[str, int]  # done (stale included), nodata, failed, missing, stale


@dataclass(frozen=True)
class FailureGroup:
    reason: str
    count: int
    examples: tuple[tuple[str, str, str], ...]  # (modality, period, tile)


@dataclass(frozen=True)
class RunRow:
    id: int
    started: float | None
    finished: float | None
    command: str
    done: int | None
    failed: int | None
    nodata: int | None
    bytes_downloaded: int | None  # when the run recorded it


@dataclass(frozen=True)
class ModalitySize:
    modality: str
    bytes: int
    objects: int


@dataclass(frozen=True)
class ReportData:
    url: str
    region: str
    tile_size: int
    ids: list[str]
    corners: np.ndarray  # (tile, 4, 2) lon/lat, continuous around each tile's centre
    layers: list[Layer]
    failures: list[FailureGroup]
    failed_units: list[tuple[int, int, int, int]]  # (layer, tile, reason index, attempts)
    reasons: list[str]
    runs: list[RunRow]
    sizes: list[ModalitySize]
    quicklooks: dict[str, bytes] = field(default_factory=dict)


def corners(table: pd.DataFrame) -> np.ndarray:
    """Each tile's four corners in lon/lat (SW, SE, NE, NW), from its grid in the table."""
    from ..grid.tiles import BASE_PX, to_lonlat

    out = np.zeros((len(table), 4, 2))
    fx, fy = np.array([0, 1, 1, 0]), np.array([1, 1, 0, 0])
    for epsg, idx in table.groupby("epsg").indices.items():
        t = table.iloc[idx]
        x0, y0 = t["x0"].to_numpy()[:, None], t["y0"].to_numpy()[:, None]
        if epsg == 4326:  # adopted lon/lat tiles: their grid is in degrees already
            w = (t["dx"].to_numpy() * BASE_PX)[:, None]
            h = (t["dy"].to_numpy() * BASE_PX)[:, None]
            out[idx, :, 0], out[idx, :, 1] = x0 + fx * w, y0 - fy * h
            continue
        size = t["size"].to_numpy()[:, None]
        lon, lat = to_lonlat(int(epsg)).transform((x0 + fx * size).ravel(),
                                                  (y0 - fy * size).ravel())
        out[idx, :, 0] = np.asarray(lon).reshape(-1, 4)
        out[idx, :, 1] = np.asarray(lat).reshape(-1, 4)
    ref = out[:, :1, 0].copy()  # a tile across the antimeridian keeps one side's longitudes
    out[:, :, 0] = ref + (out[:, :, 0] - ref + 180.0) % 360.0 - 180.0
    return out


def _declared(target: str) -> tuple[str, str] | None:
    """(name, version) a source class of this package declares in its body, read from the
    module's source: importing it would load its clients (numba, rasterio, ee) for two
    strings. None when the class does not state both plainly (then it is imported)."""
    import ast

    modname, clsname = target.split(":")
    if not modname.startswith(f"{__package__.split('.')[0]}."):
        return None
    base = Path(__file__).resolve().parents[1].joinpath(*modname.split(".")[1:])
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not path.is_file():
        return None
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name == clsname:
            for stmt in node.body:
                target_node = (stmt.targets[0] if isinstance(stmt, ast.Assign)
                               and len(stmt.targets) == 1 else getattr(stmt, "target", None))
                value = getattr(stmt, "value", None)
                if isinstance(target_node, ast.Name) and isinstance(value, ast.Constant) \
                        and isinstance(value.value, str):
                    found[target_node.id] = value.value
    return (found["name"], found["version"]) if {"name", "version"} <= set(found) else None


def current_versions(sources: Iterable[str]) -> dict[str, str | None]:
    """`name:version` each source has now (what the engine compares), None where the source
    is not installed here (its units are then never called stale)."""
    from ..sources import SOURCES

    out: dict[str, str | None] = {}
    for name in sources:
        target = SOURCES.get(name)
        try:
            declared = _declared(str(target)) if target else None
            if declared is None:
                modname, clsname = str(target).split(":")
                cls = getattr(importlib.import_module(modname), clsname)
                declared = (cls.name, cls.version)
            out[name] = f"{declared[0]}:{declared[1]}"
        except (ValueError, ImportError, AttributeError) as e:
            log.warning("source %r not available (%s): its units are not checked for staleness",
                        name, e)
            out[name] = None
    return out


def _layers(store: TileStore, db: StateDB, ids: list[str]) -> list[Layer]:
    keys = {(m, p) for m in store.modalities() for p in store.periods(m)}
    keys |= {(m, p) for m, p, _, _ in db.counts()}
    index = {t: i for i, t in enumerate(ids)}
    rows = {k: db.unit_rows(*k) for k in sorted(keys)}
    versions = current_versions({src for r in rows.values() for _, _, src, _ in r if src})
    out = []
    for (m, p), units in rows.items():
        codes = np.zeros(len(ids), np.uint8)
        counts = dict.fromkeys(("done", "nodata", "failed", "stale"), 0)
        for tile, status, src, version in units:
            counts[status] += 1
            stale = (status == "done" and bool(version) and versions.get(src) is not None
                     and version != versions[src])
            counts["stale"] += stale
            i = index.get(tile)
            if i is not None:
                codes[i] = CODE["stale"] if stale else CODE[status]
        counts["missing"] = len(ids) - counts["done"] - counts["nodata"] - counts["failed"]
        out.append(Layer(m, p, codes, counts))
    return out


def _failures(db: StateDB, layers: list[Layer], ids: list[str]
              ) -> tuple[list[FailureGroup], list[tuple[int, int, int, int]], list[str]]:
    layer_of = {(la.modality, la.period): i for i, la in enumerate(layers)}
    index = {t: i for i, t in enumerate(ids)}
    groups: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    units: list[tuple[int, int, int, int]] = []
    reasons: dict[str, int] = {}
    for m, p, t, attempts, _transient, err in db.failures():
        # one group per kind of failure: a message naming its own tile would be its own group
        reason = (err or "unknown").splitlines()[0][:200].replace(t, "<tile>")
        groups[reason].append((m, p, t))
        r = reasons.setdefault(reason, len(reasons))
        if t in index and (m, p) in layer_of:
            units.append((layer_of[(m, p)], index[t], r, int(attempts)))
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return ([FailureGroup(r, len(u), tuple(u[:EXAMPLES])) for r, u in ordered], units,
            list(reasons))


def _runs(db: StateDB) -> list[RunRow]:
    out = []
    for rid, started, finished, command, summary in db.runs():
        s = json.loads(summary) if summary else {}
        got = s.get("bytes_downloaded", s.get("bytes"))
        out.append(RunRow(rid, started, finished, command or "", s.get("done"),
                          s.get("failed"), s.get("nodata"),
                          int(got) if isinstance(got, int | float) else None))
    return out


def _sizes(url: str, modalities: list[str]) -> list[ModalitySize]:
    """Bytes stored per modality group (local or any fsspec URL: one listing each)."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(url)
    out = []
    for m in modalities:
        found = fs.find(f"{root.rstrip('/')}/{m}", detail=True)
        out.append(ModalitySize(m, int(sum(int(v.get("size") or 0) for v in found.values())),
                                len(found)))
    return out


def _quicklooks(folder: str | None, ids: list[str]) -> dict[str, bytes]:
    if not folder:
        return {}
    out: dict[str, bytes] = {}
    used = 0
    known = set(ids)
    for png in sorted(Path(folder).glob("*.png")):
        if png.stem in known and used + png.stat().st_size <= QUICKLOOK_BUDGET:
            out[png.stem] = png.read_bytes()
            used += len(out[png.stem])
    return out


def collect(url: str, state: str | None = None, quicklooks: str | None = None) -> ReportData:
    """Everything the page shows; reads the store and state, writes neither."""
    from ..errors import BadInput

    store = TileStore.open(url, mode="r")
    state = state or default_state_path(url)
    if not Path(state).exists():
        raise BadInput(f"no state database at {state}")
    table = store.tile_table()
    ids = [str(t) for t in table["id"]]
    db = StateDB(state, create=False, read_only=True)
    try:
        layers = _layers(store, db, ids)
        failures, failed_units, reasons = _failures(db, layers, ids)
        runs = _runs(db)
    finally:
        db.close()
    return ReportData(url, store.info.region, store.info.tile_size, ids, corners(table), layers,
                      failures, failed_units, reasons, runs,
                      _sizes(url, store.modalities()), _quicklooks(quicklooks, ids))


__all__ = ["CODE", "STATUSES", "FailureGroup", "Layer", "ModalitySize", "ReportData", "RunRow",
           "collect", "corners", "current_versions"]
