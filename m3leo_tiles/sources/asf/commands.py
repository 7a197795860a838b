"""`m3leo-tiles s1 ...`: plan Sentinel-1 pairs (search + pairing + tiles) without downloading."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click
import shapely

from ...errors import BadInput
from ...periods import DateWindow
from ...s1.archive import scan_archive
from ...s1.pairing import POLICIES, common_bursts, pair_footprint


def _aoi(region: str | None, aoi: str | None) -> tuple[str, shapely.Geometry]:
    if bool(region) == bool(aoi):
        raise BadInput("give exactly one of --region or --aoi")
    from ...grid.regions import load_aoi

    return load_aoi(str(region or aoi))


def _tiles(geom: shapely.Geometry) -> list:
    """The region's tiles as TileRefs."""
    from ...grid.build import build_grid
    from ...grid.tileref import grid_table_to_refs

    return grid_table_to_refs(build_grid(geom))


def plan_rows(pairs) -> list[dict]:
    rows = []
    for p in pairs:
        rows.append({
            "label": p.label, "dt_days": p.dt_days,
            "platform": f"{p.reference.platform}/{p.secondary.platform}",
            "relative_orbit": p.reference.relative_orbit,
            "pass_direction": p.reference.pass_direction,
            "bursts": list(common_bursts(p.reference, p.secondary)),
            "reference": p.reference.name, "secondary": p.secondary.name,
            "reference_url": p.reference.url, "secondary_url": p.secondary.url,
            "reference_path": p.reference.path, "secondary_path": p.secondary.path,
            "reference_size": p.reference.size, "secondary_size": p.secondary.size,
            "reference_md5": p.reference.md5, "secondary_md5": p.secondary.md5,
            "reference_start": p.reference.start, "secondary_start": p.secondary.start,
            "n_tiles": len(p.tiles), "tiles": list(p.tiles),
            "footprint_wkt": shapely.to_wkt(pair_footprint(p), rounding_precision=6),
        })
    return rows


@click.group()
def s1() -> None:
    """Sentinel-1 IW SLC pairs from ASF or a local SAFE archive."""


@s1.command("search")
@click.option("--region", "-r", help="Built-in region name.")
@click.option("--aoi", type=click.Path(dir_okay=False), help="AOI file (GeoJSON, GeoParquet).")
@click.option("--period", default=None,
              help="Window: 2025, 2025-MAM, 2025-04, A/B (dates inclusive). Default: the "
              "archive's whole time span with --archive, else last-12-months.")
@click.option("--pairs", "policy", default="sequential", show_default=True,
              help=f"Pair policy: {' | '.join(POLICIES)}.")
@click.option("--max-dt", type=int, help="Longest temporal baseline in days.")
@click.option("--season", help="Seasonal policy: keep pairs whose mid-date is in this season "
              "(DJF, MAM, JJA, SON) or window.")
@click.option("--burst", is_flag=True, help="Pair single IW bursts instead of SLC frames (a CMR "
              "burst search: a few ms per burst, for small areas; `fetch` plans frames and "
              "fetches their bursts).")
@click.option("--archive", type=click.Path(), help="Pair SAFE folders/zips in DIR (no network).")
@click.option("--host", help="CMR host to search (default: NASA CMR).")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="Plan as Parquet: one row per pair, with products and tiles.")
def search(region, aoi, period, policy, max_dt, season, burst, archive, host, out):
    """Find products, form pairs and the tiles each fully covers; download nothing."""
    if policy not in POLICIES:
        raise BadInput(f"unknown pair policy {policy!r}: use one of {', '.join(POLICIES)}")
    if max_dt is not None and max_dt < 1:
        raise BadInput(f"--max-dt must be at least 1 day, not {max_dt}")
    if archive and not Path(archive).is_dir():
        raise BadInput(f"S1 archive {archive!r} is not a directory")
    scanned = scan_archive(archive) if archive else None
    if period is not None:
        window = DateWindow.parse(period)
    elif scanned:  # the archive's whole time span (pairs never reach outside it)
        window = DateWindow(min(p.date for p in scanned),
                            max(p.date for p in scanned) + dt.timedelta(days=1))
    else:
        window = DateWindow.parse("last-12-months")
    name, geom = _aoi(region, aoi)
    from . import AsfSource

    src = AsfSource(archive=archive, pairs=policy, max_dt=max_dt, pair_bursts=burst, host=host,
                    season=season)
    tiles = _tiles(geom)
    pairs = src.find_pairs([window], tiles, aoi=geom)
    import pandas as pd

    df = pd.DataFrame(plan_rows(pairs), columns=list(plan_rows([_dummy()])[0]) if not pairs
                      else None)
    out_p = Path(out)
    tmp = out_p.with_name(f".{out_p.name}.{os.getpid()}.tmp")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, out_p)
    finally:
        tmp.unlink(missing_ok=True)
    for path, why in src.skipped:
        click.echo(f"skipped {Path(path).name}: {why}", err=True)
    hint = _window_hint(scanned, window, geom) if scanned is not None else None
    if hint:
        click.echo(hint, err=True)
    n_tiles = len({t for p in pairs for t in p.tiles})
    tracks = sorted({f"{p.reference.relative_orbit}{p.reference.pass_direction[:1]}"
                     for p in pairs})
    click.echo(f"{name}: {len(pairs)} pair(s) ({policy}) over {len(tracks)} track(s) "
               f"{', '.join(tracks)}; {n_tiles:,} tile(s) covered of {len(tiles):,}; "
               f"{window.span()} -> {out}")


@s1.command("assemble")
@click.argument("folder", type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Where the SAFE folders go.")
def assemble(folder, out):
    """SAFE folders from ASF burst downloads in FOLDER (<burst granule>.tiff and
    <SLC name>_<POL>.xml), one per run of consecutive bursts, for the SAR processor."""
    from ...s1.burstfiles import assemble_folder
    from ...s1.bursts import BurstError

    try:
        safes = assemble_folder(folder, out)
    except BurstError as e:
        raise BadInput(str(e)) from None
    if not safes:
        raise BadInput(f"no ASF burst TIFF (S1_<id>_<swath>_<time>_<pol>_<id>-BURST.tiff) in "
                       f"{folder}")
    for path in safes:
        click.echo(path)


def _window_hint(products, window: DateWindow, aoi: shapely.Geometry) -> str | None:
    """One line saying why nothing matched: no product in the window, or none over the AOI."""
    if not products:
        return None
    span = (f"{min(p.date for p in products)}..{max(p.date for p in products)}")
    inside = [p for p in products if window.contains(p.date)]
    if not inside:
        return (f"hint: the archive's {len(products)} product(s) span {span}; none falls in "
                f"{window.span()}: widen --period or omit it")
    if not any(p.footprint.intersects(aoi) for p in inside):
        return (f"hint: {len(inside)} product(s) in the window, none intersects the AOI "
                f"(archive span {span})")
    return None


def _dummy():
    """A pair with the plan's columns, for an empty Parquet with the right schema."""
    from ...s1.products import S1Pair, S1Product

    t = dt.datetime(2000, 1, 1)
    p = S1Product("", "", t, t, 0, 0, "", (), shapely.Polygon([(0, 0), (1, 0), (1, 1)]))
    return S1Pair(p, p)


COMMANDS = [s1]
