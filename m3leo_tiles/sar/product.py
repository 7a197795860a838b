"""One IW SLC product opened for processing: its swaths and polarisations, windowed reads.

The metadata comes from safe.py (xarray-sentinel); this module keeps one rasterio reader per
measurement file open for the life of the product, so the many small windows a tile needs
do not reopen the TIFF (or the zip) each time, and checks that two products can form a pair.

ESA's measurement TIFFs are uncompressed with one full-width strip per line: a window read
through GDAL decodes every strip it touches whole (26k samples for the ~1200 a tile needs)
and GDAL's block cache then keeps them (~160 MB per burst and polarisation, the bulk of a
pair's peak memory). Where GDAL reports the strips as one contiguous little-endian block of
a plain file, the window is read with one pread per line instead: only the bytes the window
holds are copied, and nothing is cached (`plain_layout`; anything else, a zip included,
reads through rasterio).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import rasterio
from numba import types
from rasterio.windows import Window

from ..errors import PairError, SafeError
from .safe import Swath, list_swaths, open_swath

#: POSIX pread(2), called from the kernel below by symbol (the process's C library): no
#: Python between the lines of a window, and no GIL
_PREAD: Any = types.ExternalFunction("pread", types.intp(types.intc, types.voidptr,
                                                         types.uintp, types.int64))


@dataclass(frozen=True)
class PlainLayout:
    """A measurement TIFF's samples as one (lines, samples, 2) little-endian int16 block."""

    path: str
    offset: int
    shape: tuple[int, int]

    def read(self, row0: int, row1: int, col0: int, col1: int,
             out: np.ndarray | None = None) -> np.ndarray:
        """complex64 samples of a window (inside the image), into `out` when given: one pread
        per line.

        A memory map of the file cost a page fault per line and page of the window, and
        unmapping it a TLB shootdown (~2.3 ms CPU for a 400 x 1400 window); a pread per
        line copies the same bytes from the page cache and maps nothing. The lines are read
        and widened in one Numba kernel, which holds no GIL while other tiles' threads run."""
        nrow, ncol = row1 - row0, col1 - col0
        if out is None:
            out = np.empty((nrow, ncol), np.complex64)
        elif out.shape != (nrow, ncol) or out.dtype != np.complex64 or \
                not out.flags.c_contiguous:
            raise ValueError(f"out must be C-contiguous complex64 {(nrow, ncol)}")
        fd = os.open(self.path, os.O_RDONLY)
        try:
            short = _pread_widen(fd, self.offset + row0 * 4 * self.shape[1] + 4 * col0,
                                 4 * self.shape[1], out.view(np.float32))
        finally:
            os.close(fd)
        if short >= 0:
            raise OSError(f"{self.path}: short read at line {row0 + short}")
        return out


@numba.njit(cache=True, nogil=True, parallel=True)
def _pread_widen(fd: int, first: int, step: int, out: np.ndarray) -> int:
    """Line i of out (interleaved re/im float32) = the 2 x ncol little-endian int16 at byte
    first + i step of the file; returns the first line read short, or -1.

    numpy's strided cast of a window ran at ~7 ns a sample on one core; here each line is
    widened from a line-sized buffer while it is still in the cache."""
    nrow, n2 = out.shape
    nb = 2 * n2
    ok = np.empty(nrow, np.bool_)
    for i in numba.prange(nrow):
        raw = np.empty(n2, np.int16)
        ok[i] = _PREAD(fd, raw.ctypes, nb, first + i * step) == nb
        dst = out[i]
        for j in range(n2):
            dst[j] = raw[j]
    for i in range(nrow):
        if not ok[i]:
            return i
    return -1


def plain_layout(r: Any) -> PlainLayout | None:
    """The PlainLayout of an open rasterio dataset, or None unless it is an uncompressed
    single-band CInt16 GeoTIFF in a plain file, little-endian, whose full-width strips GDAL
    places back to back (a sparse or reordered strip, a zip member: None)."""
    if (r.driver != "GTiff" or r.count != 1 or r.dtypes[0] != "complex_int16"
            or r.compression is not None or not os.path.isfile(r.name)
            or os.name != "posix" or sys.byteorder != "little"):  # pread; int16 as stored
        return None
    bh, bw = r.block_shapes[0]
    if bw != r.width:
        return None
    nb = -(-r.height // bh)
    offs = [r.get_tag_item(f"BLOCK_OFFSET_0_{i}", "TIFF", bidx=1) for i in range(nb)]
    if None in offs:
        return None
    o = np.array(offs, np.int64)
    row_bytes = r.width * 4
    if np.any(np.diff(o) != bh * row_bytes) or \
            int(o[0]) + r.height * row_bytes > os.path.getsize(r.name):
        return None
    with open(r.name, "rb") as f:
        if f.read(2) != b"II":
            return None
    return PlainLayout(r.name, int(o[0]), (r.height, r.width))


@dataclass
class Product:
    """One SLC product: {swath: {pol: Swath}} plus open measurement readers."""

    path: str
    swaths: dict[str, dict[str, Swath]]
    attrs: dict[str, Any]
    _readers: dict[str, Any] = field(default_factory=dict, repr=False)
    _plain: dict[str, PlainLayout | None] = field(default_factory=dict, repr=False)
    #: tiles read on several threads (tilepool.py): a GDAL dataset takes one at a time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def geometry(self) -> list[Swath]:
        """One Swath per sub-swath (the first polarisation) for geometry."""
        return [next(iter(p.values())) for _, p in sorted(self.swaths.items())]

    @property
    def footprint(self) -> Any:
        """lon/lat hull of the geolocation grids of all sub-swaths (shapely)."""
        import shapely

        pts = []
        for sw in self.geometry:
            g = sw.gcp
            pts.append(np.c_[g.longitude.values.ravel(), g.latitude.values.ravel()])
        return shapely.MultiPoint(np.concatenate(pts)).convex_hull

    def read(self, sw: Swath, row0: int, row1: int, col0: int, col1: int,
             out: np.ndarray | None = None) -> np.ndarray:
        """complex64 samples of measurement lines [row0, row1) x samples [col0, col1), into
        `out` (C-contiguous complex64 of the window's shape) when given."""
        try:
            with self._lock:
                r = self._readers.get(sw.measurement)
                if r is None:
                    r = rasterio.open(sw.measurement)
                    if (r.height, r.width) != (sw.n_lines, sw.n_samples):
                        r.close()
                        raise SafeError(f"{sw.name}: {sw.swath}/{sw.pol} measurement is "
                                        f"{r.height}x{r.width}, annotation says "
                                        f"{sw.n_lines}x{sw.n_samples}")
                    self._readers[sw.measurement] = r
                    self._plain[sw.measurement] = plain_layout(r)
                plain = self._plain[sw.measurement]
            if plain is not None and 0 <= row0 < row1 <= sw.n_lines and \
                    0 <= col0 < col1 <= sw.n_samples:
                return plain.read(row0, row1, col0, col1, out)  # its own file descriptor
            with self._lock:
                a = r.read(1, window=Window(col0, row0, col1 - col0, row1 - row0),
                           out_dtype="complex64")
            if out is None:
                return a
            out[...] = a
            return out
        except (rasterio.errors.RasterioIOError, OSError) as e:
            raise SafeError(f"{sw.name}: cannot read {sw.swath}/{sw.pol} measurement "
                            f"(truncated or corrupt?): {e}") from None

    def close(self) -> None:
        for r in self._readers.values():
            r.close()
        self._readers.clear()
        self._plain.clear()


def open_product(path: str, polarisations: Sequence[str], orbit_dir: str | None = None,
                 swaths: Sequence[str] | None = None) -> Product:
    """Open the requested polarisations of every sub-swath present (SafeError if missing).

    Part of the pair-level convenience API that sources call; the signature stays.
    """
    have = list_swaths(path)
    if not have:
        raise SafeError(f"{path}: no swath with annotation and measurement")
    present = {s for s, _ in have}
    names = sorted(present if swaths is None else {s.upper() for s in swaths})
    missing = [s for s in names if s not in present]
    if missing:
        raise SafeError(f"{path}: no {', '.join(missing)} (has {', '.join(sorted(present))})")
    out: dict[str, dict[str, Swath]] = {}
    for s in names:
        out[s] = {}
        for p in polarisations:
            if (s, p.upper()) not in have:
                raise SafeError(f"{path}: polarisation {p} missing in {s}")
            out[s][p.upper()] = open_swath(path, s, p, orbit_dir=orbit_dir)
    attrs = dict(next(iter(out[names[0]].values())).attrs)
    return Product(str(path), out, attrs)


def check_pair(ref: Product, sec: Product) -> None:
    """Same track, pass and polarisations; common bursts; reference strictly earlier."""
    check_same_track(ref, sec)
    if sec.geometry[0].t_ref <= ref.geometry[0].t_ref:
        raise PairError("the secondary must be acquired after the reference")


def check_same_track(a_prod: Product, b_prod: Product) -> None:
    """Two dates one stack can hold: same track and pass, a common swath with the same
    polarisations and a common burst, overlapping footprints (PairError naming the first
    difference)."""
    a, b = a_prod.attrs, b_prod.attrs
    if a.get("relative_orbit_number") != b.get("relative_orbit_number"):
        raise PairError(f"different tracks: {a.get('relative_orbit_number')} vs "
                        f"{b.get('relative_orbit_number')}")
    if a.get("pass") != b.get("pass"):
        raise PairError(f"different pass directions: {a.get('pass')} vs {b.get('pass')}")
    # each date is geocoded on its own swaths: burst SAFEs cut to a unit may hold one swath
    # more or less on one date (frames drift); the dates pair where their swaths meet
    common = sorted(set(a_prod.swaths) & set(b_prod.swaths))
    if not common:
        raise PairError(f"no common swath: {sorted(a_prod.swaths)} vs {sorted(b_prod.swaths)}")
    for s in common:
        if sorted(a_prod.swaths[s]) != sorted(b_prod.swaths[s]):
            raise PairError(f"different polarisations in {s}")
        ids_a = {x.burst_id for x in next(iter(a_prod.swaths[s].values())).bursts}
        ids_b = {x.burst_id for x in next(iter(b_prod.swaths[s].values())).bursts}
        if None not in ids_a and None not in ids_b and not ids_a & ids_b:
            raise PairError(f"no common burst in {s}: {sorted(map(str, ids_a))} vs "
                            f"{sorted(map(str, ids_b))}")
    fa, fb = a_prod.footprint, b_prod.footprint
    if fa.intersection(fb).area < 0.05 * min(fa.area, fb.area):
        raise PairError("the products do not overlap (footprints share < 5% of their area)")
