"""One date onto one tile grid: geocoded complex SLC and calibrated backscatter.

Per (swath, burst) the tile touches, one SLC window per polarisation is read (rasterio
window of the measurement TIFF, clipped to the burst's valid block so invalid samples never
enter a kernel) and serves both layers: the backscatter from its detected power
(radiometry.py), the complex layer from the deramped window (tops.py) interpolated for all
polarisations in one pass (kernels.py). Memory is a few windows of ~0.5 Mpx; nothing holds a
whole burst.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Sequence

import numpy as np

from .calibrate import lut_parts
from .kernels import HALF, interp_bilinear, interp_complex, span_at
from .product import Product
from .radargrid import TileGeometry
from .radiometry import range_box, sigma0_box
from .timing import add, stage
from .tops import burst_carrier, deramp

_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """An uninitialised array that lives in this thread's buffer `name`, reused call after
    call: a burst window is ~9 MB, and fresh pages cost a fault each (~0.3 s of a pair's
    106 tiles), where a reused buffer is already mapped."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, 1 << 20), np.uint8)
        setattr(_SCRATCH, name, buf)
    return buf[:n].view(dtype).reshape(shape)


#: output pixels are resampled in square blocks of this many (block_order)
BLOCK = 32


@functools.lru_cache(maxsize=8)
def block_order(shape: tuple[int, int], block: int = BLOCK) -> np.ndarray:
    """Flat indices of a grid's pixels, block by block (row-major inside a block and across
    blocks). A row of a tile crosses ~70 lines of a burst in azimuth, so in row order the
    kernels' window rows (~1.3 MB for VV + VH) left the core's cache before the next row came
    back to them; a 32 x 32 block spans a few hundred samples (18% off the complex kernel)."""
    h, w = shape
    r, c = np.divmod(np.arange(h * w, dtype=np.int64), w)
    key = ((r // block) * (-(-w // block)) + c // block) * (block * block) + \
        (r % block) * block + c % block
    out = np.argsort(key, kind="stable")
    out.flags.writeable = False
    return out


def _window(lines: np.ndarray, samples: np.ndarray, idx: np.ndarray, pad: int, lpb: int,
            n_samples: int) -> tuple[int, int, int, int]:
    """Lines and samples of the burst a window must hold for the points idx, padded."""
    lo_l, hi_l, lo_s, hi_s = span_at(lines, samples, idx)
    r0 = max(int(math.floor(lo_l)) - pad, 0)
    r1 = min(int(math.ceil(hi_l)) + pad + 1, lpb)
    c0 = max(int(math.floor(lo_s)) - pad, 0)
    c1 = min(int(math.ceil(hi_s)) + pad + 1, n_samples)
    return r0, r1, c0, c1


def geocode_layers(prod: Product, geom: TileGeometry, pols: Sequence[str],
                   complex_: bool = True, power: bool = True, res: float = 10.0,
                   kind: str = "sigma0", denoise: bool = True,
                   out_c: np.ndarray | None = None, out_p: np.ndarray | None = None
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Geocoded complex samples and/or calibrated backscatter of several polarisations.

    Returns ({pol: complex64 (H, W)}, {pol: float32 linear (H, W)}); NaN where not covered.
    `res` sets the range box of the backscatter (about one output pixel of ground).
    `out_c` / `out_p` (C-contiguous (len(pols), H, W), NaN-filled by the caller) take the
    layers in place, so a stack's cube is written once and never copied.
    """
    shape = geom.swath.shape
    n = int(np.prod(shape))
    pols = [p.upper() for p in pols]
    cpx = pw = None
    if complex_:
        cpx = np.full((len(pols), n), np.nan + 1j * np.nan, np.complex64) if out_c is None \
            else out_c.reshape(len(pols), n)
    if power:
        pw = np.full((len(pols), n), np.nan, np.float32) if out_p is None \
            else out_p.reshape(len(pols), n)
    lines = geom.line.ravel()
    samples = geom.sample.ravel()
    rng = geom.rng.ravel()
    order = block_order(shape)
    swi_r, bur_r = geom.swath.ravel(), geom.burst.ravel()
    swi, bur = swi_r[order], bur_r[order]
    for k, s in enumerate(sorted(prod.swaths)):
        ref_sw = prod.swaths[s][pols[0]]
        box = range_box(ref_sw, res)
        pad = max(HALF + 1, box + 1)
        in_k = swi == k
        in_k_r = swi_r == k if pw is not None else None
        for bi in np.flatnonzero(np.bincount(bur[in_k].astype(np.intp))):
            # the burst's pixels (never none: bincount counted them) block by block for the
            # complex kernel, in rows for the bilinear one (each is faster in its own order)
            idx = order[in_k & (bur == bi)].astype(np.int64, copy=False)
            b = ref_sw.bursts[int(bi)]
            r0, r1, c0, c1 = _window(lines, samples, idx, pad, ref_sw.lines_per_burst,
                                     ref_sw.n_samples)
            # clip to the burst's valid block: invalid samples must not leak into kernels
            r0, r1 = max(r0, b.valid_lines[0]), min(r1, b.valid_lines[1] + 1)
            c0, c1 = max(c0, b.valid_samples[0]), min(c1, b.valid_samples[1] + 1)
            if r1 - r0 < 2 * HALF or c1 - c0 < 2 * HALF:
                continue
            rows_idx = idx if in_k_r is None else np.flatnonzero(in_k_r & (bur_r == bi))
            wins = _scratch("wins", (len(pols), r1 - r0, c1 - c0), np.complex64)
            for j, pol in enumerate(pols):
                sw = prod.swaths[s][pol]
                if pw is not None:
                    t_bs = time.perf_counter()
                    rows = np.arange(b.first_line + r0, b.first_line + r1)
                    cols = np.arange(c0, c1)
                    # LUTs first: a missing calibration fails before any pixel is read
                    parts = lut_parts(sw, rows, cols, kind=kind, denoise=denoise)
                    add("backscatter", time.perf_counter() - t_bs)
                with stage("read"):
                    prod.read(sw, b.first_line + r0, b.first_line + r1, c0, c1, out=wins[j])
                if pw is not None:
                    with stage("backscatter"):
                        s0 = _scratch("s0", (r1 - r0, c1 - c0 - box + 1), np.float32)
                        sigma0_box(wins[j], *parts, box, s0)
                        interp_bilinear(s0, float(r0), c0 + (box - 1) / 2.0, lines, samples,
                                        rows_idx, pw[j])
            if cpx is not None:
                with stage("resample_complex"):
                    bc = burst_carrier(ref_sw, int(bi))
                    deramp(wins, r0, c0, *bc.args())
                    interp_complex(wins, r0, c0, lines, samples, rng, idx, cpx, bc.args(),
                                   ref_sw.wavelength)
    layers_c = {p: cpx[j].reshape(shape) for j, p in enumerate(pols)} if cpx is not None else {}
    layers_p = {p: pw[j].reshape(shape) for j, p in enumerate(pols)} if pw is not None else {}
    return layers_c, layers_p


def geocode_slc(prod: Product, geom: TileGeometry, pol: str) -> np.ndarray:
    """Deramped-sinc-reramped, flattened complex samples at every pixel (NaN: not covered)."""
    return geocode_layers(prod, geom, [pol], complex_=True, power=False)[0][pol.upper()]


def geocode_backscatter(prod: Product, geom: TileGeometry, pol: str, res: float,
                        kind: str = "sigma0", denoise: bool = True) -> np.ndarray:
    """Calibrated backscatter (linear, float32) at every pixel; NaN where not covered."""
    return geocode_layers(prod, geom, [pol], complex_=False, power=True, res=res, kind=kind,
                          denoise=denoise)[1][pol.upper()]
