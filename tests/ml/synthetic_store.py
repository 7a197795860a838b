"""Small stores for the ML tests, written with the project's own store writer.

Tiles are 640 m (64 px at 10 m, 16 px at 40 m) so a CPU trains on them in seconds. The label
is a known function of two inputs on different rungs: ESA WorldCover code from sigma0 VV
(10 m, ascending pass) and coherence VV (40 m, replicated), plus a nodata corner; a model can
only learn it if inputs and labels are aligned, the 40 m layer included. s1grd is per orbit
pass, as the modality is: the descending pass is missing (NaN, count 0) on every third tile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from m3leo_tiles.modalities import get_modality
from m3leo_tiles.store.store import TileStore, write_chunk

TILE_M = 640
PX = 64
SEASON = "2020-MAM"
PAIR = "20200401_20200413"
YEAR = "2020"


def table(n: int, splits: list[str]) -> pd.DataFrame:
    ids = [f"31N-{100 + i:04d}-1200" for i in range(n)]
    return pd.DataFrame({
        "id": ids, "epsg": 32631, "x0": [100 * 4480.0 + i * TILE_M for i in range(n)],
        "y0": 1200 * 4480.0 + TILE_M, "dx": 10.0, "dy": 10.0, "size": TILE_M,
        "split": [splits[i % len(splits)] for i in range(n)], "lon": 3.0, "lat": 48.0,
    })


def smooth(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n] / n
    f = np.zeros((n, n))
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.5, 2.5, 2).tolist() + [rng.uniform(0, 6.3)]
        f += np.cos(2 * np.pi * (fx * x + fy * y) + ph)
    f = (f - f.min()) / (np.ptp(f) + 1e-9)
    return (lo + (hi - lo) * f).astype(np.float32)


def label_of(vv: np.ndarray, coh40: np.ndarray) -> np.ndarray:
    """The known function: four WorldCover classes from VV (10 m) and coherence (40 m)."""
    coh = np.repeat(np.repeat(coh40, 4, 0), 4, 1)
    bright, coherent = vv > -12.0, coh > 0.5
    code = np.where(bright, np.where(coherent, 50, 10), np.where(coherent, 60, 80))
    code = code.astype(np.uint8)
    code[:6, :6] = 0  # nodata corner: must be ignored, never class 0 (tree cover)
    return code


def build(url: str, n: int = 12, splits: list[str] | None = None, seed: int = 0,
          shuffle_labels: bool = False, region: str = "synthml") -> dict:
    """Write the store; returns the arrays written, by modality, in tile order."""
    splits = splits or ["train", "train", "val", "test"]
    store = TileStore.create(url, region, table(n, splits), TILE_M)
    period = {"s1grd": SEASON, "s1coh": PAIR, "s1cohs": SEASON, "esawc": YEAR,
              "ghsbuilt": YEAR, "agb": YEAR}
    mods = {m: get_modality(m) for m in period}
    for name, m in mods.items():
        store.ensure_modality(m)
        store.ensure_periods(name, [period[name]])
    rng = np.random.default_rng(seed)
    data: dict[str, list[np.ndarray]] = {k: [] for k in mods}
    for t in range(n):
        vv = smooth(rng, PX, -20.0, -4.0)
        vh = vv - 6.0 + rng.normal(0, 0.5, vv.shape).astype(np.float32)
        vh[10:14, 20:30] = np.nan  # a gap in one band: NaN-aware statistics must skip it
        coh = np.stack([smooth(rng, PX // 4, 0.1, 0.95), smooth(rng, PX // 4, 0.1, 0.9)])
        has_des = t % 3 != 2
        des = np.stack([vv + 1.5, vh + 1.0]) if has_des else np.full((2, PX, PX), np.nan)
        counts = np.stack([np.full((PX, PX), 3.0), np.full((PX, PX), 2.0 * has_des)])
        data["s1grd"].append(np.concatenate([np.stack([vv, vh]), des, counts]).astype(np.float32))
        data["s1coh"].append(coh)
        cohs = np.full((len(mods["s1cohs"].bands), PX // 4, PX // 4), np.nan, np.float32)
        cohs[1], cohs[7] = coh  # VV_12, VH_12; the other baselines absent (NaN)
        data["s1cohs"].append(cohs)
        data["esawc"].append(label_of(vv, coh[0])[None])
        built = np.round(coh[1] * 5000).astype(np.uint16)  # m2 per 40 m cell, from 40 m VH coh
        built[0, :3] = 65535  # nodata cells: left out of the loss and the RMSE
        data["ghsbuilt"].append(built[None])
        agb = np.round(coh[0] * 300).astype(np.uint16)  # Mg/ha from 40 m VV coherence
        agb[-1, -2:] = 65535  # no product here
        data["agb"].append(np.stack([agb, np.where(agb == 65535, agb, agb // 4)]))
    if shuffle_labels:
        perm = np.random.default_rng(seed + 1).permutation(n)
        data["esawc"] = [np.rot90(data["esawc"][i], 1, axes=(1, 2)).copy() for i in perm]
    for name in mods:
        for t, arr in enumerate(data[name]):
            write_chunk(url, name, t, 0, arr)
    return data
