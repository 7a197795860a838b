"""Seasonal coherence from a simulated SAFE stack through the pair processor (slow, ~5 min)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_seasonal_coherence_matches_the_simulated_decay(tmp_path):
    from tests.sar.seastruth import cohs_stack_truth, simulate_stack

    r = cohs_stack_truth(simulate_stack(tmp_path / "stack"))
    assert r["cohs_pairs"] == 24 and r["cohs_season"] == "2021-MAM"
    assert r["cohs_truth_ok"], r["cohs_by_class"]
    assert {"cropland", "bare", "urban"} <= {k for k, v in r["cohs_by_class"].items()
                                             if "tau" in v}
