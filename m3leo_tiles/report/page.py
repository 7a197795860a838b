"""`ReportData` as one HTML file: tables written here, the map drawn by the inlined script.

Per-tile data travels as gzip-compressed little-endian arrays in base64 (`<script
type="application/octet-stream">` blocks) that the page inflates with the browser's own
`DecompressionStream`: nothing is fetched, so the file opens from disk with no network, and
a 200k-tile store stays a few megabytes. Tables (counts, failures, runs, sizes) are plain HTML,
readable even where scripts are off.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from html import escape
from importlib import resources
from typing import Any

import numpy as np

from .data import STATUSES, ReportData

COUNT_COLUMNS = ("done", "nodata", "failed", "missing", "stale")


def _blob(name: str, data: bytes) -> str:
    text = base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode()
    return f'<script type="application/octet-stream" id="blob-{name}">{text}</script>'


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _table(head: list[str], rows: list[list[str]], cls: str = "", attrs: list[str] | None = None,
           empty: str = "none") -> str:
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(f"<tr{attrs[i] if attrs else ''}>" + "".join(f"<td>{c}</td>" for c in r)
                   + "</tr>" for i, r in enumerate(rows))
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _counts(d: ReportData) -> str:
    rows = [[escape(la.modality), escape(la.period)]
            + [f'<span class="n {c}">{la.counts[c]:,}</span>' for c in COUNT_COLUMNS]
            for la in d.layers]
    attrs = [f' data-layer="{i}" class="layer-row"' for i in range(len(d.layers))]
    return _table(["modality", "period", *COUNT_COLUMNS], rows, "counts", attrs,
                  "no layer yet: nothing was fetched into this store")


def _failures(d: ReportData) -> str:
    layer = {(la.modality, la.period): i for i, la in enumerate(d.layers)}
    rows = []
    for g in d.failures:
        ex = " ".join(f'<button class="tile-link" data-tile="{escape(t)}" '
                      f'data-layer="{layer.get((m, p), 0)}">{escape(t)} '
                      f'<small>{escape(m)} {escape(p)}</small></button>'
                      for m, p, t in g.examples)
        rows.append([f"{g.count:,}", f'<span class="reason">{escape(g.reason)}</span>', ex])
    return _table(["units", "reason", "example tiles"], rows, "failures",
                  empty="no failed unit")


def _runs(d: ReportData) -> str:
    rows = []
    for r in reversed(d.runs):
        took = (f"{r.finished - r.started:,.1f} s" if r.started and r.finished
                else "unfinished (killed or running)")
        rows.append([str(r.id), _when(r.started), took, escape(r.command), _num(r.done),
                     _num(r.failed), _num(r.nodata), _size(r.bytes_downloaded)])
    return _table(["run", "started (UTC)", "duration", "command", "done", "failed", "nodata",
                   "downloaded"], rows, "runs", empty="no run recorded")


def _sizes(d: ReportData) -> str:
    rows = [[escape(s.modality), _size(s.bytes), f"{s.objects:,}"] for s in d.sizes]
    total = sum(s.bytes for s in d.sizes)
    if rows:
        rows.append(["<b>all</b>", f"<b>{_size(total)}</b>",
                     f"<b>{sum(s.objects for s in d.sizes):,}</b>"])
    return _table(["modality", "stored", "objects"], rows, "sizes", empty="no modality yet")


def _meta(d: ReportData) -> dict[str, Any]:
    return {"region": d.region, "tiles": len(d.ids), "statuses": list(STATUSES),
            "layers": [{"modality": la.modality, "period": la.period, "counts": la.counts}
                       for la in d.layers],
            "reasons": d.reasons, "quicklooks": sorted(d.quicklooks)}


def _blobs(d: ReportData) -> str:
    centre = d.corners.mean(axis=1)
    c6 = np.round(centre * 1e6).astype("<i4")
    off = np.round((d.corners - centre[:, None, :]) * 1e5)
    if len(off) and np.abs(off).max() > 32767:
        raise ValueError("a tile wider than 0.32 degrees cannot be drawn")  # 4480 m is < 0.1
    failed = np.array(d.failed_units, dtype="<i4").reshape(-1, 4)
    codes = (np.stack([la.codes for la in d.layers]) if d.layers
             else np.zeros((0, len(d.ids)), np.uint8))
    # store order walks each column of the lattice: row to row, centres move by a near
    # constant step and the corner offsets barely change, so their differences compress
    # several times better (the offsets' int16 differences wrap; the page undoes that)
    dc = np.diff(c6, axis=0, prepend=np.zeros((1, 2), "<i4")).astype("<i4")
    o16 = off.astype("<i2").reshape(-1, 8)
    do = np.diff(o16, axis=0, prepend=np.zeros((1, 8), "<i2")).astype("<i2")
    parts = [_blob("ids", "\n".join(d.ids).encode()), _blob("centres", dc.tobytes()),
             _blob("offsets", do.tobytes()),
             _blob("codes", codes.astype(np.uint8).tobytes()), _blob("failed", failed.tobytes())]
    for tile, png in d.quicklooks.items():
        parts.append(f'<script type="application/octet-stream" class="quicklook" '
                     f'data-tile="{escape(tile)}">{base64.b64encode(png).decode()}</script>')
    return "\n".join(parts)


def render(d: ReportData) -> str:
    """The whole page as one string."""
    here = resources.files("m3leo_tiles.report")
    js, css = (here / "page.js").read_text(), (here / "page.css").read_text()
    meta = json.dumps(_meta(d)).replace("</", "<\\/")
    title = f"m3leo-tiles report: {escape(d.region)}"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    legend = "".join(f'<span class="key {s}">{s}</span>' for s in STATUSES)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body>
<header><h1>{title}</h1>
<p>store <code>{escape(d.url)}</code> &middot; {len(d.ids):,} tiles of {d.tile_size} m
&middot; {len(d.layers)} layers &middot; generated {now}</p></header>
<main>
<section id="map-section"><h2>Map</h2>
<div class="controls"><label>layer <select id="layer"></select></label>
<span class="legend">{legend}</span><span id="layer-counts"></span>
<button id="reset">fit</button></div>
<div class="mapwrap"><canvas id="map" width="900" height="540"
aria-label="tile footprints coloured by status"></canvas>
<aside id="tile-info"><p class="hint">Click a tile for its id and status; drag to pan,
wheel to zoom.</p></aside></div></section>
<section><h2>Counts per modality and period</h2>{_counts(d)}
<p class="note">As <code>m3leo-tiles status --json</code> counts them: <i>done</i> includes the
<i>stale</i> units (done by another version of their source; the next run refetches them).
Click a row to map that layer.</p></section>
<section><h2>Failures by reason</h2>{_failures(d)}</section>
<section><h2>Runs</h2>{_runs(d)}</section>
<section><h2>Store size per modality</h2>{_sizes(d)}</section>
</main>
<script type="application/json" id="meta">{meta}</script>
{_blobs(d)}
<script>{js}</script>
</body></html>
"""


__all__ = ["render"]
