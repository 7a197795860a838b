"""A physically consistent Sentinel-1 IW SLC simulator and the rasters of the same scene."""

from .simulator import SIZES, SimulationManifest, simulate

__all__ = ["SIZES", "SimulationManifest", "simulate"]
