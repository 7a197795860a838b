"""Consolidated metadata: every node's metadata copied into the root `zarr.json`.

With it, `xarray.open_zarr(url, group=m)` opens a modality with one metadata read instead of
one per array and group (on object storage, one request each) and without xarray's warning.
It must never describe a store that is not there, so only the coordinator writes it, under
the run lock: when `RunStore.session` has healed the store (a killed run's rerun makes it true
before any work) and when the session ends, however it ends. Readers that use it see the
store as of the last finished run; the root `zarr.json` is replaced whole (zarr's LocalStore
writes a temporary file and renames it; an object-store PUT is all or nothing), so a kill
mid-write leaves the previous, consistent copy. Our own code opens the live metadata
(`use_consolidated=False`), which a run changes as it goes.
"""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import zarr
from zarr.errors import ZarrUserWarning

from .store import run_async
from .urls import zarr_store

log = logging.getLogger(__name__)


def consolidate(url: str) -> None:
    """Rewrite the root's consolidated metadata from the live metadata of every node."""
    with warnings.catch_warnings():  # "not part of the Zarr v3 spec": zarr-python and xarray read it
        warnings.filterwarnings("ignore", category=ZarrUserWarning,
                                message="Consolidated metadata")
        zarr.consolidate_metadata(zarr_store(url), zarr_format=3)


def consolidate_after_run(url: str) -> None:
    """`consolidate` at a run's end; a failure (a full disk) leaves the previous consistent
    copy and is logged, not raised over the run's own outcome: the rerun consolidates."""
    try:
        consolidate(url)
    except OSError as e:
        log.warning("consolidated metadata of %s not refreshed (%s); the next run does it",
                    url, e)


def _json(store: Any, key: str) -> dict[str, Any] | None:
    from zarr.core.buffer import default_buffer_prototype

    buf = run_async(store.get(key, prototype=default_buffer_prototype()))
    return None if buf is None else dict(json.loads(buf.to_bytes()))


def stale_nodes(url: str) -> list[str]:
    """Nodes whose consolidated copy differs from their live `zarr.json` (or is missing), and
    consolidated nodes that no longer exist; [] when the consolidated metadata is true."""
    store = zarr_store(url, read_only=True)
    root = _json(store, "zarr.json") or {}
    copies = (root.get("consolidated_metadata") or {}).get("metadata")
    if copies is None:
        return ["<no consolidated metadata>"]
    live = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False)
    paths = [k for k, _ in live.members(max_depth=None)]
    out = [p for p in sorted(set(copies) - set(paths))]
    for p in paths:
        node = _json(store, f"{p}/zarr.json")
        copy = dict(copies.get(p) or {})
        copy.pop("consolidated_metadata", None)
        if node is None or copy != {k: v for k, v in node.items()
                                    if k != "consolidated_metadata"}:
            out.append(p)
    return out


__all__ = ["consolidate", "consolidate_after_run", "stale_nodes"]
