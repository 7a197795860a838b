"""Quicklook PNGs: every modality of a tile side by side, and an overview map of the tiles.

A picture answers "did the layers land on the same square?" faster than any number: all
panels share the tile's pixel grid, so features line up across them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import shapely

from .grid.preview import save_png
from .store.store import TileStore
from .store.urls import zarr_store

# ESA WorldCover classes and their official colours
WORLDCOVER = {10: ("tree", "#006400"), 20: ("shrub", "#ffbb22"), 30: ("grass", "#ffff4c"),
              40: ("crop", "#f096ff"), 50: ("built", "#fa0000"), 60: ("bare", "#b4b4b4"),
              70: ("snow", "#f0f0f0"), 80: ("water", "#0064c8"), 90: ("wetland", "#0096a0"),
              95: ("mangrove", "#00cf75"), 100: ("moss", "#fae6a0")}


def _panels(store: TileStore, tile: str) -> list[dict]:
    import zarr

    ti = store.tile_index()[tile]
    zs = zarr_store(store.url, read_only=True)
    out = []
    for m in store.modalities():
        arr = zarr.open_array(zs, path=f"{m}/{m}", mode="r")
        periods = store.periods(m)
        bands = store.bands(m)
        attrs = dict(arr.attrs)
        for pi, p in enumerate(periods):
            data = np.asarray(arr[ti, pi])
            fill = arr.fill_value
            valid = ~np.isnan(data) if data.dtype.kind == "f" else data != fill
            if not valid.any():
                continue
            out.append({"modality": m, "period": p, "bands": bands, "data": data,
                        "valid": valid, "attrs": attrs})
    return out


def _draw(ax, fig, panel: dict) -> None:
    import matplotlib.colors as mcolors

    m, data, bands, valid = panel["modality"], panel["data"], panel["bands"], panel["valid"]
    title = f"{m} {panel['period']}"
    if m in ("s2", "s2rgb") or {"B4", "B3", "B2"} <= set(bands):
        idx = [bands.index(b) for b in (("B4", "B3", "B2") if "B4" in bands else
                                        ("red", "green", "blue"))]
        rgb = data[idx].astype(np.float32)
        rgb *= 1e-4 if m == "s2" else 1 / 255
        rgb = np.clip(rgb / (0.3 if m == "s2" else 1.0), 0, 1)
        ax.imshow(np.moveaxis(rgb, 0, -1))
        ax.set_title(f"{title}\nRGB (B4 B3 B2, 0-0.3)" if m == "s2" else f"{title}\nRGB")
        return
    # the first band that holds data (s1grd-ee may have no ascending pass, say); seasonal
    # coherence shows its 12-day median (GSSIC's headline baseline) when there is one
    k = next((i for i in range(len(bands)) if valid[i].any()), 0)
    if m in ("s1cohs", "gssic"):
        k = next((bands.index(b) for b in ("VV_12", *bands) if b in bands and
                  b[:3] in ("VV_", "VH_") and b[3:].isdigit() and valid[bands.index(b)].any()),
                 k)
    b0 = np.where(valid[k], data[k].astype(np.float32), np.nan)
    units = panel["attrs"].get("units", "")
    if m == "esawc":
        codes = sorted(WORLDCOVER)
        cmap = mcolors.ListedColormap([WORLDCOVER[c][1] for c in codes])
        norm = mcolors.BoundaryNorm([c - 5 for c in codes] + [105], cmap.N)
        im = ax.imshow(b0, cmap=cmap, norm=norm, interpolation="nearest")
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, ticks=codes)
        cb.ax.set_yticklabels([WORLDCOVER[c][0] for c in codes], fontsize=6)
    elif m == "s1ifg":
        im = ax.imshow(b0, cmap="twilight", vmin=-np.pi, vmax=np.pi, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="rad")
    elif m in ("s1coh", "s1cohs", "gssic") and not bands[k].startswith(("AMP", "tau", "inc")):
        im = ax.imshow(b0, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="coherence")
    elif m == "agb":  # ESA CCI Biomass, Mg/ha: 0 is no biomass
        im = ax.imshow(b0, cmap="YlGn", vmin=0, vmax=max(float(np.nanpercentile(b0, 98)), 1.0),
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="Mg/ha")
    elif m in ("s1grd", "s1grd-ee"):
        im = ax.imshow(b0, cmap="gray", vmin=-25, vmax=5)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="dB")
    elif m == "treecover":  # 200 is water in MOD44B
        im = ax.imshow(np.where(b0 <= 100, b0, np.nan), cmap="YlGn", vmin=0, vmax=100,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% tree cover")
    elif m == "dem":
        im = ax.imshow(b0, cmap="terrain")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="m")
    else:
        lo, hi = np.nanpercentile(b0, [2, 98])
        im = ax.imshow(b0, cmap="magma", vmin=lo, vmax=hi)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=units)
    ax.set_title(f"{title}\n{bands[k]}", fontsize=9)


def quicklook_tile(url: str, tile: str, out: str | Path, max_panels: int = 12) -> Path:
    """One PNG with every modality/period of `tile`, each with a title and colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    store = TileStore.open(url, mode="r")
    if tile not in store.tile_index():
        from .errors import BadInput

        raise BadInput(f"tile {tile} is not in {url}")
    panels = _panels(store, tile)[:max_panels]
    n = max(1, len(panels))
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, p in zip(axes.ravel(), panels, strict=False):
        _draw(ax, fig, p)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no data yet", ha="center", va="center")
    fig.suptitle(f"tile {tile} ({store.info.region})", fontsize=12)
    fig.tight_layout()
    return save_png(fig, out, dpi=80)


def overview_map(url: str, out: str | Path, state_path: str | None = None) -> Path:
    """The store's tiles on a lon/lat map, coloured by how many units are done."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .grid.tileref import refs_from_table
    from .runner.state import StateDB
    from .store.urls import default_state_path

    store = TileStore.open(url, mode="r")
    table = store.tile_table()
    refs = refs_from_table(table)
    done: dict[str, int] = {}
    sp = state_path or default_state_path(url)
    if Path(sp).exists():
        db = StateDB(sp, create=False)
        for m in store.modalities():
            for _, t in db.done_units(m):
                done[t] = done.get(t, 0) + 1
        db.close()
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("YlGn")
    top = max(done.values(), default=1)
    for r in refs:
        for part in shapely.get_parts(r.polygon):  # antimeridian tiles come in two parts
            x, y = part.exterior.xy
            ax.fill(x, y, color=cmap(0.15 + 0.85 * done.get(r.id, 0) / top), ec="k", lw=0.4)
    if len(refs) <= 60:
        for r in refs:
            c = max(shapely.get_parts(r.polygon), key=lambda p: p.area).centroid
            ax.text(c.x, c.y, r.id, fontsize=5, ha="center", va="center")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, top))
    fig.colorbar(sm, ax=ax, label="units done (modality x period)")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(f"{store.info.region}: {len(refs)} tiles, {sum(done.values())} units done")
    ax.set_aspect(1 / max(np.cos(np.radians(float(table['lat'].mean()))), 0.1))
    fig.tight_layout()
    return save_png(fig, out, dpi=90)
