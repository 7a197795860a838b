"""A physically consistent Sentinel-1 IW SLC simulator and the rasters of the same scene.

A data generator for tests, the offline demo and the benchmarks, not a Source: it writes SAFE
products (S1-RS-MDA-52-7441 layout), local-source rasters and per-tile ground truth that the
chain then reads like real inputs. Modules, in the order `simulate` uses them:
templates (the real ESA products borrowed), geometry (its own radar geometry), swath (the
crop and its footprint), scene (the known landscape), orbits (dates and baselines), imaging
and signal (per-scatterer radar quantities, impulse response), scatterers (the SLC images),
safe_writer (SAFE products), rasters (truth, S2/DEM/WorldCover, AOI), manifest
(simulation.json), stack (`simulate` itself), commands (the `simulate` CLI verb).
"""

from .manifest import SimulationManifest
from .stack import SIZES, simulate

__all__ = ["SIZES", "SimulationManifest", "simulate"]
