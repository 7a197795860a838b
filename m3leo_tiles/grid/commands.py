"""`grid` and `regions`."""

from __future__ import annotations

import time

import click

from ..errors import BadInput
from ..options import tile_size_opt


def _tile_size(size: int) -> int:
    from .tiles import check_tile_size

    try:
        return check_tile_size(size)
    except ValueError as e:
        raise BadInput(str(e)) from None


@click.command()
@click.option("--region", "-r", help="Built-in region (see `m3leo-tiles regions`) or an AOI "
              "file: GeoJSON, WKT or GeoParquet, EPSG:4326.")
@tile_size_opt
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="GeoParquet to write (one row per tile).")
@click.option("--split-angle", type=float, help="Direction of the split stripes in degrees "
              "(default: the region's M3LEO angle, else 9).")
@click.option("--split-bands", type=int, default=60, show_default=True,
              help="Number of split stripes.")
@click.option("--split-pct", default="60,20,20", show_default=True,
              help="train,val,test percentages.")
@click.option("--splits-csv", type=click.Path(dir_okay=False),
              help="Take splits from a CSV of id,split instead of stripes.")
@click.option("--from-geojson", "from_geojson", type=click.Path(dir_okay=False),
              help="Adopt a published M3LEO/geetiles tile GeoJSON (identifier + polygons).")
@click.option("--preview", type=click.Path(dir_okay=False),
              help="Also draw the region, its tiles and splits to this PNG.")
def grid(region, tile_size, out, split_angle, split_bands, split_pct, splits_csv, from_geojson,
         preview):
    """Cut a region or AOI into tiles and write them as a GeoParquet GeoDataFrame.

    Tiles are 4480 m squares of each UTM zone's lattice, anchored at the zone's origin, with
    ids like 17N-0089-0745 (zone, column, row) that are the same whichever AOI produced them.
    Columns: id, zone, hemisphere, epsg, col, row, xmin ymin xmax ymax (UTM metres),
    area_km2 (true area), split, geometry (lon/lat polygon).
    """
    from .build import build_grid, write_grid
    from .regions import load_aoi
    from .splits import DEFAULT_ANGLES, band_splits, csv_splits, parse_pct

    t0 = time.perf_counter()
    size = _tile_size(tile_size)
    pct = parse_pct(split_pct)
    if not region and not from_geojson:
        raise BadInput("give --region (a name or AOI file) or --from-geojson")
    if from_geojson:
        from .compat import adopt_geojson

        gdf = adopt_geojson(from_geojson)
        name, aoi = (load_aoi(region) if region else
                     (from_geojson.rsplit("/", 1)[-1].split(".")[0], gdf.union_all()))
    else:
        name, aoi = load_aoi(region)
        gdf = build_grid(aoi, size)
    if gdf.empty:
        raise BadInput(f"{name}: no tiles (is the AOI in lon/lat degrees?)")
    if splits_csv:
        gdf["split"] = csv_splits(gdf["id"], splits_csv)
    elif not from_geojson or (gdf["split"] == "").all():
        angle = split_angle if split_angle is not None else DEFAULT_ANGLES.get(name, 9.0)
        gdf["split"] = band_splits(gdf.geometry.values, angle, split_bands, pct)
    write_grid(gdf, out)
    if preview:
        from .preview import preview_grid

        preview_grid(gdf, aoi, preview, title=name)
    shares = gdf["split"].value_counts(normalize=True)
    share_txt = " ".join(f"{k} {100 * v:.1f}%" for k, v in shares.items())
    click.echo(f"{name}: {len(gdf):,} tiles in {gdf['epsg'].nunique()} CRS(s), "
               f"{gdf['area_km2'].sum():,.0f} km2, {share_txt} -> {out} "
               f"({time.perf_counter() - t0:.1f} s)")


@click.command()
@tile_size_opt
def regions(tile_size):
    """List the built-in regions with their area and tile count (and M3LEO's)."""
    from .summary import M3LEO_TILES, summaries

    try:  # stored figures need no check; computing them checks the size
        rows = summaries(tile_size)
    except ValueError as e:
        raise BadInput(str(e)) from None
    click.echo(f"{'region':<13} {'area km2':>12} {'tiles':>9} {'M3LEO':>9}")
    for r in rows:
        click.echo(f"{r.name:<13} {r.area_km2:>12,.0f} {r.tiles:>9,} {M3LEO_TILES[r.name]:>9,}")


COMMANDS = [grid, regions]
