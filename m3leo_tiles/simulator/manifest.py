"""`DIR/simulation.json`: what a simulation wrote and the truth it holds, for tests and demos.

The format is ours ("m3leo-tiles-simulation/1"); the rasters it points to are indexed as a
STAC ItemCollection (STAC 1.0.0) and the products are SAFE folders (S1-RS-MDA-52-7441).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .scene import BASELINES, CLASSES, decay_coherence

FORMAT = "m3leo-tiles-simulation/1"


class SimulationManifest(dict[str, Any]):
    """`DIR/simulation.json` as returned by `simulate` (a dict, so `m["products"]` works too).

    Keys (paths relative to DIR): format "m3leo-tiles-simulation/1", size, seed, dates
    (ISO days, `spacing_days` apart), products (SAFE folders), pairs (consecutive dates),
    tiles (ids), pass (ASCENDING | DESCENDING), relative_orbit, spacing_days, decay
    ("ar1" | "rho"), radiometry ("flat" | "terrain"), relief_m, baselines_m (per date),
    epsg, truth (one npz per tile, see rasters.py), rasters (STAC ItemCollection
    rasters/items.json), dem, aoi (aoi.geojson), classes (code -> name, WorldCover code,
    sigma0 VV/VH dB, 12-day coherence, and the decay truth: rho, tau_days and
    coherence_by_baseline {days: gamma(days)}), wavelength, baseline_m_per_date,
    los_rate_m_per_12d,
    bursts (indices in the real product), lines, samples, dem_datum, seconds.
    """

    @classmethod
    def load(cls, sim_dir: str | Path) -> SimulationManifest:
        return cls(json.loads((Path(sim_dir) / "simulation.json").read_text()))

    @property
    def products(self) -> list[str]:
        return list(self["products"])

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(p[0], p[1]) for p in self["pairs"]]

    @property
    def tiles(self) -> list[str]:
        return list(self["tiles"])

    @property
    def truth(self) -> list[str]:
        return list(self["truth"])

    @property
    def rasters(self) -> str:
        return str(self["rasters"])

    @property
    def aoi(self) -> str:
        return str(self["aoi"])


def class_truth(params: dict[int, tuple[float, float]]) -> dict[str, dict[str, Any]]:
    """The manifest's `classes`: each class's name, WorldCover code, backscatter, 12-day
    coherence and temporal decay (rho, tau, gamma at the BASELINES in days)."""
    return {str(k): {"name": v[0], "worldcover": v[1], "sigma0_vv_db": v[2],
                     "sigma0_vh_db": v[3], "coherence_12d": v[4],
                     "rho": params[k][0], "tau_days": params[k][1],
                     "coherence_by_baseline": {
                         str(d): decay_coherence(*params[k], d) for d in BASELINES}}
            for k, v in CLASSES.items()}
