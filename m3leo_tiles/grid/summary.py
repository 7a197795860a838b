"""Area and tile count of each built-in region, computed once and kept beside the polygons.

Counting a region's tiles walks every UTM zone it touches (seconds for all six), so `regions`
reads `data/regions/summary.json` instead. Each entry carries the SHA-256 of the polygon file it
was computed from and the tile size: an entry that no longer matches its polygon, or a tile
size the file lacks, is computed afresh (and never written back: the package data is only
rewritten by `python -m m3leo_tiles.grid.summary`, whose output `tests/grid` checks).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from .lattice import DEFAULT_TILE_SIZE

REGIONS = ("conus", "europe", "middleeast", "pakin", "china", "southamerica")
#: M3LEO's unique tile locations per region (its dataset table)
M3LEO_TILES = {"conus": 167_406, "europe": 200_489, "middleeast": 163_986, "pakin": 147_791,
               "china": 285_402, "southamerica": 83_756}
SUMMARY = "summary.json"


@dataclass(frozen=True)
class RegionSummary:
    name: str
    tile_size: int
    area_km2: float
    tiles: int
    sha256: str  # of the polygon file the figures were computed from


def _folder() -> Path:
    return Path(str(resources.files("m3leo_tiles") / "data" / "regions"))


def _digest(name: str) -> str:
    return hashlib.sha256((_folder() / f"{name}.geojson").read_bytes()).hexdigest()


def compute(name: str, tile_size: int) -> RegionSummary:
    """The figures from the polygon itself (geodesic area, tiles of the lattice)."""
    from pyproj import Geod

    from .build import count_tiles
    from .regions import region_geometry

    g = region_geometry(name)
    area = abs(Geod(ellps="WGS84").geometry_area_perimeter(g)[0]) / 1e6
    return RegionSummary(name, tile_size, round(area, 1), count_tiles(g, tile_size),
                         _digest(name))


def _stored() -> dict[tuple[str, int], RegionSummary]:
    path = _folder() / SUMMARY
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["regions"]
    return {(r["name"], r["tile_size"]): RegionSummary(**r) for r in rows}


def summaries(tile_size: int = DEFAULT_TILE_SIZE) -> list[RegionSummary]:
    """Every built-in region's figures: stored ones while their polygon is unchanged."""
    stored = _stored()
    out = []
    for name in REGIONS:
        s = stored.get((name, tile_size))
        out.append(s if s is not None and s.sha256 == _digest(name) else compute(name, tile_size))
    return out


def write(tile_size: int = DEFAULT_TILE_SIZE) -> Path:
    """Recompute every region at `tile_size` and rewrite the stored table (atomically)."""
    path = _folder() / SUMMARY
    rows = [asdict(compute(n, tile_size)) for n in REGIONS]
    tmp = path.with_name(f".{SUMMARY}.tmp")
    tmp.write_text(json.dumps({"regions": rows}, indent=1) + "\n")
    tmp.replace(path)
    return path


if __name__ == "__main__":
    print(write())
