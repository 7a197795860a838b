"""`gssic` (GSSIC V2019 from Earth Engine) with the real `ee` client on the loopback server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from m3leo_tiles.grid import TileRef, tile_from_id
from m3leo_tiles.modalities import get_modality
from m3leo_tiles.periods import expand
from m3leo_tiles.sources.base import WorkUnit
from m3leo_tiles.sources.earthengine import EarthEngineSource
from m3leo_tiles.sources.earthengine.gssic import BANDS, BASELINES, ROOT
from tests.sources.ee_graph import Asset
from tests.sources.ee_server import EEServer

TILE = tile_from_id("31N-0100-1200")
REF = TileRef.of(TILE)


@pytest.fixture(autouse=True)
def offline_ee(monkeypatch):
    import ee
    import googleapiclient.http

    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda s: None)


H = W = 112  # the 40 m grid of a 4480 m tile
COL = np.arange(W)[None, :] * np.ones((H, 1))  # values vary along x: a flip shows
HERE = (2.0, 48.0, 3.0, 49.0)  # GSSIC's 1x1 degree tile N49E002, under TILE
AWAY = (10.0, 44.0, 11.0, 45.0)  # another one, which filterBounds must leave out


def _west(values: np.ndarray) -> np.ma.MaskedArray:
    """GSSIC data on the western half; the eastern half holds the product's no-data value
    (0) and is masked, as Earth Engine masks an ingested image's no-data pixels."""
    out = np.ma.masked_array(np.array(values, np.float64), np.zeros((H, W), bool))
    out[:, W // 2:] = 0
    out[:, W // 2:] = np.ma.masked
    return out


def gssic_assets(season_bias: dict[str, float], far: float = 0.5) -> dict[str, list[Asset]]:
    """Known GSSIC images: every season's coherence per baseline, decay parameters, uint16
    DN backscatter, and incidence/layover per pass (two ascending orbits, one descending),
    in tile HERE, and different values in tile AWAY (placed last: a mosaic that kept it
    would show them)."""
    coh, decay, amp = {}, {}, {}
    for season, bias in season_bias.items():
        for d in BASELINES:
            coh[f"{season}_vv_COH{d:02d}"] = _west(0.2 + bias + 0.6 * np.exp(-d / 20)
                                                   + 0.001 * COL)
        decay |= {f"{season}_vv_rho": _west(0.3 + bias + 0.0 * COL),
                  f"{season}_vv_tau": _west(11.5 + 10 * bias + 0.01 * COL),
                  f"{season}_vv_rmse": _west(0.03 + bias + 0.0001 * COL)}
        amp |= {f"{season}_vv_AMP": _west(3000 + 1000 * bias + 7 * COL),
                f"{season}_vh_AMP": _west(800 + 1000 * bias + 3 * COL)}

    def two(bands: dict, dtype: str = "<f4") -> list[Asset]:
        return [Asset(bands, bbox=HERE, dtype=dtype),
                Asset({b: np.full((H, W), far) for b in bands}, bbox=AWAY, dtype=dtype)]

    ils = [Asset({"inc": 30.0 + 0.05 * COL, "lsmap": np.where(COL < 30, 5.0, 1.0)},
                 {"flight_direction": "A", "orbit": 88}, bbox=HERE),
           Asset({"inc": 33.0 + 0.05 * COL, "lsmap": np.full((H, W), 1.0)},
                 {"flight_direction": "A", "orbit": 161}, bbox=(2.33, 48.0, 3.0, 49.0)),
           Asset({"inc": 44.0 - 0.05 * COL, "lsmap": np.where(COL > 80, 17.0, 1.0)},
                 {"flight_direction": "D", "orbit": 110}, bbox=HERE),
           Asset({"inc": np.full((H, W), 60.0), "lsmap": np.full((H, W), 21.0)},
                 {"flight_direction": "D", "orbit": 37}, bbox=AWAY)]
    return {f"{ROOT}/COHERENCE": two(coh), f"{ROOT}/DECAY_MODEL_PARAMETERS": two(decay),
            f"{ROOT}/BACKSCATTER_RAW": two(amp, "<u2"),
            f"{ROOT}/INCIDENCE_LAYOVER_SHADOW": ils}


SEASONS = {"winter": 0.01, "spring": 0.02, "summer": 0.0, "fall": 0.03}


def truth(assets: dict[str, list[Asset]], season: str) -> dict[str, np.ndarray]:
    """What the bands must be, from the held images and GSSIC's documentation alone:
    coherence and decay as stored (0 = no data), gamma0 [dB] = 20 log10(DN) - 83 (DN 0 = no
    data), incidence/layover of the tile's orbits per pass, the later orbit on top."""
    def band(root: str, name: str) -> np.ndarray:
        return np.ma.filled(assets[f"{ROOT}/{root}"][0].bands[name], 0).astype(np.float64)

    def nan0(a: np.ndarray) -> np.ndarray:
        return np.where(a == 0, np.nan, a)

    out = {f"VV_{d}": nan0(band("COHERENCE", f"{season}_vv_COH{d:02d}")) for d in BASELINES}
    for pol in ("vv", "vh"):
        dn = nan0(band("BACKSCATTER_RAW", f"{season}_{pol}_AMP"))
        out[f"AMP_{pol.upper()}"] = 20 * np.log10(dn) - 83
    for p in ("rho", "tau", "rmse"):
        out[f"{p}_VV"] = nan0(band("DECAY_MODEL_PARAMETERS", f"{season}_vv_{p}"))
    ils = assets[f"{ROOT}/INCIDENCE_LAYOVER_SHADOW"]
    out["inc_asc"], out["layover_shadow_asc"] = ils[1].bands["inc"], ils[1].bands["lsmap"]
    out["inc_des"], out["layover_shadow_des"] = ils[2].bands["inc"], ils[2].bands["lsmap"]
    return out


def read(src, label: str):
    m = get_modality("gssic")
    period = expand("seasonal", label)[0]
    return list(src.read(WorkUnit(m.name, period.label, (TILE.id,)), {TILE.id: REF}, m, period))


def test_gssic_bands_on_the_40m_grid_with_nan_for_no_data():
    """Pixels evaluated by the loopback from the recipe's expression on known images: each
    band is the right season's right product band, in the documented unit."""
    assets = gssic_assets(SEASONS)
    want = truth(assets, "summer")
    with EEServer(assets=assets) as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url)
        (r,) = read(src, "2020-JJA")
        assert r.status == "done" and r.data.shape == (len(BANDS), H, W)
        assert r.data.dtype == np.float32 and get_modality("gssic").bands == BANDS
        for i, b in enumerate(BANDS):
            np.testing.assert_allclose(r.data[i], want[b].astype(np.float32), rtol=1e-6,
                                       equal_nan=True, err_msg=b)
            # the eastern half has no GSSIC data; incidence/layover cover the tile
            assert np.isnan(r.data[i][:, W // 2:]).all() != b.startswith(("inc", "lay")), b
            assert np.isfinite(r.data[i][:, :W // 2]).all(), b
        (req,) = server.pixel_requests()
        body = req["body"]
        assert body["bandIds"] == list(BANDS)
        assert body["grid"]["affineTransform"]["scaleX"] == 40.0
        assert "winter_" not in json.dumps(body["expression"])


def test_seasons_outside_2020_and_empty_tiles_are_nodata():
    # GSSIC has no 1x1 degree tile under TILE (open sea): only the stand-ins remain
    assets = {k: [a for a in v if a.bbox != HERE] for k, v in gssic_assets(SEASONS).items()}
    with EEServer(assets=assets) as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url)
        (r,) = read(src, "2021-JJA")
        assert r.status == "nodata" and "Dec 2019 - Nov 2020" in r.error
        assert server.pixel_requests() == []  # refused before any request
        (r,) = read(src, "2020-DJF")  # December 2019 to February 2020: GSSIC's winter
        assert r.status == "nodata" and "no GSSIC data" in r.error, r.error
        assert "winter_vv_COH12" in json.dumps(server.pixel_requests()[-1]["body"])
