"""Periods: what the time axis of a modality means, and their labels.

Labels are short, sortable strings that are also the store's period coordinate:
`static`, `2020` (annual), `2020-DJF` (seasonal; DJF runs from 1 Dec of the previous year,
as M3LEO's winter), `2020-03` (monthly), `20250406_20250418` (an interferometric pair).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .errors import BadInput

KINDS = ("static", "annual", "seasonal", "monthly", "pair")
SEASONS = {"DJF": (12, 1, 2), "MAM": (3, 4, 5), "JJA": (6, 7, 8), "SON": (9, 10, 11)}


@dataclass(frozen=True, order=True)
class DateWindow:
    """A half-open date interval [start, end): what a request or an archive search covers.

    A window has no label and no kind: it is not a layer of the store. A `Period` is a window
    with both, so anything that only looks at dates (the S1 search and pairing) takes windows.
    """

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if not isinstance(self.start, dt.date) or not isinstance(self.end, dt.date):
            raise BadInput(f"a date window needs two dates, got {self.start!r}, {self.end!r}")
        if self.end <= self.start:
            raise BadInput(f"date window {self.start}..{self.end} ends before it starts")

    @classmethod
    def parse(cls, spec: str, today: dt.date | None = None) -> DateWindow:
        """The window of a request spec (see `parse_window`)."""
        return cls(*parse_window(spec, today))

    def contains(self, day: dt.date) -> bool:
        return self.start <= day < self.end

    def span(self) -> str:
        """`first..last` day, both inclusive (how users give and read windows)."""
        return f"{self.start}..{self.end - dt.timedelta(days=1)}"


@dataclass(frozen=True, order=True)
class Period(DateWindow):
    """A labelled half-open date interval [start, end): one step of a modality's time axis."""

    label: str
    kind: str


def _month(year: int, month: int) -> Period:
    start = dt.date(year, month, 1)
    end = dt.date(year + (month == 12), month % 12 + 1, 1)
    return Period(start, end, f"{year:04d}-{month:02d}", "monthly")


def _season(year: int, name: str) -> Period:
    if name == "DJF":
        start, end = dt.date(year - 1, 12, 1), dt.date(year, 3, 1)
    else:
        m = SEASONS[name][0]
        start, end = dt.date(year, m, 1), dt.date(year, m + 3, 1)
    return Period(start, end, f"{year:04d}-{name}", "seasonal")


def _year(year: int) -> Period:
    return Period(dt.date(year, 1, 1), dt.date(year + 1, 1, 1), f"{year:04d}", "annual")


STATIC = Period(dt.date(1, 1, 1), dt.date(9999, 1, 1), "static", "static")


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"bad date {text!r}: expected YYYY-MM-DD") from None


def parse_window(spec: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """A request's date window [start, end): `2020`, `2020-03`, `2020-DJF`, `A/B`, `last-N-months`."""
    spec = spec.strip()
    today = today or dt.date.today()
    m = re.fullmatch(r"last-(\d+)-months?", spec)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise BadInput(f"bad rolling period {spec!r}")
        end = dt.date(today.year, today.month, 1)
        y, mo = end.year, end.month - n
        while mo < 1:
            mo += 12
            y -= 1
        return dt.date(y, mo, 1), end
    if "/" in spec:
        a, b = spec.split("/", 1)
        start, end = parse_window(a, today)[0], parse_window(b, today)[1]  # B is inclusive
        if end <= start:
            raise BadInput(f"period {spec!r} ends before it starts")
        return start, end
    if re.fullmatch(r"\d{4}", spec):
        p = _year(int(spec))
        return p.start, p.end
    if re.fullmatch(r"\d{4}-\d{2}", spec):
        y, mo = map(int, spec.split("-"))
        if not 1 <= mo <= 12:
            raise BadInput(f"bad month in period {spec!r}")
        p = _month(y, mo)
        return p.start, p.end
    m = re.fullmatch(r"(\d{4})-(DJF|MAM|JJA|SON)", spec)
    if m:
        p = _season(int(m.group(1)), m.group(2))
        return p.start, p.end
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", spec):
        d = parse_date(spec)
        return d, d + dt.timedelta(days=1)
    raise BadInput(
        f"bad period {spec!r}: use YYYY, YYYY-MM, YYYY-DJF|MAM|JJA|SON, A/B or last-N-months"
    )


def expand(kind: str, spec: str, today: dt.date | None = None) -> list[Period]:
    """The concrete periods of `kind` a request covers (pairs are found by their source)."""
    if kind not in KINDS:
        raise BadInput(f"unknown period kind {kind!r}")
    if kind == "static":
        return [STATIC]
    start, end = parse_window(spec, today)
    out: list[Period] = []
    if kind == "annual":
        out = [_year(y) for y in range(start.year, end.year + 1)]
    elif kind == "monthly":
        y, m = start.year, start.month
        while dt.date(y, m, 1) < end:
            out.append(_month(y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    elif kind == "seasonal":
        for y in range(start.year, end.year + 2):
            for name in SEASONS:
                out.append(_season(y, name))
    elif kind == "pair":
        raise BadInput("pair periods are found by their source in a window: see `request`")
    # a period belongs to the request when its middle day does: `2020` seasonal is 2020-DJF
    # (Dec 2019 to Feb 2020, as M3LEO's winter) to 2020-SON
    sel = [p for p in out if start <= p.start + (p.end - p.start) / 2 < end]
    if not sel:
        raise BadInput(f"period {spec!r} holds no whole {kind} period")
    return sel


def request(kind: str, spec: str, today: dt.date | None = None) -> list[DateWindow]:
    """What a run asks of a modality: its concrete periods, or, for pairs, the one window in
    which its source searches them (a window, not a period: it labels no layer)."""
    if kind == "pair":
        return [DateWindow.parse(spec, today)]
    return list(expand(kind, spec, today))


def pair_label(d1: dt.date, d2: dt.date) -> str:
    return f"{d1:%Y%m%d}_{d2:%Y%m%d}"


def period_from_label(label: str) -> Period:
    """Inverse of the labels above (used when reopening a store)."""
    if label == "static":
        return STATIC
    if re.fullmatch(r"\d{4}", label):
        return _year(int(label))
    if re.fullmatch(r"\d{4}-\d{2}", label):
        y, m = map(int, label.split("-"))
        return _month(y, m)
    season = re.fullmatch(r"(\d{4})-(DJF|MAM|JJA|SON)", label)
    if season:
        return _season(int(season.group(1)), season.group(2))
    pair = re.fullmatch(r"(\d{8})_(\d{8})", label)
    if pair:
        a = dt.datetime.strptime(pair.group(1), "%Y%m%d").date()
        b = dt.datetime.strptime(pair.group(2), "%Y%m%d").date()
        return Period(a, b + dt.timedelta(days=1), label, "pair")
    raise BadInput(f"not a period label: {label!r}")


__all__ = ["KINDS", "STATIC", "DateWindow", "Period", "expand", "pair_label", "parse_window",
           "period_from_label"]
