"""Error kinds the CLI and the runner act on.

`BadInput` becomes exit code 2 with one line; the runner retries `TransientError` with backoff,
records `PermanentError` as failed, and records `NoData` as nodata (not a failure). The
Sentinel-1 processor's errors (`SafeError`, `PairError`, `DemError`) are `PermanentError`s.
"""

from __future__ import annotations


class M3leoError(Exception):
    """Base of every error this package raises on purpose."""


class BadInput(M3leoError, ValueError):
    """The user asked for something impossible: unknown region, broken AOI, bad dates..."""


class SourceError(M3leoError):
    """A source could not deliver a unit."""


class TransientError(SourceError):
    """Worth retrying: timeouts, HTTP 429 and 5xx, dropped connections."""


class PermanentError(SourceError):
    """Retrying will not help: corrupt input, auth refused, request too large to split."""


class AuthError(PermanentError, BadInput):
    """Missing or refused credentials; raised before any work starts where possible."""


class StorageFull(M3leoError):
    """The store's or the state's filesystem is full (ENOSPC, EDQUOT): the run stops, nothing
    is recorded done that is not on disk, and a rerun after freeing space finishes the job."""


def is_disk_full(e: BaseException) -> bool:
    """An OSError that means no space (or quota) is left, not a bad unit."""
    import errno

    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


class NoData(M3leoError):
    """The source has nothing for this tile and period (recorded as nodata, not failure)."""


class SarError(PermanentError, ValueError):
    """Sentinel-1 processing cannot go on with these inputs; retrying will not help.

    Also a ValueError, as these errors were before they joined this taxonomy.
    """


class SafeError(SarError):
    """A SAFE product is unusable (missing file, corrupt zip, truncated TIFF, bad metadata)."""


class PairError(SarError):
    """Two products cannot form an interferometric pair (track, pass, bursts, dates)."""


class DemError(SarError):
    """The DEM does not cover a tile (or gave heights on the wrong grid)."""


class OrbitFileError(PermanentError, ValueError):
    """An EOF orbit file that cannot be used (damaged XML, missing or non-numeric vectors)."""
