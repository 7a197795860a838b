"""Date windows (what a request or a search covers) and periods (labelled layers of the store)."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from m3leo_tiles.errors import BadInput
from m3leo_tiles.periods import DateWindow, Period, expand, period_from_label

D = dt.date


def test_a_window_is_half_open_and_parses_every_request_spec():
    w = DateWindow.parse("2020/2021-02", today=D(2024, 5, 17))
    assert (w.start, w.end) == (D(2020, 1, 1), D(2021, 3, 1))
    assert w.contains(D(2020, 1, 1)) and w.contains(D(2021, 2, 28)) and not w.contains(w.end)
    assert w.span() == "2020-01-01..2021-02-28"
    assert DateWindow.parse("2020-DJF") == DateWindow(D(2019, 12, 1), D(2020, 3, 1))
    assert DateWindow.parse("last-3-months", today=D(2024, 5, 17)) == \
        DateWindow(D(2024, 2, 1), D(2024, 5, 1))


@pytest.mark.parametrize("start, end, why", [
    (D(2020, 3, 1), D(2020, 3, 1), "ends before it starts"),
    (D(2020, 3, 2), D(2020, 3, 1), "ends before it starts"),
    ("2020-01-01", D(2020, 3, 1), "needs two dates"),
])
def test_a_window_refuses_what_is_not_one(start, end, why):
    with pytest.raises(BadInput, match=why):
        DateWindow(start, end)


def test_a_period_is_a_labelled_window():
    (jja,) = [p for p in expand("seasonal", "2020") if p.label == "2020-JJA"]
    assert isinstance(jja, DateWindow) and jja.kind == "seasonal"
    assert (jja.start, jja.end) == (D(2020, 6, 1), D(2020, 9, 1))
    assert jja != DateWindow(jja.start, jja.end)  # a window is not a layer of the store
    assert pickle.loads(pickle.dumps(jja)) == jja and period_from_label("2020-JJA") == jja
    months = expand("monthly", "2020")
    assert sorted(reversed(months)) == months and len(months) == 12
    assert period_from_label("20250406_20250418") == \
        Period(D(2025, 4, 6), D(2025, 4, 19), "20250406_20250418", "pair")
    with pytest.raises(BadInput, match="ends before it starts"):
        period_from_label("20250418_20250406")


def test_a_pair_request_is_a_window_not_a_period():
    from m3leo_tiles.periods import request

    (w,) = request("pair", "2025-MAM")
    assert type(w) is DateWindow and (w.start, w.end) == (D(2025, 3, 1), D(2025, 6, 1))
    assert request("annual", "2020") == expand("annual", "2020")
    with pytest.raises(BadInput, match="found by their source"):
        expand("pair", "2025")


def test_a_source_that_finds_no_pairs_refuses_a_pair_window():
    from m3leo_tiles.modalities import get_modality
    from m3leo_tiles.periods import request
    from m3leo_tiles.sources.base import Source

    class Plain(Source):
        name = "plain"

        def read(self, unit, tiles, modality, period):  # pragma: no cover - never called
            raise AssertionError

    coh = get_modality("s1coh")
    with pytest.raises(BadInput, match="source 'plain' cannot find the pair periods of s1coh"):
        Plain().periods(coh, request("pair", "2025"), [])
    grd = get_modality("s1grd")
    assert Plain().periods(grd, request("seasonal", "2025-MAM"), []) == \
        [period_from_label("2025-MAM")]
