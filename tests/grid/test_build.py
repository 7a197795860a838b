"""The tile lattice: ids, exact squares, zone boundaries, hemispheres, the antimeridian."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod

from m3leo_tiles.errors import BadInput
from m3leo_tiles.grid import Tile, tile_from_id
from m3leo_tiles.grid.build import build_grid, count_tiles
from m3leo_tiles.grid.tiles import zone_band

TILE = 4480.0


def test_ids_are_unique_and_round_trip_to_identical_geometry():
    gdf = build_grid(shapely.box(-100.2, 30.0, -99.6, 30.4))
    assert gdf["id"].is_unique and list(gdf["id"]) == sorted(gdf["id"])
    for r in gdf.sample(20, random_state=0).itertuples():
        t = tile_from_id(r.id)
        assert (t.zone, t.hemisphere, t.col, t.row, t.epsg) == (r.zone, r.hemisphere, r.col,
                                                                 r.row, r.epsg)
        assert t.bounds == (r.xmin, r.ymin, r.xmax, r.ymax)
        assert t.polygon_lonlat.equals_exact(r.geometry, 1e-12)
    assert gdf["id"].iloc[0].startswith("14N-")


def test_same_tile_same_id_whatever_the_aoi():
    a = build_grid(shapely.box(-100.2, 30.0, -99.6, 30.4))
    b = build_grid(shapely.box(-100.0, 30.2, -99.0, 31.0))
    both = set(a["id"]) & set(b["id"])
    assert len(both) > 10
    ga = a.set_index("id").loc[sorted(both)].geometry.values
    gb = b.set_index("id").loc[sorted(both)].geometry.values
    assert all(x.equals_exact(y, 0) for x, y in zip(ga, gb, strict=True))


def test_tiles_are_exact_squares_with_nested_pixel_grids():
    t = tile_from_id("17N-0089-0745")
    assert t.bounds == (89 * TILE, 745 * TILE, 90 * TILE, 746 * TILE)
    for res, n in ((10, 448), (20, 224), (40, 112), (80, 56)):
        g = t.grid(res)
        assert g.shape == (n, n) and g.bounds == t.bounds and g.transform.a == res
    with pytest.raises(ValueError):
        t.grid(30)
    with pytest.raises(ValueError, match="not a tile id"):
        tile_from_id("17X-1-2")
    assert tile_from_id("17N-0179-1490-s2240").size == 2240


def test_true_area_matches_the_geodesic_area():
    gdf = build_grid(shapely.box(-105.5, 40.0, -104.5, 40.3))  # zone 13, 2.5 degrees off its meridian
    geod = Geod(ellps="WGS84")
    for r in gdf.sample(10, random_state=1).itertuples():
        exact = abs(geod.geometry_area_perimeter(r.geometry)[0]) / 1e6
        assert r.area_km2 == pytest.approx(exact, rel=1e-3)
    assert (gdf["area_km2"] != TILE**2 / 1e6).all()


def _coverage_gap(gdf, aoi) -> float:
    return shapely.difference(aoi, shapely.union_all(gdf.geometry.values)).area / aoi.area


def test_zone_boundary_has_no_gap_and_one_tile_wide_overlap():
    aoi = shapely.box(-103.0, 33.0, -101.0, 34.0)  # the 13N/14N boundary at -102
    gdf = build_grid(aoi)
    assert set(gdf["zone"]) == {13, 14}
    assert _coverage_gap(gdf, aoi) < 1e-9
    # every tile touches its own zone's band: nothing beyond the boundary strip
    for z in (13, 14):
        band = shapely.box(*zone_band(z, "N"))
        assert shapely.intersects(band, gdf[gdf.zone == z].geometry.values).all()
    # overlap width = overlap area / boundary length, in km, via an equal-area projection
    u13 = shapely.union_all(gdf[gdf.zone == 13].geometry.values)
    u14 = shapely.union_all(gdf[gdf.zone == 14].geometry.values)
    overlap = shapely.intersection(shapely.intersection(u13, u14), aoi)
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    area = abs(geod.geometry_area_perimeter(overlap)[0]) / 1e6
    length = geod.line_length([-102, -102], [33, 34]) / 1e3
    width = area / length
    assert 0.5 * TILE / 1e3 < width < 1.5 * TILE / 1e3, width
    # and no tile of one zone reaches further than one tile (diagonal) past the boundary
    for z, sign in ((13, 1), (14, -1)):
        far = gdf[gdf.zone == z].geometry.bounds
        reach = (far.maxx + 102).max() if sign > 0 else (-102 - far.minx).max()
        assert 0 < reach < 1.5 * TILE / 1e3 / 93.0  # degrees at 33 N: ~93 km per degree


def test_southern_hemisphere_and_the_equator():
    aoi = shapely.box(-70.5, -33.5, -70.0, -33.0)
    gdf = build_grid(aoi)
    assert set(gdf["hemisphere"]) == {"S"} and (gdf["epsg"] == 32719).all()
    assert _coverage_gap(gdf, aoi) < 1e-9
    eq = shapely.box(10.0, -0.2, 10.4, 0.2)
    g2 = build_grid(eq)
    assert set(g2["hemisphere"]) == {"N", "S"}
    assert _coverage_gap(g2, eq) < 1e-9
    assert g2[g2.hemisphere == "S"]["row"].max() == 2232  # the row across the equator


def test_antimeridian_aoi():
    aoi = shapely.box(179.6, -17.2, 180.4, -16.8)  # longitudes beyond 180
    gdf = build_grid(aoi)
    assert set(gdf["zone"]) == {60, 1}
    shifted = shapely.affinity.translate(aoi, xoff=-360)
    assert _coverage_gap(gdf, aoi) + _coverage_gap(gdf, shifted) < 1 + 1e-9
    # zone 1 tiles west of the antimeridian keep continuous longitudes near -180
    z1 = gdf[gdf.zone == 1].geometry.bounds
    assert (z1.maxx > -180.5).all() and (z1.minx < -179.5).all()
    assert count_tiles(aoi) == len(gdf)


def test_bad_tile_sizes_and_empty_aois():
    with pytest.raises(ValueError):
        build_grid(shapely.box(0, 0, 1, 1), tile_size=4485)
    with pytest.raises(BadInput):
        build_grid(shapely.Polygon())


def test_other_tile_sizes_nest_in_the_same_system():
    aoi = shapely.box(2.0, 48.0, 2.2, 48.1)
    small = build_grid(aoi, tile_size=2240)
    assert small["id"].str.endswith("-s2240").all()
    t = tile_from_id(small["id"].iloc[0])
    assert t.size == 2240 and t.grid(10).shape == (224, 224)
    assert Tile(31, "N", 1, 2).id == "31N-0001-0002"
    assert np.isclose(small["area_km2"].median(), 2240**2 / 1e6, rtol=2e-3)
