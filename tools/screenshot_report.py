"""The README's screenshot of the demo's report page, made by headless Chromium.

Run after `make demo`: .venv/bin/python tools/screenshot_report.py [REPORT] [PNG]
(defaults: demo/out/report.html -> docs/img/report.png). It opens the page, clicks the
first tile that has a quicklook (else the middle tile) and captures the window.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import Browser  # noqa: E402 - the tests' DevTools driver


def main(argv: list[str]) -> Path:
    page = Path(argv[0]) if argv else ROOT / "demo" / "out" / "report.html"
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "img" / "report.png"
    with Browser(width=1280, height=940) as b:
        b.open(page)
        tile = b.js("(document.querySelector('script.quicklook') || {dataset: {}}).dataset.tile"
                    " || window.m3leo.ids[Math.floor(window.m3leo.ids.length / 2)]")
        b.click(*b.js(f"window.m3leo.tileClientXY({json.dumps(tile)})"))
        if b.errors():
            raise SystemExit(f"the page logged errors: {b.errors()}")
        out.parent.mkdir(parents=True, exist_ok=True)
        return b.screenshot(out)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
