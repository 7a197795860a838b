"""mkdocs hooks: the CLI reference from the click commands, the benchmark figures from
benchmarks/RESULTS.md, each put where its page has the marker, at build time (so they never
go stale in the repository)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parents[1]


def _command_md(cmd: click.Command, path: list[str]) -> list[str]:
    name = " ".join(path)
    ctx = click.Context(cmd, info_name=name)
    out = [f"### `m3leo-tiles {name}`", "", "```text", cmd.get_help(ctx).replace(
        f"Usage: {name}", f"Usage: m3leo-tiles {name}"), "```", ""]
    if isinstance(cmd, click.Group):
        for sub in sorted(cmd.commands):
            out += _command_md(cmd.commands[sub], [*path, sub])
    return out


def cli_reference() -> str:
    """Every verb's `--help`, in name order (subcommands after their group)."""
    from m3leo_tiles.cli import cli, load_all

    load_all()
    lines = ["## Every verb", ""]
    for name in sorted(cli.commands):
        lines += _command_md(cli.commands[name], [name])
    return "\n".join(lines)


def benchmark_results() -> str:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return body.replace("\n## ", "\n### ")


MARKERS = {"<!-- cli-reference -->": cli_reference,
           "<!-- benchmark-results -->": benchmark_results}


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
