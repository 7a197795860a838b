"""`m3leo-tiles calibrate`: measure this machine's per-unit costs on the simulator.

A simulated scene's first `SINGLES` tiles go through the normal engine with one tile per S1
unit (`block=1`), then the whole scene (every S1 layer from the archive source, s2 and dem
from the local source): two unit sizes, so the estimator can fit a fixed cost per unit apart
from the cost per read (runner/estimate.py `fit_rate`); one size would confound them. The
runs' cost records (runner/state.py: per unit and modality, worker seconds, reads and the
modality's share of the unit) and the stored bytes per chunk (the chunk files on disk over
the chunks done) go to the calibration database, which `fetch --dry-run` reads when a store
has no records of its own yet.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import BadInput
from ..store.urls import default_state_path
from .estimate import calibration_path, fit_rate
from .fetch import FetchRequest, fetch
from .state import StateDB, UnitCost

S1 = ["s1grd", "s1coh", "s1ifg", "s1geom"]
PERIOD = "2025-MAM"  # the simulator's dates
#: tiles run again one per unit: the second unit size (a few: the fixed cost shows per unit)
SINGLES = 4


def _stored_bytes(store: Path, modality: str) -> int:
    root = store / modality / modality / "c"
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.is_dir() else 0


def run_calibration(size: str = "small", dates: int = 3, workers: int = 1,
                    out: str | None = None, db_path: str | Path | None = None) -> dict:
    """Simulate, run, and record the costs (module docstring); returns what was measured."""
    if dates < 2:
        raise BadInput("calibrate needs at least 2 dates (pairs)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="m3leo-calibrate-") as tmp:
        root = Path(out) if out else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        sim = root / "sim"
        subprocess.run([sys.executable, "-m", "m3leo_tiles", "simulate", "--size", size,
                        "--dates", str(dates), "--out", str(sim)], check=True,
                       stdout=subprocess.DEVNULL)
        store = root / "calibration.zarr"
        aoi = str(sim / "aoi.geojson")
        opts = {"archive": {"archive": str(sim / "s1"), "dem": str(sim / "rasters" / "dem.tif"),
                            "dem_datum": "ellipsoid"},
                "local": {"root": str(sim / "rasters" / "items.json")}}
        singles = root / "calibration-singles.zarr"  # first: its units warm the workers
        fetch(FetchRequest(store=str(singles), region=aoi, modalities=S1, period=PERIOD,
                           source="archive", limit=SINGLES, workers=workers, progress=False,
                           source_options={"archive": {**opts["archive"], "block": 1}}))
        for mods, source in ((["dem"], "local"), (["s2"], "local"), (S1, "archive")):
            fetch(FetchRequest(store=str(store), region=aoi, modalities=mods, period=PERIOD,
                               source=source, source_options=opts, workers=workers,
                               progress=False))
        rows = []
        for url in (store, singles):
            run = StateDB(default_state_path(str(url)), create=False)
            rows += run.conn.execute("SELECT modality, source, reads, seconds, chunks, share, "
                                     "cold FROM costs").fetchall()
            if url == store:
                done = dict(run.conn.execute("SELECT modality, count(*) FROM units WHERE "
                                             "status='done' GROUP BY modality").fetchall())
            run.close()
        stored = {m: _stored_bytes(store, m) / n for m, n in done.items() if n}
    path = Path(db_path) if db_path else calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = StateDB(str(path))
    try:
        with db.conn:
            db.conn.execute("DELETE FROM costs")
        db.record_costs(UnitCost(*r) for r in rows)
        for m, b in stored.items():
            db.set_meta(f"store_bytes_per_chunk:{m}", str(b))
        fits = {m: fit_rate(db.cost_rows(m)) for m in db.costs()}
        rates = {m: {"seconds_per_unit": f[0], "seconds_per_read": f[1],
                     "store_bytes_per_chunk": stored.get(m, 0.0)}
                 for m, f in fits.items() if f is not None}
    finally:
        db.close()
    return {"path": str(path), "seconds": time.perf_counter() - t0, "rates": rates}


__all__ = ["run_calibration"]
