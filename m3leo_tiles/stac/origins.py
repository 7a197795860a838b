"""Where each modality's data comes from: licence and citation, for the STAC Collection.

Entries follow what each producer states (licence, recommended citation, DOI). Checked
(2026-12): GSSIC's CC BY 4.0 against NASA Earthdata's record; NASA's data use policy (data of
a NASA-led mission are CC0 unless marked otherwise), which covers MODIS VCF; the Copernicus
DEM licence (rights of reproduction, distribution and adaptation, with the attribution line
quoted in its citation). ARIA GUNW and CCI Biomass link their producers' pages: GUNW carries
modified Copernicus Sentinel data under the Sentinel terms, CCI data may be used for any
purpose with acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    title: str
    producer: str
    licence: str  # SPDX identifier, or "other" with `licence_url`
    licence_url: str
    citation: str
    doi: str = ""


ORIGINS = {
    "copernicus-s1": Origin(
        "Copernicus Sentinel-1", "European Space Agency (Copernicus)", "other",
        "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice",
        "Contains modified Copernicus Sentinel data, processed by m3leo-tiles."),
    "copernicus-s2": Origin(
        "Copernicus Sentinel-2 L2A", "European Space Agency (Copernicus)", "other",
        "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice",
        "Contains modified Copernicus Sentinel data, processed by m3leo-tiles."),
    "copernicus-dem": Origin(
        "Copernicus DEM GLO-30", "European Space Agency, Airbus", "other",
        "https://docs.sentinel-hub.com/api/latest/static/files/data/dem/resources/license/"
        "License-COPDEM-30.pdf",
        "Produced using Copernicus WorldDEM-30 (c) DLR e.V. 2010-2014 and (c) Airbus Defence "
        "and Space GmbH 2014-2018 provided under COPERNICUS by the European Union and ESA; all "
        "rights reserved. European Space Agency, Sinergise (2021). Copernicus Global Digital "
        "Elevation Model. Distributed by OpenTopography.", "10.5069/G9028PQB"),
    "esa-worldcover": Origin(
        "ESA WorldCover 10 m (v100 2020, v200 2021)", "European Space Agency", "CC-BY-4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "Zanaga, D. et al. (2021). ESA WorldCover 10 m 2020 v100; Zanaga, D. et al. (2022). "
        "ESA WorldCover 10 m 2021 v200.", "10.5281/zenodo.5571936"),
    "ghs": Origin(
        "GHS-BUILT-S R2023A", "European Commission, Joint Research Centre", "CC-BY-4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "Pesaresi, M., Politis, P. (2023). GHS-BUILT-S R2023A - GHS built-up surface grid, "
        "derived from Sentinel-2 composite and Landsat, multitemporal (1975-2030). European "
        "Commission, Joint Research Centre.", "10.2905/9F06F36F-4B11-47EC-ABB0-4F8B7B1D72EA"),
    "cci-biomass": Origin(
        "ESA CCI Biomass above-ground biomass v6.0", "ESA Climate Change Initiative", "other",
        "https://climate.esa.int/en/terms-and-conditions/",
        "Santoro, M., Cartus, O. ESA Biomass Climate Change Initiative (Biomass_cci): Global "
        "datasets of forest above-ground biomass, v6.0. NERC EDS Centre for Environmental Data "
        "Analysis.", "10.5285/95913ffb6467447ca72c4e9d8cf30501"),
    "gssic": Origin(
        "Global Seasonal Sentinel-1 Interferometric Coherence and Backscatter (GSSIC)",
        "Earth Big Data LLC, Gamma Remote Sensing AG, NASA JPL", "CC-BY-4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "Kellndorfer, J., Cartus, O., Lavalle, M. et al. Global seasonal Sentinel-1 "
        "interferometric coherence and backscatter data set. Sci Data 9, 73 (2022).",
        "10.1038/s41597-022-01189-6"),
    "aria-gunw": Origin(
        "ARIA Sentinel-1 Geocoded Unwrapped Interferograms (GUNW)",
        "NASA JPL ARIA project, distributed by the Alaska Satellite Facility DAAC", "other",
        "https://asf.alaska.edu/data-sets/derived-data-sets/sentinel-1-interferograms/",
        "ARIA Sentinel-1 GUNW standard products, NASA JPL, distributed by ASF DAAC. Contains "
        "modified Copernicus Sentinel data, processed by ESA."),
    "modis-vcf": Origin(
        "MODIS/Terra Vegetation Continuous Fields MOD44B v061", "NASA LP DAAC", "CC0-1.0",
        "https://www.earthdata.nasa.gov/learn/use-data/data-use-policy",
        "DiMiceli, C. et al. (2022). MODIS/Terra Vegetation Continuous Fields Yearly L3 Global "
        "250m SIN Grid V061. NASA EOSDIS Land Processes DAAC.", "10.5067/MODIS/MOD44B.061"),
}

#: each built-in modality's origins (terrain-corrected S1 layers also use the DEM)
MODALITY_ORIGINS: dict[str, tuple[str, ...]] = {
    "s2": ("copernicus-s2",), "s2rgb": ("copernicus-s2",), "dem": ("copernicus-dem",),
    "esawc": ("esa-worldcover",), "s1grd-ee": ("copernicus-s1",), "treecover": ("modis-vcf",),
    "ghsbuilt": ("ghs",), "s1grd": ("copernicus-s1", "copernicus-dem"),
    "s1coh": ("copernicus-s1", "copernicus-dem"), "s1geom": ("copernicus-s1", "copernicus-dem"),
    "s1ifg": ("copernicus-s1", "copernicus-dem"), "s1cohs": ("copernicus-s1", "copernicus-dem"),
    "gssic": ("gssic", "copernicus-s1"), "agb": ("cci-biomass",),
    "s1unw": ("copernicus-s1", "copernicus-dem"), "gunw": ("aria-gunw", "copernicus-s1"),
}


def origins_of(modalities: list[str]) -> list[Origin]:
    """The origins of these modalities, each once, in table order (unknown ones: none)."""
    keys = {k for m in modalities for k in MODALITY_ORIGINS.get(m, ())}
    return [o for k, o in ORIGINS.items() if k in keys]


__all__ = ["MODALITY_ORIGINS", "ORIGINS", "Origin", "origins_of"]
