"""The simulator: real SAFE layout, ESA geometry, calibrated amplitudes, determinism."""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from importlib import resources

import numpy as np
import pytest
import rasterio
import xarray_sentinel

from m3leo_tiles.errors import BadInput
from m3leo_tiles.simulator import geometry as geo
from m3leo_tiles.simulator import simulate
from m3leo_tiles.simulator.scene import CLASSES


def _annotation(p: str = "vv") -> ET.Element:
    data = resources.files("m3leo_tiles.simulator") / "data" / f"annotation-iw2-{p}.xml.gz"
    return ET.fromstring(gzip.decompress(data.read_bytes()))


def test_own_geometry_reproduces_esa_geolocation_grid():
    root = _annotation()
    tm = geo.read_timing(root)
    orbit = geo.OrbitFit.fit(tm.orbit_times, tm.orbit_pos)
    fitted = orbit.position(np.array([orbit.seconds(t) for t in tm.orbit_times]))
    assert np.abs(fitted - tm.orbit_pos).max() < 1e-3  # state vectors to the millimetre
    g = geo.grid_points(root)
    pts = geo.geodetic_to_ecef(g["longitude"], g["latitude"], g["height"])
    t, r = geo.zero_doppler(orbit, pts, orbit.seconds(tm.first_line[4]))
    t_esa = np.array([orbit.seconds(x) for x in g["azimuthTime"]])
    line_err = (t - t_esa) / tm.dt
    pixel_err = (2 * r / geo.C - g["slantRangeTime"]) * tm.fs
    assert np.sqrt(np.mean(line_err**2 + pixel_err**2)) < 0.1
    assert np.abs(line_err).max() < 0.1 and np.abs(pixel_err).max() < 0.1


def test_products_open_with_xarray_sentinel_and_match_their_annotation(small_sim):
    m = json.loads((small_sim / "simulation.json").read_text())
    assert len(m["products"]) == 2 and len(m["tiles"]) >= 4
    for prod in m["products"]:
        safe = small_sim / prod
        top = xarray_sentinel.open_sentinel1_dataset(safe)
        assert "IW2/VV" in top.attrs["subgroups"] and "IW2/VH" in top.attrs["subgroups"]
        ds = xarray_sentinel.open_sentinel1_dataset(safe, group="IW2/VV")
        assert ds.measurement.shape == (m["lines"], m["samples"])
        assert ds.attrs["relative_orbit_number"] == 108
        with rasterio.open(next((safe / "measurement").glob("*vv*.tiff"))) as f:
            assert f.dtypes[0] == "complex_int16" and f.block_shapes[0] == (1, m["samples"])
    d0, d1 = (xarray_sentinel.open_sentinel1_dataset(small_sim / p) for p in m["products"])
    assert (np.datetime64(d1.attrs["start_time"]) - np.datetime64(d0.attrs["start_time"])
            ).astype("timedelta64[D]").astype(int) == 12


def test_calibrated_intensity_matches_the_scene(small_sim):
    """Mean sigma0 of a burst (noise removed, xarray-sentinel's LUTs) vs the scene's classes."""
    m = json.loads((small_sim / "simulation.json").read_text())
    safe = small_sim / m["products"][0]
    ds = xarray_sentinel.open_sentinel1_dataset(safe, group="IW2/VV")
    cal = xarray_sentinel.open_sentinel1_dataset(safe, group="IW2/VV/calibration")
    noise = xarray_sentinel.open_sentinel1_dataset(safe, group="IW2/VV/noise_range")
    burst = xarray_sentinel.crop_burst_dataset(ds, burst_index=1).measurement.compute()
    s0 = xarray_sentinel.calibrate_intensity(burst, cal.sigmaNought)
    nz = noise.noiseRangeLut.isel(line=0).interp(pixel=burst.pixel).values
    lut = cal.sigmaNought.interp(line=burst.line, pixel=burst.pixel).values
    clean = s0.values - nz[None, :] / lut**2
    # away from burst and swath edges; ESA's valid samples start at 970 in these bursts
    core = clean[100:-100, 1100:-50]
    # the scene's classes under the tiles (the same landscape the burst sees)
    classes = np.concatenate([np.load(small_sim / f)["classes"].ravel() for f in m["truth"]])
    expect = np.mean([10 ** (CLASSES[c][2] / 10) for c in classes[::97]])
    assert abs(10 * np.log10(core.mean()) - 10 * np.log10(expect)) < 1.0


def test_truth_and_rasters_are_on_the_tile_grids(small_sim):
    from m3leo_tiles.grid import tile_from_id
    from m3leo_tiles.simulator import SimulationManifest

    m = json.loads((small_sim / "simulation.json").read_text())
    assert SimulationManifest.load(small_sim).tiles == m["tiles"]
    t = np.load(small_sim / m["truth"][0])
    assert t["classes"].shape == (448, 448) and t["deformation"].shape == (2, 448, 448)
    assert set(np.unique(t["classes"])) <= set(CLASSES)
    tile = tile_from_id(m["tiles"][0])
    with rasterio.open(small_sim / m["dem"]) as dem:
        assert dem.crs.to_epsg() == tile.epsg and dem.res == (10.0, 10.0)
        assert (dem.transform.c - tile.bounds[0]) % 10 == 0  # the 10 m lattice: no resampling
        win = dem.window(*tile.bounds)
        np.testing.assert_allclose(dem.read(1, window=win), t["height"])
    items = json.loads((small_sim / m["rasters"]).read_text())["features"]
    assert {i["collection"] for i in items} == {"sentinel-2-l2a", "cop-dem-glo-30",
                                                "esa-worldcover"}


def test_bad_arguments(tmp_path, small_sim):
    with pytest.raises(BadInput):
        simulate(tmp_path, size="huge")
    with pytest.raises(BadInput, match="already holds"):
        simulate(small_sim)


@pytest.mark.slow
def test_equal_seeds_give_identical_files(tmp_path, small_sim):
    simulate(tmp_path / "again", size="small", seed=0)
    for f in sorted(small_sim.rglob("*")):
        if f.is_file() and f.name != "simulation.json":
            assert (tmp_path / "again" / f.relative_to(small_sim)).read_bytes() == f.read_bytes()


# ---- truth straight from the written pixels (no processor involved) -------------------------
def _product(sim, m, k: int, pol: str):
    """Own geometry from the product's own annotation (its own orbit), pixels, LUTs."""
    import xarray_sentinel as xs

    safe = sim / m["products"][k]
    root = ET.parse(next((safe / "annotation").glob(f"*-{pol}-*.xml"))).getroot()
    tm = geo.read_timing(root)
    orbit = geo.OrbitFit.fit(tm.orbit_times, tm.orbit_pos)
    with rasterio.open(next((safe / "measurement").glob(f"*-{pol}-*.tiff"))) as f:
        slc = f.read(1).astype(np.complex128)
    g = f"IW2/{pol.upper()}"
    cal = xs.open_sentinel1_dataset(safe, group=f"{g}/calibration").sigmaNought
    noise = xs.open_sentinel1_dataset(safe, group=f"{g}/noise_range").noiseRangeLut
    return tm, orbit, slc, cal, noise


def _radar(tm, orbit, pts):
    """Line (in the stacked bursts: the burst whose centre is nearest), sample, range."""
    t, r = geo.zero_doppler(orbit, pts, orbit.seconds(tm.first_line[0]))
    tb = np.array([orbit.seconds(x) for x in tm.first_line])
    lpb = tm.lines_per_burst
    b = np.argmin(np.abs((t - tb[:, None]).T - lpb * tm.dt / 2), axis=1)
    return b * lpb + (t - tb[b]) / tm.dt, (2 * r / geo.C - tm.tau0) * tm.fs, r


def _range_sinc(slc, lines, samples, half: int = 8):
    """Range-only windowed-sinc interpolation (no carrier in range: baseband spectrum)."""
    i0 = np.floor(samples).astype(int)
    taps = np.arange(-half + 1, half + 1)
    x = samples[:, None] - (i0[:, None] + taps[None, :])
    w = np.sinc(x) * (0.54 + 0.46 * np.cos(np.pi * x / half))
    w /= w.sum(axis=1, keepdims=True)
    return (slc[lines[:, None], i0[:, None] + taps[None, :]] * w).sum(axis=1)


@pytest.fixture(scope="module")
def class_samples(small_sim):
    """Truth pixels (eroded class interiors) seen in both dates' written SLCs, VV and VH."""
    import xarray as xr
    from pyproj import Transformer
    from scipy import ndimage

    from m3leo_tiles.grid import tile_from_id

    m = json.loads((small_sim / "simulation.json").read_text())
    pts, cls, defo = [], [], []
    for tid, f in zip(m["tiles"], m["truth"], strict=True):
        t = np.load(small_sim / f)
        g = tile_from_id(tid).grid(10.0)
        X, Y = np.meshgrid(g.xs(), g.ys())
        core = np.zeros(t["classes"].shape, bool)
        for c in CLASSES:
            core |= ndimage.binary_erosion(t["classes"] == c, iterations=4)
        core[1::2] = False  # every other row: plenty of samples, half the time
        lon, lat = Transformer.from_crs(g.epsg, 4326, always_xy=True).transform(X[core], Y[core])
        pts.append(geo.geodetic_to_ecef(lon, lat, t["height"][core].astype(float)))
        cls.append(t["classes"][core])
        defo.append(t["deformation"][:, core])
    pts, cls, defo = np.concatenate(pts), np.concatenate(cls), np.concatenate(defo, axis=1)
    out = {}
    for pol in ("vv", "vh"):
        (tm, o0, g0, cal, nz), (tm1, o1, g1, _, _) = (_product(small_sim, m, k, pol)
                                                       for k in (0, 1))
        l0, s0, r0 = _radar(tm, o0, pts)
        l1, s1, r1 = _radar(tm1, o1, pts)  # each date with its own annotation and orbit
        assert np.abs(l1 - l0).max() < 0.01  # the baseline is across track: no azimuth shift
        L, S = np.rint(l0).astype(int), np.rint(s0).astype(int)
        lpb = tm.lines_per_burst
        # away from burst edges and from ESA's invalid near-range samples (first valid: 970)
        ok = (S > 1100) & (S < g0.shape[1] - 60) & (L % lpb > 100) & (L % lpb < lpb - 100)
        L, S = L[ok], S[ok]
        a = g0[L, S]
        b = _range_sinc(g1, L, S + (s1 - s0)[ok])  # coregister date 2 onto date 1
        # known interferometric phase: topography + baseline + deformation, from the truth
        phi = -4 * np.pi * ((r0 + defo[0]) - (r1 + defo[1]))[ok] / tm.wavelength
        lut = cal.interp(line=xr.DataArray(L), pixel=xr.DataArray(S)).values
        noise = nz.isel(line=0).interp(pixel=xr.DataArray(S)).values
        out[pol] = dict(a=a, b=b, phi=phi, lut=lut, noise=noise, cls=cls[ok])
    return out


@pytest.mark.parametrize("pol", ["vv", "vh"])
def test_speckle_coherence_per_class_matches_the_truth(class_samples, pol):
    """|sum g1 g2* e^{-j phi}| / sqrt(sum|g1|^2 sum|g2|^2) per class vs gamma x noise decorrelation.

    Thermal noise (known from the noise LUT) lowers coherence by sqrt(SNR0/(1+SNR0) ...);
    the estimator's bias for N samples is ~0.886/sqrt(N) at gamma 0 and much less above.
    """
    d = class_samples[pol]
    for k, v in CLASSES.items():
        sel = d["cls"] == k
        n = int(sel.sum())
        assert n > 3000, (v[0], n)
        a, b = d["a"][sel], d["b"][sel]
        p0, p1 = np.mean(np.abs(a) ** 2), np.mean(np.abs(b) ** 2)
        nz = d["noise"][sel].mean()
        snr_loss = np.sqrt(max(p0 - nz, 0) / p0 * max(p1 - nz, 0) / p1)
        coh = np.abs(np.sum(a * np.conj(b) * np.exp(-1j * d["phi"][sel]))) / np.sqrt(
            np.sum(np.abs(a) ** 2) * np.sum(np.abs(b) ** 2))
        expect = v[4] * snr_loss
        # oversampled pixels are not independent: allow 3 x the bias of N/4 looks, + 0.015
        tol = 0.015 + 3 * 0.886 / np.sqrt(n / 4)
        assert abs(coh - expect) < tol, (pol, v[0], coh, expect, tol)


@pytest.mark.parametrize("pol", ["vv", "vh"])
def test_calibrated_sigma0_per_class_within_0p3_db(class_samples, pol):
    """mean(|DN|^2 - noise) / sigmaNought^2 over a class interior = the class sigma0 (0.3 dB)."""
    d = class_samples[pol]
    for k, v in CLASSES.items():
        sel = d["cls"] == k
        s0 = np.mean((np.abs(d["a"][sel]) ** 2 - d["noise"][sel]) / d["lut"][sel] ** 2)
        truth = v[2] if pol == "vv" else v[3]
        if pol == "vh" and k == 1:
            continue  # VH water (-28 dB) sits below NESZ: only checks noise removal, below
        assert abs(10 * np.log10(s0) - truth) < 0.3, (pol, v[0], 10 * np.log10(s0), truth)
    water = d["cls"] == 1  # below the noise floor the denoised mean is still within 1 dB
    s0 = np.mean((np.abs(d["a"][water]) ** 2 - d["noise"][water]) / d["lut"][water] ** 2)
    assert abs(10 * np.log10(s0) - (CLASSES[1][2] if pol == "vv" else CLASSES[1][3])) < 1.0


def _grid_errors(root: ET.Element) -> tuple[np.ndarray, np.ndarray]:
    """Own orbit fit + Newton zero-Doppler vs the annotation's geolocation grid, in pixels."""
    tm = geo.read_timing(root)
    orbit = geo.OrbitFit.fit(tm.orbit_times, tm.orbit_pos)
    g = geo.grid_points(root)
    pts = geo.geodetic_to_ecef(g["longitude"], g["latitude"], g["height"])
    t, r = geo.zero_doppler(orbit, pts, orbit.seconds(tm.first_line[len(tm.first_line) // 2]))
    t_ann = np.array([orbit.seconds(x) for x in g["azimuthTime"]])
    return (t - t_ann) / tm.dt, (2 * r / geo.C - g["slantRangeTime"]) * tm.fs


def test_own_geometry_on_every_real_swath_and_date(s1data):
    """Both real track-108 products, 3 swaths x VV/VH: every grid point within 0.1 px."""
    slc = s1data / "hyp3-isce2" / "tests" / "data" / "packaging" / "slc"
    files = sorted(slc.glob("*.SAFE/annotation/s1a-iw*.xml"))
    assert len(files) == 12
    for f in files:
        dl, dp = _grid_errors(ET.parse(f).getroot())
        assert np.abs(dl).max() < 0.1 and np.abs(dp).max() < 0.1, (f.name, dl, dp)


def test_simulated_annotations_geolocate_with_their_own_orbits(small_sim):
    """Each date's rewritten grid (displaced orbit, cropped bursts) is consistent in itself."""
    m = json.loads((small_sim / "simulation.json").read_text())
    for prod in m["products"]:
        for f in sorted((small_sim / prod / "annotation").glob("*.xml")):
            dl, dp = _grid_errors(ET.parse(f).getroot())
            assert np.abs(dl).max() < 0.1 and np.abs(dp).max() < 0.1, (f.name, dl, dp)


def test_the_truth_holds_the_unwrapped_los_phase_of_each_pair(small_sim):
    """unw_phase = 4 pi (d2 - d1) / lambda per consecutive pair (issue 22): it wraps to the
    interferogram truth and peaks where the bowl does (a range increase reads positive)."""
    m = json.loads((small_sim / "simulation.json").read_text())
    lam, rate = m["wavelength"], m["los_rate_m_per_12d"]
    peak = 0.0
    for f in m["truth"]:
        t = np.load(small_sim / f)
        d = t["deformation"]
        assert t["unw_phase"].shape == (len(m["dates"]) - 1, *d.shape[1:])
        assert np.allclose(t["unw_phase"], 4 * np.pi * np.diff(d, axis=0) / lam, atol=1e-5)
        assert np.allclose(np.angle(np.exp(1j * (t["unw_phase"] - t["ifg_phase"]))), 0,
                           atol=1e-4)
        peak = max(peak, float(t["unw_phase"].max()))
    assert 0 < peak <= 4 * np.pi * rate / lam + 1e-5  # the bowl's centre at most


def test_deformation_cm_out_of_range_is_one_clear_error(tmp_path):
    with pytest.raises(BadInput, match="--deformation-cm must be between -50 and 50"):
        simulate(tmp_path / "x", deformation_cm=80.0)
    assert not (tmp_path / "x").exists()
