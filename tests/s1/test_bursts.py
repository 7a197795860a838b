"""ASF burst products -> minimal SAFE, on the real annotation of a track-108 IW SLC.

The real product's measurement TIFFs are empty in the shared fixture, so these checks are on
what the processor reads from the metadata: timing, burst ids, calibration and noise LUTs,
the geolocation grid and geocoding, all equal to the full SLC's for the burst's lines. The
pixel-level check (processing the assembled SAFEs of a simulated pair equals processing the
SAFEs) is tests/s1/test_burst_chain.py (slow).
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import pytest
import shapely

from m3leo_tiles.errors import PermanentError
from m3leo_tiles.s1.archive import read_product
from m3leo_tiles.s1.bursts import BurstError, BurstFiles, assemble_safe
from m3leo_tiles.sar.safe import open_swath
from tests.s1 import burstcut
from tests.sources.test_asf_archive import REF, SLC

pytestmark = pytest.mark.skipif(not SLC.is_dir(), reason="shared s1data not present")
SAFE = SLC / f"{REF}.SAFE"


def _burst(tmp_path, swath: str, index: int, pols=("VV", "VH")) -> list[BurstFiles]:
    """Burst files as ASF serves them (the fixture's TIFFs are empty: so is the burst's)."""
    out = []
    for pol in pols:
        xml = tmp_path / f"{REF}_{pol}.xml"
        if not xml.exists():
            xml.write_bytes(burstcut.metadata_xml(SAFE, pol))
        tiff = tmp_path / f"{REF}_{swath}_{pol}_{index}.tiff"
        tiff.write_bytes(b"")
        out.append(BurstFiles(REF, swath, pol, index, tiff, xml))
    return out


@pytest.mark.parametrize("swath, index", [("IW2", 0), ("IW1", 8)])  # first, last burst
def test_assembled_burst_reads_like_the_slc(tmp_path, swath, index):
    from m3leo_tiles.sar.calibrate import calibration_lut, noise_power
    from m3leo_tiles.sar.geocode import gcp_residuals
    from m3leo_tiles.sar.safe import list_swaths

    safe = assemble_safe(_burst(tmp_path, swath, index), tmp_path / "safes")
    assert list_swaths(safe) == [(swath, "VH"), (swath, "VV")]
    full, one = open_swath(SAFE, swath, "VV"), open_swath(safe, swath, "VV")
    lpb = full.lines_per_burst
    b = full.bursts[index]
    assert (one.n_lines, one.n_samples, one.lines_per_burst) == (lpb, full.n_samples, lpb)
    assert len(one.bursts) == 1
    ob = one.bursts[0]
    assert (ob.valid_lines, ob.valid_samples, ob.burst_id) == (b.valid_lines, b.valid_samples,
                                                               b.burst_id)
    assert one.t_ref == full.t_ref + np.timedelta64(int(round(b.t0 * 1e9)), "ns")
    assert (one.dt, one.tau0, one.fs, one.wavelength) == (full.dt, full.tau0, full.fs,
                                                          full.wavelength)
    # LUTs at every 7th line of the burst and every 97th sample: the SLC's (to rounding)
    lines = np.arange(0, lpb, 7, dtype=float)
    pixels = np.arange(0, full.n_samples, 97, dtype=float)
    for kind in ("sigma0", "beta0", "gamma0"):
        np.testing.assert_allclose(calibration_lut(one, lines, pixels, kind),
                                   calibration_lut(full, lines + b.first_line, pixels, kind),
                                   rtol=1e-12)
    np.testing.assert_allclose(noise_power(one, lines, pixels),
                               noise_power(full, lines + b.first_line, pixels), rtol=1e-12)
    # the geolocation grid: the two rows bounding the burst, geocoded as well as the SLC's
    g = one.gcp
    last = lpb - 1 if index == len(full.bursts) - 1 else lpb  # the SLC's last row: its end
    assert list(g.line.values) == [0, last]
    assert gcp_residuals(one)["rms_px"] < 0.02  # the SLC's grid: 0.004 px (README)
    # the scanner sees one burst, with the SLC's id, inside the SLC's footprint
    p, slc = read_product(safe), read_product(SAFE)
    assert p.burst_ids == (f"108_{b.burst_id}_{swath}",)
    assert set(p.burst_ids) <= set(slc.burst_ids)
    assert p.footprint.within(slc.footprint.buffer(0.05))  # the manifest quad is coarse
    assert 0.02 < p.footprint.area / slc.footprint.area < 0.06  # 1 of 27 bursts
    assert (p.relative_orbit, p.absolute_orbit, p.pass_direction, p.polarisations) == \
        (108, 58630, "ASCENDING", ("VV", "VH"))
    assert p.start == one.t_ref.astype("datetime64[us]").item()


def test_single_polarisation_and_idempotent(tmp_path):
    parts = _burst(tmp_path, "IW2", 3, pols=("VH",))
    a = assemble_safe(parts, tmp_path / "safes")
    assert "_1SSV_" in a.name and read_product(a).polarisations == ("VH",)
    stamp = (a / "manifest.safe").stat().st_mtime_ns
    assert assemble_safe(parts, tmp_path / "safes") == a
    assert (a / "manifest.safe").stat().st_mtime_ns == stamp
    left = sorted(p.name for p in (tmp_path / "safes").iterdir())
    assert left == [f".{a.name}.lock", a.name]  # the builders' lock, no temporaries


def test_a_torn_earlier_attempt_is_replaced(tmp_path):
    parts = _burst(tmp_path, "IW2", 5)
    good = assemble_safe(parts, tmp_path / "good")
    # a worker killed mid-assembly leaves only its hidden folder: never used, rebuilt over
    torn = tmp_path / "safes" / f".{good.name}.{os.getpid()}.tmp"
    shutil.copytree(good, torn)
    (torn / "manifest.safe").unlink()
    out = assemble_safe(parts, tmp_path / "safes")
    assert out.name == good.name and not torn.exists()
    assert (out / "manifest.safe").read_bytes() == (good / "manifest.safe").read_bytes()


def test_bad_burst_sets_are_refused(tmp_path):
    vv = _burst(tmp_path, "IW2", 1, pols=("VV",))
    with pytest.raises(BurstError, match="not consecutive"):
        assemble_safe(vv + _burst(tmp_path, "IW2", 3, pols=("VV",)), tmp_path / "s")
    other_slc = [dataclasses.replace(b, slc=REF.replace("93A7", "0000"))
                 for b in _burst(tmp_path, "IW3", 2, pols=("VV",))]
    with pytest.raises(BurstError, match="one SLC only"):
        assemble_safe(vv + other_slc, tmp_path / "s")
    with pytest.raises(BurstError, match=r"IW1: bursts \[4, 6\] are not consecutive \(missing \[5\]\)"):
        assemble_safe(vv + _burst(tmp_path, "IW1", 4, ("VV",)) + _burst(tmp_path, "IW1", 6, ("VV",)),
                      tmp_path / "s")
    with pytest.raises(BurstError, match="VH has bursts"):
        assemble_safe(vv + _burst(tmp_path, "IW2", 2, pols=("VH",)), tmp_path / "s")
    with pytest.raises(BurstError, match="beyond"):
        assemble_safe(_burst(tmp_path, "IW2", 9, pols=("VV",)), tmp_path / "s")
    broken = tmp_path / "broken.xml"
    broken.write_bytes(burstcut.metadata_xml(SAFE, "VV")[:5000])
    with pytest.raises(BurstError, match="unreadable"):
        assemble_safe([BurstFiles(REF, "IW2", "VV", 1, vv[0].tiff, broken)], tmp_path / "s")
    other = tmp_path / "vh_only.xml"
    other.write_bytes(burstcut.metadata_xml(SAFE, "VH"))
    with pytest.raises(PermanentError, match="no product for IW2/VV"):
        assemble_safe([BurstFiles(REF, "IW2", "VV", 1, vv[0].tiff, other)], tmp_path / "s")
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").iterdir())


def _tiny_tiff(path, n: int = 4) -> None:
    """A readable complex int16 TIFF standing in for a burst's lines (the fixture's are
    empty; several bursts of a swath are stacked, which needs real rasters)."""
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1,
                       dtype="complex_int16") as w:
        w.write(np.full((n, n), 1 + 2j, np.complex64), 1)


def test_several_swaths_of_one_slc_make_one_safe_that_reads_like_the_slc(tmp_path):
    from m3leo_tiles.sar.product import open_product

    runs = {"IW1": [2, 3], "IW2": [3, 4, 5], "IW3": [4]}  # each swath its own run
    parts = [b for sw, ix in runs.items() for i in ix for b in _burst(tmp_path, sw, i)]
    for b in parts:
        _tiny_tiff(b.tiff)
    safe = assemble_safe(list(reversed(parts)), tmp_path / "safes")  # order does not matter
    assert assemble_safe(parts, tmp_path / "safes") == safe  # idempotent
    prod = open_product(str(safe), ("VV", "VH"))
    try:
        assert sorted(prod.swaths) == sorted(runs)
        for sw, ix in runs.items():
            full, one = open_swath(SAFE, sw, "VV"), prod.swaths[sw]["VV"]
            lpb = full.lines_per_burst
            first = full.bursts[ix[0]]
            assert (one.n_lines, one.n_samples) == (len(ix) * lpb, full.n_samples)
            assert [(b.burst_id, b.valid_lines, b.valid_samples) for b in one.bursts] == \
                [(full.bursts[i].burst_id, full.bursts[i].valid_lines,
                  full.bursts[i].valid_samples) for i in ix]
            assert one.t_ref == full.t_ref + np.timedelta64(int(round(first.t0 * 1e9)), "ns")
            assert [b.t0 for b in one.bursts] == pytest.approx(
                [full.bursts[i].t0 - first.t0 for i in ix], abs=1e-9)
            assert (one.dt, one.tau0, one.fs) == (full.dt, full.tau0, full.fs)
            # geolocation rows of the run: the SLC's rows at those lines, lines re-counted
            g, f = one.gcp, full.gcp
            lo, hi = first.first_line, first.first_line + len(ix) * lpb - 1
            lines = f.line.values
            rows = list(lines[(lines >= lo) & (lines <= hi)])  # + the next node either side
            rows = ([lines[lines < lo].max()] if rows[0] > lo and (lines < lo).any() else []) + \
                rows + ([lines[lines > hi].min()] if rows[-1] < hi and (lines > hi).any() else [])
            assert list(g.line.values) == [r - first.first_line for r in rows]
            for var in ("latitude", "longitude", "height"):
                np.testing.assert_array_equal(
                    g[var].values, f[var].sel(azimuth_time=f.azimuth_time[
                        np.isin(f.line.values, rows)]).values)
            assert one.measurement is not None
    finally:
        prod.close()
    # the scanner: every swath's bursts, the runs' span, one footprint over all of them
    p, slc = read_product(safe), read_product(SAFE)
    want = {f"108_{open_swath(SAFE, sw, 'VV').bursts[i].burst_id}_{sw}"
            for sw, ix in runs.items() for i in ix}
    assert set(p.burst_ids) == want
    starts = [open_swath(SAFE, sw, "VV").t_ref + np.timedelta64(int(round(
        open_swath(SAFE, sw, "VV").bursts[ix[0]].t0 * 1e9)), "ns") for sw, ix in runs.items()]
    assert p.start == min(starts).astype("datetime64[us]").item()
    assert p.footprint.within(slc.footprint.buffer(0.05))
    for sw in runs:  # every run's grid lies inside the manifest's footprint
        g = prod.swaths[sw]["VV"].gcp
        pts = shapely.MultiPoint(np.c_[g.longitude.values.ravel(), g.latitude.values.ravel()])
        assert p.footprint.buffer(1e-6).covers(pts), sw
    # another set of runs of the same SLC is another SAFE, beside this one
    other = assemble_safe([b for b in parts if b.swath != "IW3"], tmp_path / "safes")
    assert other != safe and other.is_dir() and safe.is_dir()
