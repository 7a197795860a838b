"""The modality registry: what each layer is, on which rung of the resolution ladder.

A modality fixes the store array's band axis, dtype, resolution and period kind; sources
deliver arrays shaped (band, y, x) on `tile.grid(modality.res)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import BadInput

# what the store's array attributes hold: JSON values, narrowed to the shapes written here
AttrValue = str | int | float | list[str] | dict[str, str]


@dataclass(frozen=True)
class Modality:
    name: str
    bands: tuple[str, ...]
    dtype: str
    res: int  # metres on the 10/20/40/80 ladder
    period_kind: str  # static | annual | seasonal | monthly | pair
    default_source: str  # online default
    offline_source: str  # the embedded offline backend
    units: str = ""
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | int | None = None
    description: str = ""
    band_units: dict[str, str] = field(default_factory=dict)
    composite: bool = False  # a reduction over dates, which `--cadence` may re-period

    @property
    def fill_value(self) -> float | int:
        if self.nodata is not None:
            value: float | int = np.array(self.nodata, dtype=self.dtype).item()
            return value
        return np.nan if np.dtype(self.dtype).kind == "f" else 0

    def attrs(self) -> dict[str, AttrValue]:
        """CF-style attributes written on the store array."""
        a: dict[str, AttrValue] = {
            "long_name": self.description or self.name,
            "units": self.units,
            "bands": list(self.bands),
            "resolution_m": self.res,
            "period_kind": self.period_kind,
        }
        if self.scale != 1.0:
            a["scale_factor"] = self.scale
        if self.offset != 0.0:
            a["add_offset"] = self.offset
        if self.nodata is not None:
            a["_FillValue_note"] = f"nodata={self.nodata}"
        if self.band_units:
            a["band_units"] = dict(self.band_units)
        return a


S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")

REGISTRY: dict[str, Modality] = {
    m.name: m
    for m in [
        Modality("s2", S2_BANDS + ("count",), "uint16", 10, "seasonal", "earthengine", "local",
                 units="1", scale=1e-4, nodata=0,
                 description="Sentinel-2 L2A surface reflectance, cloud-masked median composite; "
                             "'count' is the number of valid observations (scale does not apply)",
                 composite=True),
        Modality("s2rgb", ("red", "green", "blue"), "uint8", 10, "monthly", "earthengine", "local",
                 units="1", scale=0.3 / 255, nodata=0,
                 description="M3LEO-compatible Sentinel-2 RGB monthly median, 0-0.3 stretched",
                 composite=True),
        Modality("dem", ("elevation", "slope", "aspect"), "float32", 10, "static", "earthengine",
                 "local", units="m", description="Copernicus GLO-30 elevation (EGM2008), slope "
                 "and aspect on the tile grid",
                 band_units={"elevation": "m", "slope": "degree", "aspect": "degree"}),
        Modality("esawc", ("class",), "uint8", 10, "annual", "earthengine", "local", nodata=0,
                 description="ESA WorldCover class codes (v100 for 2020, v200 for 2021)"),
        Modality("s1grd-ee", ("VV_asc", "VH_asc", "VV_des", "VH_des"), "float32", 10, "seasonal",
                 "earthengine", "-", units="dB",
                 description="M3LEO-style Sentinel-1 GRD composite from Earth Engine "
                             "(COPERNICUS/S1_GRD, IW, VV+VH): median of the dB values per "
                             "orbit pass over the period; NaN where a pass has no acquisition. "
                             "Compare with s1grd, our own SLC-derived mean of linear power",
                 composite=True),
        Modality("treecover", ("tree_cover",), "uint8", 80, "annual", "earthengine", "-",
                 units="percent", nodata=255,
                 description="MODIS MOD44B v6.1 percent tree cover (250 m, nearest); 200 is "
                             "water as in the product, 255 no data"),
        Modality("ghsbuilt", ("built_surface",), "uint16", 40, "annual", "earthengine", "local",
                 units="m2", nodata=65535,
                 description="JRC GHS-BUILT-S R2023A built-up surface in m2 per native 100 m "
                             "cell (epochs every 5 years, 1975-2030; nearest)"),
        Modality("s1grd", ("VV_asc", "VH_asc", "VV_des", "VH_des", "count_asc", "count_des"),
                 "float32", 10, "seasonal", "asf", "archive", units="dB",
                 description="Sentinel-1 backscatter per orbit pass (gamma0-RTC by default, "
                             "layover/shadow NaN; sigma0 an option), thermal-noise removed: "
                             "mean of linear power over "
                             "the period's acquisitions of the pass (its tracks pooled), in "
                             "dB; count_* is the number of valid acquisitions per pixel; NaN "
                             "where a pass has none", composite=True,
                 band_units={"VV_asc": "dB", "VH_asc": "dB", "VV_des": "dB", "VH_des": "dB",
                             "count_asc": "1", "count_des": "1"}),
        Modality("s1coh", ("VV", "VH"), "float32", 40, "pair", "asf", "archive", units="1",
                 description="Sentinel-1 interferometric coherence of the pair"),
        Modality("s1geom", ("incidence", "local_incidence", "layover_shadow"), "float32", 10,
                 "static", "asf", "archive",
                 description="Sentinel-1 per-track geometry: ellipsoid and local incidence "
                             "(degrees), layover/shadow bits (1 layover, 2 shadow); one period "
                             "per track, labelled like t108A",
                 band_units={"incidence": "degree", "local_incidence": "degree",
                             "layover_shadow": "1"}),
        Modality("s1ifg", ("VV",), "float32", 40, "pair", "asf", "archive", units="rad",
                 description="Sentinel-1 wrapped interferometric phase, flat-earth and "
                             "topography removed"),
        # s1unw: unwrapped per block unit by SNAPHU (sar/unwrap.py, sources/s1unw.py; issue 22)
        Modality("s1unw", ("unw_VV", "conncomp"), "float32", 80, "pair", "asf", "archive",
                 units="rad",
                 description="Sentinel-1 unwrapped interferometric phase (VV, 80 m, SNAPHU "
                             "statistical cost on the block mosaic; same sign as s1ifg: a "
                             "range increase d reads +4 pi d / lambda) and its connected "
                             "component (0 = not unwrapped, unw_VV NaN there); one phase "
                             "reference per component, 2 pi k + c apart between components",
                 band_units={"unw_VV": "rad", "conncomp": "1"}),
        # gunw: ARIA S1 GUNW standard products from ASF (sources/asf/gunw.py; issue 22)
        Modality("gunw", ("unwrappedPhase", "coherence", "connectedComponents", "amplitude"),
                 "float32", 80, "pair", "asf", "-", units="rad",
                 description="M3LEO-compatible ARIA Sentinel-1 GUNW (JPL ISCE2 topsApp + "
                             "SNAPHU, 3 arc-second): /science/grids/data unwrapped phase, "
                             "coherence, connected components (nearest, 0 = not unwrapped) "
                             "and amplitude, resampled onto the 80 m tile grid; NaN where "
                             "the product has no data",
                 band_units={"unwrappedPhase": "rad", "coherence": "1",
                             "connectedComponents": "1", "amplitude": "1"}),
        # s1cohs: seasonal coherence as GSSIC, from our own pairs (m3leo_tiles/sar/seasonal.py)
        Modality("s1cohs", tuple(f"{p}_{d}" for p in ("VV", "VH") for d in (6, 12, 18, 24, 36, 48))
                 + tuple(f"{q}_{p}" for p in ("VV", "VH") for q in ("rho", "tau", "rmse")),
                 "float32", 40, "seasonal", "asf", "archive", units="1",
                 description="Sentinel-1 seasonal coherence (GSSIC-style): median coherence of "
                             "the pairs whose mid-date is in the season, per temporal baseline "
                             "(days, NaN where the season has none), and the per-pixel decay fit "
                             "gamma(t) = (1 - rho) exp(-t / tau) + rho",
                 band_units={**{f"{q}_{p}": "1" for p in ("VV", "VH") for q in ("rho", "rmse")},
                             "tau_VV": "day", "tau_VH": "day"}),
        # gssic: GSSIC V2019 from Earth Engine (m3leo_tiles/sources/earthengine/gssic.py)
        Modality("gssic", tuple(f"VV_{d}" for d in (6, 12, 18, 24, 36, 48))
                 + ("AMP_VV", "AMP_VH", "rho_VV", "tau_VV", "rmse_VV", "inc_asc",
                    "layover_shadow_asc", "inc_des", "layover_shadow_des"),
                 "float32", 40, "seasonal", "earthengine", "-", units="1",
                 description="GSSIC (Kellndorfer et al. 2022), Dec 2019 - Nov 2020 only, ~90 m "
                             "resampled (nearest): median VV coherence per baseline (days), "
                             "RTC gamma0 VV/VH (dB), decay rho/tau (days)/rmse, local incidence "
                             "(degrees) and layover/shadow codes (1 none, 5 layover, 17 shadow, "
                             "21 both) per pass; NaN where GSSIC has no data",
                 band_units={"AMP_VV": "dB", "AMP_VH": "dB", "tau_VV": "day",
                             "inc_asc": "degree", "inc_des": "degree"}),
    ]
}


def get_modality(name: str) -> Modality:
    try:
        return REGISTRY[name]
    except KeyError:
        raise BadInput(f"unknown modality {name!r}; known: {', '.join(REGISTRY)}") from None


def register(m: Modality) -> None:
    """Add a modality (used by tests' synthetic source and by plug-ins)."""
    REGISTRY[m.name] = m


# ESA CCI Biomass above-ground biomass (issue 14): a regression target (Mg/ha) with its error
register(Modality(
    "agb", ("agb", "agb_sd"), "uint16", 40, "annual", "earthengine", "local",
    units="Mg/ha", nodata=65535, band_units={"agb": "Mg/ha", "agb_sd": "Mg/ha"},
    description="ESA CCI Biomass above-ground biomass (oven-dry woody mass of living trees) "
                "and its per-pixel standard deviation, whole Mg/ha (scale 1) from the 100 m "
                "product by nearest neighbour; epochs 2007, 2010, 2015-2022 (v6); 0 is no "
                "biomass (non-forest, water), 65535 no product"))
