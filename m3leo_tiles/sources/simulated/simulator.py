"""Simulated Sentinel-1 IW SLC stacks in real SAFE layout, with the scene they image.

Geometry is ESA's: the IW2 annotation of a real track-108 product (timing, orbit, Doppler and
FM-rate polynomials, steering rate, calibration and noise LUTs). Each date k is that product
shifted by 12 k days (S1's repeat cycle, so the Earth-fixed orbit repeats) with its orbit
displaced by a perpendicular baseline. The signal is a sum of point scatterers on a jittered
ground lattice (see signal.py), each with the reflectivity of its land-cover class, complex
Gaussian speckle correlated between dates with the class coherence, the phase of its own
range in each date's orbit (topography and baseline) plus a deformation bowl, and thermal
noise drawn from the noise LUT. Radiometric terrain effects are not simulated: scatterer
density follows the ellipsoid, so calibrated sigma0 equals the class value everywhere.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from scipy.interpolate import LinearNDInterpolator

from ...errors import BadInput
from ...grid.tiles import Tile, utm_epsg
from . import geometry as geo
from .scene import CLASSES, Scene, make_scene
from .signal import HALF, energy, kernel_table, splat

REF_NAME = "S1A_IW_SLC__1SDV_20250406T022008_20250406T022035_058630_07421F_93A7"
REF_DATE = dt.date(2025, 4, 6)
REF_ORBIT = 58630
REF_DATATAKE = 0x07421F
FILE_STEM = "s1a-iw2-slc-{pol}-20250406t022010-20250406t022035-058630-07421f-{n}"
POL_INDEX = {"vv": "005", "vh": "002"}
#: (bursts, samples, lattice spacing x/y in metres)
SIZES = {"small": (2, 2400, 4.0, 12.0), "tile": (3, 5200, 4.0, 12.0),
         "burst": (1, None, 5.0, 14.0)}
BASELINE_M = 45.0  # perpendicular baseline per date step


def _template(name: str) -> str:
    data = resources.files("m3leo_tiles.sources.simulated") / "data" / f"{name}.gz"
    return gzip.decompress(data.read_bytes()).decode()


@dataclass
class DateGeom:
    index: int
    date: dt.date
    name: str
    orbit: geo.OrbitFit
    orbit_pos: np.ndarray
    orbit_vel: np.ndarray


def _product_name(k: int) -> tuple[str, dict[str, str]]:
    d = REF_DATE + dt.timedelta(days=12 * k)
    orbit = REF_ORBIT + 175 * k
    dtid = REF_DATATAKE + 0x2D27 * k
    crc = hashlib.sha256(f"{d}{orbit}".encode()).hexdigest()[:4].upper()
    name = (f"S1A_IW_SLC__1SDV_{d:%Y%m%d}T022008_{d:%Y%m%d}T022035_{orbit:06d}_{dtid:06X}_"
            f"{crc}" if k else REF_NAME)
    subs = {"2025-04-06": f"{d:%Y-%m-%d}", "20250406": f"{d:%Y%m%d}",
            "058630": f"{orbit:06d}", "07421f": f"{dtid:06x}", "07421F": f"{dtid:06X}",
            ">58630<": f">{orbit}<"}
    return name, subs


def _apply(text: str, subs: dict[str, str]) -> str:
    for a, b in subs.items():
        text = text.replace(a, b)
    return text


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
    d = BASELINE_M * k * (0.8 * cross + 0.6 * radial)
    fit = geo.OrbitFit.fit(timing.orbit_times, d)
    t = np.array([fit.seconds(x) for x in timing.orbit_times])
    return pos + d, vel + fit.velocity(t)


class SimulationManifest(dict):
    """`DIR/simulation.json` as returned by `simulate` (a dict, so `m["products"]` works too).

    Keys (paths relative to DIR): format "m3leo-tiles-simulation/1", size, seed, dates
    (ISO days, 12 apart), products (SAFE folders), pairs (consecutive dates), tiles (ids),
    epsg, truth (one npz per tile, see rasters.py), rasters (STAC ItemCollection
    rasters/items.json), dem, aoi (aoi.geojson), classes (code -> name, WorldCover code,
    sigma0 VV/VH dB, 12-day coherence), wavelength, baseline_m_per_date, los_rate_m_per_12d,
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
             force: bool = False, progress=None) -> SimulationManifest:
    """Write `n_dates` SAFE products, ground truth, S2/DEM/WorldCover rasters and an AOI."""
    if size not in SIZES:
        raise BadInput(f"unknown size {size!r}: small, tile or burst")
    if not 2 <= n_dates <= 8:
        raise BadInput("--dates must be between 2 and 8")
    out = Path(out_dir)
    if (out / "simulation.json").exists() and not force:
        raise BadInput(f"{out} already holds a simulation (use --force to overwrite)")
    t_start = time.perf_counter()
    say = progress or (lambda msg: None)
    rng = np.random.default_rng(seed)
    nb, ns, gx, gy = SIZES[size]
    ann = {p: ET.fromstring(_template(f"annotation-iw2-{p}.xml")) for p in ("vv", "vh")}
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
                                   max(cy) + margin))
    say(f"scene {scene.shape[1]} x {scene.shape[0]} px in EPSG:{epsg}")

    # ---- dates and their orbits ---------------------------------------------------------------
    dates = []
    for k in range(n_dates):
        name, subs = _product_name(k)
        pos, vel = _baseline_orbit(tm, k)
        orbit = geo.OrbitFit.fit(tm.orbit_times, pos)  # times as the reference: repeat orbit
        dates.append((DateGeom(k, REF_DATE + dt.timedelta(days=12 * k), name, orbit, pos, vel),
                      subs))
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
    cal = {p: _lut(ET.fromstring(_template(f"calibration-iw2-{p}.xml")),
                   "calibrationVectorList/calibrationVector", "sigmaNought") for p in ("vv", "vh")}
    images = {(k, p): np.zeros((nl, ns), np.complex64) for k in range(n_dates) for p in ("vv", "vh")}
    sig_lut = {p: scene.table(2 if p == "vv" else 3) for p in ("vv", "vh")}
    coh_lut = scene.table(4)
    rho_fn = _density(scene, to_ll, orbit0, tm, t_mid, gx, gy)
    kt_fn = _tops_doppler(tm, orbit0, bursts, burst_t)
    cal_row = {p: cal[p][2][_nearest_row(cal[p][0], np.array([line0 + nl // 2]))[0]]
               for p in ("vv", "vh")}
    footprint = shapely.Polygon(np.c_[cx, cy]).buffer(400.0)
    shapely.prepare(footprint)
    parts = max(1, (os.cpu_count() or 1) // nb)  # splat jobs per burst
    block = -(-lpb // parts)
    pool = ThreadPoolExecutor(max_workers=nb * parts)
    defo = [scene.deformation(k) for k in range(n_dates)]  # once, not per row block
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
        gamma = coh_lut[cls]
        rho = rho_fn(x, y)
        state: dict[str, np.ndarray] = {}
        for k, (g, _) in enumerate(dates):
            tk, rk = geo.zero_doppler(g.orbit, pts, t_mid) if k else geo.zero_doppler(
                orbit0, pts, t_mid)
            rk = rk + scene.lookup(x, y, defo[k], 1)
            samp = (2 * rk / geo.C - tm.tau0) * tm.fs
            inside = (samp > -8) & (samp < ns + 8)
            phase = np.exp(-4j * np.pi * rk / tm.wavelength)
            for p in ("vv", "vh"):
                # speckle: an AR(1) chain over dates, so consecutive dates correlate by gamma
                w = noise[p]
                new = (w[k, :, 0] + 1j * w[k, :, 1]) / np.sqrt(2)
                state[p] = new if k == 0 else gamma * state[p] + np.sqrt(1 - gamma**2) * new
                amp_lut = np.interp(samp, cal[p][1], cal_row[p])
                var = 10 ** (sig_lut[p][cls] / 10) * amp_lut**2 / (rho * e_h)
                amp = state[p] * np.sqrt(var) * phase
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
    out.mkdir(parents=True, exist_ok=True)
    s1dir = out / "s1"
    s1dir.mkdir(exist_ok=True)
    products = []
    for k, (g, subs) in enumerate(dates):
        safe = s1dir / f"{g.name}.SAFE"
        _write_safe(safe, g, subs, ann, tm, bursts, nl, ns, line0, images, k, rng, corners)
        products.append(str(safe.relative_to(out)))
    images.clear()

    # ---- tiles fully inside the simulated swath, truth, rasters ---------------------------
    from .rasters import write_rasters, write_truth

    tiles = _covered_tiles(scene, corners, to_utm, zone)
    truth = write_truth(out, scene, tiles, n_dates, tm.wavelength)
    # the full-burst size feeds the processor benchmark: its 90 km swath gets the DEM and the
    # truth, not the Sentinel-2/WorldCover stack (gigabytes nobody reads there)
    rasters = write_rasters(out, scene, tiles, rng, REF_DATE, optical=size != "burst")
    manifest = {
        "format": "m3leo-tiles-simulation/1", "size": size, "seed": seed,
        "dates": [str(g.date) for g, _ in dates], "products": products,
        "pairs": [[products[k], products[k + 1]] for k in range(n_dates - 1)],
        "tiles": [t.id for t in tiles], "epsg": epsg, "truth": truth, **rasters,
        "classes": {str(k): {"name": v[0], "worldcover": v[1], "sigma0_vv_db": v[2],
                             "sigma0_vh_db": v[3], "coherence_12d": v[4]}
                    for k, v in CLASSES.items()},
        "wavelength": tm.wavelength, "baseline_m_per_date": BASELINE_M,
        "los_rate_m_per_12d": scene.los_rate, "bursts": bursts, "lines": nl, "samples": ns,
        "dem_datum": "ellipsoid (WGS84): heights in dem.tif are ellipsoidal",
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "simulation.json").write_text(json.dumps(manifest, indent=1))
    return SimulationManifest(manifest)


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


# --------------------------------------------------------------------------------------------
def _write_safe(safe: Path, g: DateGeom, subs, ann, tm, bursts, nl, ns, line0, images, k,
                rng, corners) -> None:
    (safe / "annotation" / "calibration").mkdir(parents=True, exist_ok=True)
    (safe / "measurement").mkdir(exist_ok=True)
    last_line_time = tm.first_line[bursts[-1]] + dt.timedelta(
        seconds=(tm.lines_per_burst - 1) * tm.dt)
    for p in ("vv", "vh"):
        stem = _apply(FILE_STEM.format(pol=p, n=POL_INDEX[p]), subs)
        root = ET.fromstring(_template(f"annotation-iw2-{p}.xml"))
        _crop_annotation(root, bursts, nl, ns, line0, g, last_line_time)
        text = _apply(ET.tostring(root, encoding="unicode"), subs)
        (safe / "annotation" / f"{stem}.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n' + text)
        for kind in ("calibration", "noise"):
            root = ET.fromstring(_template(f"{kind}-iw2-{p}.xml"))
            _crop_lut(root, kind, bursts, nl, ns, line0)
            (safe / "annotation" / "calibration" / f"{kind}-{stem}.xml").write_text(
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                + _apply(ET.tostring(root, encoding="unicode"), subs))
        nr, na = _noise_power(root, nl, ns, line0)
        img = images[(k, p)]
        noise = rng.standard_normal((nl, ns, 2)).astype(np.float32)
        scale = np.sqrt(np.outer(na, np.ones(ns)) * nr / 2).astype(np.float32)
        re_ = np.rint(img.real + noise[..., 0] * scale)
        im_ = np.rint(img.imag + noise[..., 1] * scale)
        data = (np.clip(re_, -32768, 32767) + 1j * np.clip(im_, -32768, 32767)).astype(
            np.complex64)
        with rasterio.open(safe / "measurement" / f"{stem}.tiff", "w", driver="GTiff",
                           width=ns, height=nl, count=1, dtype="complex_int16",
                           blockysize=1, tiled=False) as ds:
            ds.write(data, 1)
    man = _apply(_template("manifest.safe"), subs)
    man = _manifest_only_iw2(man)
    coords = " ".join(f"{lat:.6f},{lon:.6f}" for lon, lat in corners)
    man = re.sub(r"<gml:coordinates>[^<]*</gml:coordinates>",
                 f"<gml:coordinates>{coords}</gml:coordinates>", man)
    (safe / "manifest.safe").write_text(man)


def _crop_annotation(root, bursts, nl, ns, line0, g: DateGeom, last_line_time) -> None:
    ii = root.find("imageAnnotation/imageInformation")
    ii.find("numberOfLines").text = str(nl)
    ii.find("numberOfSamples").text = str(ns)
    first = root.findtext(f"swathTiming/burstList/burst[{bursts[0] + 1}]/azimuthTime")
    ii.find("productFirstLineUtcTime").text = first
    ii.find("productLastLineUtcTime").text = last_line_time.isoformat()
    st = root.find("swathTiming")
    st.find("samplesPerBurst").text = str(ns)
    bl = st.find("burstList")
    for i, b in enumerate(list(bl)):
        if i not in bursts:
            bl.remove(b)
        else:
            for tag in ("firstValidSample", "lastValidSample"):
                v = np.array(b.findtext(tag).split(), int)
                v = np.where(v >= 0, np.minimum(v, ns - 1), v)
                b.find(tag).text = " ".join(map(str, v))
    bl.set("count", str(len(bursts)))
    for o, pos, vel in zip(root.findall("generalAnnotation/orbitList/orbit"), g.orbit_pos,
                           g.orbit_vel, strict=True):
        for c, v, w in zip("xyz", pos, vel, strict=True):
            o.find(f"position/{c}").text = f"{v:.6f}"  # mm-rounding would cost 0.15 rad
            o.find(f"velocity/{c}").text = f"{w:.9f}"
    gl = root.find("geolocationGrid/geolocationGridPointList")
    pts = list(gl)
    for p in pts:
        line = int(p.findtext("line"))
        if line < line0 or line > line0 + nl:
            gl.remove(p)
        else:
            p.find("line").text = str(line - line0)
    gl.set("count", str(len(list(gl))))
    if g.index:
        _regeolocate(root, g)


def _regeolocate(root, g: DateGeom) -> None:
    """Grid points of a displaced orbit: same (time, range), new ground point (Newton)."""
    pts = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    for p in pts:
        t = g.orbit.seconds(geo.parse_time(p.findtext("azimuthTime")))
        r = float(p.findtext("slantRangeTime")) * geo.C / 2
        lon, lat, h = (float(p.findtext(k)) for k in ("longitude", "latitude", "height"))
        s = g.orbit.position(np.array([t]))[0]
        v = g.orbit.velocity(np.array([t]))[0]
        for _ in range(6):
            f0 = _rd(lon, lat, h, s, v, r)
            j = np.empty((2, 2))
            for i, (dlon, dlat) in enumerate(((1e-6, 0), (0, 1e-6))):
                j[:, i] = (_rd(lon + dlon, lat + dlat, h, s, v, r) - f0) / 1e-6
            d = np.linalg.solve(j, -f0)
            lon, lat = lon + d[0], lat + d[1]
        p.find("longitude").text = f"{lon:.15e}"
        p.find("latitude").text = f"{lat:.15e}"


def _rd(lon, lat, h, s, v, r) -> np.ndarray:
    p = geo.geodetic_to_ecef(np.array(lon), np.array(lat), np.array(h))
    d = p - s
    return np.array([d @ v / np.linalg.norm(v), np.linalg.norm(d) - r])


def _crop_lut(root, kind: str, bursts, nl, ns, line0) -> None:
    path = "calibrationVectorList" if kind == "calibration" else "noiseRangeVectorList"
    vl = root.find(path)
    vecs = list(vl)
    lines = np.array([int(v.findtext("line")) for v in vecs])
    keep = (lines >= line0 - 2000) & (lines <= line0 + nl + 2000)
    for v, kp, line in zip(vecs, keep, lines, strict=True):
        if not kp:
            vl.remove(v)
        else:
            v.find("line").text = str(line - line0)
    vl.set("count", str(int(keep.sum())))
    if kind == "noise":
        for v in root.findall("noiseAzimuthVectorList/noiseAzimuthVector"):
            ls = np.array(v.findtext("line").split(), int) - line0
            vals = np.array(v.findtext("noiseAzimuthLut").split(), float)
            k = (ls >= -200) & (ls <= nl + 200)
            v.find("line").text = " ".join(map(str, ls[k]))
            v.find("line").set("count", str(int(k.sum())))
            v.find("noiseAzimuthLut").text = " ".join(f"{x:.6e}" for x in vals[k])
            v.find("noiseAzimuthLut").set("count", str(int(k.sum())))
            v.find("firstAzimuthLine").text = "0"
            v.find("lastAzimuthLine").text = str(nl - 1)
            v.find("lastRangeSample").text = str(ns - 1)


def _noise_power(root, nl, ns, line0) -> tuple[np.ndarray, np.ndarray]:
    """Noise power per sample (range LUT of the nearest vector) and per line (azimuth LUT)."""
    vecs = root.findall("noiseRangeVectorList/noiseRangeVector")
    mid = nl // 2
    v = min(vecs, key=lambda e: abs(int(e.findtext("line")) - mid))
    nr = np.interp(np.arange(ns), np.array(v.findtext("pixel").split(), float),
                   np.array(v.findtext("noiseRangeLut").split(), float))
    az = root.find("noiseAzimuthVectorList/noiseAzimuthVector")
    na = np.interp(np.arange(nl), np.array(az.findtext("line").split(), float),
                   np.array(az.findtext("noiseAzimuthLut").split(), float))
    return nr, na


def _manifest_only_iw2(man: str) -> str:
    """Drop the other swaths' and the RFI files from the manifest (we write IW2 only)."""
    man = re.sub(r"\s*<dataObject ID=\"[^\"]*(?:iw1|iw3|rfi)[^\"]*\".*?</dataObject>", "", man,
                 flags=re.S | re.I)
    man = re.sub(r"\s*<dataObjectPointer dataObjectID=\"[^\"]*(?:iw1|iw3|rfi)[^\"]*\"/>", "", man,
                 flags=re.I)
    return man
