"""The `m3leo-tiles` command line: verbs that compose, quiet by default.

Every verb lives beside the code it drives (`grid/commands.py`, `store/commands.py`, ...),
each module listing its verbs in `COMMANDS`; options several verbs share are in `options.py`.
This module only builds the group, logging and the one rule for bad input: exit code 2 with
one line on stderr, no traceback.

Verbs load lazily: `--help` and every verb pay only for the modules they use (a verb module
may pull in the simulator, numba, torch...). The listing reads each verb module's source
(`COMMANDS` and the decorated functions' names and docstrings) without importing it.

To add a verb: define it in a verb module and list it in that module's `COMMANDS`. To add a
verb module: add its dotted name (below the package) to `VERB_MODULES`. `tests/test_cli.py`
checks that the lazy listing and the imported commands agree.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import click

from .errors import BadInput, M3leoError

log = logging.getLogger("m3leo_tiles")

#: modules (below `m3leo_tiles`) whose `COMMANDS` list the verbs
VERB_MODULES = ("grid.commands", "store.commands", "runner.commands", "simulator.commands",
                "sources.asf.commands", "demo", "ml.commands", "report.commands",
                "stac.commands")

_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Verb:
    """A verb as its module's source declares it: enough to list it without importing."""

    name: str
    module: str  # below `m3leo_tiles`
    help: str  # the function's docstring, as click takes it
    short_help: str | None = None  # an explicit `short_help=` in the decorator

    def placeholder(self) -> click.Command:
        """A command that only knows the name and help: what the listing shows."""
        return click.Command(self.name, help=inspect.cleandoc(self.help),
                             short_help=self.short_help)


def _decorator_name(dec: ast.expr) -> tuple[str | None, dict[str, ast.expr], list[ast.expr]]:
    """`@click.command("x", short_help=...)` -> ("command", kwargs, args)."""
    if not isinstance(dec, ast.Call):
        return None, {}, []
    f = dec.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    return name, {k.arg: k.value for k in dec.keywords if k.arg}, list(dec.args)


def _click_name(func: str) -> str:
    """The name click gives a command made from function `func` (click 8.2+)."""
    name = func.lower().replace("_", "-")
    left, sep, suffix = name.rpartition("-")
    return left if sep and suffix in {"command", "cmd", "group", "grp"} else name


def _static_verb(module: str, fn: ast.FunctionDef) -> Verb | None:
    """The verb a `@click.command`/`@click.group` function declares, or None if not plain."""
    for dec in fn.decorator_list:
        kind, kwargs, args = _decorator_name(dec)
        if kind not in ("command", "group"):
            continue
        name = _click_name(fn.name)
        given = args[0] if args else kwargs.get("name")
        if given is not None:
            if not (isinstance(given, ast.Constant) and isinstance(given.value, str)):
                return None
            name = given.value
        short = kwargs.get("short_help")
        short_text = short.value if isinstance(short, ast.Constant) else None
        if "help" in kwargs or (short is not None and not isinstance(short_text, str)):
            return None  # help computed in code: the listing imports the module
        return Verb(name, module, ast.get_docstring(fn, clean=False) or "",
                    short_text if isinstance(short_text, str) else None)
    return None


@cache
def declared_verbs(module: str) -> tuple[tuple[Verb, ...], bool]:
    """The verbs `module` lists in `COMMANDS`, read from its source; the flag says whether
    every entry could be read statically (if not, listing them imports the module)."""
    base = _PACKAGE.joinpath(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    listed: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] \
                == ["COMMANDS"] and isinstance(node.value, ast.List | ast.Tuple):
            names = [e.id for e in node.value.elts if isinstance(e, ast.Name)]
            listed = names if len(names) == len(node.value.elts) else None
    if listed is None:
        return (), False
    verbs = [_static_verb(module, funcs[n]) if n in funcs else None for n in listed]
    return tuple(v for v in verbs if v is not None), all(v is not None for v in verbs)


def _real_commands(module: str) -> list[click.Command]:
    """A verb module's `COMMANDS` (importing it: a module that fails to import is a bug)."""
    mod = importlib.import_module(f"{__package__}.{module}")
    return list(mod.COMMANDS)


class LazyGroup(click.Group):
    """A group whose verbs are imported only when one is run (or asked for its help)."""

    def _table(self) -> dict[str, Verb]:
        table: dict[str, Verb] = {}
        for module in VERB_MODULES:
            verbs, complete = declared_verbs(module)
            if not complete:  # something the source does not say plainly: ask the module
                for c in _real_commands(module):
                    self.add_command(c)
            table.update((v.name, v) for v in verbs)
        return table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self._table()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            verb = self._table().get(cmd_name)
            if verb is None:
                return None
            for c in _real_commands(verb.module):
                self.add_command(c)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing from the declared table: names and short help, nothing imported."""
        table = self._table()
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:
                cmd = table[name].placeholder()
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(n) for n, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in rows])


def _version() -> str:
    from . import __version__

    return __version__


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"m3leo-tiles, version {_version()}")
        ctx.exit()


def _setup_logging(verbose: int, quiet: int) -> None:
    level = logging.WARNING - 10 * verbose + 10 * quiet
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    log.setLevel(max(level, logging.DEBUG))


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show the version and exit.")
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
    import os

    for name in filter(None, os.environ.get("M3LEO_TILES_PLUGINS", "").split(",")):
        importlib.import_module(name.strip())


def load_all() -> list[click.Command]:
    """Every verb, imported and registered (tests, the CLI reference); `main` never needs it."""
    out = []
    for module in VERB_MODULES:
        for c in _real_commands(module):
            cli.add_command(c)
            out.append(c)
    return out


def _register() -> None:
    _load_plugins()
    load_all()


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
    _load_plugins()
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
