"""Which two real SLC dates one stack may hold (sar.product.check_same_track)."""

from __future__ import annotations

import pytest

from m3leo_tiles.errors import PairError
from m3leo_tiles.sar.product import check_same_track, open_product
from tests.conftest import S1DATA

SLC = S1DATA / "hyp3-isce2/tests/data/packaging/slc"
A = SLC / "S1A_IW_SLC__1SDV_20250406T022008_20250406T022035_058630_07421F_93A7.SAFE"
B = SLC / "S1A_IW_SLC__1SDV_20250418T022008_20250418T022035_058805_074946_C7D4.SAFE"
pytestmark = pytest.mark.skipif(not A.is_dir(), reason="shared s1data not present")


def _open(path, swaths):
    return open_product(str(path), ["VV"], swaths=swaths)


def test_dates_pair_on_the_swaths_they_share():
    # burst SAFEs cut to a unit may hold a swath more on one date than on the other
    a, b = _open(A, ["IW1", "IW2"]), _open(B, ["IW2"])
    try:
        check_same_track(a, b)
        check_same_track(b, a)
    finally:
        a.close()
        b.close()


def test_dates_with_no_common_swath_are_a_pair_error():
    a, b = _open(A, ["IW1"]), _open(B, ["IW3"])
    try:
        with pytest.raises(PairError, match=r"no common swath: \['IW1'\] vs \['IW3'\]"):
            check_same_track(a, b)
    finally:
        a.close()
        b.close()
