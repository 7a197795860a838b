"""The `m3leo-tiles` command line: verbs that compose, quiet by default.

Every verb lives beside the code it drives (`grid/commands.py`, `store/commands.py`, ...),
each module listing its verbs in `COMMANDS`; options several verbs share are in `options.py`.
This module only builds the group from that explicit list, logging and the one rule for bad
input: exit code 2 with one line on stderr, no traceback.
"""

from __future__ import annotations

import logging
import sys

import click

from . import __version__
from .errors import BadInput, M3leoError

log = logging.getLogger("m3leo_tiles")


def _setup_logging(verbose: int, quiet: int) -> None:
    level = logging.WARNING - 10 * verbose + 10 * quiet
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    log.setLevel(max(level, logging.DEBUG))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="m3leo-tiles")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Less logging.")
def cli(verbose: int, quiet: int) -> None:
    """Multi-modal SAR + optical tiles on one UTM lattice, written to Zarr.

    \b
    Typical chain:
      m3leo-tiles grid --region conus --out conus.parquet
      m3leo-tiles fetch --region conus --modality s2 --period 2020 --store conus.zarr
      m3leo-tiles status --store conus.zarr
    """
    _setup_logging(verbose, quiet)


def _load_plugins() -> None:
    """Modules named in M3LEO_TILES_PLUGINS (comma-separated) may register sources/modalities."""
    import importlib
    import os

    for name in filter(None, os.environ.get("M3LEO_TILES_PLUGINS", "").split(",")):
        importlib.import_module(name.strip())


def _commands() -> list[click.Command]:
    """Every verb, module by module; a module that fails to import is a bug, never skipped."""
    from .demo import COMMANDS as demo
    from .grid.commands import COMMANDS as grid
    from .ml.commands import COMMANDS as ml
    from .runner.commands import COMMANDS as runner
    from .simulator.commands import COMMANDS as simulated
    from .sources.asf.commands import COMMANDS as asf
    from .store.commands import COMMANDS as store

    return [*grid, *store, *runner, *simulated, *asf, *demo, *ml]


def _register() -> None:
    _load_plugins()
    for c in _commands():
        cli.add_command(c)


def _quiet_warnings() -> None:
    """SLC measurement TIFFs carry no geotransform by design (geolocation is in the XML):
    GDAL's warning about it is noise, here and in every worker process."""
    import os
    import warnings

    rule = "ignore:Dataset has no geotransform"
    warnings.filterwarnings("ignore", message="Dataset has no geotransform")
    current = os.environ.get("PYTHONWARNINGS", "")
    if rule not in current:
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [current, rule]))


def main(argv: list[str] | None = None) -> None:
    _quiet_warnings()
    _register()
    try:
        cli.main(args=argv, prog_name="m3leo-tiles", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except BadInput as e:
        click.echo(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", err=True)
        sys.exit(2)
    except M3leoError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
