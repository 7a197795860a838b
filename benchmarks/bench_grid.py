"""Grid building: ours vs geetiles' `geet grid` on the same AOI, and all six regions.

AOI: POLYGON((-100 30,-96 30,-96 34,-100 34,-100 30)), chip size 4480 m.
Last line: {"name": "grid", "ours_s", "geetiles_s", "ratio" (geetiles_s / ours_s), "tiles",
"all_regions_s"}.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import shapely

from m3leo_tiles.grid.build import build_grid
from m3leo_tiles.grid.regions import REGIONS, region_geometry

WKT = "POLYGON((-100 30,-96 30,-96 34,-100 34,-100 30))"


def time_geetiles(tmp: Path) -> tuple[float | None, int | None]:
    geet = shutil.which("geet") or str(Path(sys.executable).parent / "geet")
    if not Path(geet).exists():
        return None, None
    (tmp / "aoi.wkt").write_text(WKT)
    t0 = time.perf_counter()
    subprocess.run([geet, "grid", "--aoi_wkt_file", str(tmp / "aoi.wkt"), "--chip_size_meters",
                    "4480", "--aoi_name", "texas", "--dest_dir", str(tmp)], check=True,
                   capture_output=True)
    dt = time.perf_counter() - t0
    import geopandas as gpd

    n = len(gpd.read_file(next(tmp.glob("texas_partitions_aschips_*.geojson"))))
    return dt, n


def main() -> None:
    aoi = shapely.from_wkt(WKT)
    build_grid(shapely.box(0, 0, 0.1, 0.1))  # warm-up: imports and PROJ database
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        gdf = build_grid(aoi)
        runs.append(time.perf_counter() - t0)
    ours = min(runs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    try:
        geet_s, geet_n = time_geetiles(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    total = 0
    for name in REGIONS:
        total += len(build_grid(region_geometry(name)))
    all_s = time.perf_counter() - t0
    print(f"texas box: ours {len(gdf)} tiles in {ours:.3f} s; geetiles {geet_n} tiles in "
          f"{geet_s if geet_s is None else round(geet_s, 1)} s; six regions {total:,} tiles "
          f"in {all_s:.1f} s")
    print(json.dumps({"name": "grid", "ours_s": round(ours, 4),
                      "geetiles_s": None if geet_s is None else round(geet_s, 2),
                      "ratio": None if geet_s is None else round(geet_s / ours, 1),
                      "tiles": len(gdf), "geetiles_tiles": geet_n,
                      "all_regions_s": round(all_s, 2), "all_regions_tiles": total}))


if __name__ == "__main__":
    main()
