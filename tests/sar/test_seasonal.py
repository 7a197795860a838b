"""Seasonal coherence (sar/seasonal.py): season assignment, medians, the decay fit, and the
truth on speckle stacks with a known temporal decay (the simulator's construction)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from m3leo_tiles.modalities import get_modality
from m3leo_tiles.sar.interferometry import block_coherence, expected_abs_coherence
from m3leo_tiles.sar.seasonal import (
    BASELINES,
    COHS_BANDS,
    SeasonalCoherence,
    debias,
    fit_decay,
    season_of,
)
from m3leo_tiles.simulator.scene import (
    CLASSES,
    decay_coherence,
    decay_params,
    decay_speckle,
)

D = dt.date


def model(rho, tau, t):
    return (1 - rho) * np.exp(-np.asarray(t, float) / tau) + rho


def test_fit_recovers_noiseless_curves_and_respects_bounds():
    rho = np.array([0.0, 0.1, 0.3, 0.7, 0.0, 0.5, 0.2, 0.05])
    tau = np.array([3.0, 10.0, 30.0, 100.0, 200.0, 8.0, 15.0, 60.0])
    y = np.stack([model(rho, tau, t) for t in BASELINES])
    r, ta, e = fit_decay(BASELINES, y)
    assert np.allclose(r, rho, atol=2e-3) and np.allclose(ta, tau, rtol=0.02)
    assert (e < 1e-4).all()
    # a missing baseline is skipped; fewer than 3 finite points give NaN
    y2 = y.copy()
    y2[0, :4] = np.nan
    y2[:4, 4:] = np.nan
    r2, ta2, e2 = fit_decay(BASELINES, y2)
    assert np.allclose(ta2[:4], tau[:4], rtol=0.02) and np.isnan(r2[4:]).all()
    # data the model cannot follow stays inside the bounds
    wild = np.stack([np.full(3, v) for v in (0.2, 0.5, 0.9, 1.3, 0.1, -0.2)])
    r3, ta3, e3 = fit_decay(BASELINES, wild)
    assert ((r3 >= 0) & (r3 <= 1)).all() and ((ta3 >= 1) & (ta3 <= 1000)).all()
    assert (e3 > 0.1).all()


def test_seasons_baselines_and_medians():
    assert season_of(D(2019, 12, 4)).label == "2020-DJF"
    assert season_of(D(2020, 2, 29)).label == "2020-DJF"
    assert season_of(D(2020, 6, 1)).label == "2020-JJA"
    acc = SeasonalCoherence((3, 4))
    one = np.full((2, 3, 4), 0.5, np.float32)
    # mid-date 2019-12-04: winter 2020, though the first date is in autumn
    assert acc.add(D(2019, 11, 28), D(2019, 12, 10), one)
    assert not acc.add(D(2019, 11, 28), D(2019, 12, 10), one)  # the same pair again
    assert acc.add(D(2019, 11, 28), D(2019, 12, 10), one * 0.2, key="t37")  # another track
    assert not acc.add(D(2020, 1, 1), D(2020, 1, 31), one)  # 30 days: no GSSIC baseline
    assert acc.add_label("20200101_20200113", one * 0.8)
    with pytest.raises(ValueError, match="not a pair label"):
        acc.add_label("2020-JJA", one)
    vh_missing = np.full((3, 4), 0.3, np.float32)
    assert acc.add(D(2020, 1, 1), D(2020, 1, 25), vh_missing)  # VV only
    assert acc.labels() == ["2020-DJF"] and acc.counts("2020-DJF") == {12: 3, 24: 1}
    with pytest.raises(ValueError, match="shape"):
        acc.add(D(2020, 1, 1), D(2020, 1, 7), np.zeros((2, 4, 4)))
    out = acc.finalize("2020-DJF")
    assert out.shape == (len(COHS_BANDS), 3, 4) and out.dtype == np.float32
    band = {b: out[i] for i, b in enumerate(COHS_BANDS)}
    assert np.allclose(band["VV_12"], np.median([0.5, 0.1, 0.4]))
    assert np.allclose(band["VV_24"], 0.3) and np.isnan(band["VH_24"]).all()
    for b in ("VV_6", "VV_18", "VV_36", "VV_48", "VH_6"):
        assert np.isnan(band[b]).all(), b  # absent baselines are NaN, not 0
    # two VV baselines are too few for a fit (needs 3)
    assert np.isnan(band["rho_VV"]).all() and np.isnan(band["tau_VV"]).all()
    assert acc.labels() == []  # finalised seasons are freed


def test_modality_matches_the_band_order():
    m = get_modality("s1cohs")
    assert m.bands == COHS_BANDS and m.res == 40 and m.period_kind == "seasonal"
    assert m.dtype == "float32" and m.bands[:2] == ("VV_6", "VV_12")
    assert m.bands[-3:] == ("rho_VH", "tau_VH", "rmse_VH")


def test_debias_inverts_the_expected_estimate():
    g = np.array([0.0, 0.2, 0.4, 0.7, 0.95])
    e = np.array([expected_abs_coherence(float(x), 16) for x in g])
    assert np.allclose(debias(e, 16), g, atol=2e-3)
    assert debias(np.array([0.05, np.nan]), 16)[0] == 0 and np.isnan(debias(np.array([np.nan]),
                                                                           16)).all()


def _stack_truth(decay: str, seed: int = 1):
    """Per class, 40 m cells of 4 x 4 independent looks over a summer of 6-day dates."""
    rng = np.random.default_rng(seed)
    params = decay_params(decay)
    classes = sorted(CLASSES)
    h, w = 128, 64  # pixels per class block (32 x 16 cells of 16 looks)
    rho = np.concatenate([np.full((h, w), params[k][0]) for k in classes], axis=1)
    tau = np.concatenate([np.full((h, w), params[k][1]) for k in classes], axis=1)
    days = np.arange(0, 150, 6)  # 2020-05-08 .. 2020-09-29
    t0 = D(2020, 5, 8)
    spk = decay_speckle(rng, days, rho, tau)
    acc = SeasonalCoherence((h // 4, len(classes) * w // 4), looks=16)
    for i in range(len(days)):
        for j in range(i + 1, len(days)):
            if days[j] - days[i] in BASELINES:
                c, _ = block_coherence(spk[i], spk[j], 4)
                acc.add(t0 + dt.timedelta(days=int(days[i])),
                        t0 + dt.timedelta(days=int(days[j])), np.stack([c, c]))
    out = acc.finalize("2020-JJA")
    return out, params, classes, w // 4


@pytest.mark.parametrize("decay", ["rho", "ar1"])
def test_truth_on_a_simulated_stack(decay):
    out, params, classes, cw = _stack_truth(decay)
    band = {b: out[i] for i, b in enumerate(COHS_BANDS)}
    for ci, k in enumerate(classes):
        rho, tau = params[k]
        sl = np.s_[:, ci * cw:(ci + 1) * cw]
        for days in BASELINES:
            truth = decay_coherence(rho, tau, days)
            expect = expected_abs_coherence(truth, 16)  # the estimator's mean for 16 looks
            got = float(np.median(band[f"VV_{days}"][sl]))
            # a pixel's value is the median of 4-23 pairs of one baseline: within 0.03 of the
            # estimator's mean (the median of the skewed |g^| sits slightly below it)
            assert abs(got - expect) < 0.03, (k, days, got, expect, truth)
        t_fit = float(np.median(band["tau_VV"][sl]))
        r_fit = float(np.median(band["rho_VV"][sl]))
        # measurable: decays by at least 0.3 between 6 and 48 days, not within the first step
        if 6 <= tau <= 60 and 1 - rho >= 0.3:
            assert abs(t_fit / tau - 1) < 0.2, (k, t_fit, tau)
            assert abs(r_fit - rho) < 0.1, (k, r_fit, rho)
