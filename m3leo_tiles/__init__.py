"""m3leo-tiles: multi-modal SAR + optical tiles on one UTM lattice, written to Zarr."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("m3leo-tiles")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
