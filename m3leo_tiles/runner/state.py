"""Run state in SQLite, written by the coordinator only.

A chunk file's existence is not a done marker (zarr deletes all-fill chunks, a killed run may
leave a chunk it never recorded): this database is the truth. One row per
(modality, period, tile) unit that was ever attempted.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput, StorageFull

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS units (
    modality TEXT NOT NULL,
    period   TEXT NOT NULL,
    tile     TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('done', 'nodata', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    transient INTEGER NOT NULL DEFAULT 0,
    error    TEXT,
    items    TEXT,
    source   TEXT,
    version  TEXT,
    updated  REAL NOT NULL,
    PRIMARY KEY (modality, period, tile)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS costs (
    modality TEXT NOT NULL,
    source   TEXT NOT NULL,
    reads    REAL NOT NULL,
    seconds  REAL NOT NULL,
    chunks   INTEGER NOT NULL,
    updated  REAL NOT NULL,
    share    REAL NOT NULL DEFAULT 1.0,
    cold     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL, finished REAL, command TEXT, summary TEXT
);
"""
STATE_FORMAT = "m3leo-tiles-state/1"
#: columns the costs table gained after round 1 (added to older databases when opened)
COST_COLUMNS = {"share": "REAL NOT NULL DEFAULT 1.0", "cold": "INTEGER NOT NULL DEFAULT 0"}


@dataclass(frozen=True)
class UnitState:
    status: str
    attempts: int
    transient: bool
    error: str | None
    updated: float
    version: str | None


@dataclass(frozen=True)
class Outcome:
    """What the coordinator records for one unit after a try."""

    modality: str
    period: str
    tile: str
    status: str  # done | nodata | failed
    items: tuple[str, ...] = ()
    error: str | None = None
    transient: bool = False
    source: str = ""
    version: str = ""
    disk_full: bool = False  # never recorded: the run stops and the unit stays missing
    reads: float = 0.0  # tile-dates behind this chunk (runner/inputs.py `tile_dates`)
    seconds: float = 0.0  # its share of its unit's worker seconds
    cold: bool = False  # its unit was its worker process's first (warm-up included)


@dataclass(frozen=True)
class UnitCost:
    """A finished unit's cost for one modality: worker seconds over reads (tile-dates), and
    the modality's share of its unit's reads (the part of the unit's fixed cost it carries:
    the estimator fits seconds = per-unit cost x share + per-read cost x reads)."""

    modality: str
    source: str
    reads: float
    seconds: float
    chunks: int
    share: float = 1.0
    cold: bool = False  # the worker process's first unit: its warm-up in the seconds


def _full(e: sqlite3.OperationalError, path: str) -> None:
    """SQLITE_FULL as the run's clear error (the transaction was rolled back); also the
    "disk I/O error" SQLite gives when it cannot even create its WAL files on a full disk."""
    msg = str(e).lower()
    if "disk i/o error" in msg:
        try:
            nearly_full = shutil.disk_usage(Path(path).resolve().parent).free < 1 << 20
        except OSError:
            nearly_full = False
        if not nearly_full:
            return
    elif "full" not in msg:
        return
    raise StorageFull(f"no space left for the state database {path}: free space and "
                      "rerun (nothing was recorded that is not on disk)") from None


class StateDB:
    def __init__(self, path: str, store_url: str | None = None, create: bool = True,
                 read_only: bool = False):
        self.path = path
        try:
            if read_only:  # readers (the report): not even a WAL checkpoint on close
                self.conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro",
                                            uri=True, timeout=30, isolation_level=None)
                create = False
            else:
                self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            if create:
                self.conn.executescript(SCHEMA)
                have = self._cost_columns()  # a database from before the fit
                for column, decl in COST_COLUMNS.items():
                    if column not in have:
                        self.conn.execute(f"ALTER TABLE costs ADD COLUMN {column} {decl}")
            fmt = self._meta("format")
            if fmt is None and create:
                self._set_meta("format", STATE_FORMAT)
                if store_url:
                    self._set_meta("store", store_url)
            elif fmt != STATE_FORMAT:
                raise BadInput(f"{path} is not an m3leo-tiles state database")
            self.conn.execute("SELECT count(*) FROM units").fetchone()
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError):
                _full(e, path)
            raise BadInput(f"state database {path} is corrupt or unreadable: {e}") from None

    def _meta(self, key: str) -> str | None:
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self.conn.close()

    # ---- reads -----------------------------------------------------------------------------
    def states(self, modality: str, period: str) -> dict[str, UnitState]:
        rows = self.conn.execute(
            "SELECT tile, status, attempts, transient, error, updated, version FROM units "
            "WHERE modality=? AND period=?", (modality, period))
        return {r[0]: UnitState(r[1], r[2], bool(r[3]), r[4], r[5], r[6]) for r in rows}

    def unit_rows(self, modality: str, period: str) -> list[tuple[str, str, str, str]]:
        """(tile, status, source, version) of every recorded unit of a layer (the report)."""
        return self.conn.execute(
            "SELECT tile, status, coalesce(source, ''), coalesce(version, '') FROM units "
            "WHERE modality=? AND period=?", (modality, period)).fetchall()

    def runs(self) -> list[tuple[int, float | None, float | None, str, str | None]]:
        """(id, started, finished, command, summary JSON) of every run, oldest first."""
        return self.conn.execute(
            "SELECT id, started, finished, command, summary FROM runs ORDER BY id").fetchall()

    def counts(self) -> list[tuple[str, str, str, int]]:
        return self.conn.execute(
            "SELECT modality, period, status, count(*) FROM units "
            "GROUP BY modality, period, status ORDER BY modality, period, status").fetchall()

    def failures(self) -> list[tuple]:
        return self.conn.execute(
            "SELECT modality, period, tile, attempts, transient, error FROM units "
            "WHERE status='failed' ORDER BY modality, period, tile").fetchall()

    def done_units(self, modality: str) -> list[tuple[str, str]]:
        return self.conn.execute(
            "SELECT period, tile FROM units WHERE modality=? AND status='done'",
            (modality,)).fetchall()

    def items(self, modality: str, period: str, tile: str) -> list[str]:
        row = self.conn.execute(
            "SELECT items FROM units WHERE modality=? AND period=? AND tile=?",
            (modality, period, tile)).fetchone()
        return json.loads(row[0]) if row and row[0] else []

    # ---- writes (coordinator only) ---------------------------------------------------------
    def record(self, outcomes: Iterable[Outcome]) -> None:
        now = time.time()
        rows = [
            (o.modality, o.period, o.tile, o.status, 1 if o.status == "failed" else 0,
             int(o.transient), o.error, json.dumps(list(o.items)), o.source, o.version, now)
            for o in outcomes
        ]
        if not rows:
            return
        try:
            self._record(rows)
        except sqlite3.OperationalError as e:
            _full(e, self.path)
            raise

    def _record(self, rows: list[tuple]) -> None:
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                """INSERT INTO units (modality, period, tile, status, attempts, transient, error,
                                      items, source, version, updated)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (modality, period, tile) DO UPDATE SET
                     status=excluded.status,
                     attempts=CASE WHEN excluded.status='failed' THEN units.attempts + 1
                                   ELSE units.attempts END,
                     transient=excluded.transient, error=excluded.error, items=excluded.items,
                     source=excluded.source, version=excluded.version, updated=excluded.updated
                """, rows)

    def record_costs(self, costs: Iterable[UnitCost]) -> None:
        now = time.time()
        rows = [(c.modality, c.source, c.reads, c.seconds, c.chunks, now, c.share,
                 int(c.cold)) for c in costs]
        try:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.executemany("INSERT INTO costs (modality, source, reads, seconds, "
                                      "chunks, updated, share, cold) VALUES "
                                      "(?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.OperationalError as e:
            _full(e, self.path)
            raise

    def costs(self, limit: int = 2000) -> dict[str, tuple[float, float, int]]:
        """modality -> (reads, seconds, chunks) summed over its latest `limit` records."""
        out = {}
        for (m,) in self.conn.execute("SELECT DISTINCT modality FROM costs").fetchall():
            r, s_, c = self.conn.execute(
                "SELECT sum(reads), sum(seconds), sum(chunks) FROM (SELECT * FROM costs "
                "WHERE modality=? ORDER BY updated DESC LIMIT ?)", (m, limit)).fetchone()
            out[m] = (float(r or 0), float(s_ or 0), int(c or 0))
        return out

    def _cost_columns(self) -> set[str]:
        return {r[1] for r in self.conn.execute("PRAGMA table_info(costs)").fetchall()}

    def cost_rows(self, modality: str, limit: int = 2000) -> list[tuple[float, float, float]]:
        """(share, reads, seconds) of the modality's latest `limit` unit records that were
        not their worker's first (warm-up), or of all of them when every one was."""
        have = self._cost_columns()
        share = "share" if "share" in have else "1.0"
        cold = "cold" if "cold" in have else "0"
        rows = self.conn.execute(
            f"SELECT {share}, reads, seconds, {cold} FROM costs WHERE modality=? "
            "ORDER BY updated DESC LIMIT ?", (modality, limit)).fetchall()
        warm = [r for r in rows if not r[3]] or rows
        return [(float(a), float(r), float(t)) for a, r, t, _ in warm]

    def set_meta(self, key: str, value: str) -> None:
        self._set_meta(key, value)

    def meta(self, key: str) -> str | None:
        return self._meta(key)

    def mark_failed(self, modality: str, keys: Sequence[tuple[str, str]], error: str) -> None:
        """Turn done units into failed ones (verify found their chunk bad)."""
        self.record(Outcome(modality, p, t, "failed", error=error, transient=True)
                    for p, t in keys)

    def start_run(self, command: str) -> int:
        try:
            cur = self.conn.execute("INSERT INTO runs (started, command) VALUES (?, ?)",
                                    (time.time(), command))
        except sqlite3.OperationalError as e:
            _full(e, self.path)
            raise
        assert cur.lastrowid is not None  # an INSERT always sets it
        return cur.lastrowid

    def finish_run(self, run_id: int, summary: dict) -> None:
        try:
            self.conn.execute("UPDATE runs SET finished=?, summary=? WHERE id=?",
                              (time.time(), json.dumps(summary), run_id))
        except sqlite3.OperationalError as e:
            _full(e, self.path)
            raise
