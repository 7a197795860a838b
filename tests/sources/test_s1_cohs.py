"""`s1cohs` served by the S1 block units: seasonal medians per baseline from the tile stack.

Fast: on the session's two-date simulation (one 12-day pair, mid-date in 2025-MAM) the
season's VV_12 / VH_12 bands are that pair's `s1coh` from the same run, every other baseline
is NaN, and the decay fit (three baselines needed) is NaN; and the source's season
aggregation of a four-date, two-slice stack (three 12-day pairs, two 24-day, one 36-day) gives
each baseline's per-pixel median of its pairs, slices merged first. Slow: on a four-date stack (12-day
spacing: three 12-day pairs, two 24-day, one 36-day) each baseline's band is the median of
the same pairs' coherence made pair by pair by the pair processor; 6, 18 and 48 days are NaN.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from m3leo_tiles.runner.fetch import FetchRequest, fetch
from m3leo_tiles.sar.seasonal import BASELINES, COHS_BANDS
from m3leo_tiles.sources.s1work import seasonal
from m3leo_tiles.store.store import open_store


def _fetch(sim: Path, url: str, modalities: list[str], tile: str, **opts: str):
    dem = str(sim / "rasters" / "dem.tif")
    return fetch(FetchRequest(store=url, region=str(sim / "aoi.geojson"), modalities=modalities,
                              period="2025-MAM", source="archive", tiles=[tile],
                              source_options={"archive": {"archive": str(sim / "s1"),
                                                          "dem": dem, **opts}},
                              workers=1, progress=False))


def _bands(url: str, modality: str, period: str, tile: str) -> dict[str, np.ndarray]:
    da = open_store(url)[modality].ds[modality].sel(period=period, tile=tile)
    return {str(b): da.sel(band=b).values for b in da.band.values}


def test_s1cohs_of_one_pair_is_its_coherence(small_sim, tmp_path):
    m = json.loads((small_sim / "simulation.json").read_text())
    tile = m["tiles"][0]
    url = str(tmp_path / "c.zarr")
    s = _fetch(small_sim, url, ["s1cohs", "s1coh"], tile)
    assert (s.done, s.failed) == (2, 0), s.as_dict()
    cohs = _bands(url, "s1cohs", "2025-MAM", tile)
    coh = _bands(url, "s1coh", "20250406_20250418", tile)
    assert list(cohs) == list(COHS_BANDS)
    for pol in ("VV", "VH"):
        assert np.isfinite(coh[pol]).mean() > 0.5
        assert np.array_equal(cohs[f"{pol}_12"], coh[pol], equal_nan=True)
        for d in BASELINES:
            if d != 12:
                assert np.isnan(cohs[f"{pol}_{d}"]).all(), (pol, d)
        for q in ("rho", "tau", "rmse"):  # one baseline: no decay fit
            assert np.isnan(cohs[f"{q}_{pol}"]).all()
    # its quicklook panel shows the 12-day median on the coherence scale
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from m3leo_tiles.quicklook import _draw, _panels, quicklook_tile
    from m3leo_tiles.store.store import TileStore

    panel = next(p for p in _panels(TileStore.open(url, mode="r"), tile)
                 if p["modality"] == "s1cohs")
    fig, ax = plt.subplots()
    _draw(ax, fig, panel)
    assert ax.get_title().endswith("VV_12") and ax.images[0].get_clim() == (0, 1)
    plt.close(fig)
    assert quicklook_tile(url, tile, tmp_path / "q.png").stat().st_size > 1000


@dataclass(frozen=True)
class Slice:
    """What `seasonal` reads of a product: its track and date."""

    track: str
    date: dt.date


def test_s1cohs_bands_are_the_median_of_three_pairs_per_baseline():
    """Four dates 12 days apart in 2025-MAM, each acquisition cut in two slices (north and
    south halves of the tile): per baseline the band is the per-pixel median of that
    baseline's pair coherences (NaN holes left out), which the test takes with numpy from
    the whole-tile pairs it made; the decay fit runs on three baselines."""
    rng = np.random.default_rng(7)
    n = 16
    dates = [dt.date(2025, 3, 20) + dt.timedelta(days=12 * k) for k in range(4)]
    prods = [Slice("108A", d) for d in dates for _ in range(2)]  # slice 0 north, 1 south
    paths = [f"p{k}" for k in range(len(prods))]
    whole: dict[int, list[np.ndarray]] = {}
    pairs = {}
    for i, j in combinations(range(len(dates)), 2):
        rho = 0.9 * np.exp(-(j - i) * 12 / 30)  # decays with the baseline
        coh = np.clip(rho + rng.normal(0, 0.08, (2, n, n)), 0, 1).astype(np.float32)
        coh[:, rng.integers(0, n, 5), rng.integers(0, n, 5)] = np.nan  # masked pixels
        whole.setdefault((j - i) * 12, []).append(coh)
        for half in (0, 1):  # each slice pair covers its half of the tile
            part = np.full_like(coh, np.nan)
            rows = slice(0, n // 2) if half == 0 else slice(n // 2, n)
            part[:, rows] = coh[:, rows]
            pairs[(paths[2 * i + half], paths[2 * j + half])] = {"s1coh": part}
    assert sorted((d, len(v)) for d, v in whole.items()) == [(12, 3), (24, 2), (36, 1)]
    prs = sorted(pairs)
    bands = seasonal("2025-MAM", [(paths.index(a), paths.index(b)) for a, b in prs],
                     SimpleNamespace(products=prods), paths, pairs)
    assert bands is not None and bands.shape == (len(COHS_BANDS), n, n)
    got = dict(zip(COHS_BANDS, bands, strict=True))
    for k, pol in enumerate(("VV", "VH")):
        for d in BASELINES:
            if d not in whole:
                assert np.isnan(got[f"{pol}_{d}"]).all(), (pol, d)
                continue
            stack = np.stack([c[k] for c in whole[d]])
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                want = np.nanmedian(stack, axis=0)
            np.testing.assert_allclose(got[f"{pol}_{d}"], want, rtol=1e-6, equal_nan=True,
                                       err_msg=f"{pol}_{d}")
        assert np.isfinite(got[f"tau_{pol}"]).mean() > 0.9  # three baselines: a fit


@pytest.mark.slow
def test_s1cohs_medians_match_the_pair_processor(tmp_path):
    from m3leo_tiles.sar.dem import GeoTiffDem
    from m3leo_tiles.sar.pipeline import process_pair
    from m3leo_tiles.simulator import simulate
    from m3leo_tiles.sources.base import TileRef

    sim = tmp_path / "sim"
    simulate(sim, size="small", seed=3, n_dates=4, spacing=12)
    m = json.loads((sim / "simulation.json").read_text())
    tile = m["tiles"][1]
    url = str(tmp_path / "c.zarr")
    s = _fetch(sim, url, ["s1cohs"], tile)
    assert (s.done, s.failed) == (1, 0), s.as_dict()
    cohs = _bands(url, "s1cohs", "2025-MAM", tile)

    ref = TileRef.from_id(tile)
    dem = GeoTiffDem(str(sim / "rasters" / "dem.tif"))
    dates = [dt.date.fromisoformat(d) for d in m["dates"]]
    by_dt: dict[int, list[np.ndarray]] = {}
    for i, j in combinations(range(len(dates)), 2):
        res = process_pair(str(sim / m["products"][i]), str(sim / m["products"][j]), [ref],
                           dem, layers=["s1coh"])
        by_dt.setdefault((dates[j] - dates[i]).days, []).append(res[tile]["s1coh"])
    assert sorted((d, len(v)) for d, v in by_dt.items()) == [(12, 3), (24, 2), (36, 1)]
    for k, pol in enumerate(("VV", "VH")):
        for d in BASELINES:
            got = cohs[f"{pol}_{d}"]
            if d not in by_dt:
                assert np.isnan(got).all(), (pol, d)
                continue
            want = np.nanmedian(np.stack([c[k] for c in by_dt[d]]), axis=0)
            assert np.isfinite(want).mean() > 0.5
            assert np.allclose(got, want, atol=1e-6, equal_nan=True), (pol, d)
        assert np.isfinite(cohs[f"tau_{pol}"]).mean() > 0.5  # three baselines: a fit
