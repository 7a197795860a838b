"""ESA Sentinel-1 burst identifiers: one frozen value, parsed, formatted and computed.

The burst id scheme is ESA's (S1 Level 1 Detailed Algorithm Definition, S1-TN-MDA-52-7445,
eqs. 9-89..9-91; burst ids in annotation <burstId> from IPF 3.40): bursts are counted in
nominal burst cycles (T_beam) since the first ascending-node crossing (ANX) of relative orbit
1, so one geographic burst keeps its number on every repeat pass of its track. Written as
`"108_230560_IW2"` (track, ESA burst number, subswath) like ASF's `fullBurstID`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from ..errors import BadInput

T_ORB = 12 * 24 * 3600 / 175  # nominal orbit period [s]: 175 orbits in 12 days
T_BEAM = 2.758273  # nominal burst cycle [s]
T_PRE = 2.299849  # preamble before the first burst after the ascending node [s]
N_TRACKS = 175
SUBSWATHS = ("IW1", "IW2", "IW3", "EW1", "EW2", "EW3", "EW4", "EW5")
_TEXT = re.compile(r"^t?(\d{1,3})_(\d{1,7})_((?:IW|EW)\d)$", re.I)


def esa_burst_id(relative_orbit: int, burst_centre: dt.datetime, anx: dt.datetime) -> int:
    """ESA's burst number: burst cycles since track 1's ascending node (eqs. 9-89, 9-91).

    `burst_centre` is the burst's mid sensing time, `anx` the ascending node time preceding
    it on `relative_orbit`.
    """
    t_orb = (relative_orbit - 1) * T_ORB + (burst_centre - anx).total_seconds()
    return 1 + math.floor((t_orb - T_PRE) / T_BEAM)


@dataclass(frozen=True, order=True)
class BurstId:
    """(track, ESA burst number, subswath): the same ground burst on every repeat pass."""

    relative_orbit: int
    number: int
    subswath: str

    def __post_init__(self) -> None:
        if not 1 <= self.relative_orbit <= N_TRACKS:
            raise BadInput(f"burst id: relative orbit {self.relative_orbit} not in 1..175")
        if not 1 <= self.number <= 400_000:  # 175 orbits x ~372 cycles per orbit
            raise BadInput(f"burst id: ESA burst number {self.number} out of range")
        sw = self.subswath.upper()
        if sw not in SUBSWATHS:
            raise BadInput(f"burst id: subswath {self.subswath!r} is not one of "
                           f"{', '.join(SUBSWATHS)}")
        object.__setattr__(self, "subswath", sw)

    @classmethod
    def parse(cls, text: str) -> BurstId:
        """`"108_230560_IW2"` (ASF fullBurstID; a leading `t` as in OPERA ids is accepted)."""
        m = _TEXT.match(str(text).strip())
        if not m:
            raise BadInput(f"not a burst id: {text!r} (expected e.g. 108_230560_IW2)")
        return cls(int(m.group(1)), int(m.group(2)), m.group(3))

    @classmethod
    def from_times(cls, burst_centre: dt.datetime, anx: dt.datetime, relative_orbit: int,
                   subswath: str, end_relative_orbit: int | None = None) -> BurstId:
        """The id of a burst from its mid sensing time and the product's ANX time.

        A product spanning the ascending node lists two relative orbits (start, end). The
        number counts burst cycles from track 1's node whichever track the burst is on; a
        cycle that starts after the next node belongs to the end track, so the bursts of one
        cycle (one number, three swaths) are always on one track.
        """
        number = esa_burst_id(relative_orbit, burst_centre, anx)
        cycle_start = T_PRE + (number - 1) * T_BEAM  # s since track 1's ascending node
        track = relative_orbit
        if end_relative_orbit is not None and cycle_start >= relative_orbit * T_ORB:
            track = end_relative_orbit
        return cls(track, number, subswath)

    def __str__(self) -> str:
        return f"{self.relative_orbit:03d}_{self.number:06d}_{self.subswath}"
