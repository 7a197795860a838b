"""The stack API: each date resampled onto a tile once, any pair's coherence from it.

On the simulator's pair (the session's `small_sim`): the stack's pair (0, 1) is the pair
processor's output (the pair processor is a 2-date stack), coherence is symmetric in (i, j)
with the phase negated, a date with itself is fully coherent, memory is dates x pols x the
tile in complex64, and dates out of order or a DEM gap fail clearly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from m3leo_tiles.errors import DemError, PairError
from m3leo_tiles.sar.dem import GeoTiffDem
from m3leo_tiles.sar.pipeline import process_pair
from m3leo_tiles.sar.stack import iter_stack, open_stack, pair_coherence
from m3leo_tiles.sources.base import TileRef


@pytest.fixture(scope="module")
def sim(small_sim):
    m = json.loads((small_sim / "simulation.json").read_text())
    tiles = [TileRef.from_id(t)
             for t in m["tiles"]]
    return [str(small_sim / p) for p in m["pairs"][0]], tiles, \
        GeoTiffDem(str(small_sim / "rasters" / "dem.tif"))


def test_stack_serves_the_pair_and_any_order(sim):
    paths, tiles, dem = sim
    outs = list(iter_stack(paths, tiles[:2], dem))
    assert [o.tile for o in outs] == [t.id for t in tiles[:2]]
    pair = process_pair(paths[0], paths[1], tiles[:2], dem)
    done = [o for o in outs if o.status == "done"]
    assert done and len(done) == len(pair)
    for o in done:
        st = o.value
        assert st.slc.dtype == np.complex64 and st.slc.shape == (2, 2, 448, 448)
        assert st.power.dtype == np.float32 and st.power.shape == (2, 2, 448, 448)
        assert st.ref == 0 and round(st.days(0, 1)) == 12
        coh, ph = pair_coherence(st, 0, 1)
        want = pair[o.tile]
        assert np.array_equal(coh, want["s1coh"], equal_nan=True)
        assert np.array_equal(ph[:1], want["s1ifg"], equal_nan=True)
        assert np.isfinite(coh).mean() > 0.5
        # (j, i): the same coherence, the conjugate phase
        coh2, ph2 = pair_coherence(st, 1, 0)
        assert np.allclose(coh2, coh, equal_nan=True, atol=1e-6)
        ok = np.isfinite(ph)
        assert np.allclose(np.angle(np.exp(1j * (ph2[ok] + ph[ok]))), 0, atol=1e-5)
        # a date with itself
        c0, p0 = pair_coherence(st, 0, 0, res=80)
        assert c0.shape == (2, 56, 56)
        assert np.allclose(c0[np.isfinite(c0)], 1, atol=1e-5)
        assert np.abs(p0[np.isfinite(p0)]).max() < 1e-5


def test_stack_refuses_disorder_and_reports_dem_gaps(sim):
    paths, tiles, dem = sim
    with pytest.raises(PairError, match="time order"):
        open_stack(paths[::-1], ["VV"])

    def short(grid):
        h = dem(grid)
        h[0, 0] = np.nan
        return h

    out = next(iter_stack(paths, tiles[:1], short, ["VV"], power=False))
    assert out.status == "failed" and isinstance(out.error, DemError)
    assert out.message.startswith("DemError: ") and out.value is None


def test_tiles_on_threads_give_the_one_thread_answer(sim, small_sim):
    """Two tile threads share the products and one GeoTiffDem (one open file per thread)."""
    paths, tiles, _ = sim
    dem = GeoTiffDem(str(small_sim / "rasters" / "dem.tif"))
    one = list(iter_stack(paths, tiles, dem, threads=1))
    two = list(iter_stack(paths, tiles, dem, threads=2))
    assert [o.tile for o in two] == [o.tile for o in one] == [t.id for t in tiles]
    done = [(a, b) for a, b in zip(one, two, strict=True) if a.status == "done"]
    assert len(done) >= 3 and all(b.status == "done" for _, b in done)
    for a, b in done:
        assert np.array_equal(a.value.slc, b.value.slc, equal_nan=True)
        assert np.array_equal(a.value.power, b.value.power, equal_nan=True)
