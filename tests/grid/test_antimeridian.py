"""Tile footprints stay valid wherever a GIS user reprojects them (RFC 7946 s3.1.9).

Every tile of AOIs across the antimeridian (Fiji, Chukotka) and at the UTM limits (84 N,
80 S) is reprojected to EPSG:3857 and EPSG:6933: each must be valid, its equal-area size must
match the tile's true area, and the union must cover the AOI.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from m3leo_tiles.grid.build import build_grid
from m3leo_tiles.grid.splits import band_splits
from m3leo_tiles.grid.tileref import refs_from_table, table_from_grid
from m3leo_tiles.grid.tiles import cut_antimeridian, tile_from_id

AOIS = {
    "fiji": shapely.box(179.0, -17.5, 181.0, -16.0),  # longitudes beyond 180
    "chukotka": shapely.box(178.5, 66.0, 181.5, 67.0),
    "north_edge": shapely.box(10.0, 83.3, 14.0, 84.5),  # UTM stops at 84 N
    "south_edge": shapely.box(-60.0, -80.6, -55.0, -79.4),  # and at 80 S
    "antimeridian_south_edge": shapely.box(179.0, -80.5, 181.0, -79.5),
}
UTM_LIMITS = shapely.box(-180.0, -80.0, 180.0, 84.0)


def _cut_aoi(aoi: shapely.Geometry) -> shapely.Geometry:
    cut = cut_antimeridian(np.array([aoi], dtype=object))[0]
    return shapely.intersection(cut, UTM_LIMITS)


@pytest.fixture(scope="module", params=sorted(AOIS))
def case(request):
    aoi = AOIS[request.param]
    gdf = build_grid(aoi)
    assert len(gdf) > 50
    return request.param, aoi, gdf


def test_footprints_are_rfc7946(case):
    name, _, gdf = case
    minx, _, maxx, _ = gdf.total_bounds
    assert minx >= -180.0 and maxx <= 180.0
    assert gdf.is_valid.all()
    multi = gdf[gdf.geom_type == "MultiPolygon"]
    if name in ("fiji", "chukotka", "antimeridian_south_edge"):
        assert len(multi) > 5  # the straddling column of tiles is cut
        for g in multi.geometry:
            parts = shapely.get_parts(g)
            assert len(parts) == 2
            xs = sorted(round(p.bounds[0]) for p in parts)
            assert xs[0] == -180 and xs[1] >= 179
            # exterior rings counter-clockwise as RFC 7946 asks
            assert all(shapely.Polygon(p.exterior).exterior.is_ccw for p in parts)
    else:
        assert multi.empty


@pytest.mark.parametrize("crs", [3857, 6933])
def test_every_tile_reprojects_valid_and_covers(case, crs):
    name, aoi, gdf = case
    r = gdf.to_crs(crs)
    bad = r[~r.is_valid]
    assert bad.empty, f"{len(bad)} invalid tiles in EPSG:{crs}: {list(bad.id[:3])}"
    union = r.union_all()  # raised TopologyException before the cut
    import geopandas as gpd

    target = gpd.GeoSeries([_cut_aoi(aoi)], crs=4326).to_crs(crs).iloc[0]
    assert target.area > 0
    missed = shapely.difference(target, union).area / target.area
    assert missed < 1e-6, f"{name}: {missed:.2e} of the AOI is not covered in EPSG:{crs}"
    assert union.area >= target.area
    if crs == 6933:  # equal area: each reprojected tile has the tile's true area
        rel = r.area.to_numpy() / (gdf["area_km2"].to_numpy() * 1e6) - 1
        assert np.abs(rel).max() < 2e-3, f"{name}: tile area off by {np.abs(rel).max():.1e}"


def test_ids_and_grids_unchanged_and_pieces_rejoin(case):
    _, _, gdf = case
    table = table_from_grid(gdf)
    refs = refs_from_table(table)
    for ref, row in zip(refs, gdf.itertuples(index=False), strict=True):
        tile = tile_from_id(ref.id)
        assert (tile.col, tile.row, tile.epsg) == (row.col, row.row, row.epsg)
        assert ref.grid == tile.grid()
        assert shapely.equals_exact(ref.polygon, row.geometry, 1e-9)
        assert shapely.equals_exact(tile.polygon_lonlat, row.geometry, 1e-9)
    # the cut pieces, unwrapped, are the tile's continuous square again
    for row in gdf[gdf.geom_type == "MultiPolygon"].itertuples(index=False):
        tile = tile_from_id(row.id)
        cm = -183.0 + 6.0 * tile.zone
        whole = shapely.union_all([shapely.transform(p, lambda c, cm=cm: np.column_stack(
            [cm + (c[:, 0] - cm + 180.0) % 360.0 - 180.0, c[:, 1]]))
            for p in shapely.get_parts(row.geometry)])
        assert whole.geom_type == "Polygon"
        assert abs(whole.area - row.geometry.area) < 1e-12
    # the stored centre is the tile's centre, not half a world away
    for row, lon, lat in zip(gdf.itertuples(index=False), table["lon"], table["lat"],
                             strict=True):
        tile = tile_from_id(row.id)
        from m3leo_tiles.grid.tiles import to_lonlat

        x0, y0, x1, y1 = tile.bounds
        clon, clat = to_lonlat(tile.epsg).transform((x0 + x1) / 2, (y0 + y1) / 2)
        dlon = (lon - clon + 180.0) % 360.0 - 180.0
        assert abs(dlon) < 0.02 and abs(lat - clat) < 0.02


def test_cut_aoi_gives_the_same_tiles():
    """An AOI already cut at the antimeridian (RFC 7946 input) grids like the wrapped one."""
    wrapped = build_grid(AOIS["fiji"])
    cut = build_grid(_cut_aoi(AOIS["fiji"]))
    assert list(cut["id"]) == list(wrapped["id"])


def test_splits_stripe_across_the_antimeridian():
    gdf = build_grid(AOIS["fiji"])
    s = band_splits(gdf.geometry.values, angle=0.0, bands=10)
    table = table_from_grid(gdf)
    lon = np.where(table["lon"] < 0, table["lon"] + 360.0, table["lon"])
    # stripes run west to east over 180: each is a contiguous longitude range
    order = np.argsort(lon)
    changes = np.count_nonzero(s[order][1:] != s[order][:-1])
    assert changes <= 9  # 10 stripes; before the cut two clusters used only train and test
    assert set(s) == {"train", "val", "test"}


def test_preview_draws_cut_tiles(tmp_path):
    import matplotlib.image

    from m3leo_tiles.grid.preview import preview_grid

    gdf = build_grid(AOIS["fiji"])
    gdf["split"] = band_splits(gdf.geometry.values)
    png = preview_grid(gdf, AOIS["fiji"], tmp_path / "fiji.png", title="fiji")
    img = matplotlib.image.imread(png)
    assert img.shape[0] > 200 and img[..., :3].std() > 0.05
