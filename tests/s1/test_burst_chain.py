"""Burst products end to end (slow: simulates a pair): the simulator's SAFEs cut into ASF
burst products, served by the loopback ASF (burst search + extractor), fetched into the
shared cache, assembled, processed: equal to processing the SAFEs on every tile the bursts
cover."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import shapely

from m3leo_tiles.s1.archive import read_product, scan_archive
from m3leo_tiles.s1.burstfiles import assemble_folder
from m3leo_tiles.s1.download import (
    Credentials,
    DownloadCache,
    DownloadRetry,
    download_session,
    fetch_burst_safe,
)
from m3leo_tiles.s1.pairing import form_pairs
from m3leo_tiles.s1.products import BurstRef, burst_refs
from tests.s1 import burstcut
from tests.sources.asf_server import FakeAsf, umm_item

TOKEN = "edl-token-bursts"


@functools.lru_cache(maxsize=16)
def burst_footprints(safe: Path, swath: str) -> tuple[shapely.Geometry, ...]:
    """Each burst's ground footprint, as ASF's burst catalogue has it: the hull of the
    annotation's geolocation grid points between the burst's first and next burst's line."""
    from m3leo_tiles.sar.safe import open_swath

    sw = open_swath(safe, swath, "VV")
    g, lpb = sw.gcp, sw.lines_per_burst
    out = []
    for b in sw.bursts:
        rows = (g.line.values >= b.first_line) & (g.line.values <= b.first_line + lpb)
        pts = np.c_[g.longitude.values[rows].ravel(), g.latitude.values[rows].ravel()]
        out.append(shapely.MultiPoint(pts).convex_hull)
    return tuple(out)


def serve_bursts(asf: FakeAsf, safe: Path, swath: str = "IW2", frame: bool = False,
                 indices: list[int] | None = None) -> int:
    """Bursts of a swath of `safe` (every one, or `indices`), both polarisations, as ASF
    would serve them (their own times and footprints); `frame`: the SLC's granule too (it
    is not downloaded in burst mode)."""
    prod = read_product(safe)
    ids = sorted(b for b in prod.burst_ids if b.endswith(swath))
    text = next((safe / "annotation").glob(f"*-{swath.lower()}-slc-vv-*.xml")).read_text()
    starts = [dt.datetime.fromisoformat(t) for t in
              re.findall(r"<burst>\s*<azimuthTime>([^<]+)</azimuthTime>", text)]
    fps = burst_footprints(safe, swath)
    span = dt.timedelta(seconds=2.75)
    if frame:
        asf.items.append(umm_item(prod, asf.base, size=2**30, md5="0" * 32))
    keep = range(len(ids)) if indices is None else indices
    for pol in prod.polarisations:
        xml = burstcut.metadata_xml(safe, pol)
        for k in keep:
            asf.add_file(f"{prod.name}/{swath}/{pol}/{k}.xml", xml)
            md5 = asf.add_file(f"{prod.name}/{swath}/{pol}/{k}.tiff",
                               data := burstcut.burst_tiff(safe, swath, pol, k))
            asf.items.append(umm_item(prod, asf.base, burst=ids[k], index=k, pol=pol,
                                      size=len(data), md5=md5, start=starts[k],
                                      stop=starts[k] + span, footprint=fps[k]))
    return len(keep)


def compare(full: dict, part: dict, tiles: list[str]) -> dict[str, float]:
    """Largest difference per layer over the given tiles (NaN where either is NaN)."""
    worst: dict[str, float] = {}
    for t in tiles:
        for layer, v in part[t].items():
            f = full[t][layer]
            assert np.array_equal(np.isfinite(v), np.isfinite(f)), (t, layer)
            ok = np.isfinite(v)
            worst[layer] = max(worst.get(layer, 0.0), float(np.abs(v[ok] - f[ok]).max()))
    return worst


@pytest.mark.slow
def test_burst_products_process_like_the_safes(small_sim, tmp_path, monkeypatch):
    from m3leo_tiles.s1.search import search_products
    from m3leo_tiles.sar.dem import GeoTiffDem
    from m3leo_tiles.sar.pipeline import process_pair
    from m3leo_tiles.sources.base import TileRef

    m = json.loads((small_sim / "simulation.json").read_text())
    ref, sec = (small_sim / p for p in m["pairs"][0])
    tiles = [TileRef.from_id(t)
             for t in m["tiles"]]
    dem = GeoTiffDem(str(small_sim / "rasters" / "dem.tif"))
    full = process_pair(str(ref), str(sec), tiles, dem)
    aoi = shapely.union_all([t.polygon for t in tiles])
    with FakeAsf() as asf:
        asf.token = TOKEN
        n = serve_bursts(asf, ref) + serve_bursts(asf, sec)
        found = search_products(aoi, dt.date(2025, 4, 1), dt.date(2025, 5, 1), burst=True,
                                host=asf.host)
        assert len(found) == n and {p.polarisations for p in found} == {("VV", "VH")}
        groups: dict[tuple, tuple[BurstRef, ...]] = {}
        for p in found:
            groups[(p.date, p.burst_ids[0])] = burst_refs(p)
        cache = DownloadCache(tmp_path / "cache")
        session = download_session(Credentials(token=TOKEN))
        safes = {k: fetch_burst_safe(v, cache, session, DownloadRetry(sleep=lambda s: None))
                 for k, v in groups.items()}
        assert set(asf.served.values()) == {1}  # every TIFF and XML fetched once
    dates = sorted({d for d, _ in safes})
    # the cache is an archive now: the scanner finds the burst SAFEs, pairing matches bursts
    pairs = form_pairs(scan_archive(tmp_path / "cache"))
    assert sorted((p.label, p.reference.burst_ids) for p in pairs) == sorted(
        (f"{dates[0]:%Y%m%d}_{dates[1]:%Y%m%d}", (bid,)) for _, bid in safes if _ == dates[0])
    fps = {k: read_product(v).footprint for k, v in safes.items()}

    def own(d: dt.date, bid: str) -> shapely.Geometry:
        """Ground only this burst images. TOPS bursts overlap by ~2 km; the annotation grid
        rows (burst starts) put the seam at the later burst's start, and the full SLC takes
        the earlier burst up to mid-overlap: keep 3 km clear of the earlier bursts."""
        earlier = [fp for (dd, b), fp in fps.items() if dd == d and b < bid]
        band = shapely.union_all(earlier).buffer(0.03) if earlier else shapely.Polygon()
        return fps[(d, bid)].difference(band)

    checked: set[str] = set()
    for bid in sorted({b for _, b in safes}):
        a, b = safes[(dates[0], bid)], safes[(dates[1], bid)]
        cover = own(dates[0], bid).intersection(own(dates[1], bid))
        inside = [t.id for t in tiles if cover.covers(t.polygon)]
        part = process_pair(str(a), str(b), [t for t in tiles if t.id in inside], dem)
        worst = compare(full, part, inside)
        assert worst.get("s1grd_ref", 0) <= 1e-3 and worst.get("s1grd_sec", 0) <= 1e-3, worst
        assert worst.get("s1coh", 0) <= 1e-5 and worst.get("s1ifg", 0) <= 1e-4, worst
        assert inside, f"no tile inside burst {bid} alone"
        checked |= set(inside)
    # both bursts as one run (stacked measurement), from the cache folder as `s1 assemble`
    # reads it: the SLC's swath again, every tile equal
    a, b = sorted(assemble_folder(tmp_path / "cache", tmp_path / "runs"))
    assert read_product(a).burst_ids == read_product(ref).burst_ids
    part = process_pair(str(a), str(b), tiles, dem)
    assert sorted(part) == sorted(full)
    worst = compare(full, part, sorted(full))
    assert max(worst["s1grd_ref"], worst["s1grd_sec"]) <= 1e-3 and worst["s1coh"] <= 1e-5, worst
