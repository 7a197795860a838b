"""`s1grd` with `backscatter=gamma0-rtc` (issue 13 item 1) through the archive source.

On the session's two-date simulation, one tile: the stored per-pass mean is the mean of
LINEAR gamma0-RTC of the two dates, each made independently here from the pair processor's
beta0 (`process_grd(kind="beta0")`) and the area ratio of `sar.rtc.tile_rtc`; layover /
shadow pixels are NaN (never averaged); the bad option is a one-line error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from m3leo_tiles.errors import BadInput
from m3leo_tiles.runner.fetch import FetchRequest, fetch
from m3leo_tiles.sources.s1 import S1ArchiveSource
from m3leo_tiles.store.store import open_store


def test_gamma0_rtc_is_the_area_normalised_beta0(small_sim, tmp_path):
    from m3leo_tiles.sar.dem import GeoTiffDem
    from m3leo_tiles.sar.geocode import grid_ecef, swath_mid_time
    from m3leo_tiles.sar.pipeline import open_product, process_grd
    from m3leo_tiles.sar.rtc import tile_rtc
    from m3leo_tiles.sources.base import TileRef

    m = json.loads((small_sim / "simulation.json").read_text())
    tile = m["tiles"][2]
    dem = str(small_sim / "rasters" / "dem.tif")
    url = str(tmp_path / "r.zarr")
    s = fetch(FetchRequest(store=url, region=str(small_sim / "aoi.geojson"), modalities=["s1grd"],
                           period="2025-MAM", source="archive", tiles=[tile],
                           source_options={"archive": {"archive": str(small_sim / "s1"),
                                                       "dem": dem,
                                                       "backscatter": "gamma0-rtc"}},
                           workers=1, progress=False))
    assert (s.done, s.failed) == (1, 0), s.as_dict()
    got = open_store(url)["s1grd"].ds["s1grd"].sel(period="2025-MAM", tile=tile)

    ref = TileRef.from_id(tile)
    d = GeoTiffDem(dem)
    safes = [str(small_sim / p) for p in m["products"]]
    prod = open_product(safes[0], ["VV"])
    sw = prod.geometry[0]
    area = tile_rtc(sw.orbit, grid_ecef(ref.grid, d(ref.grid)), swath_mid_time(sw))
    prod.close()
    lin = [area.gamma0(10 ** (process_grd(p, [ref], d, kind="beta0")[tile] / 10)) for p in safes]
    with np.errstate(invalid="ignore"):
        want = 10 * np.log10(np.nanmean(np.stack(lin), axis=0))
    for k, band in enumerate(("VV_asc", "VH_asc")):
        g = got.sel(band=band).values
        assert np.isnan(g[area.flags > 0]).all()  # layover / shadow: flagged, not averaged
        ok = np.isfinite(g) & np.isfinite(want[k])
        assert ok.mean() > 0.5
        # the stack matches the second date's bursts to the first: equal but for a few
        # pixels of a burst overlap
        close = np.abs(g[ok] - want[k][ok]) <= 1e-3
        assert close.mean() > 0.99, (band, close.mean())
    with pytest.raises(BadInput, match="backscatter"):
        S1ArchiveSource(archive=str(small_sim / "s1"), dem=dem, backscatter="gamma0rtc")


def test_a_units_tiles_on_threads_give_the_one_thread_results(small_sim):
    """The unit reader runs its tiles on the worker's Numba threads (one in a run's workers,
    sar/tilepool.py) and emits them in tile order: the same results either way."""
    import threading

    import numba

    from m3leo_tiles.modalities import get_modality
    from m3leo_tiles.periods import expand
    from m3leo_tiles.sources.base import TileRef

    m = json.loads((small_sim / "simulation.json").read_text())
    refs = {t: TileRef.from_id(t) for t in m["tiles"]}
    src = S1ArchiveSource(archive=str(small_sim / "s1"), dem=str(small_sim / "rasters/dem.tif"),
                          backscatter="sigma0")
    grd = get_modality("s1grd")
    gp = [p for p in expand("seasonal", "2025") if p.label == "2025-MAM"][0]
    unit = max(src.plan(grd, gp, list(refs.values())), key=lambda u: len(u.all_tiles))

    def read(threads: int) -> list:
        out: list = []

        def run() -> None:
            numba.set_num_threads(threads)  # this thread's count: map_tiles follows it
            out.extend(src.read(unit, refs, grd, gp))

        t = threading.Thread(target=run)
        t.start()
        t.join()
        return out

    one, two = read(1), read(2)
    assert len(unit.all_tiles) >= 2 and [r.tile for r in two] == [r.tile for r in one]
    done = [(a, b) for a, b in zip(one, two, strict=True) if a.status == "done"]
    assert len(done) >= 2 and all(b.status == "done" for _, b in done)
    for a, b in done:
        assert np.array_equal(a.data, b.data, equal_nan=True)
