"""Verbs that run and inspect runs: fetch, refresh, status, modalities."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import BadInput
from ..options import state_opt, store_opt, tile_size_opt


def _source_options(pairs: tuple[str, ...]) -> dict[str, dict]:
    """`--source-opt local.root=/data` -> {"local": {"root": "/data"}}."""
    out: dict[str, dict] = {}
    for p in pairs:
        if "=" not in p or "." not in p.split("=", 1)[0]:
            raise BadInput(f"bad --source-opt {p!r}: use SOURCE.KEY=VALUE")
        k, v = p.split("=", 1)
        src, key = k.split(".", 1)
        out.setdefault(src, {})[key] = v
    return out


def print_summary(summary, as_json: bool = False) -> None:
    d = summary.as_dict()
    if as_json:
        click.echo(json.dumps(d))
        return
    click.echo(f"done {d['done']}  nodata {d['nodata']}  failed {d['failed']}  "
               f"already done {d['already_done']}  ({d['work_units']} work units, "
               f"{d['seconds']:.1f} s)")
    for reason, n in d["failed_by_reason"].items():
        click.echo(f"  failed x{n}: {reason}")


def print_plan(runs, as_json: bool = False) -> None:
    """A dry run (or a refresh's, one per job): rows per (modality, period), then costs."""
    from .inputs import human_bytes

    runs = runs if isinstance(runs, list) else [runs]
    if as_json:
        out = [{"rows": [r.__dict__ for r in d.rows], **d.estimate.as_dict()} for d in runs]
        click.echo(json.dumps(out[0] if len(out) == 1 else {"jobs": out}))
        return
    rows = [r for d in runs for r in d.rows]
    click.echo(f"{'modality':<10} {'period':<22} {'source':<12} {'units':>7} {'to fetch':>9} "
               f"{'done':>7}")
    for r in rows:
        click.echo(f"{r.modality:<10} {r.period:<22} {r.source:<12} {r.work_units:>7} "
                   f"{r.tiles_to_fetch:>9} {r.already_done:>7}")
    click.echo(f"{sum(r.tiles_to_fetch for r in rows)} tile-periods to fetch in "
               f"{sum(r.work_units for r in rows)} work units (dry run: nothing written)")
    click.echo(f"\n{'estimate':<10} {'units':>7} {'tile-dates':>10} {'download':>10} "
               f"{'needed':>10} {'EE reqs':>8} {'core-h':>9} {'store':>10}  costs from")
    for d in runs:
        for x in (*d.estimate.layers, d.estimate.total):
            hours = "?" if x.core_hours is None else f"{x.core_hours:.2f}"
            click.echo(f"{x.modality:<10} {x.units:>7} {x.tile_dates:>10} "
                       f"{human_bytes(x.download_bytes):>10} {human_bytes(x.needed_bytes):>10} "
                       f"{x.ee_requests:>8} {hours:>9} {human_bytes(x.store_bytes):>10}  "
                       f"{x.costs_from}")
    if any(d.estimate.total.core_hours is None for d in runs):
        click.echo("core-hours '?': no measured cost for a layer yet: run `m3leo-tiles "
                   "calibrate` (or a first small run)")


@click.command()
@click.option("--region", help="Built-in region name or AOI file (GeoJSON, WKT, GeoParquet). "
              "Needed when the store does not exist yet.")
@click.option("--modality", "-m", "modalities", multiple=True, required=True,
              help="Modality to fetch (repeatable); see `m3leo-tiles modalities`.")
@click.option("--period", default="", help="YYYY, YYYY-MM, YYYY-DJF|MAM|JJA|SON, A/B "
              "(dates, inclusive) or last-N-months. Static modalities need none.")
@click.option("--cadence", type=click.Choice(["annual", "seasonal", "monthly"]),
              help="Composite period for the composite modalities (s2, s2rgb, s1grd, "
              "s1grd-ee) instead of each one's default, e.g. monthly s2; other modalities "
              "keep their own periods.")
@click.option("--tiles", help="Only these tiles: comma-separated ids, a file of ids, or a grid "
              "GeoParquet.")
@click.option("--limit", type=int, help="Only the first N tiles (in id order).")
@click.option("--workers", "-j", type=int, default=1, show_default=True,
              help="Parallel worker processes (loky, longest units first).")
@click.option("--source", help="Source for every modality (default: each modality's own, "
              "see `m3leo-tiles modalities`): local, earthengine, archive, asf or a plugin's.")
@click.option("--source-opt", multiple=True, metavar="SOURCE.KEY=VALUE",
              help="A source option, e.g. local.root=/data/rasters (repeatable).")
@click.option("--ee-project", envvar="EE_PROJECT", metavar="PROJECT",
              help="Google Cloud project registered for Earth Engine (env EE_PROJECT); "
              "credentials come from GOOGLE_APPLICATION_CREDENTIALS or `earthengine "
              "authenticate`.")
@store_opt
@state_opt
@click.option("--scheduler", help="Dask distributed scheduler address (tcp://host:port).")
@click.option("--retry-failed", is_flag=True, help="Also retry units that failed permanently.")
@tile_size_opt
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a tty).")
@click.option("--dry-run", is_flag=True, help="Only show what would be fetched, per modality "
              "and period; writes nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def fetch(region, modalities, period, cadence, tiles, limit, workers, source, source_opt,
          ee_project, store, state, scheduler, retry_failed, tile_size, progress, dry_run,
          as_json):
    """Fetch the missing (tile, modality, period) units of a region into its store.

    Plans what is not done yet, groups it into work units that share a source item, runs
    them in parallel and records every unit in the state database. Safe to re-run and to kill:
    a rerun does only what is missing.
    """
    from .fetch import FetchRequest, parse_tiles_arg
    from .fetch import fetch as do_fetch

    if workers < 1:
        raise BadInput("--workers must be at least 1")
    options = _source_options(source_opt)
    if ee_project:
        options.setdefault("earthengine", {}).setdefault("project", ee_project)
    req = FetchRequest(store=store, region=region, modalities=modalities, period=period,
                       tiles=parse_tiles_arg(tiles), limit=limit, workers=workers, source=source,
                       source_options=options, scheduler=scheduler,
                       state=state, retry_failed=retry_failed, tile_size=tile_size,
                       progress=progress, cadence=cadence, dry_run=dry_run)
    summary = do_fetch(req)
    if dry_run:
        print_plan(summary, as_json)
        return
    print_summary(summary, as_json)
    if summary.failed:
        sys.exit(1)


@click.command()
@click.option("--config", "-c", required=True, type=click.Path(dir_okay=False),
              help="TOML file: store, log, workers, [[job]] region/modalities/period, "
              "[sources.NAME] options.")
@click.option("--progress/--no-progress", default=None)
@click.option("--dry-run", is_flag=True, help="Only show what each job would fetch now.")
def refresh(config, progress, dry_run):
    """Cron entry point: bring every store of a config up to date, incrementally.

    Holds a lock per store (an overlapping run exits 0 saying so), logs JSON lines, and exits
    non-zero only when units failed permanently.

    \b
    crontab:  17 3 * * *  cd /data && m3leo-tiles -q refresh --config m3leo.toml
    """
    from .refresh import plan_refresh
    from .refresh import refresh as do_refresh

    if dry_run:
        print_plan(plan_refresh(config))
        return
    res = do_refresh(config, progress)
    for m, s in res.summaries:
        click.echo(f"{m}: ", nl=False)
        print_summary(s)
    if res.locked:
        click.echo(f"another run holds the lock on {res.locked[0]}; nothing done")
        return
    if res.permanent_failures:
        sys.exit(1)


@click.command()
@store_opt
@state_opt
@click.option("--failed", "show_failed", is_flag=True, help="List failed units and reasons.")
@click.option("--json", "as_json", is_flag=True)
def status(store, state, show_failed, as_json):
    """Per modality and period: done / nodata / failed / missing tile counts."""
    from ..store.store import TileStore
    from ..store.urls import default_state_path
    from .state import StateDB

    s = TileStore.open(store, mode="r")
    state = state or default_state_path(store)
    if not Path(state).exists():
        raise BadInput(f"no state database at {state}")
    db = StateDB(state, create=False)
    ntiles = len(s.tile_ids)
    table: dict[tuple[str, str], dict[str, int]] = {}
    for m in s.modalities():
        for p in s.periods(m):
            table[(m, p)] = {"done": 0, "nodata": 0, "failed": 0}
    for m, p, st, n in db.counts():
        table.setdefault((m, p), {"done": 0, "nodata": 0, "failed": 0})[st] = n
    rows = []
    for (m, p), c in sorted(table.items()):
        rows.append({"modality": m, "period": p, **c,
                     "missing": ntiles - c["done"] - c["nodata"] - c["failed"]})
    if as_json:
        click.echo(json.dumps({"region": s.info.region, "tiles": ntiles, "rows": rows}))
    else:
        click.echo(f"store {store}: region {s.info.region}, {ntiles} tiles")
        click.echo(f"{'modality':<10} {'period':<18} {'done':>8} {'nodata':>8} {'failed':>8} "
                   f"{'missing':>8}")
        for r in rows:
            click.echo(f"{r['modality']:<10} {r['period']:<18} {r['done']:>8} {r['nodata']:>8} "
                       f"{r['failed']:>8} {r['missing']:>8}")
    if show_failed:
        for m, p, t, attempts, transient, err in db.failures():
            kind = "transient" if transient else "permanent"
            click.echo(f"{m} {p} {t} attempts={attempts} {kind}: {err}")
    db.close()


@click.command()
def modalities():
    """List the modalities: bands, dtype, resolution, period kind and sources."""
    from ..modalities import REGISTRY

    w = max(8, *(len(n) for n in REGISTRY))
    click.echo(f"{'name':<{w}} {'res':>4} {'dtype':<8} {'periods':<9} {'source':<12} "
               f"{'offline':<9} bands")
    for m in REGISTRY.values():
        kind = m.period_kind + ("*" if m.composite else "")
        click.echo(f"{m.name:<{w}} {m.res:>3}m {m.dtype:<8} {kind:<9} "
                   f"{m.default_source:<12} {m.offline_source:<9} {','.join(m.bands)}")
    click.echo("* a composite over dates: `fetch --cadence annual|seasonal|monthly` re-periods it")


@click.command()
@click.option("--size", type=click.Choice(["small", "tile"]), default="small",
              show_default=True, help="Simulated scene (as `simulate --size`).")
@click.option("--dates", type=int, default=3, show_default=True)
@click.option("--workers", "-j", type=int, default=1, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Keep the calibration run "
              "here (default: a temporary folder).")
@click.option("--json", "as_json", is_flag=True)
def calibrate(size, dates, workers, out, as_json):
    """Measure this machine's per-unit costs on the simulator, for `fetch --dry-run`.

    Runs every S1 layer, s2 and dem on a simulated scene through the normal engine, and a
    few of its tiles again one per unit (a second unit size), and keeps the cost records
    (fitted: seconds per unit and per tile-date; stored bytes per chunk) in the calibration
    database; estimates use a run's own records first, these otherwise.
    """
    from .calibrate import run_calibration

    res = run_calibration(size, dates, workers, out)
    if as_json:
        click.echo(json.dumps(res))
        return
    click.echo(f"calibration in {res['path']} ({res['seconds']:.0f} s):")
    for m, r in sorted(res["rates"].items()):
        click.echo(f"  {m:<8} {r['seconds_per_unit']:6.2f} s per unit + "
                   f"{r['seconds_per_read'] * 1000:8.1f} ms per tile-date   "
                   f"{r['store_bytes_per_chunk'] / 1e3:8.1f} kB per chunk stored")


COMMANDS = [fetch, refresh, status, modalities, calibrate]
