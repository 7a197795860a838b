"""sar/warm.py compiles exactly the kernels, by exactly the signatures, the processor uses.

A fresh interpreter runs the pair processor on one real-geometry tile (hyp3 annotations,
speckle written into both dates, a 448 x 448 tile so the node interpolation runs too) and
reports every Numba signature the sar modules hold afterwards: each must be the one
warm.SIGNATURES names (else warm() would compile something the run never calls, and the
run would compile inside its first unit), and no other processor kernel may have been used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core.sigutils import normalize_signature

from m3leo_tiles.sar import warm

from .synth import PAIR, copy_safe

ROOT = Path(__file__).resolve().parents[2]
#: jitted callees compiled inside their callers' kernels (nothing to warm on their own)
CALLEES = {"orbit:horner3", "tops:poly_at", "tops:carrier"}

SCRIPT = """
import importlib, json, sys
from pathlib import Path
import numpy as np
from numba.core.registry import CPUDispatcher
from m3leo_tiles.sar.pipeline import process_pair
from m3leo_tiles.sar.safe import open_swath
from tests.sar.synth import gcp_target, write_sparse
from tests.sar.test_s1_source import _tile_at

ref, sec = sys.argv[1:3]
sw = open_swath(ref, "IW2", "VV")
lon, lat, h, burst, line, sample, _ = gcp_target(sw, 4, 10)
b = sw.bursts[burst]
rng = np.random.default_rng(0)
for safe in (ref, sec):
    dn = 100 * (rng.normal(size=(500, 1500)) + 1j * rng.normal(size=(500, 1500)))
    write_sparse(Path(safe), "IW2", "VV", [(b.first_line + int(line) - 250, int(sample) - 750, dn)])
tile = _tile_at(lon, lat)
res = process_pair(ref, sec, [tile], lambda g: np.full(g.shape, h), ["VV"], swaths=["IW2"])
assert np.isfinite(res[tile.id]["s1coh"]).any()
# ESA's measurement files are plain strips, read by pread (the sparse test files are not)
import rasterio
from m3leo_tiles.sar.product import plain_layout
plain = Path(ref).parent / "plain.tiff"
with rasterio.open(plain, "w", driver="GTiff", width=64, height=32, count=1,
                   dtype="complex_int16", blockysize=1) as r:
    r.write(np.ones((32, 64), np.complex64), 1)
with rasterio.open(plain) as r:
    assert plain_layout(r).read(2, 20, 3, 40).shape == (18, 37)
# s1cohs fits the seasonal decay of the pairs' coherence
from m3leo_tiles.sar.seasonal import BASELINES, fit_decay
fit_decay(BASELINES, np.full((len(BASELINES), 2, 2), 0.5))
out = {}
for m in ("orbit", "geocode", "radargrid", "tops", "kernels", "radiometry", "interferometry", "product",
          "seasonal", "rtc", "trackgeom", "resample", "stack", "calibrate"):
    mod = importlib.import_module("m3leo_tiles.sar." + m)
    for k, v in vars(mod).items():
        if isinstance(v, CPUDispatcher) and v.__module__ == mod.__name__ and v.signatures:
            out[m + ":" + k] = [str(s) for s in v.signatures]
print(json.dumps(out))
"""


@pytest.mark.slow  # a fresh interpreter opening a real pair: ~10 s quiet, ~45 s on a busy box
def test_warm_signatures_are_the_processors(s1data, tmp_path):
    ref, sec = (copy_safe(p, tmp_path) for p in sorted((s1data / PAIR).glob("*.SAFE")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(ref), str(sec)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    used = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(used) - CALLEES == set(warm.SIGNATURES)
    for name, sig in warm.SIGNATURES.items():
        assert used[name] == [str(normalize_signature(sig)[0])], name


def test_cold_is_empty_after_warm():
    warm.warm()
    assert warm.cold() == []
