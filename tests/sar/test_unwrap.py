"""SNAPHU unwrapping of block mosaics (sar/unwrap.py, sources/s1unw.py; issue 22).

Truths here are analytic: a Gaussian deformation bowl of several fringes, wrapped and given
phase noise of the looks SNAPHU is told; tiles are real lattice tiles (their 80 m GeoBoxes),
so the mosaic is placed by the same coordinates a block unit uses.
"""

from __future__ import annotations

import numpy as np
import pytest

from m3leo_tiles.grid.tileref import TileRef
from m3leo_tiles.sar.unwrap import (
    TileInput,
    effective_looks,
    unwrap_phase,
    unwrap_tiles,
    wrap,
)
from m3leo_tiles.sources.s1unw import BlockUnwrapper

N = 56
# four tiles of one 8 x 8 block, 2 x 2 (rows count northwards)
TILES = ["31N-0100-1201", "31N-0101-1201", "31N-0100-1200", "31N-0101-1200"]


def bowl(h: int, w: int, peak: float = 30.0, seed: int = 0, coh: float = 0.6
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, wrapped noisy phase, coherence) on an h x w raster."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    truth = peak * np.exp(-((yy - 0.45 * h) ** 2 + (xx - 0.55 * w) ** 2) / (2 * (0.25 * h) ** 2))
    sigma = np.sqrt((1 - coh**2) / (2 * effective_looks() * coh**2))
    noisy = truth + rng.normal(0, sigma, truth.shape)
    return truth, wrap(noisy), np.full(truth.shape, coh, np.float32)


def test_a_multi_fringe_bowl_unwraps_to_the_truth_up_to_one_constant():
    truth, ph, coh = bowl(112, 112)
    res = unwrap_phase(ph, coh)
    lab = res.conncomp > 0
    assert lab.mean() > 0.99 and len(np.unique(res.conncomp[lab])) == 1
    d = res.unw[lab] - truth[lab]
    assert np.sqrt(np.mean((d - np.median(d)) ** 2)) < 0.3
    assert truth.max() - truth.min() > 4 * np.pi  # several fringes, not one
    # the reference: a whole number of cycles away from the wrapped phase, median in (-pi, pi]
    assert np.allclose(wrap(res.unw[lab] - ph[lab]), 0, atol=1e-3)
    assert -np.pi < np.median(res.unw[lab]) <= np.pi


def test_incoherent_and_invalid_cells_are_nan_with_label_zero(monkeypatch):
    truth, ph, coh = bowl(112, 112)
    coh[:30, :40] = 0.05  # a lake: incoherent
    valid = np.ones(ph.shape, bool)
    valid[80:, 80:] = False  # layover / shadow
    res = unwrap_phase(ph, coh, valid)
    for sl in (np.s_[2:28, 2:38], np.s_[80:, 80:]):
        assert (res.conncomp[sl] == 0).all() and np.isnan(res.unw[sl]).all()
    assert (res.conncomp[40:70, 40:70] > 0).all()
    # nothing to unwrap: all NaN / 0, and SNAPHU is not even called
    import snaphu

    monkeypatch.setattr(snaphu, "unwrap", lambda *a, **k: pytest.fail("SNAPHU called"))
    none = unwrap_phase(ph, np.full(ph.shape, 0.05, np.float32))
    assert np.isnan(none.unw).all() and (none.conncomp == 0).all()


def _inputs(truth: np.ndarray, ph: np.ndarray, coh: np.ndarray) -> dict[str, TileInput]:
    out = {}
    for t in TILES:
        g = TileRef.from_id(t).grid_at(80)
        r = 0 if t.endswith("1201") else N  # north row first
        c = 0 if "-0100-" in t else N
        out[t] = TileInput(g, ph[r:r + N, c:c + N], coh[r:r + N, c:c + N])
    return out


def test_tiles_of_a_block_share_one_reference_tiles_alone_do_not():
    truth, ph, coh = bowl(2 * N, 2 * N, peak=40.0, seed=3)
    ins = _inputs(truth, ph, coh)
    block = unwrap_tiles(ins)
    offsets = []
    for t in TILES:
        r = 0 if t.endswith("1201") else N
        c = 0 if "-0100-" in t else N
        d = block[t][0] - truth[r:r + N, c:c + N]
        offsets.append(float(np.nanmedian(d)))
        assert block[t].shape == (2, N, N)
    assert np.ptp(offsets) < 0.1  # one reference across the tile seams
    assert len({float(x) for t in TILES for x in np.unique(block[t][1]) if x > 0}) == 1
    alone = []
    for t in TILES:
        r = 0 if t.endswith("1201") else N
        c = 0 if "-0100-" in t else N
        one = unwrap_tiles({t: ins[t]})[t]
        alone.append(float(np.nanmedian(one[0] - truth[r:r + N, c:c + N])))
    k = (np.array(alone) - alone[0]) / (2 * np.pi)
    assert np.allclose(k, np.round(k), atol=0.05) and np.ptp(alone) > 6  # 2 pi k apart


def test_a_snaphu_failure_fails_that_pairs_tiles_only(monkeypatch):
    import snaphu

    truth, ph, coh = bowl(N, N)
    tile = TileRef.from_id(TILES[0])
    calls = []

    def broken(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("snaphu v2.0.7\nFatal: cannot allocate the network\n")
        return np.zeros(ph.shape, np.float32), np.ones(ph.shape, np.uint32)

    monkeypatch.setattr(snaphu, "unwrap", broken)
    u = BlockUnwrapper()
    u.add(tile, "20250406_20250418", "t108A", np.stack([ph, coh]), None, ("a", "b"), None)
    u.add(tile, "20250418_20250430", "t108A", np.stack([ph, coh]), None, ("b", "c"), None)
    u.add(TileRef.from_id(TILES[1]), "20250418_20250430", "t108A", None, None, ("b", "c"), None)
    res = {(r.period, r.tile): r for r in u.results()}
    bad = res[("20250406_20250418", TILES[0])]
    assert bad.status == "failed" and bad.modality == "s1unw"
    assert bad.error == "SNAPHU failed: RuntimeError: Fatal: cannot allocate the network"
    assert res[("20250418_20250430", TILES[0])].status == "done"
    assert res[("20250418_20250430", TILES[1])].status == "nodata"  # no input: nodata


def _fake_geometry(calls: list[list[str]], uncovered: str | None = None):
    """A track_geometry stand-in: per tile (3, 112, 112) at 40 m, layover bits on a square
    where only that tile has it, DemError when asked for `uncovered`."""
    from m3leo_tiles.errors import DemError

    def geometry(path, tiles, dem, orbit_dir=None, bits_only=False):
        calls.append([t.id for t in tiles])
        out = {}
        for t in tiles:
            if t.id == uncovered:
                raise DemError(f"DEM does not cover tile {t.id}")
            assert t.grid.shape == (112, 112)  # MASK_RES
            g = np.zeros((3, 112, 112), np.float32)
            k = TILES.index(t.id)
            g[2, 20 * k:20 * k + 20, 50:90] = 1
            out[t.id] = g
        return out
    return geometry


def _block_of_four(monkeypatch, pairs: list[tuple[str, str]], uncovered: str | None = None):
    """The four TILES of a bowl, each pair (label, first product) added per tile, unwrapped
    with `_fake_geometry` as the track geometry: (its calls, the unit's results)."""
    import m3leo_tiles.sar.trackgeom as trackgeom
    from m3leo_tiles.sources.s1stack import Processing

    calls: list[list[str]] = []
    monkeypatch.setattr(trackgeom, "track_geometry", _fake_geometry(calls, uncovered))
    truth, ph, coh = bowl(2 * N, 2 * N)
    ins = _inputs(truth, ph, coh)
    u = BlockUnwrapper(Processing(dem=lambda g: None))
    for t in TILES:
        for label, first in pairs:
            u.add(TileRef.from_id(t), label, "t108A",
                  np.stack([ins[t].phase, ins[t].coherence]), None, ("a", "b"), None,
                  mask_from=first)
    return calls, list(u.results())


def test_masks_come_from_one_track_geometry_call_and_stay_with_their_tiles(monkeypatch):
    calls, results = _block_of_four(monkeypatch, [("20250406_20250418", "/a.SAFE")])
    res = {r.tile: r for r in results}
    assert len(calls) == 1 and sorted(calls[0]) == sorted(TILES)  # one call, every tile
    for t in TILES:
        k = TILES.index(t)
        cc = res[t].data[1]
        masked = np.zeros((N, N), bool)
        masked[10 * k:10 * k + 10, 25:45] = True  # 40 m square -> 80 m cells
        assert (cc[masked] == 0).all() and np.isnan(res[t].data[0][masked]).all(), t
        assert (cc[~masked] > 0).mean() > 0.95, t


def test_a_tile_whose_mask_fails_fails_alone(monkeypatch):
    _, results = _block_of_four(monkeypatch, [("20250406_20250418", "/a.SAFE")],
                                uncovered=TILES[2])
    res = {r.tile: r for r in results}
    assert res[TILES[2]].status == "failed"
    assert res[TILES[2]].error == ("layover/shadow mask: DemError: DEM does not cover tile "
                                   f"{TILES[2]}")
    assert [res[t].status for t in TILES if t != TILES[2]] == ["done"] * 3


def test_pairs_of_one_track_share_one_mask_per_tile(monkeypatch):
    calls, res = _block_of_four(monkeypatch,  # two pairs of one track, each its own product
                                [("20250406_20250418", "/a.SAFE"),
                                 ("20250418_20250430", "/b.SAFE")])
    assert len(calls) == 1 and sorted(calls[0]) == sorted(TILES)
    assert len(res) == 8 and all(r.status == "done" for r in res)
    for r in res:  # each pair's tiles got their own tile's mask
        k = TILES.index(r.tile)
        assert (r.data[1][10 * k:10 * k + 10, 25:45] == 0).all()


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2,
                    reason="numba has one thread here: nothing to limit")
def test_the_mask_runs_numba_on_one_thread_and_gives_the_rest_back(monkeypatch):
    import numba

    import m3leo_tiles.sar.trackgeom as trackgeom
    from m3leo_tiles.sources.s1stack import Processing

    calls: list[list[str]] = []
    seen: list[int] = []
    fake = _fake_geometry(calls)

    def counting(*a, **k):
        seen.append(numba.get_num_threads())
        return fake(*a, **k)

    monkeypatch.setattr(trackgeom, "track_geometry", counting)
    truth, ph, coh = bowl(N, N)
    u = BlockUnwrapper(Processing(dem=lambda g: None))
    u.add(TileRef.from_id(TILES[0]), "20250406_20250418", "t108A", np.stack([ph, coh]), None,
          ("a", "b"), None, mask_from="/a.SAFE")
    before = numba.get_num_threads()
    assert [r.status for r in u.results()] == ["done"]
    assert seen == [1] and numba.get_num_threads() == before >= 2
