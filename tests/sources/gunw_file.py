"""ARIA S1 GUNW standard products written in the product's real layout (tests only).

Layout per the ARIA GUNW product specification (JPL D-102328, as ARIA-tools and sartiles
read it): a NetCDF-4 file with root attributes (Conventions, title, version...), a root
`productBoundingBox` polygon, and groups `/science/grids/data` (the 3 arc-second lon/lat
grid, latitude decreasing: `latitude`, `longitude` coordinate variables; `unwrappedPhase`
float32 radians fill 0, `coherence` float32 fill 0, `connectedComponents` int16 fill -1,
`amplitude` float32 fill 0; a `crs` grid-mapping variable), `/science/grids/imagingGeometry`
(coarse cubes: perpendicularBaseline, incidenceAngle on heightsMeta x lat x lon) and
`/science/radarMetaData` (wavelength...). The field values are analytic so tests know the
truth at any lon/lat: a plane of phase per component, two components split at a meridian.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

ARCSEC3 = 1 / 1200  # degrees


@dataclass(frozen=True)
class GunwTruth:
    """What a test knows: the grid extent, where data exists, the analytic fields."""

    west: float
    north: float
    nx: int
    ny: int
    split_lon: float  # components: 1 west of it, 2 east
    data_box: tuple[float, float, float, float]  # (w, s, e, n): the rest is fill
    water_box: tuple[float, float, float, float]  # component 0 (not unwrapped)

    def phase(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        base = 40.0 * (lon - self.west) - 25.0 * (self.north - lat)
        return np.where(lon < self.split_lon, base, base + 6 * np.pi + 0.5)

    def coherence(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return 0.5 + 2.0 * (lat - self.north + 0.1)

    def amplitude(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return 1000.0 + 5000.0 * (lon - self.west)

    def component(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        w, s, e, n = self.water_box
        water = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
        return np.where(water, 0, np.where(lon < self.split_lon, 1, 2))

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        lon = self.west + ARCSEC3 * (np.arange(self.nx) + 0.5)
        lat = self.north - ARCSEC3 * (np.arange(self.ny) + 0.5)
        return lon, lat

    @property
    def footprint(self) -> shapely.Polygon:
        lon, lat = self.lonlat()
        return shapely.box(lon[0], lat[-1], lon[-1], lat[0])


def gunw_name(later: dt.date, earlier: dt.date, track: int = 64, direction: str = "A") -> str:
    return (f"S1-GUNW-{direction}-R-{track:03d}-tops-{later:%Y%m%d}_{earlier:%Y%m%d}-"
            f"140101-00100W_00040N-PP-1a2b-v2_0_4")


def write_gunw(path: Path, truth: GunwTruth, name: str) -> Path:
    """One GUNW NetCDF-4 file of `truth` (h5netcdf writes real NetCDF-4/HDF5)."""
    import h5netcdf

    lon, lat = truth.lonlat()
    glon, glat = np.meshgrid(lon, lat)
    w, s, e, n = truth.data_box
    has = (glon >= w) & (glon <= e) & (glat >= s) & (glat <= n)
    comp = truth.component(glon, glat)
    with h5netcdf.File(str(path), "w") as f:
        f.attrs.update({"Conventions": "CF-1.6", "title": "ARIA standard product UNW",
                        "version": "1c", "author": "David Bekaert",
                        "institution": "Jet Propulsion Laboratory",
                        "references": "https://aria.jpl.nasa.gov/", "source": name})
        f.dimensions["matchup"] = 1
        bb = f.create_variable("productBoundingBox", ("matchup",), dtype="S1000")
        bb[:] = np.array([shapely.to_wkt(truth.footprint).encode()], dtype="S1000")
        bb.attrs.update({"grid_mapping": "crs", "ogr_geometry_field": "productBoundingBox",
                         "ogr_layer_type": "POLYGON"})
        d = f.create_group("science/grids/data")
        d.dimensions["longitude"] = truth.nx
        d.dimensions["latitude"] = truth.ny
        v = d.create_variable("longitude", ("longitude",), dtype="f8")
        v[:] = lon
        v.attrs.update({"standard_name": "longitude", "units": "degrees_east"})
        v = d.create_variable("latitude", ("latitude",), dtype="f8")
        v[:] = lat
        v.attrs.update({"standard_name": "latitude", "units": "degrees_north"})
        crs = d.create_variable("crs", (), dtype="i4")
        crs.attrs.update({"grid_mapping_name": "latitude_longitude",
                          "semi_major_axis": 6378137.0, "inverse_flattening": 298.257223563,
                          "spatial_ref": 'GEOGCS["WGS 84",AUTHORITY["EPSG","4326"]]'})
        layers = {
            "unwrappedPhase": ("f4", 0.0, np.where(has, truth.phase(glon, glat), 0.0),
                               "radians", "Unwrapped phase"),
            "coherence": ("f4", 0.0, np.where(has, truth.coherence(glon, glat), 0.0), "",
                          "Coherence magnitude"),
            "connectedComponents": ("i2", -1, np.where(has, comp, -1), "",
                                    "Connected components"),
            "amplitude": ("f4", 0.0, np.where(has, truth.amplitude(glon, glat), 0.0),
                          "watt", "Amplitude"),
        }
        for key, (dtype, fill, data, units, long) in layers.items():
            v = d.create_variable(key, ("latitude", "longitude"), dtype=dtype,
                                  fillvalue=np.array(fill, dtype=dtype), compression="gzip",
                                  chunks=(min(256, truth.ny), min(256, truth.nx)))
            v[:] = data.astype(dtype)
            v.attrs.update({"grid_mapping": "crs", "long_name": long, "units": units})
        g = f.create_group("science/grids/imagingGeometry")
        g.dimensions["heightsMeta"] = 2
        g.dimensions["latitudeMeta"] = 3
        g.dimensions["longitudeMeta"] = 3
        for key, value in (("perpendicularBaseline", 85.0), ("incidenceAngle", 38.0)):
            v = g.create_variable(key, ("heightsMeta", "latitudeMeta", "longitudeMeta"),
                                  dtype="f8")
            v[:] = np.full((2, 3, 3), value)
        r = f.create_group("science/radarMetaData")
        r.create_variable("wavelength", (), dtype="f8")[...] = 0.05546576
        r.create_variable("missionID", (), dtype="S2")[...] = np.bytes_("S1")
    return path
