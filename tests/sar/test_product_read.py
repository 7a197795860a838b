"""Measurement windows from a memory map of the TIFF's strips equal GDAL's reads, and any
layout the map cannot serve (compressed, sparse, big-endian, tiled) falls back to GDAL."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from m3leo_tiles.sar.product import plain_layout

H, W = 37, 301


def _write(path, **opts) -> np.ndarray:
    rng = np.random.default_rng(1)
    z = (rng.integers(-2000, 2000, (H, W)) + 1j * rng.integers(-2000, 2000, (H, W)))
    prof = dict(driver="GTiff", width=W, height=H, count=1, dtype="complex_int16",
                tiled=False, blockysize=1)
    prof.update(opts)
    with rasterio.open(path, "w", **prof) as r:
        if opts.get("sparse_ok"):
            r.write(z[:10].astype(np.complex64), 1, window=Window(0, 0, W, 10))
        else:
            r.write(z.astype(np.complex64), 1)
    return z.astype(np.complex64)


@pytest.mark.parametrize("blockysize", [1, 4])
def test_plain_strips_read_as_gdal_does(tmp_path, blockysize):
    p = tmp_path / "m.tiff"
    z = _write(p, blockysize=blockysize)
    with rasterio.open(p) as r:
        lay = plain_layout(r)
        assert lay is not None and lay.shape == (H, W)
        for a, b, c, d in [(0, 1, 0, W), (3, 20, 17, 140), (H - 5, H, W - 9, W)]:
            got = lay.read(a, b, c, d)
            assert got.dtype == np.complex64
            assert np.array_equal(got, z[a:b, c:d])
            assert np.array_equal(got, r.read(1, window=Window(c, a, d - c, b - a),
                                              out_dtype="complex64"))


@pytest.mark.parametrize("opts", [{"compress": "deflate"}, {"sparse_ok": True},
                                  {"ENDIANNESS": "BIG"},
                                  {"tiled": True, "blockxsize": 16, "blockysize": 16}])
def test_other_layouts_fall_back_to_gdal(tmp_path, opts):
    p = tmp_path / "m.tiff"
    _write(p, **opts)
    with rasterio.open(p) as r:
        assert plain_layout(r) is None
