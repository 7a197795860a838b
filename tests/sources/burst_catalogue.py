"""A Sentinel-1 IW burst catalogue with real burst geometry, for loopback CMR benchmarks.

Burst ids follow ESA's rule (S1-TN-MDA-52-7445, as s1-reader's `s1_burst_id.py`): burst
cycle T_beam = 2.758273 s, preamble T_pre = 2.299849 s, counted from the ascending node of
relative orbit 1, 175 relative orbits in a 12-day repeat. The ground track is a circular
sun-synchronous orbit (inclination 98.18 deg, 693 km) over a rotating spherical Earth; IW
looks right, sub-swaths IW1-3 span incidence 30.8-46.0 deg (about 250 km of ground). The
ascending-node longitude is calibrated on the real track-108 S1A product in ../shared/s1data
(hyp3-isce2 fixture: ANX 2025-04-06T02:06:13.326 UTC, frame centre 128.03 W 52.05 N), so the
tracks fall where the real ones do to within a few km. With S1A and S1B (2020) a track is
imaged every 6 days. Frames (SLC products) are 10 consecutive burst cycles of one pass; each
burst names its frame (`extra["slc"]`, ASF's InputGranules) and its index in the frame's
swath (`extra["index"]`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import numpy as np
import shapely

from m3leo_tiles.s1.products import S1Product

T_BEAM = 2.758273
T_PRE = 2.299849
N_ORBITS = 175
T_ORB = 12 * 86400 / N_ORBITS
INCLINATION = math.radians(98.18)
OMEGA_E = 7.2921159e-5
R_E = 6371.0088  # km
ALTITUDE = 693.0
SUBSWATHS = {"IW1": (30.86, 36.59), "IW2": (36.47, 41.85), "IW3": (41.75, 46.00)}
BURSTS_PER_FRAME = 10
# the real track-108 product (hyp3-isce2 fixture in ../shared/s1data)
ANX_108 = dt.datetime(2025, 4, 6, 2, 6, 13, 326000)
CENTRE_108 = (-128.03, 52.05)
START_108 = 835.3  # s after the ascending node; the frame lasts 27 s


def _ground_range(incidence_deg: float) -> float:
    """km from nadir to where the beam meets the sphere at this incidence."""
    th = math.radians(incidence_deg)
    look = math.asin(math.sin(th) * R_E / (R_E + ALTITUDE))
    return R_E * (th - look)


def _nadir(t: np.ndarray, lon_anx: float) -> tuple[np.ndarray, np.ndarray]:
    """Sub-satellite lon/lat (radians) t seconds after the ascending node."""
    u = 2 * np.pi * t / T_ORB
    lat = np.arcsin(np.sin(INCLINATION) * np.sin(u))
    lon = lon_anx + np.arctan2(np.cos(INCLINATION) * np.sin(u), np.cos(u)) - OMEGA_E * t
    return lon, lat


def _offset(lon, lat, bearing, dist_km):
    """Great-circle destination (radians)."""
    d = dist_km / R_E
    lat2 = np.arcsin(np.sin(lat) * np.cos(d) + np.cos(lat) * np.sin(d) * np.cos(bearing))
    lon2 = lon + np.arctan2(np.sin(bearing) * np.sin(d) * np.cos(lat),
                            np.cos(d) - np.sin(lat) * np.sin(lat2))
    return lon2, lat2


def _swath_points(t: np.ndarray, lon_anx: float, dist_km: float):
    """lon/lat (degrees) of the ground point `dist_km` right of the track at times t."""
    lon, lat = _nadir(t, lon_anx)
    lon_b, lat_b = _nadir(t + 1.0, lon_anx)
    y = np.sin(lon_b - lon) * np.cos(lat_b)
    x = np.cos(lat) * np.sin(lat_b) - np.sin(lat) * np.cos(lat_b) * np.cos(lon_b - lon)
    heading = np.arctan2(y, x)
    lo, la = _offset(lon, lat, heading + np.pi / 2, dist_km)
    return (np.degrees(lo) + 180) % 360 - 180, np.degrees(la)


def _calibrated_lon_anx_108() -> float:
    t = np.array([START_108 + 13.5])
    near, far = _ground_range(SUBSWATHS["IW1"][0]), _ground_range(SUBSWATHS["IW3"][1])
    lon, _ = _swath_points(t, 0.0, (near + far) / 2)
    return math.radians(CENTRE_108[0] - float(lon[0]))


LON_ANX_108 = _calibrated_lon_anx_108()


def lon_anx(relative_orbit: int) -> float:
    """Ascending-node longitude (radians) of a relative orbit: each next orbit starts T_ORB
    later, the Earth having turned under it."""
    return LON_ANX_108 - (relative_orbit - 108) * (2 * np.pi * T_ORB / 86164.0905
                                                   - 2 * np.pi * T_ORB / (365.2422 * 86400))


def burst_footprints(relative_orbit: int, u_range: tuple[float, float]
                     ) -> Iterator[tuple[int, str, float, shapely.Geometry]]:
    """(burst id, sub-swath, seconds after ANX, footprint) for argument of latitude in
    `u_range` (degrees; 0-180 northbound half is (-90, 90), southbound (90, 270))."""
    la = lon_anx(relative_orbit)
    t_lo, t_hi = (u / 360 * T_ORB for u in u_range)
    shift = (relative_orbit - 1) * T_ORB
    n0 = math.floor((t_lo + shift - T_PRE) / T_BEAM) + 1
    n1 = math.floor((t_hi + shift - T_PRE) / T_BEAM) + 1
    n = np.arange(n0, n1 + 1)
    t0 = T_PRE + (n - 1) * T_BEAM - shift
    t1 = t0 + T_BEAM + 0.3  # bursts overlap by ~100 lines
    for sw, (inc_near, inc_far) in SUBSWATHS.items():
        near, far = _ground_range(inc_near), _ground_range(inc_far)
        corners = [_swath_points(t0, la, near), _swath_points(t0, la, far),
                   _swath_points(t1, la, far), _swath_points(t1, la, near)]
        xy = np.stack([np.stack(c, axis=-1) for c in corners], axis=1)  # (n, 4, 2)
        # keep a burst's corners on one side of the antimeridian (continuous longitudes)
        xy[..., 0] = xy[:, :1, 0] + (xy[..., 0] - xy[:, :1, 0] + 180) % 360 - 180
        polys = shapely.polygons(xy)
        for k in range(len(n)):
            yield int(n[k]), sw, float(t0[k]), polys[k]


def catalogue(aoi: shapely.Geometry, start: dt.date, end: dt.date
              ) -> tuple[list[S1Product], list[S1Product]]:
    """(bursts, frames) of S1A + S1B IW acquisitions over `aoi` with start in [start, end)."""
    shapely.prepare(aoi)
    lat0, lat1 = aoi.bounds[1], aoi.bounds[3]
    pad = 8.0  # degrees of latitude: the swath lies up to ~5.5 deg off the track
    u_asc = (math.degrees(math.asin(max(-1, math.sin(math.radians(lat0 - pad)) / 0.9898))),
             math.degrees(math.asin(min(1, math.sin(math.radians(lat1 + pad)) / 0.9898))))
    halves = {"ASCENDING": u_asc, "DESCENDING": (180 - u_asc[1], 180 - u_asc[0])}
    bursts: list[S1Product] = []
    frames: list[S1Product] = []
    for rel in range(1, N_ORBITS + 1):
        for direction, u_range in halves.items():
            found = [(n, sw, t0, fp) for n, sw, t0, fp in burst_footprints(rel, u_range)
                     if aoi.intersects(fp)]
            if not found:
                continue
            for platform, anx in _passes(rel, start, end):
                by_frame: dict[int, list] = {}
                for n, sw, t0, fp in found:
                    t = anx + dt.timedelta(seconds=t0)
                    if not start <= t.date() < end:
                        continue
                    name = f"S1_{n:06d}_{sw}_{t:%Y%m%dT%H%M%S}_VV_{platform[-1]}000-BURST"
                    b = S1Product(name, platform, t, t + dt.timedelta(seconds=T_BEAM + 0.3), rel,
                                  _absolute(platform, rel, anx), direction, ("VV", "VH"), fp,
                                  burst_ids=(f"{rel:03d}_{n:06d}_{sw}",),
                                  extra={"ascending_node_time": anx.isoformat()})
                    bursts.append(b)
                    by_frame.setdefault(int(t0 // (BURSTS_PER_FRAME * T_BEAM)), []).append(b)
                for group in by_frame.values():
                    frames.append(_frame(group, platform, rel, direction, anx))
                    for sw in SUBSWATHS:  # ASF: the source SLC and the index in its swath
                        mine = sorted((b for b in group if b.burst_ids[0].endswith(sw)),
                                      key=lambda b: b.start)
                        for k, b in enumerate(mine):
                            b.extra.update(slc=frames[-1].name, index=k)
    return bursts, frames


def _passes(rel: int, start: dt.date, end: dt.date) -> Iterator[tuple[str, dt.datetime]]:
    """(platform, ascending-node time) of every pass of a track in the window: S1A on the
    real track-108 schedule, S1B six days after it."""
    base = ANX_108 + dt.timedelta(seconds=(rel - 108) * T_ORB)
    lo = dt.datetime.combine(start, dt.time()) - dt.timedelta(days=1)
    hi = dt.datetime.combine(end, dt.time())
    k = math.floor((lo - base) / dt.timedelta(days=12))
    while True:
        a = base + dt.timedelta(days=12 * k)
        if a >= hi:
            return
        for platform, anx in (("S1A", a), ("S1B", a + dt.timedelta(days=6))):
            if lo <= anx < hi:
                yield platform, anx
        k += 1


def _absolute(platform: str, rel: int, anx: dt.datetime) -> int:
    """Absolute orbit number consistent with ESA's relative-orbit rule of each satellite."""
    cycles = math.floor((anx - ANX_108) / dt.timedelta(days=12))
    if platform == "S1A":  # rel = (abs - 73) % 175 + 1; 58630 was track 108 on 2025-04-06
        return 58630 + (rel - 108) + N_ORBITS * cycles
    return 27 + (rel - 1) + N_ORBITS * (cycles + 400)  # rel = (abs - 27) % 175 + 1


def _frame(group: list[S1Product], platform: str, rel: int, direction: str,
           anx: dt.datetime) -> S1Product:
    start = min(b.start for b in group)
    stop = max(b.stop for b in group)
    absolute = group[0].absolute_orbit
    name = (f"{platform}_IW_SLC__1SDV_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_"
            f"{absolute:06d}_{absolute % 0xFFFFFF:06X}_{rel:04d}")
    fp = shapely.MultiPolygon([b.footprint for b in group]).convex_hull
    return S1Product(name, platform, start, stop, rel, absolute, direction, ("VV", "VH"), fp,
                     burst_ids=tuple(sorted(b.burst_ids[0] for b in group)),
                     extra={"ascending_node_time": anx.isoformat()})
