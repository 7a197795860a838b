"""Train/val/test splits by spatial bands, as M3LEO does, or from a user CSV.

Neighbouring tiles are strongly correlated, so random splits leak; stripes across the region
keep each split spatially apart. Tile centres are normalised to the unit square, projected on
the direction `angle` (degrees from east, counter-clockwise), cut into `bands` equal-width
stripes, and the stripes take the split names cyclically in proportion to the percentages
(60/20/20 -> train, train, train, val, test, train, ...). Deterministic by construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from ..errors import BadInput
from .tiles import lonlat_centres

#: per-region default stripe angles (degrees), following M3LEO's split files
DEFAULT_ANGLES = {"conus": 9.0, "europe": 9.0, "middleeast": 15.0, "pakin": 15.0, "china": 15.0,
                  "southamerica": 2.0}
DEFAULT_BANDS = 60
NAMES = ("train", "val", "test")


def parse_pct(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise BadInput(f"bad --split-pct {text!r}: three integers like 60,20,20") from None
    if len(parts) != 3 or any(p < 0 for p in parts):
        raise BadInput(f"bad --split-pct {text!r}: three non-negative integers like 60,20,20")
    if sum(parts) != 100:
        raise BadInput(f"split percentages {text} sum to {sum(parts)}, not 100")
    return parts  # type: ignore[return-value]


def cycle_pattern(pct: tuple[int, int, int]) -> list[str]:
    g = reduce(math.gcd, [p for p in pct if p] or [1])
    pattern: list[str] = []
    for name, p in zip(NAMES, pct, strict=True):
        pattern += [name] * (p // g)
    return pattern


def band_splits(geometry: Sequence[shapely.Geometry] | np.ndarray, angle: float = 9.0, bands: int = DEFAULT_BANDS,
                pct: tuple[int, int, int] = (60, 20, 20)) -> np.ndarray:
    if bands < 1:
        raise BadInput("--split-bands must be at least 1")
    if sum(pct) != 100:
        raise BadInput(f"split percentages {pct} sum to {sum(pct)}, not 100")
    n = len(geometry)
    if n == 0:
        return np.array([], dtype=object)
    x, y = lonlat_centres(np.asarray(geometry))
    if x.max() - x.min() > 180.0:  # across the antimeridian: stripes continue over it
        x = np.where(x < 0, x + 360.0, x)

    def norm(v: np.ndarray) -> np.ndarray:
        span = v.max() - v.min()
        return (v - v.min()) / span if span > 0 else np.zeros_like(v)

    a = math.radians(angle)
    proj = norm(x) * math.cos(a) + norm(y) * math.sin(a)
    band = np.minimum((norm(proj) * bands).astype(np.int64), bands - 1)
    pattern = np.array(cycle_pattern(pct), dtype=object)
    splits: np.ndarray = pattern[band % len(pattern)]
    return splits


def csv_splits(ids: pd.Series, path: str | Path) -> np.ndarray:
    """Splits from a CSV with columns id,split (M3LEO's split files use `identifier`)."""
    try:
        df = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise BadInput(f"cannot read splits CSV {path}: {e}") from None
    key = "id" if "id" in df else "identifier" if "identifier" in df else None
    if key is None or "split" not in df:
        raise BadInput(f"splits CSV {path} needs columns id (or identifier) and split")
    m = dict(zip(df[key], df["split"], strict=True))
    missing = [t for t in ids if t not in m]
    if len(missing) == len(ids):
        raise BadInput(f"splits CSV {path} names none of the grid's tiles")
    return np.array([m.get(t, "") for t in ids], dtype=object)
