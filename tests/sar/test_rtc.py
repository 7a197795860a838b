"""gamma0 RTC by area integration (sar/rtc.py) against an independent forward model.

The forward model images ridged terrain with a side-looking radar (straight track along y,
600 km across, 700 km up: ~40 degrees look angle): 2.5 m triangular facets, each returning
gamma0(class) times its area projected normal to the look vector into the 2.33 m x 14 m radar
cell holding its centroid; beta0 is each cell's power over its slant-plane area; a map pixel
(10 m) averages the beta0 of the cells that 64 random points inside it fall in (geocoding +
box mean, as the processor). RTC then sees only the 10 m grid.
"""

from __future__ import annotations

import numpy as np
import pytest

from m3leo_tiles.sar.rtc import LAYOVER, SHADOW, flat_ratio, rtc_area

XS, ZS, V = -600e3, 700e3, 7000.0  # sensor x, height; along-track ground speed (m/s)
PX, N, SUB = 10.0, 192, 4  # map pixel, pixels per side, sub-points per pixel side
DR, DY = 2.33, 14.0  # radar cell: slant range (m), azimuth (m)
GAMMA0 = {0: 10 ** (-0.8), 1: 10 ** (-1.4)}  # two classes: -8 and -14 dB
UP = np.array([0.0, 0.0, 1.0])  # the local frame's vertical
TOL_DB = 0.1  # class means of gamma0-RTC against the forward model (why: see its use)


def height(x, y, amp, period=1280.0):
    """Ridges along y (slopes face the radar or away); flat where y > 1400 m."""
    return np.where(y > 1400.0, 0.0, amp * np.sin(2 * np.pi * x / period))


def slope_deg(x, y, amp, period=1280.0):
    """Signed slope along x: positive faces the radar (terrain rising away from it)."""
    d = amp * 2 * np.pi / period * np.cos(2 * np.pi * x / period)
    return np.where(y > 1400.0, 0.0, np.degrees(np.arctan(d)))


def classes(y):
    return ((y // 320) % 2).astype(int)


def map_grid(amp):
    x = (np.arange(N) + 0.5) * PX
    y = N * PX - (np.arange(N) + 0.5) * PX  # rows go south
    X, Y = np.meshgrid(x, y)
    xyz = np.stack([X, Y, height(X, Y, amp)], axis=-1)
    sat = np.stack([np.full_like(X, XS), Y, np.full_like(X, ZS)], axis=-1)
    return X, Y, xyz, sat, Y / V


def forward_beta0(amp):
    """beta0 on the map grid from the 2.5 m facet model (with a 200 m margin of terrain)."""
    f = PX / SUB
    m = 80  # margin in fine pixels
    xf = (np.arange(-m, N * SUB + m) + 0.5) * f
    yf = (np.arange(-m, N * SUB + m) + 0.5) * f
    X, Y = np.meshgrid(xf, yf)
    P = np.stack([X, Y, height(X, Y, amp)], axis=-1)
    cells = {}
    r_min = None
    for tri in ((P[:-1, :-1], P[1:, :-1], P[:-1, 1:]), (P[1:, 1:], P[:-1, 1:], P[1:, :-1])):
        cen = sum(tri) / 3
        n = 0.5 * np.cross(tri[1] - tri[0], tri[2] - tri[0])
        n *= np.sign(n[..., 2])[..., None]  # upward
        look = np.stack([XS - cen[..., 0], np.zeros_like(cen[..., 0]), ZS - cen[..., 2]], -1)
        r = np.linalg.norm(look, axis=-1)
        a_g = np.maximum(np.sum(n * look, axis=-1) / r, 0)
        cells[len(cells)] = (r, cen[..., 1], a_g * np.vectorize(GAMMA0.get)(classes(cen[..., 1])))
        r_min = r.min() if r_min is None else min(r_min, r.min())
    r_min -= 10 * DR
    nr = int(max(c[0].max() for c in cells.values()) - r_min) // int(DR) * 2 + 10
    ny = int(yf.max() // DY) + 10
    power = np.zeros((ny, nr))
    for r, y, pw in cells.values():
        ir = ((r - r_min) / DR).astype(int)
        iy = (y // DY).astype(int)
        np.add.at(power, (iy.ravel(), ir.ravel()), pw.ravel())
    beta_cells = power / (DR * DY)
    # geocode: 8 x 8 points at random positions in every map pixel read their own cell; box
    # mean per pixel (random, so the sampling cannot beat with the facet lattice)
    rng = np.random.default_rng(3)
    k = 8
    ix = (np.arange(N * k) // k)[None, :] + rng.uniform(0, 1, (N * k, N * k))
    iy = (np.arange(N * k) // k)[:, None] + rng.uniform(0, 1, (N * k, N * k))
    Xs, Ys = ix * PX, N * PX - iy * PX
    Hs = height(Xs, Ys, amp)
    rs = np.hypot(XS - Xs, ZS - Hs)
    b = beta_cells[(Ys // DY).astype(int), ((rs - r_min) / DR).astype(int)]
    return b.reshape(N, k, N, k).mean(axis=(1, 3))


def db(x):
    return 10 * np.log10(x)


def test_gamma0_rtc_flattens_slopes_that_sigma0_does_not():
    amp = 100.0  # slopes up to 26 degrees, look angle ~40: no layover, no shadow
    X, Y, xyz, sat, t = map_grid(amp)
    beta0 = forward_beta0(amp)
    area = rtc_area(xyz, sat, t, up=UP)
    g_rtc = area.gamma0(beta0)
    up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), xyz.shape)
    cot = flat_ratio(xyz, sat, up)
    sigma0 = beta0 * np.sin(np.arctan(1 / cot))  # ellipsoid (flat) sigma0 = beta0 sin(theta)
    assert (area.flags == 0).all()
    s = slope_deg(X, Y, amp)
    cls = classes(Y)
    inner = np.zeros_like(s, bool)
    inner[3:-3, 3:-3] = True
    inner &= (Y % 320 > 20) & (Y % 320 < 300)  # away from class edges
    for k, g_true in GAMMA0.items():
        facing = inner & (cls == k) & (s > 12) & (s < 24)
        away = inner & (cls == k) & (s < -12) & (s > -24)
        flat = inner & (cls == k) & (Y > 1420)
        assert facing.sum() > 300 and away.sum() > 300 and flat.sum() > 300
        sig_f, sig_a = db(sigma0[facing].mean()), db(sigma0[away].mean())
        rtc_f, rtc_a = db(g_rtc[facing].mean()), db(g_rtc[away].mean())
        assert sig_f - sig_a > 4.0, (sig_f, sig_a)  # several dB apart in sigma0
        # within 0.1 dB in gamma0-RTC: each mean is over > 2000 pixels whose spread (0.3 dB,
        # the forward model's 64 geocoding points per pixel) leaves a standard error of
        # 0.01 dB, and the facet model and the processor's per-pixel planes differ by 0.03
        # dB at most here (measured); a normalisation off by a tenth of its exponent shows
        # as 0.6 dB between the two slopes
        assert abs(rtc_f - rtc_a) < TOL_DB, (rtc_f, rtc_a)
        assert abs(rtc_f - db(g_true)) < TOL_DB and abs(rtc_a - db(g_true)) < TOL_DB
        # flat ground: gamma0-RTC = sigma0 / cos(theta), the class value
        assert abs(db(g_rtc[flat].mean()) - db(g_true)) < TOL_DB
        assert abs(db(area.ratio[flat].mean()) - db(cot[flat].mean())) < 0.2


def test_layover_and_shadow_are_flagged():
    amp = 400.0  # slopes up to 63 degrees: facing > 41 lays over, away > 49 is in shadow
    X, Y, xyz, sat, t = map_grid(amp)
    area = rtc_area(xyz, sat, t, up=UP)
    s = slope_deg(X, Y, amp)
    inc = np.degrees(np.arctan((X - XS) / ZS))  # flat incidence, ~40.6 degrees
    inner = np.zeros_like(s, bool)
    inner[3:-3, 3:-3] = True
    lay = inner & (s > inc + 4)  # facing the radar more steeply than the look angle
    shadow = inner & (s < -(90 - inc) - 4)  # facing away beyond grazing
    calm = inner & (np.abs(s) < 25) & (np.abs(Y - 1400) > 30)  # (y = 1400 m is a cliff)
    assert lay.sum() > 200 and shadow.sum() > 200 and calm.sum() > 500
    assert (area.flags[lay] & LAYOVER).mean() > 0.95
    assert (area.flags[shadow] & SHADOW).mean() > 0.95
    assert (area.flags[calm] == 0).all()
    g = area.gamma0(np.ones(s.shape))
    assert np.isnan(g[area.flags != 0]).all() and np.isfinite(g[calm]).all()
    assert np.isfinite(area.gamma0(np.ones(s.shape), masked=False)[calm]).all()


def test_bad_shapes_are_refused():
    _, _, xyz, sat, t = map_grid(0.0)
    with pytest.raises(ValueError, match="must be"):
        rtc_area(xyz[:, :-1], sat, t, up=UP)


def _template_vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ESA state vectors of the simulator's ascending template (track 108): times (ns),
    ECEF positions and velocities, as its annotation lists them."""
    import gzip
    import xml.etree.ElementTree as ET
    from importlib import resources

    from m3leo_tiles.simulator import geometry as geo

    data = resources.files("m3leo_tiles.simulator") / "data" / "annotation-iw2-vv.xml.gz"
    tm = geo.read_timing(ET.fromstring(gzip.decompress(data.read_bytes())))
    times = np.array([np.datetime64(t.replace(tzinfo=None), "ns") for t in tm.orbit_times])
    return times, np.asarray(tm.orbit_pos, float), np.asarray(tm.orbit_vel, float)


def _template_orbit():
    """The template's orbit as the processor's Orbit."""
    from m3leo_tiles.sar.orbit import Orbit

    return Orbit.from_vectors(*_template_vectors())


def _sensor_at_zero_doppler(xyz: np.ndarray) -> np.ndarray:
    """The sensor position (ECEF) where each point crosses zero Doppler, computed without
    the processor's orbit or Doppler code: a cubic Hermite spline through consecutive state
    vectors (positions and velocities; error ~1 mm at 10 s spacing), and Newton's method on
    f(t) = (P - S(t)) . V(t) with f'(t) = (P - S) . A - |V|^2."""
    from scipy.interpolate import CubicHermiteSpline

    times, pos, vel = _template_vectors()
    ts = (times - times[0]) / np.timedelta64(1, "s")
    spline = CubicHermiteSpline(ts, pos, vel, axis=0)
    speed, accel = spline.derivative(1), spline.derivative(2)
    p = xyz.reshape(-1, 3)
    t = np.full(len(p), ts.mean())
    for _ in range(30):
        d, v = p - spline(t), speed(t)
        step = np.sum(d * v, -1) / (np.sum(d * accel(t), -1) - np.sum(v * v, -1))
        t -= step
        if np.abs(step).max() < 1e-9:
            break
    assert np.abs(step).max() < 1e-9 and (ts[0] < t).all() and (t < ts[-1]).all()
    return spline(t).reshape(xyz.shape)


@pytest.mark.parametrize("tilt", [(0.0, 0.0), (0.25, 0.05), (-0.25, -0.05)])
def test_tile_rtc_on_planes_in_real_orbit_geometry(tilt):
    """A plane seen from S1's orbit: A_gamma / A_beta = cot(local incidence) everywhere."""
    from m3leo_tiles.grid.tiles import tile_from_id
    from m3leo_tiles.sar.geocode import grid_ecef, grid_lonlat
    from m3leo_tiles.sar.rtc import tile_rtc

    orbit = _template_orbit()
    grid = tile_from_id("09N-0119-1280").grid(10)  # inside the template's IW2 swath
    a, b = tilt  # dh/dx (east), dh/dy (north)
    xs, ys = np.meshgrid(grid.xs(), grid.ys())
    h = 200.0 + a * (xs - xs.mean()) + b * (ys - ys.mean())
    xyz = grid_ecef(grid, h)
    area = tile_rtc(orbit, xyz, float(orbit.t.mean()))
    # independent truth: the plane's normal (-a, -b, 1) in ENU, the look vector to the
    # zero-Doppler sensor position from our own orbit interpolation and Doppler solution (an
    # orbit or Doppler bug in the processor would otherwise cancel)
    lon, lat = (np.deg2rad(v) for v in grid_lonlat(grid))
    east = np.stack([-np.sin(lon), np.cos(lon), np.zeros_like(lon)], -1)
    north = np.stack([-np.sin(lat) * np.cos(lon), -np.sin(lat) * np.sin(lon), np.cos(lat)], -1)
    up = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)
    n = -a * east - b * north + up
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    look = _sensor_at_zero_doppler(xyz) - xyz
    look /= np.linalg.norm(look, axis=-1, keepdims=True)
    c = np.sum(n * look, axis=-1)
    cot = c / np.sqrt(1 - c**2)
    err = area.ratio[4:-4, 4:-4] / cot[4:-4, 4:-4] - 1
    assert np.abs(np.median(err)) < 0.01 and np.percentile(np.abs(err), 99) < 0.03
    assert (area.flags == 0).all()
    psi = np.degrees(np.arccos(c))
    assert np.abs(area.local_incidence - psi).max() < 0.5


@pytest.mark.slow
def test_rtc_end_to_end_on_a_simulated_product_with_relief(tmp_path):
    """Simulator with terrain radiometry -> processor beta0 -> tile_rtc (about 3 minutes)."""
    from tests.sar.seastruth import rtc_sim_truth, simulate_relief

    r = rtc_sim_truth(simulate_relief(tmp_path / "relief"))
    assert r["rtc_sim_ok"], r["rtc_sim_by_class"]
    assert r["rtc_sim_sigma0_diff_min_db"] > 3.0
