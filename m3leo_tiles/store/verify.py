"""Scan a store against its state: every done chunk must decode (CRC32C checked), and a chunk
the state does not call done is an orphan a killed run left behind (harmless, never trusted).

The store knows nothing of the runner: the ledger of done units (the runner's state database)
is handed in as anything with the two methods of `DoneLedger`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import zarr
from zarr.abc.store import Store

from .store import TileStore, delete_chunk, run_async
from .urls import check_writable_url, zarr_store


class DoneLedger(Protocol):
    """Which (period, tile) units of a modality are recorded done; how to take that back."""

    def done_units(self, modality: str) -> list[tuple[str, str]]: ...

    def mark_failed(self, modality: str, keys: Sequence[tuple[str, str]], error: str) -> None: ...


@dataclass
class VerifyReport:
    checked: int = 0
    corrupt: list[tuple[str, str, str, str]] = field(default_factory=list)  # m, period, tile, err
    missing: list[tuple[str, str, str]] = field(default_factory=list)
    orphans: list[tuple[str, str]] = field(default_factory=list)  # modality, chunk key

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing


async def _keys(store: Store, prefix: str) -> list[str]:
    return [k async for k in store.list_prefix(prefix)]


def verify(url: str, ledger: DoneLedger, repair: bool = False,
           progress: Callable[[int], object] | None = None) -> VerifyReport:
    """Scan the store against the ledger; with `repair`, drop bad and orphan chunks and mark
    their units failed in the ledger so the next run fetches them again."""
    if repair:
        check_writable_url(url)
    store = TileStore.open(url, mode="r")
    rep = VerifyReport()
    tindex = store.tile_index()
    zs = zarr_store(url, read_only=True)
    for m in store.modalities():
        arr = zarr.open_array(zs, path=f"{m}/{m}", mode="r")
        pindex = {p: i for i, p in enumerate(store.periods(m))}
        done = ledger.done_units(m)
        present = set(run_async(_keys(zs, f"{m}/{m}/c/")))
        expected: set[str] = set()
        for period, tile in done:
            ti, pi = tindex.get(tile), pindex.get(period)
            if ti is None or pi is None:
                rep.missing.append((m, period, tile))
                continue
            key = f"{m}/{m}/c/{ti}/{pi}/0/0/0"
            expected.add(key)
            if key not in present:
                rep.missing.append((m, period, tile))
                continue
            try:
                arr[ti, pi]
                rep.checked += 1
            except Exception as e:  # noqa: BLE001 - any decode failure means a bad chunk
                rep.corrupt.append((m, period, tile, f"{type(e).__name__}: {e}"))
            if progress:
                progress(1)
        rep.orphans.extend((m, k) for k in sorted(present - expected))
    if repair:
        for m, period, tile, _ in rep.corrupt:
            delete_chunk(url, m, tindex[tile], store.periods(m).index(period))
        bad: dict[str, list[tuple[str, str]]] = {}
        for m, period, tile, *_ in rep.corrupt + [(a, b, c, "") for a, b, c in rep.missing]:
            bad.setdefault(m, []).append((period, tile))
        for m, keys in bad.items():
            ledger.mark_failed(m, keys, "verify: chunk corrupt or missing; refetch")
        for _m, key in rep.orphans:
            run_async(zarr_store(url).delete(key))
    return rep
