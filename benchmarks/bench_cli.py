"""Start-up cost of the command line against a bare interpreter.

Each command runs as a fresh process (what a user or cron pays), interleaved, one warm-up
round first (the OS file cache), then RUNS timed rounds; the figures are medians. `m3leo-tiles`
is `python -m m3leo_tiles` from this checkout (the console script runs the same `main`).
Targets (issue 24): help_ratio <= 10, regions_ratio <= 20 on a quiet machine.
Last line: {"name": "cli", "python_s", "help_s", "regions_s", "help_ratio", "regions_ratio"}.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
COMMANDS = {
    "python": [sys.executable, "-c", "pass"],
    "help": [sys.executable, "-m", "m3leo_tiles", "--help"],
    "regions": [sys.executable, "-m", "m3leo_tiles", "regions"],
}


def once(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> dict:
    for cmd in COMMANDS.values():
        once(cmd)
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(RUNS):
        for k, cmd in COMMANDS.items():
            times[k].append(once(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:<8} median {med[k] * 1000:7.1f} ms  runs {[round(x * 1000) for x in v]}")
    return {"name": "cli", "python_s": round(med["python"], 4), "help_s": round(med["help"], 4),
            "regions_s": round(med["regions"], 4),
            "help_ratio": round(med["help"] / med["python"], 2),
            "regions_ratio": round(med["regions"] / med["python"], 2)}


if __name__ == "__main__":
    print(json.dumps(main()))
