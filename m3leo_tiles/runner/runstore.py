"""A store opened for one run: resolved (and checked) before any write, then taken for the run.

`RunStore.resolve` answers everything that can be refused without writing: the store exists or
may be created, belongs to the region and tile size asked for, and its state database is ours.
`RunStore.session()` is the one step that takes the store for the run: the run lock, creating
the store if it is new, opening the state, removing zarr's leftover `.partial` files, healing
metadata a killed run cut short and consolidating the metadata, in that order, all under the
lock; the metadata is consolidated again when the session ends.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import BadInput, M3leoError
from ..grid.tileref import table_from_grid
from ..store.consolidated import consolidate, consolidate_after_run
from ..store.store import TileStore
from ..store.urls import default_state_path
from .state import StateDB

log = logging.getLogger(__name__)


class Locked(M3leoError):
    """Another run holds the store's lock."""


class RunLock:
    """An advisory lock beside the state DB; the OS drops it when the holder dies (kill -9)."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise Locked(f"another run holds {self.path}") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def grid_table(region: str, tile_size: int) -> tuple[str, pd.DataFrame]:
    """The store tile table for a region name or AOI path (built with the grid module)."""
    from ..grid.build import build_grid  # geopandas: loaded only when a store is created
    from ..grid.regions import load_aoi

    name, aoi = load_aoi(region)
    return name, table_from_grid(build_grid(aoi, tile_size=tile_size))


@dataclass
class RunStore:
    """The store a run works on, its tile table and the ids the run covers; `store` is None
    while it is still to be created (`name` is then its region), `db` None while its state
    database is."""

    url: str
    state_path: str
    tile_size: int
    table: pd.DataFrame
    ids: list[str] = field(default_factory=list)
    store: TileStore | None = None
    name: str = ""
    db: StateDB | None = None

    @classmethod
    def resolve(cls, url: str, region: str | None, tile_size: int, state: str | None = None,
                tiles: Sequence[str] | None = None, limit: int | None = None) -> RunStore:
        """Open the store or plan its creation and pick the run's tiles (those named, the
        first `limit`), refusing bad input before any write."""
        state_path = state or default_state_path(url)
        if TileStore.exists(url):
            store = TileStore.open(url)
            if region:
                from ..grid.regions import load_aoi

                store.check_compatible(load_aoi(region)[0], tile_size)
            out = cls(url, state_path, tile_size, store.tile_table(), store=store)
        else:
            if not region:
                raise BadInput(f"no store at {url}: give --region to create one")
            if Path(state_path).exists():
                raise BadInput(f"state database {state_path} exists but its store {url} "
                               "does not; move it away or pass --state")
            name, table = grid_table(region, tile_size)
            if table.empty:
                raise BadInput(f"region {region} has no tiles")
            out = cls(url, state_path, tile_size, table, name=name)
        out.ids = out._select(tiles, limit)
        # a corrupt or foreign state DB is refused here, before anything is created
        if Path(state_path).exists():
            out.db = StateDB(state_path, url)
        return out

    def _select(self, tiles: Sequence[str] | None, limit: int | None) -> list[str]:
        ids = list(self.table["id"])
        if tiles is not None:
            known = set(ids)
            unknown = [t for t in tiles if t not in known]
            if unknown:
                raise BadInput(f"{len(unknown)} tile ids are not in this region, e.g. "
                               f"{unknown[0]}")
            ids = [t for t in ids if t in set(tiles)]
        if limit is not None:
            if limit < 1:
                raise BadInput("--limit must be positive")
            ids = ids[:limit]
        return ids

    @contextmanager
    def session(self) -> Iterator[tuple[TileStore, StateDB]]:
        """Lock, create, open the state, clean and heal: the store and state, ready to run.

        The state database is closed when the session ends normally."""
        with RunLock(self.state_path + ".lock"):
            if self.store is None:
                self.store = TileStore.create(self.url, self.name, self.table, self.tile_size)
            if self.db is None:
                self.db = StateDB(self.state_path, self.url)
            removed = self.store.cleanup_partials()
            if removed:
                log.info("removed %d leftover .partial files", removed)
            for repair in self.store.heal():
                log.warning("store repaired after an interrupted run: %s", repair)
            consolidate(self.url)
            try:
                yield self.store, self.db
            finally:
                consolidate_after_run(self.url)
        self.db.close()


__all__ = ["Locked", "RunLock", "RunStore", "grid_table"]
