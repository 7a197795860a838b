"""The command line as a whole: version, help on every verb, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from m3leo_tiles import __version__
from m3leo_tiles.cli import _register, cli


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "m3leo_tiles", *args], capture_output=True,
                          text=True)


def test_version():
    p = run("--version")
    assert p.returncode == 0 and __version__ in p.stdout


def _verbs() -> list[list[str]]:
    _register()
    out = []
    for name, cmd in cli.commands.items():
        out.append([name])
        for sub in getattr(cmd, "commands", {}):
            out.append([name, sub])
    return out


@pytest.mark.parametrize("verb", _verbs(), ids=" ".join)
def test_every_verb_has_help(verb):
    p = run(*verb, "--help")
    assert p.returncode == 0, p.stderr
    assert "Usage:" in p.stdout and len(p.stdout.splitlines()) > 3


def test_unknown_verb_and_option_exit_2_with_one_line():
    for args in (["frobnicate"], ["status", "--bogus"]):
        p = run(*args)
        assert p.returncode == 2
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_core_verbs_are_registered():
    names = {v[0] for v in _verbs()}
    assert {"fetch", "refresh", "status", "verify", "modalities", "quicklook"} <= names
