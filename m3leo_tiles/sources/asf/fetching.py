"""The ASF source's worker side: a unit's products downloaded into the shared, verified cache
(SLC zips, or a frame's bursts over the unit's tiles assembled into one SAFE), its orbits,
and GUNW products; `AsfSource` (this package's __init__) takes these methods from
`AsfDownloads`.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import shapely

from ...errors import AuthError, BadInput, PermanentError
from ...s1.products import S1Product
from ..base import CacheHint, TileRef, TileResult, WorkUnit
from ..s1blocks import ProductRecord

#: a frame's bursts start and stop within its own span; CMR matches overlapping ranges
BURST_PAD = dt.timedelta(seconds=30)


@dataclass
class UnitProducts:
    """A unit's products on disk: `paths[i]` is product i; `failed` (index -> why) could not
    be had; `unused` are frames whose bursts touch none of the unit's tiles."""

    paths: list[str]
    failed: dict[int, str] = field(default_factory=dict)
    unused: set[int] = field(default_factory=set)


def _as_product(r: ProductRecord) -> S1Product:
    """Enough of an S1Product for the download cache and the orbit finder."""
    return S1Product(r.name, r.platform, dt.datetime.fromisoformat(r.start),
                     dt.datetime.fromisoformat(r.stop), 0, 0, r.pass_direction, r.polarisations,
                     shapely.Point(0, 0), path=r.path, url=r.url, size=r.size, md5=r.md5,
                     burst_ids=r.burst_ids, extra={"burst": r.burst} if r.burst else {})


def _worker_name() -> str:
    """The Dask worker this runs in, or "local"."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return "local"


def _holds(hint: CacheHint | None, item: int, bursts: bool
           ) -> int | Callable[[S1Product], int] | None:
    """How long the cache keeps record `item`'s files: a whole SLC until the node's last
    unit reading it; each burst of a frame until the last unit that reads that burst (its
    footprint meets the unit's tiles' hull: that unit's burst search returns it)."""
    if hint is None:
        return None
    if not bursts:
        return hint.until[item]
    return lambda p: hint.until_of(item, p.footprint)


class AsfDownloads:
    """Downloads and orbits of `AsfSource` (its options are set by its constructor)."""

    cache: str
    cache_bytes: int | None
    host: str | None
    max_downloads: int
    archive: str | None
    orbits: str | None

    def cache_dir(self) -> str:
        """`cache` with `{host}` (this machine's name) or `{worker}` (the Dask worker's)
        filled in: one cache per node or per worker; without either, one shared folder (a
        network file system is fine: the cache's locks are flock)."""
        if "{" not in self.cache:
            return self.cache
        return self.cache.format(host=socket.gethostname(), worker=_worker_name())

    # --- downloads and processing -----------------------------------------------------
    def burst_search(self, frames: Sequence[ProductRecord], tiles: Sequence[TileRef]
                     ) -> dict[str, list[S1Product]]:
        """ONE CMR burst search for a unit: the bursts of its frame records over the hull of
        its tiles (convex, so a swath's bursts there are consecutive), in the frames' time
        span. Per frame name, its bursts (polarisations merged) by swath and index."""
        from ...s1.search import frame_bursts

        if not frames:
            return {}
        if not tiles:
            raise BadInput("a burst search needs the unit's tiles")
        hull = shapely.GeometryCollection([t.polygon for t in tiles]).convex_hull
        start = min(dt.datetime.fromisoformat(r.start) for r in frames) - BURST_PAD
        stop = max(dt.datetime.fromisoformat(r.stop) for r in frames) + BURST_PAD
        return frame_bursts({r.name for r in frames}, hull, start, stop, self.host)

    def _lists_bursts(self, frame: ProductRecord) -> bool:
        """Does CMR list any burst of this SLC (anywhere)? One search in its time span."""
        from ...s1.search import frame_bursts

        start = dt.datetime.fromisoformat(frame.start) - BURST_PAD
        stop = dt.datetime.fromisoformat(frame.stop) + BURST_PAD
        return bool(frame_bursts({frame.name}, None, start, stop, self.host))

    def fetch_unit(self, records: Sequence[ProductRecord], tiles: Sequence[TileRef] = (),
                   hint: CacheHint | None = None) -> UnitProducts:
        """A unit's products on disk: archive paths as they are, else fetched into the shared
        cache (an SLC zip; or, for a frame in burst mode, its bursts over the unit's tiles
        assembled into one SAFE: `paths[i]` is record i either way).

        A product that cannot be had (CMR lists no burst of the frame, its bursts make no
        SAFE, a download refused for good) is in `failed` with the reason: only the layers
        that use it fail. A frame none of whose bursts touch the unit's tiles (its footprint
        is a hull; its bursts exist elsewhere) images none of them: it is in `unused`.
        Credentials refused and transient failures raise, for the runner. `hint` (the
        engine's schedule) tells the cache which files later units of the node still read.
        """
        local = [bool(r.path and Path(r.path).exists()) for r in records]
        if all(local):
            return UnitProducts([str(r.path) for r in records])
        from concurrent.futures import ThreadPoolExecutor

        from ...s1.download import DownloadCache, download_session, fetch_product

        cache = DownloadCache(self.cache_dir(), self.cache_bytes)
        if hint is not None:
            cache.advance(hint.seq)
        session = download_session()
        frames = [r for r, here in zip(records, local, strict=True) if r.as_bursts and not here]
        found = self.burst_search(frames, tiles)
        out = UnitProducts([str(r.path or "") for r in records])
        jobs: dict[int, list[S1Product]] = {}
        for i, r in enumerate(records):
            if local[i]:
                continue
            if not r.as_bursts:
                jobs[i] = [_as_product(r)]
            elif found.get(r.name):
                jobs[i] = found[r.name]
            elif self._lists_bursts(r):
                out.unused.add(i)
            else:
                out.failed[i] = (f"{r.name}: ASF lists no burst products of this SLC (CMR "
                                 "burst search); its layers are tried again on the next run")
        with ThreadPoolExecutor(max_workers=max(1, self.max_downloads)) as ex:
            futs = {i: ex.submit(fetch_product, ps, cache, session, None, 2,
                                 _holds(hint, i, records[i].as_bursts))
                    for i, ps in jobs.items()}
            for i, f in futs.items():
                try:
                    out.paths[i] = str(f.result())
                except AuthError:
                    raise
                except PermanentError as e:
                    out.failed[i] = f"{records[i].name}: {e}"
        for i in set(out.failed) | out.unused:  # never opened: its layers fail or skip it
            out.paths[i] = str(Path(self.cache) / ".unavailable" / f"{records[i].name}.SAFE")
        return out

    def _orbit_dir(self, records: Sequence[ProductRecord]) -> str | None:
        """Where precise/restituted orbits are (fetched and cached if a fetcher is installed)."""
        from ...s1.orbits import fetch_orbit, find_orbit

        d = self.orbits or str(Path(self.cache_dir()) / "orbits")
        for r in records:
            p = _as_product(r)
            if find_orbit(p, d) is None and not self.archive:
                fetch_orbit(p, d)
        return d if Path(d).is_dir() else None

    def _read_gunw(self, unit: WorkUnit, tiles: Mapping[str, TileRef]) -> Iterator[TileResult]:
        """Download the unit's GUNW products (shared, verified cache), then read them."""
        from ...s1.download import DownloadCache, download_session
        from .gunw import GunwWork, read_gunw_unit

        work = unit.payload
        if not isinstance(work, GunwWork):
            raise TypeError(f"unit {unit.key}: not a gunw unit")
        cache = DownloadCache(self.cache, self.cache_bytes)
        session = download_session()
        paths = []
        for r in work.products:
            if not r.url:
                raise PermanentError(f"{r.name}: no download URL")
            suffix = Path(r.url.split("?")[0]).suffix or ".nc"
            paths.append(str(cache.fetch_file(r.name + suffix, r.url, session, r.size, r.md5)))
        with cache.using([Path(p) for p in paths]):
            yield from read_gunw_unit(unit, tiles, paths)
