"""`regions` reads stored figures (no recount per call) that stay true to the polygons."""

from __future__ import annotations

import pytest

from m3leo_tiles.grid import summary
from m3leo_tiles.grid.summary import REGIONS, compute, summaries


def _stored(name: str) -> summary.RegionSummary:
    return summary._stored()[(name, 4480)]


def test_stored_figures_of_the_smallest_region_match_a_recount():
    assert _stored("southamerica") == compute("southamerica", 4480)


@pytest.mark.slow
@pytest.mark.parametrize("name", REGIONS)
def test_stored_figures_match_a_recount(name):
    assert _stored(name) == compute(name, 4480)


def test_regions_reads_stored_figures_and_recounts_only_a_changed_polygon(monkeypatch):
    computed: list[str] = []
    real_digest = summary._digest

    def counting(name: str, tile_size: int) -> summary.RegionSummary:
        computed.append(name)
        return summary.RegionSummary(name, tile_size, 1.0, 1, "x")

    monkeypatch.setattr(summary, "compute", counting)
    assert [r.name for r in summaries()] == list(REGIONS) and computed == []
    monkeypatch.setattr(summary, "_digest",
                        lambda n: "edited" if n == "pakin" else real_digest(n))
    rows = {r.name: r for r in summaries()}
    assert computed == ["pakin"] and rows["pakin"].tiles == 1
    summaries(2240)  # a tile size the table lacks is counted
    assert computed[1:] == list(REGIONS)
