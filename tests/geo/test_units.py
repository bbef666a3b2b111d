"""Units, grids, graphs and point assignment on hand-made squares."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from tiny_borough import X0, Y0, tiny_store

from features.units import build_units
from geo.grid import grid_cell_id, make_grid
from geo.units import UnitSet

CRS = "EPSG:27700"


@pytest.fixture(scope="module")
def store():
    return tiny_store()


def squares(boxes, ids):
    return gpd.GeoDataFrame(
        {"unit_id": ids, "name": ids, "area_m2": [b.area for b in boxes]}, geometry=boxes, crs=CRS
    )


def test_lsoa_units_have_sorted_ids_areas_and_centroids(store):
    units = build_units(store, "lsoa2011")
    assert units.frame["unit_id"].tolist() == ["E01000001", "E01000002", "E01000003", "E01000004"]
    assert units.frame.index.tolist() == [0, 1, 2, 3]
    assert units.frame["area_m2"].tolist() == [250_000.0] * 4
    assert units.frame.crs.to_epsg() == 27700
    # the representative point of a square is its centre
    np.testing.assert_allclose(units.centroids[0], [X0 + 250, Y0 + 250])


def test_queen_graph_of_two_by_two_links_every_pair(store):
    g = build_units(store, "lsoa2011").graph("queen")
    # queen: A touches B (edge), C (edge) and D (corner)
    assert g.cardinalities.tolist() == [3, 3, 3, 3]
    assert list(g.unique_ids) == ["E01000001", "E01000002", "E01000003", "E01000004"]
    r = g.transform("r").lag(np.array([3.0, 0.0, 0.0, 0.0]))
    assert r.tolist() == [0.0, 1.0, 1.0, 1.0]


def test_graph_is_built_once_and_cached(store):
    units = build_units(store, "lsoa2011")
    assert units.graph("knn") is units.graph("knn")
    with pytest.raises(ValueError, match="unknown graph kind 'rook'"):
        units.graph("rook")


def test_knn_and_band_graphs_on_centroids(store):
    units = build_units(store, "lsoa2011")
    # knn (8 by default) is capped at n - 1 = 3
    assert units.graph("knn").cardinalities.tolist() == [3, 3, 3, 3]
    # centres are 500 m apart along edges and 707 m across: a 500 m band keeps only the edges
    assert units.graph("band").cardinalities.tolist() == [2, 2, 2, 2]


def test_island_gets_its_nearest_unit_as_neighbour():
    boxes = [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100), shapely.box(1000, 0, 1100, 100)]
    units = UnitSet(squares(boxes, ["a", "b", "island"]), "test")
    g = units.graph("queen")
    assert g.cardinalities.to_dict() == {"a": 1, "b": 2, "island": 1}
    assert g.adjacency.loc["island"].index.tolist() == ["b"]
    assert len(g.isolates) == 0


def test_grid_ids_are_lower_left_corners_in_metres(store):
    units = build_units(store, "grid250")
    assert len(units) == 16
    assert units.frame["unit_id"].iloc[0] == "g250_530000_180000"
    assert "g250_530750_180750" in set(units.frame["unit_id"])
    assert grid_cell_id(250, 528250, 190000) == "g250_528250_190000"
    assert units.frame["area_m2"].tolist() == [62_500.0] * 16


def test_grid_cells_are_clipped_and_slivers_dropped():
    # 500 x 260 m area: the top row of 250 m cells keeps 10 m (4% of a cell) and is dropped;
    # a 300 m wide area keeps a 50 m strip (20%) clipped to 50 x 250 m
    area = gpd.GeoSeries([shapely.box(0, 0, 300, 260)], crs=CRS)
    grid = make_grid(area, 250)
    assert grid["unit_id"].tolist() == ["g250_0_0", "g250_250_0"]
    assert grid["area_m2"].tolist() == [62_500.0, 12_500.0]
    with pytest.raises(ValueError, match="grid size must be > 0"):
        make_grid(area, 0)
    with pytest.raises(ValueError, match="EPSG:27700"):
        make_grid(gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs="EPSG:4326"), 250)


def test_point_on_shared_edge_goes_to_the_first_unit_id_and_outside_is_reported():
    boxes = [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)]
    units = UnitSet(squares(boxes, ["b_right", "a_left"][::-1]), "test")  # ids a_left, b_right
    pts = gpd.GeoSeries(
        [shapely.Point(50, 50), shapely.Point(100, 50), shapely.Point(150, 50), shapely.Point(500, 50), None],
        crs=CRS,
    )
    report = {}
    pos = units.assign(pts, report=report)
    assert units.frame["unit_id"].iloc[pos[:3]].tolist() == ["a_left", "a_left", "b_right"]
    assert pos[3:].tolist() == [-1, -1]
    assert report == {"read": 5, "no_location": 1, "assigned": 3, "outside": 1, "on_shared_boundary": 1}


def test_unknown_edition_and_duplicate_ids_are_named(store):
    with pytest.raises(ValueError, match="units_ward1999"):
        build_units(store, "ward1999")
    boxes = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]
    with pytest.raises(ValueError, match="duplicate unit_id 'x' at row 1"):
        UnitSet(squares(boxes, ["x", "x"]), "test")


def test_queen_graph_links_polygons_separated_by_a_sliver():
    """Generalised boundaries leave sub-metre gaps; they must still count as neighbours."""
    import geopandas as gpd
    from shapely.geometry import box

    from features.sources.memstore import MemoryStore
    from features.units import build_units

    frame = gpd.GeoDataFrame({"code": ["E01900001", "E01900002", "E01900003"], "name": ["a", "b", "c"],
                              "edition": "lsoa2011"},
                             geometry=[box(0, 0, 100, 100), box(100.4, 0, 200, 100), box(500, 0, 600, 100)],
                             crs="EPSG:27700")
    units = build_units(MemoryStore({"units_lsoa2011": frame}), "lsoa2011")
    g = units.graph("queen")
    assert set(g.neighbors["E01900001"]) == {"E01900002"}
    # the third square is 300 m away: an island, linked only to its nearest unit by the island rule
    assert set(g.neighbors["E01900002"]) == {"E01900001", "E01900003"}
