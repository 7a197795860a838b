"""The lazy command line: the listing read from the verb modules' source agrees with the
imported commands, `--help` imports no verb module, and no verb module pulls torch, numba or
rasterio in unless its verbs use them."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from m3leo_tiles.cli import VERB_MODULES, _real_commands, cli, declared_verbs

#: verbs whose module loads heavy packages because the verb itself runs them
USES = {"simulate": {"numba", "rasterio"},  # the simulator's kernels and COG writer
        "s1": {"numba", "rasterio"}}  # `s1 search` runs AsfSource (S1 blocks: numba, rasterio)
HEAVY = ("torch", "numba", "rasterio")


@pytest.mark.parametrize("module", VERB_MODULES)
def test_lazy_table_agrees_with_the_real_commands(module):
    verbs, complete = declared_verbs(module)
    assert complete, f"{module}: COMMANDS has an entry the listing cannot read from source"
    real = _real_commands(module)
    assert real, f"{module} lists no verb"
    assert [v.name for v in verbs] == [c.name for c in real]
    for v, c in zip(verbs, real, strict=True):
        lazy = v.placeholder()
        for limit in (30, 45, 80):
            assert lazy.get_short_help_str(limit) == c.get_short_help_str(limit), v.name


def test_help_lists_every_verb_without_importing_one():
    code = ("import sys\nfrom m3leo_tiles.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print('LOADED', sorted(m for m in sys.modules if m.startswith('m3leo_tiles')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    loaded = p.stdout.split("LOADED", 1)[1].strip()
    assert loaded == "['m3leo_tiles', 'm3leo_tiles.cli', 'm3leo_tiles.errors']"
    listed = [ln.split()[0] for ln in p.stdout.split("Commands:", 1)[1].splitlines()
              if ln.strip() and not ln.startswith("LOADED")]
    names = [v.name for m in VERB_MODULES for v in declared_verbs(m)[0]]
    assert sorted(listed) == sorted(names) and len(names) >= 15


def test_a_lazy_verb_runs_and_unknown_ones_are_refused():
    ctx = click.Context(cli)
    assert cli.get_command(ctx, "modalities") is not None
    assert cli.get_command(ctx, "frobnicate") is None


def test_no_verb_module_imports_torch_numba_or_rasterio_unless_its_verbs_use_them():
    """One interpreter per verb module (imports are process-wide), all started at once."""
    probe = ("import sys, importlib\nimportlib.import_module('m3leo_tiles.' + sys.argv[1])\n"
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    checked = {m: [v.name for v in declared_verbs(m)[0]] for m in VERB_MODULES}
    checked = {m: verbs for m, verbs in checked.items() if not all(v in USES for v in verbs)}
    assert len(checked) >= 7
    procs = {m: subprocess.Popen([sys.executable, "-c", probe, m], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for m in checked}
    for m, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        allowed = set().union(*(USES.get(v, set()) for v in checked[m]))
        assert set(out.split()) <= allowed, f"{m} imports {out.split()} at import time"


def test_source_names_in_fetch_help_are_the_registered_ones():
    from m3leo_tiles.runner.commands import fetch

    code = "from m3leo_tiles.sources import SOURCES; print(' '.join(SOURCES))"
    builtin = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split()  # no test plugin registered there
    text = next(p.help for p in fetch.params if p.name == "source") or ""
    assert len(builtin) >= 4 and all(name in text for name in builtin)
