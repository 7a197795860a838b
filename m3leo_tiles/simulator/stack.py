"""`simulate`: a Sentinel-1 IW SLC stack in real SAFE layout, with the scene it images.

Geometry is ESA's: one swath of a real product per pass (templates.py: S1A track 108 IW2
ascending, S1B track 168 IW1 descending; timing, orbit, Doppler and FM-rate polynomials,
steering rate, calibration and noise LUTs, as the Sentinel-1 Product Specification
S1-RS-MDA-52-7441 lays them out), cropped to whole bursts (swath.py). Each date k is that
product shifted by `spacing` k days with its orbit displaced by a perpendicular baseline
inside a +-45 m tube (orbits.py). The signal is a sum of point scatterers on a jittered
ground lattice (scatterers.py, signal.py), each with the reflectivity of its land-cover class,
speckle correlated between dates by the class's temporal decay, the phase of its own range in
each date's orbit (topography and baseline) plus a deformation bowl, and thermal noise drawn
from the noise LUT (safe_writer.py). Radiometry: by default ("flat") every scatterer returns
its class sigma0 per unit horizontal area, so calibrated sigma0 equals the class value on flat
ground and only the foreshortening of scatterer density shows on slopes. With
`radiometry="terrain"` each scatterer returns sigma0 (N . l) / (u . l) per unit horizontal
area (imaging.terrain_factor): the land cover then has gamma0 = sigma0 / cos(theta_ellipsoid)
on every slope, which is what gamma0-RTC (Small 2011) recovers. The tiles wholly inside the
swath get their truth and the local-source rasters (rasters.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

from ..errors import BadInput
from .manifest import FORMAT, SimulationManifest, class_truth
from .orbits import BASELINE_M, baseline_factor, stack_dates
from .rasters import write_rasters, write_truth
from .safe_writer import write_safe
from .scatterers import Images, image_scatterers
from .scene import decay_params, make_scene
from .swath import covered_tiles, crop_swath, utm_zone
from .templates import TRACKS

#: (bursts, samples, lattice spacing x/y in metres)
SIZES: dict[str, tuple[int, int | None, float, float]] = {
    "small": (2, 2400, 4.0, 12.0), "tile": (3, 5200, 4.0, 12.0), "burst": (1, None, 5.0, 14.0)}
MAX_DATES = 16


#: LOS range increase per 12 days at the deformation bowl's centre by default (1 cm)
DEFORMATION_CM = 1.0


def _check(size: str, n_dates: int, spacing: int, passage: str, decay: str, radiometry: str,
           relief: float, deformation_cm: float = DEFORMATION_CM) -> None:
    """One clear BadInput per impossible request, before anything is written."""
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
    if not -50 <= deformation_cm <= 50:
        raise BadInput(f"--deformation-cm must be between -50 and 50, not {deformation_cm}")


def simulate(out_dir: str | Path, size: str = "small", seed: int = 0, n_dates: int = 2,
             force: bool = False, progress: Callable[[str], None] | None = None,
             spacing: int = 12, passage: str = "asc", decay: str = "ar1",
             radiometry: str = "flat", relief: float = 60.0,
             deformation_cm: float | None = None) -> SimulationManifest:
    """Write `n_dates` SAFE products, ground truth, S2/DEM/WorldCover rasters and an AOI.

    `spacing` 12 (one platform) or 6 days (two); `passage` "asc" or "des" picks the real
    geometry (templates.py); `decay` "ar1" (rho = 0) or "rho" (class long-term coherence,
    scene.decay_params) sets the temporal coherence model; `radiometry` "flat" or "terrain"
    (see above) and `relief` (m, the hills' amplitude) shape the terrain signal;
    `deformation_cm` is the bowl's LOS range increase per 12 days at its centre (default
    1 cm; 10 cm gives ~3.6 fringes per 12-day pair, for unwrapping, issue 22).
    """
    defo_cm = DEFORMATION_CM if deformation_cm is None else float(deformation_cm)
    _check(size, n_dates, spacing, passage, decay, radiometry, relief, defo_cm)
    track = TRACKS[passage]
    out = Path(out_dir)
    if (out / "simulation.json").exists() and not force:
        raise BadInput(f"{out} already holds a simulation (use --force to overwrite)")
    t_start = time.perf_counter()
    say = progress if progress is not None else (lambda _msg: None)
    rng = np.random.default_rng(seed)
    nb, ns_wanted, gx, gy = SIZES[size]
    sw = crop_swath(track, nb, ns_wanted, first_burst=2 if size != "burst" else 4)
    tm, nl, ns = sw.tm, sw.nl, sw.ns

    # the scene: UTM rectangle around the swath's footprint, 600 m to spare
    zone, epsg = utm_zone(sw.corners)
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    cx, cy = to_utm.transform(sw.corners[:, 0], sw.corners[:, 1])
    margin = 600.0
    scene = make_scene(rng, epsg, (min(cx) - margin, min(cy) - margin, max(cx) + margin,
                                   max(cy) + margin), relief=relief,
                       los_rate=defo_cm / 100)
    say(f"scene {scene.shape[1]} x {scene.shape[0]} px in EPSG:{epsg}")

    dates = stack_dates(track, tm, n_dates, spacing)
    steps = [k if spacing == 12 else k * spacing / 12 for k in range(n_dates)]  # in 12 days
    params = decay_params(decay)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out))  # long stacks: images on disk
    images: Images = {}
    try:
        images = {(k, p): (np.zeros((nl, ns), np.complex64) if n_dates <= 4 else
                           np.lib.format.open_memmap(work / f"{k}{p}.npy", "w+", np.complex64,
                                                     (nl, ns)))
                  for k in range(n_dates) for p in ("vv", "vh")}
        image_scatterers(images, scene, sw, shapely.Polygon(np.c_[cx, cy]),
                         [g for g, _ in dates], rng, gx=gx, gy=gy, spacing=spacing, decay=decay,
                         radiometry=radiometry, params=params, steps=steps, say=say)
        # thermal noise, quantisation, SAFE products
        s1dir = out / "s1"
        s1dir.mkdir(exist_ok=True)
        products = []
        for k, (g, subs) in enumerate(dates):
            safe = s1dir / f"{g.name}.SAFE"
            write_safe(safe, sw, g, subs, {p: images[(k, p)] for p in ("vv", "vh")}, rng)
            products.append(str(safe.relative_to(out)))
    finally:
        images.clear()
        shutil.rmtree(work, ignore_errors=True)

    tiles = covered_tiles(scene.epsg, sw.corners, to_utm, zone)
    truth = write_truth(out, scene, tiles, steps, tm.wavelength, params)
    # the full-burst size feeds the processor benchmark: its 90 km swath gets the DEM and the
    # truth, not the Sentinel-2/WorldCover stack (gigabytes nobody reads there)
    rasters = write_rasters(out, scene, tiles, rng, track.date, optical=size != "burst")
    manifest = {
        "format": FORMAT, "size": size, "seed": seed,
        "dates": [str(g.date) for g, _ in dates], "products": products,
        "pairs": [[products[k], products[k + 1]] for k in range(n_dates - 1)],
        "tiles": [t.id for t in tiles], "epsg": epsg, "truth": truth, **rasters,
        "pass": track.passage, "relative_orbit": track.relative_orbit,
        "spacing_days": spacing, "decay": decay, "radiometry": radiometry, "relief_m": relief,
        "baselines_m": [round(BASELINE_M * baseline_factor(k), 3) for k in range(n_dates)],
        "classes": class_truth(params),
        "wavelength": tm.wavelength, "baseline_m_per_date": BASELINE_M,
        "los_rate_m_per_12d": scene.los_rate, "bursts": sw.bursts, "lines": nl, "samples": ns,
        "dem_datum": "ellipsoid (WGS84): heights in dem.tif are ellipsoidal",
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    (out / "simulation.json").write_text(json.dumps(manifest, indent=1))
    return SimulationManifest(manifest)
