"""Where a store lives: local paths (zarr's atomic LocalStore) or fsspec URLs, and which of
those may be written crash-safely (see the `store` module docstring for why)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInput

if TYPE_CHECKING:  # zarr is imported where a store object is made (never in a worker)
    from zarr.abc.store import Store


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> Path:
    return Path(url[len("file://"):] if url.startswith("file://") else url)


#: fsspec protocols of object stores: a PUT replaces the whole object or nothing, so a writer
#: killed mid-chunk leaves the old object (or none), never a torn one
OBJECT_STORE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")


def check_writable_url(url: str) -> None:
    """Refuse store URLs whose writes are not atomic (one line, BadInput: exit 2)."""
    if is_local(url):
        return
    scheme = url.split("://", 1)[0].lower()
    if scheme in OBJECT_STORE_PROTOCOLS:
        return
    raise BadInput(f"store {url}: {scheme}:// is not crash-safe for writing (zarr's fsspec store "
                   "writes chunks in place there, a killed run could leave torn chunks); use a "
                   "local or mounted path, or an object store (s3://, gs://, az://)")


def zarr_store(url: str, read_only: bool = False) -> Store:
    """A zarr store object for a path or fsspec URL (local paths use the atomic LocalStore)."""
    from zarr.storage import LocalStore

    if not read_only:
        check_writable_url(url)
    if is_local(url):
        return LocalStore(local_path(url), read_only=read_only)
    from zarr.storage import FsspecStore

    try:
        return FsspecStore.from_url(url, read_only=read_only)
    except ImportError as e:  # fsspec names the package its protocol needs (s3fs, gcsfs...)
        raise BadInput(f"store {url}: {str(e).splitlines()[0]}") from None
    except ValueError as e:  # an unknown protocol
        raise BadInput(f"store {url}: {e}") from None


def default_state_path(url: str) -> str:
    """SQLite state beside a local store; under the user cache for remote stores."""
    if is_local(url):
        p = local_path(url)
        return str(p.parent / (p.name + ".state.sqlite"))
    import hashlib

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "m3leo-tiles"
    cache.mkdir(parents=True, exist_ok=True)
    return str(cache / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".state.sqlite"))
