"""The documentation: README short and its links true, every page in the site's nav, the CLI
reference generated from every verb. (`make docs` builds the site strictly; `make test` runs it.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _hooks():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "tools" / "mkdocs_hooks.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_is_at_most_200_lines_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = [t for t in re.findall(r"\]\(([^)#]+)\)", text) if "://" not in t]
    assert len(links) >= 15
    missing = [t for t in links if not (ROOT / t).exists()]
    assert missing == []
    assert "(issue " not in text


def _nav_files(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [f for n in node for f in _nav_files(n)]
    return [f for v in node.values() for f in _nav_files(v)]


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists():
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))
    nav = _nav_files(cfg["nav"])
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(nav) == pages and len(pages) >= 20


def test_cli_reference_has_every_verb_and_subcommand():
    from m3leo_tiles.cli import cli, load_all

    text = _hooks().cli_reference()
    load_all()
    names = list(cli.commands) + [f"s1 {s}" for s in cli.commands["s1"].commands]  # type: ignore[attr-defined]
    assert len(names) >= 17
    for name in names:
        assert f"### `m3leo-tiles {name}`" in text and f"Usage: m3leo-tiles {name}" in text


def test_benchmarks_page_carries_the_results_file():
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    first = next(ln for ln in results.splitlines() if ln.startswith('{"name"'))
    assert first in _hooks().benchmark_results()
