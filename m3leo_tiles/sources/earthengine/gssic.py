"""`gssic`: the Global Seasonal Sentinel-1 Interferometric Coherence and Backscatter data set
(Kellndorfer et al. 2022, Sci. Data 9:73, doi 10.1038/s41597-022-01189-6) from the Earth
Engine catalogue, on our tile grid.

Collections (Earth Engine catalogue, google/earthengine-catalog
`catalog/Earth_Big_Data/Earth_Big_Data_GLOBAL_SEASONAL_S1_V2019_*.jsonnet`), all 1x1 degree
tiles at 3 arc-seconds (~92.7 m), Dec 2019 - Nov 2020:
- `Earth_Big_Data/GLOBAL_SEASONAL_S1/V2019/COHERENCE`: `<season>_vv_COH06` ... `COH48`,
  median coherence per repeat interval, scale applied; 0 is no data;
- `.../DECAY_MODEL_PARAMETERS`: `<season>_vv_rho`, `_tau` (days), `_rmse`, scale applied;
- `.../BACKSCATTER_RAW`: `<season>_vv_AMP`, `_vh_AMP` as the product's uint16 DN, which the
  GSSIC documentation converts as gamma0 [dB] = 20 log10(DN) - 83 (DN 0: no data). The raw
  collection is used because that conversion is documented; the scaled one's unit is not;
- `.../INCIDENCE_LAYOVER_SHADOW`: one image per relative orbit with `flight_direction`
  "A" / "D": `inc` (local incidence, degrees) and `lsmap` (1 none, 5 layover, 17 shadow,
  21 both), mosaicked per pass.
Seasons are named by the northern-hemisphere convention: winter = DJF (Dec 2019-Feb 2020),
spring = MAM, summer = JJA, fall = SON 2020; only those four periods exist. Resampling is
nearest (the values are medians and codes). Masked pixels come back as NODATA and become
NaN here; a tile GSSIC does not cover at all (open sea) is nodata.
"""

from __future__ import annotations

import numpy as np

from ...errors import NoData
from ...periods import Period

ROOT = "Earth_Big_Data/GLOBAL_SEASONAL_S1/V2019"
SEASON_NAMES = {"DJF": "winter", "MAM": "spring", "JJA": "summer", "SON": "fall"}
BASELINES = (6, 12, 18, 24, 36, 48)
BANDS = tuple(f"VV_{d}" for d in BASELINES) + (
    "AMP_VV", "AMP_VH", "rho_VV", "tau_VV", "rmse_VV", "inc_asc", "layover_shadow_asc",
    "inc_des", "layover_shadow_des")
NODATA = -32768.0  # what masked pixels are unmasked to in the request


def season_name(period: Period) -> str:
    """GSSIC's season name for one of our 2020 seasonal periods; NoData for any other."""
    year, _, season = period.label.partition("-")
    if period.kind != "seasonal" or year != "2020" or season not in SEASON_NAMES:
        raise NoData(f"GSSIC covers the seasons of Dec 2019 - Nov 2020 (2020-DJF .. "
                     f"2020-SON), not {period.label}")
    return SEASON_NAMES[season]


def image(region, period: Period):
    """The ee.Image of the `gssic` bands (float32, masked pixels = NODATA) over `region`."""
    import ee

    season = season_name(period)

    def mosaic(name: str, bands: list[str], col=None):
        # a fully masked image with the bands joins the collection: where GSSIC has no tile
        # (open sea) the mosaic still has its bands, all masked, instead of none
        col = col if col is not None else ee.ImageCollection(f"{ROOT}/{name}")
        blank = ee.Image.constant([0] * len(bands)).rename(bands).toFloat().updateMask(0)
        return (col.filterBounds(region).select(bands).map(lambda i: i.toFloat())
                .merge(ee.ImageCollection([blank])).mosaic())

    coh = mosaic("COHERENCE", [f"{season}_vv_COH{d:02d}" for d in BASELINES])
    coh = coh.updateMask(coh.gt(0)).rename([f"VV_{d}" for d in BASELINES])
    dn = mosaic("BACKSCATTER_RAW", [f"{season}_vv_AMP", f"{season}_vh_AMP"]).toFloat()
    amp = dn.updateMask(dn.gt(0)).log10().multiply(20).subtract(83).rename(["AMP_VV", "AMP_VH"])
    decay = mosaic("DECAY_MODEL_PARAMETERS",
                   [f"{season}_vv_rho", f"{season}_vv_tau", f"{season}_vv_rmse"]).rename(
        ["rho_VV", "tau_VV", "rmse_VV"])
    ils = ee.ImageCollection(f"{ROOT}/INCIDENCE_LAYOVER_SHADOW")
    parts = [coh, amp, decay]
    for flight, tag in (("A", "asc"), ("D", "des")):
        one = ils.filter(ee.Filter.eq("flight_direction", flight))
        parts.append(mosaic("", ["inc", "lsmap"], one).rename(
            [f"inc_{tag}", f"layover_shadow_{tag}"]))
    return ee.Image.cat(parts).toFloat().unmask(NODATA)


def finish(px: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Band arrays with NODATA as NaN; None when the tile has no GSSIC value at all."""
    out = {b: np.where(px[b] == NODATA, np.nan, px[b]).astype(np.float32) for b in BANDS}
    if not any(np.isfinite(out[b]).any() for b in BANDS[:5 + len(BASELINES)]):
        return None
    return out


__all__ = ["BANDS", "NODATA", "finish", "image", "season_name"]
