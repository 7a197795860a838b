"""Coherence vs sarxarray on the real coregistered Amsterdam pair; bias vs theory."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from m3leo_tiles.sar.interferometry import (
    block_coherence,
    block_mean,
    effective_looks_from_floor,
    expected_abs_coherence,
)

ZARRS = "sarxarray/tests/data/zarrs"


def _slc(s1data, stamp: str, date: str) -> np.ndarray:
    zarr = pytest.importorskip("zarr")
    g = zarr.open_group(str(s1data / ZARRS / f"{stamp}-coreg.znap"), mode="r")
    i = np.asarray(g[f"i_VV_{date}"][:], dtype=np.float32)  # raw: no mask_and_scale
    q = np.asarray(g[f"q_VV_{date}"][:], dtype=np.float32)
    return (i + 1j * q).astype(np.complex64)


def test_matches_sarxarray_complex_coherence(s1data):
    sarxarray = pytest.importorskip("sarxarray")
    ref = _slc(s1data, "20230331", "31Mar2023")
    sec = _slc(s1data, "20230319", "19Mar2023")
    assert ref.shape == (84, 338)

    def da(a):
        return xr.DataArray(a, dims=("azimuth", "range"))

    theirs = np.asarray(sarxarray.utils.complex_coherence(da(ref), da(sec), (5, 5)))
    ours, phase = block_coherence(ref, sec, 5, 5, min_valid=0.0)
    assert ours.shape == theirs.shape == (16, 67)
    ok = np.isfinite(theirs)
    assert np.isfinite(ours[ok]).all()
    assert np.abs(ours[ok] - theirs[ok]).max() <= 1e-3
    assert 0.72 < float(np.mean(ours[ok])) < 0.79 and 0.78 < float(np.median(ours[ok])) < 0.86
    # phase of the same sums
    num = (ref * sec.conj())[:80, :335].reshape(16, 5, 67, 5).sum(axis=(1, 3))
    assert np.abs(np.angle(num * np.exp(-1j * phase))).max() < 1e-3


def test_zero_coherence_floor_matches_theory():
    rng = np.random.default_rng(1)
    shape = (800, 800)
    a = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    b = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    coh, _ = block_coherence(a, b, 4)
    floor = float(np.mean(coh))
    assert abs(floor - expected_abs_coherence(0.0, 16)) < 0.005
    assert abs(expected_abs_coherence(0.0, 16) - 0.886 / 4) < 0.005
    assert abs(effective_looks_from_floor(floor) - 16) < 1.0
    # correlated: gamma = 0.6 with 25 looks
    g = 0.6
    c = (g * a + np.sqrt(1 - g * g) * b).astype(np.complex64)
    coh, ph = block_coherence(a, c, 5)
    assert abs(float(np.mean(coh)) - expected_abs_coherence(g, 25)) < 0.005
    assert abs(float(np.mean(ph))) < 0.02


def test_invalid_samples_left_out():
    a = np.ones((8, 8), np.complex64)
    b = np.ones((8, 8), np.complex64) * np.exp(1j * 0.3).astype(np.complex64)
    b[:4, :4] = np.nan
    b[4:, 4:6] = np.nan
    coh, ph = block_coherence(a, b, 4)
    assert np.isnan(coh[0, 0]) and np.allclose(coh[1:, 1:], 1.0) and np.allclose(ph[1, 1], -0.3)
    m = block_mean(np.where(np.isnan(b.real), np.nan, 2.0), 4)
    assert np.isnan(m[0, 0]) and m[1, 1] == 2.0
