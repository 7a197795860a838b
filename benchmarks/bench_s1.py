"""Sentinel-1 processor throughput on one full-size IW burst pair (VV + VH).

Data: the simulator's `simulate(out, size="burst")` (m3leo_tiles.simulator); if it fails
(said in the output) a stand-in built here from the real hyp3-isce2 pair's
annotations (../shared/s1data) with full-size speckle written into one IW2 burst of each date.
Measures, in one run:
- seconds: process_pair (s1grd ref+sec, s1coh VV+VH, s1ifg) for every tile the burst covers;
- io_floor_s: just reading both dates' bursts (VV+VH) with rasterio into complex64;
- sarsen_s: sarsen's terrain_correction (GTC, one date, one polarisation, one burst) onto the
  DEM grid of ONE of those tiles, compared as output pixels per second (ours: 10 m pixels of
  all tiles, all layers; sarsen: its one layer).
Last line: {"name": "s1", "seconds", "io_floor_s", "ratio_to_floor", "sarsen_s",
"speedup_vs_sarsen", "peak_gb", "stages", ...}.
"""

from __future__ import annotations

import glob
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("M3LEO_SHARED", ROOT.parent / "shared"))
PAIR = SHARED / "s1data/hyp3-isce2/tests/data/packaging/slc"

from m3leo_tiles.grid.geobox import GeoBox  # noqa: E402
from m3leo_tiles.grid.tiles import Tile, utm_epsg  # noqa: E402
from m3leo_tiles.sources.base import TileRef  # noqa: E402


def _standin_pair(out: Path, burst: int = 4, seed: int = 0) -> tuple[list[Path], float, str]:
    """Copy the real hyp3 pair's metadata; fill IW2 burst `burst` VV/VH with speckle."""
    import rasterio
    from rasterio.windows import Window

    from m3leo_tiles.sar.safe import open_swath

    rng = np.random.default_rng(seed)
    safes = []
    for src in sorted(PAIR.glob("*.SAFE")):
        dst = out / src.name
        shutil.copytree(src, dst)
        safes.append(dst)
        for pol, amp in (("VV", 80.0), ("VH", 25.0)):
            sw = open_swath(dst, "IW2", pol)
            b = sw.bursts[burst]
            path = next((dst / "measurement").glob(f"*-iw2-slc-{pol.lower()}-*.tiff"))
            path.unlink()
            prof = dict(driver="GTiff", width=sw.n_samples, height=sw.n_lines, count=1,
                        dtype="complex_int16", sparse_ok=True, tiled=False, blockysize=1)
            with rasterio.open(path, "w", **prof) as r:
                step = 256
                for r0 in range(0, sw.lines_per_burst, step):
                    n = min(step, sw.lines_per_burst - r0)
                    z = rng.standard_normal((n, sw.n_samples), np.float32) + 1j * \
                        rng.standard_normal((n, sw.n_samples), np.float32)
                    r.write((z * (amp / math.sqrt(2))).astype(np.complex64), 1,
                            window=Window(0, b.first_line + r0, sw.n_samples, n))
    sw = open_swath(safes[0], "IW2", "VV")
    g = sw.gcp
    return safes, float(np.median(g.height.values)), f"IW2 burst {burst} of the hyp3-isce2 pair"


def _simulated_pair(out: Path):
    """The simulator's burst pair ($BENCH_SIM_DIR reuses an existing `--size burst` run),
    simulated by `m3leo-tiles simulate` in a process of its own."""
    reuse = os.environ.get("BENCH_SIM_DIR")
    if reuse and (Path(reuse) / "simulation.json").exists():
        out = Path(reuse)
    else:  # in a subprocess: the simulator's ~4 GB must not count in the processor's peak
        r = subprocess.run([sys.executable, "-m", "m3leo_tiles", "simulate", "--size", "burst",
                            "--seed", "0", "--out", str(out)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        if r.returncode:  # a simulator bug must not hide our numbers
            print(f"simulator failed ({r.stderr.strip()[-300:]}); using the stand-in",
                  file=sys.stderr)
            return None
    safes = sorted(Path(p) for p in glob.glob(str(out / "**/*.SAFE"), recursive=True))
    if len(safes) < 2:
        return None
    dem = out / "rasters" / "dem.tif"  # the simulator's scene heights (ellipsoidal)
    return safes[:2], (str(dem) if dem.exists() else None), "simulator --size burst"


def _burst_tiles(safe: Path, swath: str, burst: int | None) -> tuple[list[TileRef], int]:
    """Tiles whose square meets the burst's footprint (from ESA's geolocation grid)."""
    import shapely
    from pyproj import Transformer

    from m3leo_tiles.sar.safe import open_swath

    sw = open_swath(safe, swath, "VV")
    g = sw.gcp
    lines = g.line.values
    if burst is None:
        burst = len(sw.bursts) // 2
    b = sw.bursts[burst]
    rows = np.flatnonzero((lines >= b.first_line) & (lines <= b.first_line + sw.lines_per_burst))
    if rows.size < 2:
        rows = np.arange(len(lines))
    lat = g.latitude.values[rows[[0, -1]]]
    lon = g.longitude.values[rows[[0, -1]]]
    ring = list(zip(lon[0], lat[0], strict=True)) + list(zip(lon[1][::-1], lat[1][::-1],
                                                            strict=True))
    poly = shapely.Polygon(ring)
    clon, clat = poly.centroid.x, poly.centroid.y
    zone, hem = int((clon + 180) // 6) + 1, "N" if clat >= 0 else "S"
    tr = Transformer.from_crs(4326, utm_epsg(zone, hem), always_xy=True)
    x, y = tr.transform(np.array(ring)[:, 0], np.array(ring)[:, 1])
    upoly = shapely.Polygon(list(zip(x, y, strict=True)))
    tiles = []
    for c in range(int(min(x) // 4480), int(max(x) // 4480) + 1):
        for r in range(int(min(y) // 4480), int(max(y) // 4480) + 1):
            t = Tile(zone, hem, c, r)
            if shapely.box(*t.bounds).intersects(upoly):
                tiles.append(TileRef.of(t))
    return tiles, burst


def _io_floor(safes: list[Path], swath: str, burst: int) -> float:
    import rasterio
    from rasterio.windows import Window

    from m3leo_tiles.sar.safe import open_swath

    t0 = time.perf_counter()
    for safe in safes:
        for pol in ("VV", "VH"):
            sw = open_swath(safe, swath, pol)
            b = sw.bursts[burst]
            with rasterio.open(sw.measurement) as r:
                a = r.read(1, window=Window(0, b.first_line, sw.n_samples, sw.lines_per_burst),
                           out_dtype="complex64")
            del a
    return time.perf_counter() - t0


def _sarsen(safe: Path, tile: TileRef, heights: np.ndarray, burst: int,
            out: Path) -> float | None:
    """sarsen GTC (IW2/VV) onto one tile's 10 m grid with our DEM heights, in a subprocess."""
    import rasterio

    dem = out / "tile_dem.tif"
    g = tile.grid
    with rasterio.open(dem, "w", driver="GTiff", width=g.width, height=g.height, count=1,
                       dtype="float32", crs=g.crs, transform=g.transform) as r:
        r.write(np.asarray(heights, np.float32), 1)
    # sarsen 0.9.6 cannot open a single-burst group of an IW SLC (it mosaics every IW SLC
    # group and then looks for "IW2/VV/<n>/orbit"), so it gets the swath "IW2/VV" (its
    # 90-line-cropped burst mosaic) and geocodes onto the one tile's DEM grid.
    code = (
        "import time, sarsen\n"
        f"p = sarsen.Sentinel1SarProduct({str(safe)!r}, 'IW2/VV')\n"
        "t = time.perf_counter()\n"
        f"sarsen.terrain_correction(p, {str(dem)!r}, output_urlpath={str(out / 'gtc.tif')!r})\n"
        "print('SARSEN_S', time.perf_counter() - t)\n"
    )
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=int(os.environ.get("BENCH_SARSEN_TIMEOUT", "900")))
    except subprocess.TimeoutExpired:
        return None
    for line in r.stdout.splitlines():
        if line.startswith("SARSEN_S"):
            return float(line.split()[1])
    print("sarsen failed:", r.stderr[-2000:], file=sys.stderr)
    return None


def main() -> None:
    from m3leo_tiles.sar import pipeline

    out = Path(tempfile.mkdtemp(prefix="bench_s1_"))
    try:
        sim = _simulated_pair(out / "sim")
        if sim is None:
            (out / "standin").mkdir()
            safes, height, source = _standin_pair(out / "standin")
            burst = 4
        else:
            safes, height, source = sim
            burst = None
        tiles, burst = _burst_tiles(safes[0], "IW2", burst)
        print(f"data: {source}; {len(tiles)} candidate tiles", file=sys.stderr)
        if isinstance(height, str):  # a DEM GeoTIFF (simulator)
            from m3leo_tiles.sar.dem import GeoTiffDem

            dem_tif = GeoTiffDem(height)
            tiles = [t for t in tiles if dem_tif.covers(t.grid)]

            def dem(grid: GeoBox) -> np.ndarray:
                return dem_tif(grid)

            height = float(np.nanmedian(dem_tif(tiles[len(tiles) // 2].grid)))
        else:
            def dem(grid: GeoBox) -> np.ndarray:
                return np.full(grid.shape, height)

        io_floor = _io_floor(safes, "IW2", burst)
        # warm the Numba caches and metadata outside the timed run (first-call JIT compile)
        pipeline.process_pair(str(safes[0]), str(safes[1]), tiles[:1], dem, swaths=["IW2"])
        pipeline.STAGES.clear()
        t0 = time.perf_counter()
        res = pipeline.process_pair(str(safes[0]), str(safes[1]), tiles, dem, swaths=["IW2"])
        seconds = time.perf_counter() - t0
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        stages = {k: round(v, 3) for k, v in pipeline.STAGES.items()}
        n_tiles = len(res)
        px = n_tiles * 448 * 448
        covered = float(np.mean([np.isfinite(r["s1grd_ref"][0]).mean() for r in res.values()]))
        coh = np.concatenate([r["s1coh"][0][np.isfinite(r["s1coh"][0])] for r in res.values()])
        # sarsen on the most covered tile
        best = max(res, key=lambda k: np.isfinite(res[k]["s1grd_ref"][0]).mean())
        tile = next(t for t in tiles if t.id == best)
        sarsen_s = None if os.environ.get("BENCH_NO_SARSEN") else _sarsen(
            safes[0], tile, dem(tile.grid), burst, out)
        ours_pps = px / seconds
        sarsen_pps = (448 * 448 / sarsen_s) if sarsen_s else None
        rec = {
            "name": "s1",
            "seconds": round(seconds, 2),
            "io_floor_s": round(io_floor, 3),
            "ratio_to_floor": round(seconds / io_floor, 1),
            "sarsen_s": None if sarsen_s is None else round(sarsen_s, 2),
            "speedup_vs_sarsen": None if sarsen_pps is None else round(ours_pps / sarsen_pps, 1),
            "peak_gb": round(peak_gb, 2),
            "stages": stages,
            "tiles": n_tiles,
            "mean_tile_coverage": round(covered, 3),
            "ours_px_per_s": round(ours_pps),
            "sarsen_px_per_s": None if sarsen_pps is None else round(sarsen_pps),
            "coh_vv_mean": round(float(coh.mean()), 3),
            "data": source,
            "cpus": os.cpu_count(),
        }
        print(json.dumps(rec))
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
