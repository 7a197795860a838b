"""m3leo-tiles: multi-modal SAR + optical tiles on one UTM lattice, written to Zarr."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("m3leo-tiles")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]


def open_store(url: str):
    """Open a region store as an xarray DataTree (see m3leo_tiles.store.open_store)."""
    from .store import open_store as _open

    return _open(url)


__all__ += ["open_store"]
