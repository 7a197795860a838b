"""A worker imports what its unit's source needs, nothing more.

Each case pickles a real unit task (run_unit, the source, the unit, its tiles...) the way the
engine hands it to a worker and unpickles it in a fresh interpreter, which is where a loky
worker's start-up imports come from: an Earth Engine or local unit must not pull in the SAR
stack (or pandas, which no worker needs, or zarr, which writing a chunk does not, or PROJ,
which their tiles' polygons spare them), and an S1 unit must (else the check sees nothing).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from m3leo_tiles.grid.tiles import Tile
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.periods import expand
from m3leo_tiles.runner.engine import UnitRetryPolicy, run_unit
from m3leo_tiles.sources import get_source
from m3leo_tiles.sources.base import TileRef, WorkUnit

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import json, pickle, sys; pickle.loads(sys.stdin.buffer.read()); "
         "print(json.dumps(sorted(sys.modules)))")


def _worker_modules(tmp_path: Path, name: str, opts: dict[str, str], modality: str) -> set[str]:
    ref = TileRef.of(Tile(31, "N", 100, 1000))
    period = expand("annual", "2020")[0]
    task = (run_unit, get_source(name, **opts), WorkUnit(modality, period.label, (ref.id,)),
            {ref.id: ref}, get_modality(modality), period, str(tmp_path / "s.zarr"),
            {ref.id: 0}, 0, UnitRetryPolicy(), {})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE], input=pickle.dumps(task),
                         capture_output=True, env=env, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("name,modality", [("earthengine", "s2"), ("local", "s2")])
def test_ee_and_local_units_never_import_the_sar_stack(tmp_path, name, modality):
    mods = _worker_modules(tmp_path, name, {"project": "p", "root": str(tmp_path)}, modality)
    assert {"m3leo_tiles.runner.engine", "m3leo_tiles.store.chunks"} <= mods  # worker side
    assert "zarr" not in mods  # a local store's chunks are written without it (chunks.py)
    heavy = {m for m in mods if m.split(".")[0] in ("xarray", "xarray_sentinel", "pandas")}
    assert not {m for m in mods if m.startswith("m3leo_tiles.sar")} and not heavy, heavy
    # tiles arrive with their lon/lat polygons: PROJ (~0.06 s) is imported where a
    # transformer is built, which neither source's unit does
    assert "pyproj" not in mods
    if name == "earthengine":  # its client is HTTP: no compiler, no GDAL
        assert not {"numba", "rasterio"} & mods


def test_s1_unit_imports_the_sar_stack(tmp_path):
    mods = _worker_modules(tmp_path, "archive", {"archive": str(tmp_path)}, "s1coh")
    assert "m3leo_tiles.sar.safe" in mods and "numba" in mods
