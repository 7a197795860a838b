"""Run every benchmark (`benchmarks/bench_*.py`) and record each one's last JSON line.

`make bench` calls this. Each benchmark's output is shown as it runs; its last stdout line that
parses as JSON is its result. The results go to `benchmarks/RESULTS.md` with the date, the
machine and the commit, so the README links measured figures instead of pasting them. The
first benchmark that fails stops the run (exit 1) and the file is left as it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def last_json_line(text: str) -> dict | None:
    """The last line of `text` that is a JSON object, or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def run(path: Path) -> dict:
    """Run one benchmark, echoing its output; its result line (RuntimeError without one)."""
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"== {shown}", flush=True)
    proc = subprocess.run([sys.executable, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True, check=False)
    sys.stdout.write(proc.stdout)
    if proc.returncode:
        raise RuntimeError(f"{path.name} exited with {proc.returncode}")
    result = last_json_line(proc.stdout)
    if result is None:
        raise RuntimeError(f"{path.name} printed no JSON line")
    return result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (f"{platform.node()}: {platform.system()} {platform.release()}, {cpu}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}")


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out or "unknown"


def render(results: list[dict], when: dt.datetime, where: str, rev: str) -> str:
    lines = "\n".join(json.dumps(r) for r in results)
    return (f"# Benchmark results\n\nWritten by `make bench` (`benchmarks/run_all.py`): each "
            f"benchmark's last JSON line.\n\n- date: {when:%Y-%m-%d %H:%M} UTC\n"
            f"- machine: {where}\n- commit: {rev}\n\n```\n{lines}\n```\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("benchmarks", nargs="*", type=Path,
                    help="benchmark scripts (default: every benchmarks/bench_*.py)")
    args = ap.parse_args(argv)
    paths = [p.resolve() for p in args.benchmarks] or sorted(HERE.glob("bench_*.py"))
    results = []
    for p in paths:
        try:
            results.append(run(p))
        except RuntimeError as e:
            print(f"error: {e}; {args.out} left as it was", file=sys.stderr)
            return 1
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(render(results, dt.datetime.now(dt.UTC), machine(), commit()))
    tmp.replace(args.out)
    print(f"results of {len(results)} benchmarks -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
