"""Simulated Sentinel-1 IW SLC stacks in real SAFE layout, with the scene they image.

Geometry is ESA's: one swath of a real product per pass (templates.py: S1A track 108 IW2
ascending, S1B track 168 IW1 descending; timing, orbit, Doppler and FM-rate polynomials,
steering rate, calibration and noise LUTs). Each date k is that product shifted by
`spacing` k days (12: S1's repeat cycle, so the Earth-fixed orbit repeats; 6: the sibling
platform on the same track) with its orbit displaced by a perpendicular baseline inside a
+-45 m tube. The signal is a sum of point scatterers on a jittered ground lattice (see
signal.py), each with the reflectivity of its land-cover class, complex Gaussian speckle
correlated between dates by the class's temporal decay, the phase of its own range in each
date's orbit (topography and baseline) plus a deformation bowl, and thermal noise drawn from
the noise LUT. Radiometry: by default ("flat") every scatterer returns its class sigma0 per
unit horizontal area, so calibrated sigma0 equals the class value on flat ground and only
the foreshortening of scatterer density shows on slopes. With `radiometry="terrain"` each
scatterer returns sigma0 (N . l) / (u . l) per unit horizontal area (N = (-dh/dx, -dh/dy, 1)
the facet's area vector per horizontal area, u the vertical, l the unit look vector): the
land cover then has gamma0 = sigma0 / cos(theta_ellipsoid) on every slope, which is what
gamma0-RTC (Small 2011) recovers.

Temporal decay (scene.decay_params): the speckle of a scatterer at date k is
    s_k = sqrt(rho) c + sqrt(1 - rho) a_k,   a_k = g a_(k-1) + sqrt(1 - g^2) n_k,
with c, n_k independent unit circular Gaussians and g = exp(-spacing / tau). Then
E[s_j s_k*] = rho + (1 - rho) g^|k - j| = (1 - rho) exp(-t / tau) + rho for t = |k - j|
spacing days: the decay model of GSSIC (Kellndorfer et al. 2022) holds exactly in
expectation. The default "ar1" model has rho = 0 and tau = -12 / ln(gamma12).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer
from scipy.interpolate import LinearNDInterpolator

from ..errors import BadInput
from ..grid.tiles import Tile, utm_epsg
from . import geometry as geo
from .safe_writer import DateGeom, write_safe
from .scene import BASELINES, CLASSES, Scene, decay_coherence, decay_params, make_scene
from .signal import HALF, energy, kernel_table, splat
from .templates import TRACKS

#: (bursts, samples, lattice spacing x/y in metres)
SIZES = {"small": (2, 2400, 4.0, 12.0), "tile": (3, 5200, 4.0, 12.0),
         "burst": (1, None, 5.0, 14.0)}
BASELINE_M = 45.0  # orbit offset of date 1; later dates stay within +-BASELINE_M (baseline_factor)
MAX_DATES = 16


def baseline_factor(k: int) -> float:
    """Date k's orbit offset in units of BASELINE_M: 0, 1, then bounded (cos of a golden-angle
    sequence), so a long stack stays inside a +-45 m tube as S1's (50 m RMS) does, instead of
    drifting to baselines whose geometric decorrelation would bias the temporal decay."""
    return float(k) if k < 2 else float(np.cos(2.39996323 * k))


def _baseline_orbit(timing: geo.Timing, k: int) -> tuple[np.ndarray, np.ndarray]:
    """State vectors displaced perpendicular to the velocity, in the radial plane.

    The velocities get the displacement's own rate of change: an interpolator that uses them
    (Hermite, as the processor's) must see a consistent orbit, or millimetres of range error
    become a phase error.
    """
    pos = timing.orbit_pos.copy()
    vel = timing.orbit_vel.copy()
    if k == 0:
        return pos, vel
    radial = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    v = vel / np.linalg.norm(vel, axis=1, keepdims=True)
    cross = np.cross(v, radial)  # horizontal, across track
    cross /= np.linalg.norm(cross, axis=1, keepdims=True)
    # mostly across-track, tilted so the baseline is close to perpendicular to the look
    d = BASELINE_M * baseline_factor(k) * (0.8 * cross + 0.6 * radial)
    fit = geo.OrbitFit.fit(timing.orbit_times, d)
    t = np.array([fit.seconds(x) for x in timing.orbit_times])
    return pos + d, vel + fit.velocity(t)


class SimulationManifest(dict):
    """`DIR/simulation.json` as returned by `simulate` (a dict, so `m["products"]` works too).

    Keys (paths relative to DIR): format "m3leo-tiles-simulation/1", size, seed, dates
    (ISO days, `spacing_days` apart), products (SAFE folders), pairs (consecutive dates),
    tiles (ids), pass (ASCENDING | DESCENDING), relative_orbit, spacing_days, decay
    ("ar1" | "rho"), radiometry ("flat" | "terrain"), relief_m, baselines_m (per date),
    epsg, truth (one npz per tile, see rasters.py), rasters (STAC ItemCollection
    rasters/items.json), dem, aoi (aoi.geojson), classes (code -> name, WorldCover code,
    sigma0 VV/VH dB, 12-day coherence, and the decay truth: rho, tau_days and
    coherence_by_baseline {days: gamma(days)}), wavelength, baseline_m_per_date,
    los_rate_m_per_12d,
    bursts (indices in the real product), lines, samples, dem_datum, seconds.
    """

    @classmethod
    def load(cls, sim_dir: str | Path) -> SimulationManifest:
        return cls(json.loads((Path(sim_dir) / "simulation.json").read_text()))

    products = property(lambda self: list(self["products"]))
    pairs = property(lambda self: [tuple(p) for p in self["pairs"]])
    tiles = property(lambda self: list(self["tiles"]))
    truth = property(lambda self: list(self["truth"]))
    rasters = property(lambda self: self["rasters"])
    aoi = property(lambda self: self["aoi"])


# --------------------------------------------------------------------------------------------
def simulate(out_dir: str | Path, size: str = "small", seed: int = 0, n_dates: int = 2,
             force: bool = False, progress=None, spacing: int = 12, passage: str = "asc",
             decay: str = "ar1", radiometry: str = "flat",
             relief: float = 60.0) -> SimulationManifest:
    """Write `n_dates` SAFE products, ground truth, S2/DEM/WorldCover rasters and an AOI.

    `spacing` 12 (one platform) or 6 days (two); `passage` "asc" or "des" picks the real
    geometry (templates.py); `decay` "ar1" (rho = 0) or "rho" (class long-term coherence,
    scene.decay_params) sets the temporal coherence model; `radiometry` "flat" or "terrain"
    (see above) and `relief` (m, the hills' amplitude) shape the terrain signal.
    """
    if size not in SIZES:
        raise BadInput(f"unknown size {size!r}: small, tile or burst")
    if not 2 <= n_dates <= MAX_DATES:
        raise BadInput(f"--dates must be between 2 and {MAX_DATES}")
    if spacing not in (6, 12):
        raise BadInput(f"--spacing must be 6 or 12 days, not {spacing}")
    if passage not in TRACKS:
        raise BadInput(f"unknown pass {passage!r}: asc or des")
    if decay not in ("ar1", "rho"):
        raise BadInput(f"unknown decay model {decay!r}: ar1 or rho")
    if radiometry not in ("flat", "terrain"):
        raise BadInput(f"unknown radiometry {radiometry!r}: flat or terrain")
    if not 0 <= relief <= 500:
        raise BadInput(f"--relief must be between 0 and 500 m, not {relief}")
    track = TRACKS[passage]
    out = Path(out_dir)
    if (out / "simulation.json").exists() and not force:
        raise BadInput(f"{out} already holds a simulation (use --force to overwrite)")
    t_start = time.perf_counter()
    say = progress or (lambda msg: None)
    rng = np.random.default_rng(seed)
    nb, ns, gx, gy = SIZES[size]
    ann = {p: ET.fromstring(track.read(f"annotation-{track.swath}-{p}.xml"))
           for p in ("vv", "vh")}
    tm = geo.read_timing(ann["vv"])
    lpb = tm.lines_per_burst
    first_burst = 2 if size != "burst" else 4
    bursts = list(range(first_burst, first_burst + nb))
    nl = nb * lpb
    line0 = first_burst * lpb  # full-product line of our first line
    # ESA marks the near-range samples before firstValidSample as invalid: our crop keeps
    # `ns` valid samples after them (and the processor rightly ignores the rest)
    s_valid = max(int(v[v >= 0].max()) for v in (
        np.array(b.findtext("firstValidSample").split(), int)
        for b in ann["vv"].findall("swathTiming/burstList/burst")) if (v >= 0).any())
    ns = min(tm.samples, s_valid + ns) if ns else tm.samples

    # ---- footprint from ESA's geolocation grid ----------------------------------------------
    grid = geo.grid_points(ann["vv"])
    interp = LinearNDInterpolator(np.c_[grid["line"], grid["pixel"]],
                                  np.c_[grid["longitude"], grid["latitude"]])
    corners = interp([[line0, s_valid], [line0, ns - 1], [line0 + nl - 1, ns - 1],
                      [line0 + nl - 1, s_valid]])
    lon_c, lat_c = corners.mean(axis=0)
    zone = int((lon_c + 180) // 6) + 1
    epsg = utm_epsg(zone, "N" if lat_c >= 0 else "S")
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    cx, cy = to_utm.transform(corners[:, 0], corners[:, 1])
    margin = 600.0
    scene = make_scene(rng, epsg, (min(cx) - margin, min(cy) - margin, max(cx) + margin,
                                   max(cy) + margin), relief=relief)
    slopes = (np.gradient(scene.height.astype(np.float64), scene.res)
              if radiometry == "terrain" else None)
    say(f"scene {scene.shape[1]} x {scene.shape[0]} px in EPSG:{epsg}")

    # ---- dates and their orbits ---------------------------------------------------------------
    dates = []
    for k in range(n_dates):
        name, subs, day = track.product(k, spacing)
        pos, vel = _baseline_orbit(tm, k)
        orbit = geo.OrbitFit.fit(tm.orbit_times, pos)  # times as the reference: repeat orbit
        dates.append((DateGeom(k, day, name, orbit, pos, vel), subs))
    steps = [k if spacing == 12 else k * spacing / 12 for k in range(n_dates)]  # in 12 days
    orbit0 = dates[0][0].orbit
    burst_t = np.array([orbit0.seconds(tm.first_line[b]) for b in bursts])
    t_mid = float(burst_t.mean() + lpb * tm.dt / 2)

    # ---- scatterers on a jittered ground lattice ------------------------------------------
    xs = np.arange(scene.x0 + gx / 2, scene.x0 + scene.shape[1] * scene.res, gx)
    ys = np.arange(scene.y0 - gy / 2, scene.y0 - scene.shape[0] * scene.res, -gy)
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    taz = kernel_table(tm.azimuth_bw * tm.dt, tm.azimuth_window)
    trg = kernel_table(tm.range_bw / tm.fs, tm.range_window)
    e_h = energy(tm.azimuth_bw * tm.dt, tm.azimuth_window) * energy(tm.range_bw / tm.fs,
                                                                     tm.range_window)
    cal = {p: _lut(ET.fromstring(track.read(f"calibration-{track.swath}-{p}.xml")),
                   "calibrationVectorList/calibrationVector", "sigmaNought") for p in ("vv", "vh")}
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out))  # long stacks: images on disk
    images: dict = {}
    try:
        images = {(k, p): (np.zeros((nl, ns), np.complex64) if n_dates <= 4 else
                           np.lib.format.open_memmap(work / f"{k}{p}.npy", "w+", np.complex64,
                                                     (nl, ns)))
                  for k in range(n_dates) for p in ("vv", "vh")}
        sig_lut = {p: scene.table(2 if p == "vv" else 3) for p in ("vv", "vh")}
        coh_lut = scene.table(4)
        params = decay_params(decay)
        rho_lut = np.zeros(len(coh_lut))
        step_lut = np.zeros(len(coh_lut))  # exp(-spacing / tau): the AR(1) coefficient per date
        for c, (r_c, tau_c) in params.items():
            rho_lut[c] = r_c
            step_lut[c] = np.exp(-spacing / tau_c) if tau_c > 0 else 0.0
        rho_fn = _density(scene, to_ll, orbit0, tm, t_mid, gx, gy)
        kt_fn = _tops_doppler(tm, orbit0, bursts, burst_t)
        cal_row = {p: cal[p][2][_nearest_row(cal[p][0], np.array([line0 + nl // 2]))[0]]
                   for p in ("vv", "vh")}
        footprint = shapely.Polygon(np.c_[cx, cy]).buffer(400.0)
        shapely.prepare(footprint)
        parts = max(1, (os.cpu_count() or 1) // nb)  # splat jobs per burst
        block = -(-lpb // parts)
        pool = ThreadPoolExecutor(max_workers=nb * parts)
        defo = [scene.deformation(s) for s in steps]  # once, not per row block
        t0 = time.perf_counter()
        row_block = max(1, 1_500_000 // len(xs))
        for r0 in range(0, len(ys), row_block):
            yy, xx = np.meshgrid(ys[r0:r0 + row_block], xs, indexing="ij")
            x = (xx + rng.uniform(-gx / 2, gx / 2, xx.shape)).ravel()
            y = (yy + rng.uniform(-gy / 2, gy / 2, yy.shape)).ravel()
            near = shapely.contains_xy(footprint, x, y)  # cheap cut before the geometry
            x, y = x[near], y[near]
            if not len(x):
                continue
            n = len(x)
            noise = {p: rng.standard_normal((n_dates, n, 2), dtype=np.float32) for p in ("vv", "vh")}
            if decay == "rho":  # the part of the speckle every date shares
                noise.update({f"c{p}": rng.standard_normal((1, n, 2), dtype=np.float32)
                              for p in ("vv", "vh")})
            h = scene.lookup(x, y, scene.height, 1)
            lon, lat = to_ll.transform(x, y)
            pts = geo.geodetic_to_ecef(lon, lat, h)
            t_ref, _ = geo.zero_doppler(orbit0, pts, t_mid)
            keep = (t_ref > burst_t[0] - 8 * tm.dt) & (t_ref < burst_t[-1] + (lpb + 8) * tm.dt)
            if not keep.any():
                continue
            x, y, pts, t_ref = x[keep], y[keep], pts[keep], t_ref[keep]
            noise = {p: v[:, keep] for p, v in noise.items()}
            cls = scene.lookup(x, y, scene.classes, 0).astype(np.int64)
            # 12-day spacing of the AR(1) chain: exactly the class coherence (the default pair's
            # bytes); otherwise exp(-spacing / tau), with the shared part weighted by rho
            gamma = coh_lut[cls] if spacing == 12 and decay == "ar1" else step_lut[cls]
            lt = rho_lut[cls]
            rho = rho_fn(x, y)
            tf = (_terrain_factor(scene, slopes, x, y, pts, orbit0.position(t_ref))
                  if radiometry == "terrain" else None)
            state: dict[str, np.ndarray] = {}
            for k, (g, _) in enumerate(dates):
                tk, rk = geo.zero_doppler(g.orbit, pts, t_mid) if k else geo.zero_doppler(
                    orbit0, pts, t_mid)
                rk = rk + scene.lookup(x, y, defo[k], 1)
                samp = (2 * rk / geo.C - tm.tau0) * tm.fs
                inside = (samp > -8) & (samp < ns + 8)
                phase = np.exp(-4j * np.pi * rk / tm.wavelength)
                for p in ("vv", "vh"):
                    # speckle: an AR(1) chain over dates, so dates dt apart correlate by
                    # exp(-dt / tau); with a long-term part sqrt(rho) c shared by all dates, by
                    # (1 - rho) exp(-dt / tau) + rho (both unit-variance circular Gaussian)
                    w = noise[p]
                    new = (w[k, :, 0] + 1j * w[k, :, 1]) / np.sqrt(2)
                    state[p] = new if k == 0 else gamma * state[p] + np.sqrt(1 - gamma**2) * new
                    speck = state[p]
                    if decay == "rho":
                        c = noise[f"c{p}"][0]
                        speck = np.sqrt(lt) * (c[:, 0] + 1j * c[:, 1]) / np.sqrt(2) + np.sqrt(
                            1 - lt) * speck
                    amp_lut = np.interp(samp, cal[p][1], cal_row[p])
                    var = 10 ** (sig_lut[p][cls] / 10) * amp_lut**2 / (rho * e_h)
                    if tf is not None:
                        var = var * tf
                    amp = speck * np.sqrt(var) * phase
                    jobs = []
                    for bi in range(nb):  # bursts are separate rows: splat them in parallel
                        tb = burst_t[bi]
                        inb = inside & (tk >= tb - 4 * tm.dt) & (tk < tb + (lpb + 4) * tm.dt)
                        if not inb.any():
                            continue
                        lpos = (tk[inb] - tb) / tm.dt
                        f = kt_fn(bi, tk[inb], samp[inb])
                        s_b, a_b = samp[inb], amp[inb].astype(np.complex128)
                        # and line blocks of a burst too (disjoint rows, each pixel sums its
                        # scatterers in the same order: bytes do not depend on the split)
                        for a0 in range(0, lpb, block):
                            a1 = min(lpb, a0 + block)
                            sel = (lpos > a0 - HALF - 1) & (lpos < a1 + HALF + 1)
                            sub = images[(k, p)][bi * lpb + a0:bi * lpb + a1]
                            jobs.append(pool.submit(splat, sub, lpos[sel] - a0, s_b[sel], a_b[sel],
                                                    f[sel], tm.dt, taz, trg))
                    for j in jobs:
                        j.result()
            say(f"scatterers: rows {r0 + row_block}/{len(ys)} ({time.perf_counter() - t0:.0f} s)")
        pool.shutdown()

        # ---- thermal noise, quantisation, SAFE products ----------------------------------------
        s1dir = out / "s1"
        s1dir.mkdir(exist_ok=True)
        products = []
        for k, (g, subs) in enumerate(dates):
            safe = s1dir / f"{g.name}.SAFE"
            write_safe(safe, track, g, subs, tm, bursts, nl, ns, line0, images, k, rng, corners)
            products.append(str(safe.relative_to(out)))
    finally:
        images.clear()
        shutil.rmtree(work, ignore_errors=True)

    # ---- tiles fully inside the simulated swath, truth, rasters ---------------------------
    from .rasters import write_rasters, write_truth

    tiles = _covered_tiles(scene, corners, to_utm, zone)
    truth = write_truth(out, scene, tiles, steps, tm.wavelength, params)
    # the full-burst size feeds the processor benchmark: its 90 km swath gets the DEM and the
    # truth, not the Sentinel-2/WorldCover stack (gigabytes nobody reads there)
    rasters = write_rasters(out, scene, tiles, rng, track.date, optical=size != "burst")
    manifest = {
        "format": "m3leo-tiles-simulation/1", "size": size, "seed": seed,
        "dates": [str(g.date) for g, _ in dates], "products": products,
        "pairs": [[products[k], products[k + 1]] for k in range(n_dates - 1)],
        "tiles": [t.id for t in tiles], "epsg": epsg, "truth": truth, **rasters,
        "pass": track.passage, "relative_orbit": track.relative_orbit,
        "spacing_days": spacing, "decay": decay, "radiometry": radiometry, "relief_m": relief,
        "baselines_m": [round(BASELINE_M * baseline_factor(k), 3) for k in range(n_dates)],
        "classes": {str(k): {"name": v[0], "worldcover": v[1], "sigma0_vv_db": v[2],
                             "sigma0_vh_db": v[3], "coherence_12d": v[4],
                             "rho": params[k][0], "tau_days": params[k][1],
                             "coherence_by_baseline": {
                                 str(d): decay_coherence(*params[k], d) for d in BASELINES}}
                    for k, v in CLASSES.items()},
        "wavelength": tm.wavelength, "baseline_m_per_date": BASELINE_M,
        "los_rate_m_per_12d": scene.los_rate, "bursts": bursts, "lines": nl, "samples": ns,
        "dem_datum": "ellipsoid (WGS84): heights in dem.tif are ellipsoidal",
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "simulation.json").write_text(json.dumps(manifest, indent=1))
    return SimulationManifest(manifest)


def _terrain_factor(scene: Scene, slopes: tuple[np.ndarray, np.ndarray], x: np.ndarray,
                    y: np.ndarray, pts: np.ndarray, sat: np.ndarray) -> np.ndarray:
    """(N . l) / (u . l) per scatterer, clipped at 0 (facets facing away return nothing).

    Slopes from the scene's heights (UTM x/y taken as east/north: the grid convergence of a
    few tenths of a degree is below this model's purpose)."""
    gy, gx = slopes
    hx = scene.lookup(x, y, gx, 1)
    hy = -scene.lookup(x, y, gy, 1)  # rows run south
    lon, lat = Transformer.from_crs(scene.epsg, 4326, always_xy=True).transform(x, y)
    lo, la = np.radians(lon), np.radians(lat)
    east = np.stack([-np.sin(lo), np.cos(lo), np.zeros_like(lo)], -1)
    north = np.stack([-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)], -1)
    up = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1)
    look = sat - pts
    look /= np.linalg.norm(look, axis=-1, keepdims=True)
    n = up - hx[:, None] * east - hy[:, None] * north
    return np.maximum(np.sum(n * look, -1), 0.0) / np.sum(up * look, -1)


def _nearest_row(lines: np.ndarray, line: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(lines, line), 0, len(lines) - 1)


def _lut(root: ET.Element, path: str, field: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vecs = root.findall(path)
    lines = np.array([int(v.findtext("line")) for v in vecs])
    pixels = np.array(vecs[0].findtext("pixel").split(), float)
    values = np.array([np.array(v.findtext(field).split(), float) for v in vecs])
    return lines, pixels, values


def _density(scene: Scene, to_ll, orbit, tm, t_mid, gx, gy):
    """Scatterers per radar pixel, from the flat-terrain Jacobian on a coarse grid."""
    step = 500.0
    h0 = float(np.median(scene.height))
    xs = np.arange(scene.x0, scene.x0 + scene.shape[1] * scene.res + step, step)
    ys = np.arange(scene.y0, scene.y0 - scene.shape[0] * scene.res - step, -step)
    X, Y = np.meshgrid(xs, ys)

    def radar(dx, dy):
        lon, lat = to_ll.transform((X + dx).ravel(), (Y + dy).ravel())
        t, r = geo.zero_doppler(orbit, geo.geodetic_to_ecef(lon, lat, np.full(lon.shape, h0)),
                                t_mid)
        return t / tm.dt, 2 * r / geo.C * tm.fs

    l0, s0 = radar(0, 0)
    l1, s1 = radar(1.0, 0)
    l2, s2 = radar(0, 1.0)
    det = np.abs((l1 - l0) * (s2 - s0) - (l2 - l0) * (s1 - s0))  # radar pixels per m^2
    rho = (1.0 / (gx * gy * det)).reshape(X.shape)
    from scipy.interpolate import RegularGridInterpolator

    f = RegularGridInterpolator((ys[::-1], xs), rho[::-1], bounds_error=False, fill_value=None)
    return lambda x, y: f(np.c_[y, x])


def _tops_doppler(tm: geo.Timing, orbit: geo.OrbitFit, bursts, burst_t):
    """f(burst, t, sample): the TOPS Doppler centroid a scatterer is imaged at."""
    params = []
    for bi, b in enumerate(bursts):
        mid = burst_t[bi] + tm.lines_per_burst // 2 * tm.dt
        v = float(np.linalg.norm(orbit.velocity(np.array([mid]))[0]))
        ks = 2 * v * tm.steering_rate / tm.wavelength
        when = tm.first_line[b] + dt.timedelta(seconds=tm.lines_per_burst * tm.dt / 2)
        fm_t0, fm = geo.nearest_poly(tm.fm_rates, when)
        dc_t0, dc = geo.nearest_poly(tm.dc, when)
        params.append((mid, ks, fm_t0, fm, dc_t0, dc))

    def f(bi, t, samp):
        mid, ks, fm_t0, fm, dc_t0, dc = params[bi]
        tau = tm.tau0 + samp / tm.fs
        ka = np.polyval(fm[::-1], tau - fm_t0)
        fdc = np.polyval(dc[::-1], tau - dc_t0)
        ka0 = np.polyval(fm[::-1], tm.tau0 - fm_t0)
        fdc0 = np.polyval(dc[::-1], tm.tau0 - dc_t0)
        kt = ks / (1 - ks / ka)
        eta_ref = fdc0 / ka0 - fdc / ka
        return (kt * ((t - mid) - eta_ref)).astype(np.float64)

    return f


def _covered_tiles(scene: Scene, corners: np.ndarray, to_utm, zone: int) -> list[Tile]:
    import shapely

    cx, cy = to_utm.transform(corners[:, 0], corners[:, 1])
    inner = shapely.Polygon(np.c_[cx, cy]).buffer(-300.0)
    hem = "N" if scene.epsg < 32700 else "S"
    size = 4480
    xmin, ymin, xmax, ymax = inner.bounds
    out = []
    for col in range(int(xmin // size), int(xmax // size) + 1):
        for row in range(int(ymin // size), int(ymax // size) + 1):
            box = shapely.box(col * size, row * size, (col + 1) * size, (row + 1) * size)
            if inner.contains(box):
                out.append(Tile(zone, hem, col, row))
    if not out:
        raise BadInput("the simulated swath covers no whole tile; use a larger --size")
    return sorted(out, key=lambda t: t.id)


