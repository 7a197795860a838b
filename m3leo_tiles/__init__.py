"""m3leo-tiles: multi-modal SAR + optical tiles on one UTM lattice, written to Zarr."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`__version__` on first use: importlib.metadata costs the CLI's every call otherwise."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("m3leo-tiles")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0.0.0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(url: str):
    """Open a region store as an xarray DataTree (see m3leo_tiles.store.open_store)."""
    from .store import open_store as _open

    return _open(url)


__all__ = ["__version__", "open_store"]
