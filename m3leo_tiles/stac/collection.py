"""A store as a STAC Collection: datacube fields, one asset per modality group, the tile grid.

Each modality group is an asset whose href is the store itself and whose `xarray:open_kwargs`
say how to open it (`xarray.open_zarr(href, **open_kwargs)`: its group, consolidated
metadata); its `cube:dimensions` and `cube:variables` give that group's own axes. The
collection-level datacube fields describe all groups at once: one variable per modality, the
period dimension spanning every period. `y` and `x` are pixel rows and columns of a tile's own
grid (its UTM CRS and corner are per tile, in the tiles asset), hence not `spatial` dimensions.
The grid goes beside the collection as `tiles.parquet` (GeoParquet, lon/lat footprints).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pystac

from ..errors import BadInput
from ..modalities import REGISTRY
from ..periods import Period, period_from_label
from ..store.store import TileStore
from .origins import origins_of
from .validate import EXTENSIONS, validate

GRID_FILE = "tiles.parquet"
COLLECTION_FILE = "collection.json"


def _iso(d: dt.date) -> str:
    return f"{d.isoformat()}T00:00:00Z"


def _interval(p: Period) -> str:
    return f"{_iso(p.start)}/{_iso(p.end)}"


def _dated(labels: list[str]) -> list[Period]:
    """The periods with dates among the labels (not 'static', nor a per-track label such as
    s1geom's 't108A', which names an orbit track, not a time)."""
    out = []
    for label in labels:
        try:
            p = period_from_label(str(label))
        except BadInput:
            continue
        if p.kind != "static":
            out.append(p)
    return out


def _dims(tile_ids: list[str], periods: list[Period], bands: list[str], px: int,
          static: bool) -> dict[str, Any]:
    dims: dict[str, Any] = {
        "tile": {"type": "other", "description": "tile, in store order: its id (UTM zone, "
                 f"column, row; {tile_ids[0] if tile_ids else '-'} first) and grid are the "
                 "tiles asset's row of the same index (the group's `tile` array holds the ids)",
                 "extent": [0, max(len(tile_ids) - 1, 0)], "step": 1},
        "period": {"type": "temporal", "description": "period label: a year, season, month, "
                   "interferometric pair, 'static' or an orbit track (s1geom); `values` are "
                   "the dated ones as ISO 8601 intervals, in label order",
                   "extent": ([_iso(min(p.start for p in periods)),
                               _iso(max(p.end for p in periods))] if periods
                              else [None, None])},
        "band": {"type": "bands", "values": bands},
        "y": {"type": "other", "extent": [0, px - 1], "step": 1, "unit": "pixel",
              "description": "row of the tile's grid, from its upper edge"},
        "x": {"type": "other", "extent": [0, px - 1], "step": 1, "unit": "pixel",
              "description": "column of the tile's grid, from its left edge"},
    }
    if periods and not static:
        dims["period"]["values"] = [_interval(p) for p in periods]
    return dims


def _variable(name: str, tile_size: int) -> dict[str, Any]:
    m = REGISTRY.get(name)
    if m is None:  # a plugin's modality that is not registered in this process
        return {"dimensions": ["tile", "period", "band", "y", "x"], "variable_type": "data",
                "description": f"{name} (not a registered modality here)"}
    return {"dimensions": ["tile", "period", "band", "y", "x"], "variable_type": "data",
            "description": f"{m.description or m.name}; {m.res} m pixels "
                          f"({tile_size // m.res} x {tile_size // m.res} per tile); bands "
                          f"{', '.join(m.bands)}",
            "unit": m.units, "m3leo:resolution_m": m.res, "m3leo:bands": list(m.bands),
            "m3leo:dtype": m.dtype, "m3leo:period_kind": m.period_kind}


def build(url: str) -> pystac.Collection:
    """The collection describing the store at `url` (its tiles asset not yet written)."""
    from ..grid.tileref import refs_from_table

    store = TileStore.open(url, mode="r")
    table = store.tile_table()
    ids = [str(t) for t in table["id"]]
    refs = refs_from_table(table)
    bounds = [r.polygon.bounds for r in refs]
    bbox = ([min(b[0] for b in bounds), min(b[1] for b in bounds),
             max(b[2] for b in bounds), max(b[3] for b in bounds)] if bounds
            else [-180.0, -90.0, 180.0, 90.0])
    mods = store.modalities()
    labels = {m: store.periods(m) for m in mods}
    every = sorted({p for ls in labels.values() for p in _dated(ls)}, key=lambda p: p.start)
    start = dt.datetime.combine(every[0].start, dt.time(), dt.UTC) if every else None
    end = dt.datetime.combine(every[-1].end, dt.time(), dt.UTC) if every else None
    origins = origins_of(mods)
    licences = {o.licence for o in origins}
    region, size = store.info.region, store.info.tile_size
    c = pystac.Collection(
        id=f"m3leo-tiles-{region}",
        title=f"m3leo-tiles store: {region}",
        description=(f"Multi-modal Earth-observation tiles of region {region}: {len(ids):,} "
                     f"tiles of {size} m on one UTM lattice, {len(mods)} modalities in one "
                     "Zarr v3 store (one group per modality, arrays (tile, period, band, y, "
                     "x), one chunk per tile and period). Made with m3leo-tiles."),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]),
                             pystac.TemporalExtent([[start, end]])),
        license=licences.pop() if len(licences) == 1 and "other" not in licences else "other",
        keywords=["M3LEO", "Sentinel-1", "Sentinel-2", "SAR", "InSAR", "Zarr", "datacube"],
        providers=[pystac.Provider(o.producer, roles=[pystac.ProviderRole.PRODUCER,
                                                      pystac.ProviderRole.LICENSOR],
                                   url=o.licence_url) for o in origins]
        + [pystac.Provider("m3leo-tiles", roles=[pystac.ProviderRole.PROCESSOR])],
    )
    for o in origins:
        c.add_link(pystac.Link("license", o.licence_url, media_type="text/html",
                               title=f"{o.title}: {o.licence}"))
    c.stac_extensions = sorted(EXTENSIONS)
    px = size // min((REGISTRY[m].res for m in mods if m in REGISTRY), default=10)
    all_bands = sorted({b for m in mods for b in store.bands(m)})
    c.extra_fields["cube:dimensions"] = _dims(ids, every, all_bands, px,
                                              static=not every)
    c.extra_fields["cube:variables"] = {m: _variable(m, size) for m in mods}
    c.extra_fields["sci:citation"] = (f"m3leo-tiles store of region {region}, built from: "
                                      + "; ".join(o.title for o in origins) + ".")
    c.extra_fields["sci:publications"] = [{"citation": o.citation, **({"doi": o.doi}
                                                                       if o.doi else {})}
                                          for o in origins]
    for m in mods:
        periods = _dated(labels[m])
        mpx = size // REGISTRY[m].res if m in REGISTRY else px
        asset = pystac.Asset(
            href=url, media_type="application/vnd+zarr", roles=["data"],
            title=f"{m}: Zarr group {m} of the store",
            extra_fields={
                "xarray:open_kwargs": {"group": m, "consolidated": True,
                                       "zarr_format": 3},
                "cube:dimensions": _dims(ids, periods, store.bands(m), mpx,
                                         static=not periods),
                "cube:variables": {m: _variable(m, size)},
                "m3leo:periods": labels[m],
            })
        c.add_asset(m, asset)
    c.add_asset("tiles", pystac.Asset(
        href=f"./{GRID_FILE}", media_type="application/vnd.apache.parquet",
        roles=["metadata"], title="Tile grid (GeoParquet): id, epsg, upper-left corner, "
        "pixel size, footprint in lon/lat"))
    return c


def write_grid(url: str, out: Path) -> Path:
    """The store's tile table with lon/lat footprints as GeoParquet (written, then renamed)."""
    import geopandas as gpd

    from ..grid.tileref import refs_from_table

    store = TileStore.open(url, mode="r")
    table = store.tile_table()
    gdf = gpd.GeoDataFrame(table, geometry=[r.polygon for r in refs_from_table(table)],
                           crs="EPSG:4326")
    path = out / GRID_FILE
    tmp = out / f".{GRID_FILE}.{os.getpid()}.tmp"
    try:
        gdf.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write(url: str, out_dir: str) -> Path:
    """Validate the collection, then write tiles.parquet and collection.json into `out_dir`."""
    out = Path(out_dir)
    c = build(url)
    doc = c.to_dict(include_self_link=False, transform_hrefs=False)
    validate(doc)
    out.mkdir(parents=True, exist_ok=True)
    write_grid(url, out)
    path = out / COLLECTION_FILE
    tmp = out / f".{COLLECTION_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["COLLECTION_FILE", "GRID_FILE", "build", "write", "write_grid"]
