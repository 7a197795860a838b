"""The real ESA products whose geometry the simulator borrows, one per orbit pass, and the
names of the products it derives from them.

- `asc`: S1A track 108, IW2, 2025-04-06 (hyp3-isce2 test data), ascending.
- `des`: S1B track 168, IW1, 2021-04-01 (xarray-sentinel test data), descending.

Both are stored gzipped in `data/` (see data/README.md for provenance and licences). Date k of
a stack is the template shifted by `spacing * k` days: 12 days is S1's repeat cycle (the
Earth-fixed orbit repeats), and with 6-day spacing the odd dates come from the sibling
platform (S1A <-> S1B, 180 degrees apart on the same orbit plane, so on the same ground track
6 days later), named with that platform's absolute orbit of the same relative orbit
(relative = (absolute - 73) mod 175 + 1 for S1A, (absolute - 27) mod 175 + 1 for S1B, as ESA
counts them).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

#: absolute-orbit offset of each platform's relative-orbit count
ORBIT_OFFSET = {"A": 73, "B": 27}
SIBLING = {"A": "B", "B": "A"}


@dataclass(frozen=True)
class Track:
    key: str  # "asc" | "des"
    prefix: str  # file-name prefix of the templates in data/
    swath: str  # "iw2"
    platform: str  # "A" | "B"
    name: str  # the real product's name
    date: dt.date
    orbit: int  # absolute orbit
    relative_orbit: int
    datatake: int
    file_stem: str  # measurement/annotation stem, {pol} and {n} to fill
    pol_index: tuple[tuple[str, str], ...]  # (pol, file index)
    passage: str  # ASCENDING | DESCENDING

    def read(self, name: str) -> str:
        """A template file (e.g. `annotation-iw2-vv.xml`) as text."""
        data = resources.files("m3leo_tiles.simulator") / "data" / (
            f"{self.prefix}{name}.gz")
        return gzip.decompress(data.read_bytes()).decode()

    def index(self, pol: str) -> str:
        return dict(self.pol_index)[pol]

    def product(self, k: int, spacing: int) -> tuple[str, dict[str, str], dt.date]:
        """Name, text substitutions and date of stack date k (k = 0 is the template)."""
        days = spacing * k
        d = self.date + dt.timedelta(days=days)
        plat = self.platform if days % 12 == 0 else SIBLING[self.platform]
        if plat == self.platform:
            orbit = self.orbit + 175 * days // 12
        else:  # the sibling's absolute orbit of the same relative orbit, about as far on
            guess = self.orbit + 175 * days // 12
            rel = (guess - ORBIT_OFFSET[plat]) % 175 + 1
            orbit = guess + (self.relative_orbit - rel) % 175
        dtid = self.datatake + 0x2D27 * days // 12  # one datatake id per date
        crc = hashlib.sha256(f"{d}{orbit}".encode()).hexdigest()[:4].upper()
        t_start, t_stop = self.name[25:32], self.name[41:48]
        name = (f"S1{plat}_IW_SLC__1SDV_{d:%Y%m%d}{t_start}_{d:%Y%m%d}{t_stop}_{orbit:06d}_"
                f"{dtid:06X}_{crc}" if k else self.name)
        o0 = f"{self.orbit:06d}"
        x0 = f"{self.datatake:06x}"
        subs = {f"{self.date:%Y-%m-%d}": f"{d:%Y-%m-%d}", f"{self.date:%Y%m%d}": f"{d:%Y%m%d}",
                o0: f"{orbit:06d}", x0: f"{dtid:06x}", x0.upper(): f"{dtid:06X}",
                f">{self.orbit}<": f">{orbit}<"}
        if plat != self.platform:
            a, b = self.platform, plat
            subs.update({f"S1{a}": f"S1{b}", f"s1{a.lower()}": f"s1{b.lower()}",
                         f"<safe:number>{a}<": f"<safe:number>{b}<"})
        return name, subs, d


TRACKS = {
    "asc": Track(
        "asc", "", "iw2", "A",
        "S1A_IW_SLC__1SDV_20250406T022008_20250406T022035_058630_07421F_93A7",
        dt.date(2025, 4, 6), 58630, 108, 0x07421F,
        "s1a-iw2-slc-{pol}-20250406t022010-20250406t022035-058630-07421f-{n}",
        (("vv", "005"), ("vh", "002")), "ASCENDING"),
    "des": Track(
        "des", "des-", "iw1", "B",
        "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4",
        dt.date(2021, 4, 1), 26269, 168, 0x032297,
        "s1b-iw1-slc-{pol}-20210401t052624-20210401t052649-026269-032297-{n}",
        (("vv", "004"), ("vh", "001")), "DESCENDING"),
}


def apply(text: str, subs: dict[str, str]) -> str:
    for a, b in subs.items():
        text = text.replace(a, b)
    return text
