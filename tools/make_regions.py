"""Recipe for the six built-in region polygons (m3leo_tiles/data/regions/*.geojson).

Natural Earth admin-0 country shapes (public domain; read from the copy geetiles ships as
natural_earth.parquet) clipped with the hand-drawn polygons below, which follow M3LEO's AOI map
(M3LEO never published its AOI polygons). The clips were tuned until our tile counts landed
near M3LEO's. Run: .venv/bin/python tools/make_regions.py [--count]
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

import geopandas as gpd
import shapely

OUT = Path(__file__).resolve().parents[1] / "m3leo_tiles" / "data" / "regions"


def countries(names: list[str]) -> shapely.Geometry:
    ne = gpd.read_parquet(resources.files("geetiles") / "data" / "natural_earth.parquet")
    sel = ne[ne.SOVEREIGNT.isin(names)]
    missing = set(names) - set(sel.SOVEREIGNT)
    if missing:
        raise SystemExit(f"not in Natural Earth: {missing}")
    return shapely.union_all(sel.geometry.values)


EUROPE = ["France", "Spain", "Portugal", "Italy", "Germany", "Poland", "United Kingdom",
          "Ireland", "Netherlands", "Belgium", "Luxembourg", "Switzerland", "Austria",
          "Czechia", "Slovakia", "Hungary", "Slovenia", "Croatia", "Bosnia and Herzegovina",
          "Republic of Serbia", "Montenegro", "Kosovo", "Albania", "North Macedonia", "Greece",
          "Bulgaria", "Romania", "Denmark", "Norway", "Sweden", "Finland", "Estonia", "Latvia",
          "Lithuania", "Liechtenstein", "Andorra", "Monaco", "San Marino", "Malta", "Moldova"]
MIDDLEEAST = ["Turkey", "Iran", "Iraq", "Syria", "Jordan", "Lebanon", "Israel",
              "Armenia", "Azerbaijan", "Georgia", "Cyprus", "Northern Cyprus"]
ANDES = ["Colombia", "Ecuador", "Peru", "Bolivia", "Chile", "Argentina", "Venezuela"]


def build() -> dict[str, shapely.Geometry]:
    usa = countries(["United States of America"])
    # conus: the southern states plus the Atlantic seaboard
    conus_clip = shapely.Polygon([(-125, 24), (-125, 36.2), (-84, 36.2), (-81.5, 39.5),
                                  (-77.5, 42.5), (-74.5, 45.2), (-70.5, 47.7), (-66, 47.7),
                                  (-66, 24)])
    europe_clip = shapely.Polygon([(-11, 34), (-11, 60.5), (32, 60.5), (32, 34)])
    pakin_clip = shapely.Polygon([(60, 23), (60, 38), (98, 38), (98, 20.5), (67, 20.5)])
    china_clip = shapely.Polygon([(95.0, 18), (95.0, 44.5), (135, 44.5), (135, 18)])
    andes_line = shapely.LineString([(-73.0, 11.5), (-76.0, 6.0), (-78.2, 0.0), (-78.5, -6.0),
                                     (-75.5, -12.0), (-70.5, -17.5), (-68.5, -23.0),
                                     (-69.5, -30.0), (-70.5, -36.0), (-71.5, -41.0)])
    shapes = {
        "conus": usa & conus_clip,
        "europe": countries(EUROPE) & europe_clip,
        "middleeast": countries(MIDDLEEAST),
        "pakin": countries(["Pakistan", "India"]) & pakin_clip,
        "china": countries(["China"]) & china_clip,
        "southamerica": countries(ANDES) & andes_line.buffer(1.3, quad_segs=4),
    }
    out = {}
    for k, g in shapes.items():
        g = shapely.make_valid(shapely.simplify(g, 0.01, preserve_topology=True))
        polys = [p for p in getattr(g, "geoms", [g]) if p.geom_type == "Polygon" and p.area > 0.002]
        out[k] = shapely.MultiPolygon(polys)
    return out


def main() -> None:
    shapes = build()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, g in shapes.items():
        fc = {"type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {"name": name},
            "geometry": json.loads(shapely.to_geojson(shapely.set_precision(g, 1e-4)))}]}
        (OUT / f"{name}.geojson").write_text(json.dumps(fc, separators=(",", ":")))
    if "--count" in sys.argv:
        import time

        from m3leo_tiles.grid.build import count_tiles
        from m3leo_tiles.grid.regions import M3LEO_TILES

        for name, g in shapes.items():
            t0 = time.perf_counter()
            n = count_tiles(g)
            print(f"{name:<13} {n:>8}  M3LEO {M3LEO_TILES[name]:>8}  "
                  f"{100 * (n / M3LEO_TILES[name] - 1):+5.1f}%  {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
