"""The one tile value: a lattice Tile, its TileRef, and the tile table between them agree."""

from __future__ import annotations

import pytest
import shapely

from m3leo_tiles.grid.build import build_grid
from m3leo_tiles.grid.tileref import TileRef, grid_table_to_refs, refs_from_table, table_from_grid
from m3leo_tiles.grid.tiles import BASE_PX, tile_from_id


def test_tile_table_and_refs_agree():
    gdf = build_grid(shapely.box(-122.5, 37.7, -122.4, 37.8))
    from_gdf = grid_table_to_refs(gdf)
    from_table = refs_from_table(table_from_grid(gdf))
    assert len(from_gdf) == len(gdf) > 1
    for a, b in zip(from_gdf, from_table, strict=True):
        tile = tile_from_id(a.id)
        of = TileRef.of(tile)
        assert TileRef.from_id(a.id) == of
        assert a.grid == b.grid == of.grid == tile.grid()
        assert a.grid.width == BASE_PX and a.grid.dx == 10.0
        assert a.grid_at(20).width == BASE_PX // 2
        # footprints from the grid table, rebuilt from the table and from the id coincide
        assert shapely.equals_exact(a.polygon, b.polygon, 1e-9)
        assert shapely.equals_exact(a.polygon, of.polygon, 1e-9)


def test_adopted_lonlat_tiles_are_refs_without_an_address(tmp_path):
    """An M3LEO/geetiles tile has no lattice address; its TileRef is a 448 px lon/lat grid whose
    coarser grids shrink as a UTM tile's would."""
    import geopandas as gpd

    from m3leo_tiles.grid.compat import adopt_geojson

    path = tmp_path / "tiles.geojson"
    gpd.GeoDataFrame({"identifier": ["a1"]}, geometry=[shapely.box(10.0, 45.0, 10.06, 45.04)],
                     crs=4326).to_file(path)
    (ref,) = grid_table_to_refs(adopt_geojson(path))
    assert ref.id == "a1" and ref.grid.epsg == 4326
    assert ref.grid.shape == (BASE_PX, BASE_PX)
    assert ref.grid.bounds == pytest.approx((10.0, 45.0, 10.06, 45.04))
    assert ref.grid_at(40).shape == (BASE_PX // 4, BASE_PX // 4)
    assert ref.grid_at(40).bounds == pytest.approx(ref.grid.bounds)
    with pytest.raises(ValueError, match="not a tile id"):
        TileRef.from_id(ref.id)
