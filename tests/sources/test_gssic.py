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
from m3leo_tiles.sources.earthengine.gssic import BANDS, NODATA
from tests.sources.ee_server import EEServer

TILE = tile_from_id("31N-0100-1200")
REF = TileRef.of(TILE)


@pytest.fixture(autouse=True)
def offline_ee(monkeypatch):
    import ee
    import googleapiclient.http

    monkeypatch.setattr(ee.deprecation, "_FetchDataCatalogStac", lambda: {})
    monkeypatch.setattr(googleapiclient.http.time, "sleep", lambda s: None)


def value(band: str) -> float:
    return {"AMP_VV": -7.5, "AMP_VH": -14.0, "rho_VV": 0.2, "tau_VV": 11.5, "rmse_VV": 0.03,
            "inc_asc": 38.0, "layover_shadow_asc": 1.0, "inc_des": 41.0,
            "layover_shadow_des": 5.0}.get(band, 0.1 * BANDS.index(band) + 0.1)


def fill(band: str, h: int, w: int) -> np.ndarray:
    """GSSIC values on the western half, masked (NODATA) on the eastern half."""
    out = np.full((h, w), value(band), np.float32)
    if not band.startswith(("inc", "layover")):
        out[:, w // 2:] = NODATA
    return out


def read(src, label: str):
    m = get_modality("gssic")
    period = expand("seasonal", label)[0]
    return list(src.read(WorkUnit(m.name, period.label, (TILE.id,)), {TILE.id: REF}, m, period))


def test_gssic_bands_on_the_40m_grid_with_nan_for_no_data():
    with EEServer(dtype_of=lambda band: "<f4", fill=fill) as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url)
        (r,) = read(src, "2020-JJA")
        assert r.status == "done" and r.data.shape == (len(BANDS), 112, 112)
        assert r.data.dtype == np.float32 and get_modality("gssic").bands == BANDS
        for i, b in enumerate(BANDS):
            assert (r.data[i][:, :56] == np.float32(value(b))).all(), b
            if b.startswith(("inc", "layover")):
                assert np.isfinite(r.data[i]).all()
            else:
                assert np.isnan(r.data[i][:, 56:]).all(), b
        (req,) = server.pixel_requests()
        body = req["body"]
        assert body["bandIds"] == list(BANDS)
        assert body["grid"]["affineTransform"]["scaleX"] == 40.0
        graph = json.dumps(body["expression"])
        root = "Earth_Big_Data/GLOBAL_SEASONAL_S1/V2019/"
        for needle in (root + "COHERENCE", root + "DECAY_MODEL_PARAMETERS",
                       root + "BACKSCATTER_RAW", root + "INCIDENCE_LAYOVER_SHADOW",
                       "summer_vv_COH06", "summer_vv_COH48", "summer_vh_AMP", "summer_vv_tau",
                       '"flight_direction"', '"D"', "Image.log10", str(NODATA)):
            assert needle in graph, needle
        assert "winter_" not in graph
        # every mosaic has a masked stand-in, so an uncovered tile still has its bands
        assert graph.count("ImageCollection.merge") >= 5


def test_seasons_outside_2020_and_empty_tiles_are_nodata():
    with EEServer(dtype_of=lambda band: "<f4",
                  fill=lambda band, h, w: np.full((h, w), NODATA, np.float32)) as server:
        src = EarthEngineSource(project="p", access_token="test", url=server.url)
        (r,) = read(src, "2021-JJA")
        assert r.status == "nodata" and "Dec 2019 - Nov 2020" in r.error
        assert server.pixel_requests() == []  # refused before any request
        (r,) = read(src, "2020-DJF")  # December 2019 to February 2020: GSSIC's winter
        assert r.status == "nodata" and "no GSSIC data" in r.error
        assert "winter_vv_COH12" in json.dumps(server.pixel_requests()[-1]["body"])
