"""The processor against the independent simulator's ground truth (slow: simulates a pair)."""

from __future__ import annotations

import pytest

from .simtruth import run_truth_checks


@pytest.mark.slow
def test_simulated_pair_matches_truth():
    r = run_truth_checks()
    print(r)
    assert r["sim_geoloc_rms_px"] <= 0.1
    # all() over an empty dict is true: a scene where no class had enough samples must fail
    assert r["sim_coherence_by_class"], "no land-cover class had enough cells to score"
    assert r["sim_sigma0_by_class"], "no land-cover class had enough pixels to score"
    assert all(v[2] for v in r["sim_coherence_by_class"].values()), r["sim_coherence_by_class"]
    assert all(v[2] for v in r["sim_sigma0_by_class"].values()), r["sim_sigma0_by_class"]
    assert r["sim_phase_worst_bin_err_rad"] <= 0.15 and r["sim_phase_range_rad"] > 2
    # the small scene has few coherent cells at the split: the tolerance is 0.1 rad or 4
    # standard errors (the forward-modelled pair checks the edge to 0.001 rad)
    assert r["sim_burst_edge_jump_rad"] is not None
    assert abs(r["sim_burst_edge_jump_rad"]) <= r["sim_burst_edge_jump_tol_rad"]
    assert r["sim_truth_ok"]
