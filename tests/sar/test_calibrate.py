"""Calibration vs xarray-sentinel's calibrate_intensity on the same real LUTs and burst."""

from __future__ import annotations

import numpy as np
import xarray as xr
import xarray_sentinel

from m3leo_tiles.sar.calibrate import calibrate_power, noise_power, to_db
from m3leo_tiles.sar.safe import open_swath

SAFE = "xarray-sentinel/tests/data/S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.SAFE"


def _ours_vs_xs(s1data, swath, pol, burst, kind, lut, lines=slice(0, 200), pixels=slice(0, 3000)):
    path = s1data / SAFE
    sw = open_swath(path, swath, pol)
    cal = xr.open_dataset(path, engine="sentinel-1", group=f"{swath}/{pol}/calibration")
    b = sw.bursts[burst]
    rows = np.arange(b.first_line, b.first_line + sw.lines_per_burst)[lines]
    cols = np.arange(sw.n_samples)[pixels]
    dn = sw.read(rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)[np.ix_(rows - rows[0], cols - cols[0])]
    # synthetic DN varying over the window (the test SAFE's pixels are constant)
    rng = np.random.default_rng(0)
    dn = (dn + (rng.normal(size=dn.shape) + 1j * rng.normal(size=dn.shape)) * 50).astype(np.complex64)
    da = xr.DataArray(dn, dims=("line", "pixel"), coords={"line": rows, "pixel": cols})
    ref = xarray_sentinel.calibrate_intensity(da, cal[lut], as_db=True, min_db=None).values
    ours = to_db(calibrate_power(np.abs(dn.astype(np.complex128)) ** 2, sw, rows, cols,
                                 kind=kind, denoise=False))
    return np.abs(ours.astype(np.float64) - ref).max(), sw, rows, cols


def test_sigma0_matches_xarray_sentinel(s1data):
    for swath, pol, burst in [("IW1", "VV", 3), ("IW2", "VH", 8), ("IW1", "VH", 0)]:
        d, *_ = _ours_vs_xs(s1data, swath, pol, burst, "sigma0", "sigmaNought",
                            pixels=slice(0, None, 7))
        assert d <= 1e-4, (swath, pol, d)


def test_beta0_and_gamma0_match(s1data):
    for kind, lut in [("beta0", "betaNought"), ("gamma0", "gamma")]:
        d, *_ = _ours_vs_xs(s1data, "IW1", "VV", 5, kind, lut)
        assert d <= 1e-4, (kind, d)


def test_noise_is_positive_and_below_signal_level(s1data):
    sw = open_swath(s1data / SAFE, "IW1", "VV")
    n = noise_power(sw, np.arange(0, 13000, 500), np.arange(0, 21000, 100))
    assert np.all(n > 0) and np.isfinite(n).all()


def test_fused_window_kernel_matches_calibrate_power(s1data):
    from m3leo_tiles.sar.calibrate import lut_parts
    from m3leo_tiles.sar.radiometry import sigma0_box

    sw = open_swath(s1data / SAFE, "IW1", "VV")
    rows = np.arange(3000, 3100)
    cols = np.arange(5000, 5400)
    rng = np.random.default_rng(2)
    dn = (300 * (rng.normal(size=(100, 400)) + 1j * rng.normal(size=(100, 400)))).astype(np.complex64)
    ref = calibrate_power(np.abs(dn.astype(np.complex128)) ** 2, sw, rows, cols, denoise=True)
    out = np.empty((100, 400))
    sigma0_box(dn, *lut_parts(sw, rows, cols, denoise=True), 1, out)
    assert np.allclose(out, ref, rtol=1e-5)
    out3 = np.empty((100, 398))
    sigma0_box(dn, *lut_parts(sw, rows, cols, denoise=True), 3, out3)
    assert np.allclose(out3[:, 5], ref[:, 5:8].mean(axis=1), rtol=1e-5)
