"""What a dataset reads: input layers (modality, bands, periods) and one target layer.

The spec is plain data (it comes from a Hydra config) checked against the modality registry
and against each store, so a typo is one clear `BadInput` before any tile is read. Targets
are generic by modality name: a `segmentation` target maps class codes to 0..K-1, a
`regression` target is any band read as float in physical units (scale/offset applied).
ESA WorldCover codes follow the product's legend (ESA WorldCover v100/v200 user manual).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadInput
from ..modalities import Modality, get_modality
from ..periods import DateWindow, period_from_label

IGNORE_INDEX = 255
#: M3LEO's GUNW channels (fdlsar configs): short, medium and long temporal baselines, days
M3LEO_BASELINES = ((0, 60), (72, 132), (140, 216))
# ESA WorldCover legend: tree, shrub, grass, crop, built, bare, snow, water, herb. wetland,
# mangroves, moss/lichen (11 classes, as fdlsar's esawc head); every other code is ignored
ESAWC_CODES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
TASKS = ("segmentation", "regression")
LADDER = (10, 20, 40, 80)


@dataclass(frozen=True)
class InputSpec:
    modality: str
    bands: tuple[str, ...] | None = None  # None: every band of the modality
    periods: tuple[str, ...] | None = None  # None: every period the store holds
    valid: bool = False  # add a 0/1 validity channel after each band (data vs no data)
    # pairs by temporal baseline (issue 22): per (min, max) days, one pair starting `within`
    baselines: tuple[tuple[int, int], ...] | None = None
    within: str | None = None  # a period label (2020, 2020-JJA, 2020-06) or a date window

    def resolve(self) -> tuple[Modality, tuple[str, ...]]:
        m = get_modality(self.modality)
        if self.baselines is not None:
            if m.period_kind != "pair":
                raise BadInput(f"input {m.name}: baselines select pairs, and {m.name} has "
                               f"{m.period_kind} periods")
            if self.periods:
                raise BadInput(f"input {m.name}: give periods or baselines, not both")
            for lo, hi in self.baselines:
                if not 0 <= lo <= hi:
                    raise BadInput(f"input {m.name}: baseline range [{lo}, {hi}] days is empty")
            if self.within is not None:
                within_window(self.within)
        bands = tuple(self.bands) if self.bands else m.bands
        unknown = [b for b in bands if b not in m.bands]
        if unknown:
            raise BadInput(f"modality {m.name} has no band {unknown[0]!r}; "
                           f"bands: {', '.join(m.bands)}")
        return m, bands


@dataclass(frozen=True)
class TargetSpec:
    modality: str
    task: str = "segmentation"
    band: str | None = None  # None: the modality's first band
    period: str | None = None  # None: the store's only period
    classes: tuple[int, ...] | None = None  # segmentation: code of class 0, 1, ...
    invalid: tuple[float, ...] = ()  # extra codes read as nodata (e.g. MOD44B water, 200)

    def resolve(self) -> tuple[Modality, str]:
        m = get_modality(self.modality)
        if self.task not in TASKS:
            raise BadInput(f"target task {self.task!r} is not one of {', '.join(TASKS)}")
        band = self.band or m.bands[0]
        if band not in m.bands:
            raise BadInput(f"modality {m.name} has no band {band!r}; bands: {', '.join(m.bands)}")
        if self.task == "segmentation" and not self.class_codes:
            raise BadInput(f"segmentation target {m.name} needs its class codes (target.classes)")
        return m, band

    @property
    def class_codes(self) -> tuple[int, ...]:
        if self.classes:
            return tuple(int(c) for c in self.classes)
        return ESAWC_CODES if self.modality == "esawc" else ()

    @property
    def num_classes(self) -> int:
        return len(self.class_codes) if self.task == "segmentation" else 1


@dataclass(frozen=True)
class DataSpec:
    inputs: tuple[InputSpec, ...]
    target: TargetSpec | None
    res: int = 10  # the working grid every layer is brought to (metres)
    patch: int | None = None  # cut each tile into non-overlapping patches of this size
    time_dim: str = "flatten"  # flatten periods into channels, or stack: [T, C, H, W]
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.inputs:
            raise BadInput("no inputs: name at least one modality under data.inputs")
        if self.res not in LADDER:
            raise BadInput(f"data.res {self.res} is not on the 10/20/40/80 m ladder")
        if self.time_dim not in ("flatten", "stack"):
            raise BadInput(f"data.time_dim {self.time_dim!r}: use flatten or stack")
        for layer in self.layers():
            m = get_modality(layer)
            if m.res < self.res or m.res % self.res:
                raise BadInput(f"modality {m.name} ({m.res} m) cannot be brought exactly to "
                               f"the {self.res} m grid (only coarser nested rungs replicate)")
        for i in self.inputs:
            i.resolve()
        if self.target is not None:
            self.target.resolve()
        if self.patch is not None and self.patch % self.max_factor():
            raise BadInput(f"data.patch {self.patch} must be a multiple of "
                           f"{self.max_factor()} (the coarsest layer's pixel in working pixels)")

    def layers(self) -> list[str]:
        names = [i.modality for i in self.inputs]
        if self.target is not None:
            names.append(self.target.modality)
        return names

    def factor(self, modality: str) -> int:
        return get_modality(modality).res // self.res

    def max_factor(self) -> int:
        return max(self.factor(m) for m in self.layers())


def within_window(spec: str) -> DateWindow:
    """The window a `within` names: a period label (2020, 2020-JJA, 2020-06) or a window."""
    try:
        return period_from_label(str(spec))
    except BadInput:
        return DateWindow.parse(str(spec))


def select_pairs(labels: Sequence[str], baselines: Sequence[tuple[int, int]],
                 within: str | None = None) -> tuple[str, ...] | str:
    """Per baseline range (days, inclusive), the pair of `labels` whose first date lies in
    `within` with the LONGEST baseline in the range (M3LEO's "far" rule; ties: the earliest).
    A range no pair fills: the reason, as a string (the caller raises it for its store)."""
    window = within_window(within) if within is not None else None
    pairs = []
    for lb in labels:
        p = period_from_label(lb)
        if p.kind != "pair":
            continue
        first, last = p.start, p.end - dt.timedelta(days=1)
        if window is None or window.contains(first):
            pairs.append(((last - first).days, first, lb))
    out = []
    for lo, hi in baselines:
        fits = [x for x in pairs if lo <= x[0] <= hi]
        if not fits:
            where = f" starting in {within}" if within is not None else ""
            return f"no pair with a {lo}-{hi} day baseline{where}"
        out.append(max(fits, key=lambda x: (x[0], -x[1].toordinal()))[2])
    return tuple(out)


def _tuple(v: Any) -> tuple | None:
    if v is None:
        return None
    if isinstance(v, str):
        return (v,)
    return tuple(v)


def _baselines(name: Any, v: Any) -> tuple[tuple[int, int], ...] | None:
    """`baselines: [[0, 60], [72, 132]]` or `m3leo` (M3LEO's three GUNW ranges)."""
    if v is None:
        return None
    if v == "m3leo":
        return M3LEO_BASELINES
    try:
        out = tuple((int(lo), int(hi)) for lo, hi in v)
    except (TypeError, ValueError):
        raise BadInput(f"input {name}: baselines must be [[min, max], ...] days or m3leo, "
                       f"not {v!r}") from None
    if not out:
        raise BadInput(f"input {name}: baselines is empty")
    return out


def spec_from_config(inputs: Mapping[str, Any] | Sequence[Any], target: Mapping[str, Any] | None,
                     res: int = 10, patch: int | None = None,
                     time_dim: str = "flatten") -> DataSpec:
    """A DataSpec from config nodes: `inputs` maps modality -> {bands, periods} (or a list)."""
    items: list[InputSpec] = []
    if isinstance(inputs, Mapping):
        pairs = list(inputs.items())
    else:
        pairs = [(d.get("modality"), d) for d in inputs]
    known_in = {"bands", "periods", "modality", "valid", "baselines", "within"}
    for name, node in pairs:
        node = dict(node or {})
        bad = set(node) - known_in
        if bad:
            raise BadInput(f"input {name}: unknown key {sorted(bad)[0]!r} "
                           "(use bands, periods, valid, baselines, within)")
        valid = node.get("valid", False)
        if not isinstance(valid, bool):
            raise BadInput(f"input {name}: valid must be true or false, not {valid!r}")
        items.append(InputSpec(str(name), _tuple(node.get("bands")), _tuple(node.get("periods")),
                               valid, _baselines(name, node.get("baselines")),
                               None if node.get("within") is None else str(node["within"])))
    tspec = None
    if target:
        t = dict(target)
        known_t = {"modality", "task", "band", "period", "classes", "invalid"}
        bad = set(t) - known_t
        if bad:
            raise BadInput(f"target: unknown key {sorted(bad)[0]!r}")
        if not t.get("modality"):
            raise BadInput("target.modality is missing")
        tspec = TargetSpec(str(t["modality"]), str(t.get("task", "segmentation")),
                           t.get("band"), None if t.get("period") is None else str(t["period"]),
                           _tuple(t.get("classes")), tuple(t.get("invalid") or ()))
    return DataSpec(tuple(items), tspec, int(res), None if patch is None else int(patch),
                    str(time_dim))
