"""A picture of a grid: the region outline, its tiles, coloured by split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import shapely

SPLIT_COLOURS = {"train": "#4c78a8", "val": "#f58518", "test": "#54a24b", "": "#bbbbbb"}


def save_png(fig: Any, out: str | Path, dpi: int) -> Path:
    """Write a figure to a temporary name and rename it: a killed run leaves no half PNG."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    tmp.replace(out)
    return out


def preview_grid(gdf: Any, aoi: shapely.Geometry, out: str | Path, title: str = "") -> Path:
    """The grid GeoDataFrame's tiles over the AOI outline, coloured by split, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(9, 7))
    colours = [SPLIT_COLOURS.get(s, "#999999") for s in gdf["split"]]
    if len(gdf) <= 20000:
        # tiles cut at the antimeridian are MultiPolygons: one patch per part
        verts, fc = [], []
        for g, colour in zip(gdf.geometry, colours, strict=True):
            for part in shapely.get_parts(g):
                verts.append(np.asarray(part.exterior.coords))
                fc.append(colour)
        ax.add_collection(PolyCollection(verts, facecolors=fc, edgecolors="k",
                                         linewidths=0.2 if len(gdf) < 2000 else 0.0, alpha=0.8))
    else:
        from .tiles import lonlat_centres

        # big grids: one square marker per tile centre, sized to the tile on screen
        x, y = lonlat_centres(np.asarray(gdf.geometry.values))
        b = gdf.geometry.bounds
        ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
        ax.set_ylim(y.min() - 0.5, y.max() + 0.5)
        lat = float(np.mean(ax.get_ylim()))
        ax.set_aspect(1 / max(np.cos(np.radians(lat)), 0.1))
        fig.canvas.draw()
        width_pt = ax.get_window_extent().width * 72 / fig.dpi
        pt_per_deg = width_pt / (x.max() - x.min() + 1.0)
        tile_deg = float(np.median(b.maxx - b.minx))
        ax.scatter(x, y, c=colours, s=(1.4 * tile_deg * pt_per_deg) ** 2, marker="s",
                   linewidths=0)
    for poly in getattr(aoi, "geoms", [aoi]):
        if poly.geom_type == "Polygon":
            x, y = poly.exterior.xy
            ax.plot(x, y, color="k", lw=0.8)
    ax.autoscale()
    lat = float(np.mean(ax.get_ylim()))
    ax.set_aspect(1 / max(np.cos(np.radians(lat)), 0.1))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    zones = sorted(set(gdf["epsg"])) if len(gdf) else []
    ax.set_title(f"{title}: {len(gdf):,} tiles in {len(zones)} UTM zone(s)")
    present = [s for s in SPLIT_COLOURS if s in set(gdf["split"])]
    if present:
        ax.legend(handles=[Patch(color=SPLIT_COLOURS[s], label=s or "no split")
                           for s in present], loc="lower left")
    fig.tight_layout()
    return save_png(fig, out, dpi=100)
