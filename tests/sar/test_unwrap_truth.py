"""`s1unw` against the simulator's unwrapped-phase truth (issue 22 item 2; tests/sar/unwtruth.py).

Fast: the session's default small pair (a 1 cm bowl, under one fringe) through the archive
source's block units. Slow: a 10 cm bowl (~3.6 fringes per pair), the issue's three numbers.
"""

from __future__ import annotations

import pytest

from tests.sar.unwtruth import score, simulate_defo, unwrapped


def test_s1unw_of_the_small_pair_matches_its_unwrapped_truth(small_sim):
    r = score(small_sim, unwrapped(small_sim))
    assert r["unw_tiles"] == 4 and r["unw_cells_scored"] > 5000
    assert r["unw_rms_rad"] <= 0.3 and r["unw_error_frac"] <= 0.01, r
    assert r["unw_coherent_labelled_frac"] >= 0.95, r
    assert r["unw_seam_offset_rad"] is not None and r["unw_seam_offset_rad"] < 0.3, r


@pytest.mark.slow
def test_a_ten_cm_bowl_unwraps_within_the_issues_bounds(tmp_path):
    sim = simulate_defo(tmp_path / "defo", deformation_cm=10.0)
    r = score(sim, unwrapped(sim), unwrapped(sim, block=1))
    assert r["unw_truth_range_rad"] > 4 * 3.14159, r  # several fringes
    assert r["unw_truth_ok"], r
    assert r["unw_seam_offset_rad"] < 0.3, r
    # every tile alone: seams 2 pi k + c apart (c the interferogram's own small offset)
    for jump in r["unw_tile_alone_seam_offsets_rad"]:
        k = round(jump / (2 * 3.141592653589793))
        assert abs(jump - 2 * 3.141592653589793 * k) < 0.5, r
