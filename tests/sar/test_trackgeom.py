"""Incidence angles vs ESA's geolocation grid; layover and shadow on a synthetic mountain."""

from __future__ import annotations

import numpy as np

from m3leo_tiles.sar.geocode import geodetic_to_ecef, grid_lonlat, swath_mid_time, zero_doppler
from m3leo_tiles.sar.safe import open_swath
from m3leo_tiles.sar.trackgeom import gcp_incidence_residual, incidence, track_geometry

from .synth import PAIR, gcp_target
from .test_s1_source import _tile_at


def test_ellipsoid_incidence_matches_annotation(s1data):
    safe = sorted((s1data / PAIR).glob("*.SAFE"))[0]
    for swath in ("IW1", "IW2", "IW3"):
        # ESA's grid differs from the geodetic-normal incidence by a near-constant ~0.03 deg
        assert gcp_incidence_residual(open_swath(safe, swath, "VV")) < 0.05


def test_layover_faces_the_radar_and_shadow_hides_behind(s1data):
    safe = sorted((s1data / PAIR).glob("*.SAFE"))[0]
    sw = open_swath(safe, "IW2", "VV")
    lon, lat, h, *_ = gcp_target(sw, 4, 10)
    tile = _tile_at(lon, lat)
    g = tile.grid
    xs, ys = np.meshgrid(g.xs(), g.ys())
    cx, cy = xs.mean(), ys.mean()
    mountain = 2500.0 * np.exp(-(((xs - cx) / 500.0) ** 2 + ((ys - cy) / 1500.0) ** 2))

    flat = track_geometry(str(safe), [tile], lambda gg: np.full(gg.shape, h))[tile.id]
    assert np.allclose(flat[0], flat[1], atol=0.05) and 35 < float(np.nanmean(flat[0])) < 42
    assert np.nanmax(flat[2]) == 0

    geo = track_geometry(str(safe), [tile], lambda gg: h + mountain)[tile.id]
    lay = (geo[2].astype(int) & 1) > 0
    sha = (geo[2].astype(int) & 2) > 0
    assert lay.sum() > 100 and sha.sum() > 100
    # ascending, right-looking: the radar is to the west; layover on the west flank
    assert xs[lay].mean() < cx < xs[sha].mean()
    # 1 km off the summit the flanks slope ~20 deg: local incidence ~ 39 -/+ 20 deg
    west = (np.abs(xs - (cx - 1000)) < 20) & (np.abs(ys - cy) < 100)
    east = (np.abs(xs - (cx + 1000)) < 20) & (np.abs(ys - cy) < 100)
    assert np.nanmean(geo[1][west]) < np.nanmean(geo[0][west]) - 15
    assert np.nanmean(geo[1][east]) > np.nanmean(geo[0][east]) + 15


def test_gentle_hills_have_no_layover_or_shadow(s1data):
    """Slopes under 8 deg on the real IW2 geometry never reach the ~37 deg incidence: no pixel
    may be flagged (the simulator's terrain checks the same in tests/test_chain.py)."""
    safe = sorted((s1data / PAIR).glob("*.SAFE"))[0]
    sw = open_swath(safe, "IW2", "VV")
    lon, lat, h, *_ = gcp_target(sw, 4, 10)
    tile = _tile_at(lon, lat)
    xs, ys = np.meshgrid(tile.grid.xs(), tile.grid.ys())
    hills = 20.0 * np.sin(2 * np.pi * ys / 900.0) + 15.0 * np.cos(2 * np.pi * xs / 1300.0)
    geo = track_geometry(str(safe), [tile], lambda gg: h + hills)[tile.id]
    assert np.nanmax(np.abs(geo[1] - geo[0])) > 5  # the hills do tilt the surface
    assert np.nanmax(geo[2]) == 0


def test_node_interpolated_geometry_matches_exact_geocoding(s1data):
    """s1geom interpolates radar times between exact nodes (as the other layers do): on the
    2.5 km mountain (layover and shadow both present) the incidences stay within 1e-4 deg of
    geocoding every pixel exactly and the layover/shadow bits differ on < 0.05% of pixels
    (a pixel whose rounded azimuth line flips at a bin edge)."""
    safe = sorted((s1data / PAIR).glob("*.SAFE"))[0]
    sw = open_swath(safe, "IW2", "VV")
    lon, lat, h, *_ = gcp_target(sw, 4, 10)
    tile = _tile_at(lon, lat)
    xs, ys = np.meshgrid(tile.grid.xs(), tile.grid.ys())
    cx, cy = xs.mean(), ys.mean()
    mountain = h + 2500.0 * np.exp(-(((xs - cx) / 500.0) ** 2 + ((ys - cy) / 1500.0) ** 2))
    ap = track_geometry(str(safe), [tile], lambda gg: mountain)[tile.id]
    ex = track_geometry(str(safe), [tile], lambda gg: mountain, exact=True)[tile.id]
    assert np.array_equal(np.isnan(ap[0]), np.isnan(ex[0])) and np.isfinite(ex[0]).mean() > 0.5
    ok = np.isfinite(ex[0])
    assert np.abs(ap[:2, ok] - ex[:2, ok]).max() < 1e-4
    assert (ex[2, ok] > 0).sum() > 200  # layover and shadow are there to be compared
    assert (ap[2, ok] != ex[2, ok]).mean() < 5e-4
    # both against the ellipsoid incidence from every pixel's own Newton solution, computed
    # here without track_geometry (the two differ only by float32 rounding, ~4e-6 deg)
    g = tile.grid
    glon, glat = grid_lonlat(g)
    xyz = geodetic_to_ecef(glon, glat, mountain)
    t, _ = zero_doppler(sw.orbit, xyz, swath_mid_time(sw))
    inc = incidence(sw.orbit.interpolate(t)[0], xyz, geodetic_to_ecef(glon, glat, 1.0) -
                    geodetic_to_ecef(glon, glat, 0.0))
    assert max(np.abs(inc[ok] - ex[0, ok]).max(), np.abs(inc[ok] - ap[0, ok]).max()) < 1e-4


def test_bits_only_gives_the_same_layover_and_shadow_without_incidences(s1data):
    """s1unw's mask asks for the bits alone (at 40 m): they must be the full geometry's bits."""
    import dataclasses

    safe = sorted((s1data / PAIR).glob("*.SAFE"))[0]
    lon, lat, h, *_ = gcp_target(open_swath(safe, "IW2", "VV"), 4, 10)
    tile = _tile_at(lon, lat)
    tile = dataclasses.replace(tile, grid=tile.grid_at(40.0))
    xs, ys = np.meshgrid(tile.grid.xs(), tile.grid.ys())
    cx, cy = xs.mean(), ys.mean()
    mountain = 2500.0 * np.exp(-(((xs - cx) / 500.0) ** 2 + ((ys - cy) / 1500.0) ** 2))
    full = track_geometry(str(safe), [tile], lambda gg: h + mountain)[tile.id]
    bits = track_geometry(str(safe), [tile], lambda gg: h + mountain, bits_only=True)[tile.id]
    flags = np.nan_to_num(full[2]).astype(int)
    assert ((flags & 1) > 0).sum() > 20 and ((flags & 2) > 0).sum() > 20  # layover, shadow
    assert np.array_equal(bits[2], full[2], equal_nan=True)
    assert np.isnan(bits[:2]).all() and bits.dtype == full.dtype
