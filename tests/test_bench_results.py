"""`make bench`'s collector: each benchmark's last JSON line into the results file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
assert _spec and _spec.loader
run_all = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_all)


def test_last_json_line_is_the_result():
    text = 'warming up\n{"name": "a", "x": 1}\nprogress 50%\n{"name": "a", "x": 2}\n{bad\n'
    assert run_all.last_json_line(text) == {"name": "a", "x": 2}
    assert run_all.last_json_line("no json here\n[1, 2]\n") is None


def test_results_file_written_and_kept_on_failure(tmp_path):
    good = tmp_path / "bench_good.py"
    good.write_text('print("working")\nprint(\'{"name": "good", "ratio": 3.5}\')\n')
    out = tmp_path / "RESULTS.md"
    assert run_all.main(["--out", str(out), str(good)]) == 0
    text = out.read_text()
    assert "- date: " in text and "- machine: " in text
    block = text.split("```\n")[1].split("```")[0]
    assert [json.loads(x) for x in block.splitlines()] == [{"name": "good", "ratio": 3.5}]
    bad = tmp_path / "bench_bad.py"
    bad.write_text("raise SystemExit(3)\n")
    silent = tmp_path / "bench_silent.py"
    silent.write_text('print("no result")\n')
    for script in (bad, silent):
        assert run_all.main(["--out", str(out), str(good), str(script)]) == 1
        assert out.read_text() == text  # a failed run leaves the last results as they were
