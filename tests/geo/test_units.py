"""Units, grids, graphs and point assignment on hand-made squares."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from tiny_borough import X0, Y0, tiny_store

from features.units import build_units
from geo.grid import auto_cell_size, grid_cell_id, make_grid, make_hex_grid
from geo.units import UnitSet, cell_edition

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


def test_a_pickled_unit_set_leaves_its_cached_graphs_behind_and_rebuilds_them(store):
    import pickle
    import subprocess
    import sys

    units = build_units(store, "lsoa2011")
    queen = units.graph("queen")
    copy = pickle.loads(pickle.dumps(units))
    assert copy._graphs == {} and "queen" in units._graphs  # the original keeps its cache
    assert copy.graph("queen").cardinalities.tolist() == queen.cardinalities.tolist() == [3, 3, 3, 3]
    # a pool worker that only locates points never imports libpysal
    code = "import sys, features.scale, sources.ingest; print('libpysal' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


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

    from features.units import build_units
    from sources.memstore import MemoryStore

    frame = gpd.GeoDataFrame({"code": ["E01900001", "E01900002", "E01900003"], "name": ["a", "b", "c"],
                              "edition": "lsoa2011"},
                             geometry=[box(0, 0, 100, 100), box(100.4, 0, 200, 100), box(500, 0, 600, 100)],
                             crs="EPSG:27700")
    units = build_units(MemoryStore({"units_lsoa2011": frame}), "lsoa2011")
    g = units.graph("queen")
    assert set(g.neighbors["E01900001"]) == {"E01900002"}
    # the third square is 300 m away: an island, linked only to its nearest unit by the island rule
    assert set(g.neighbors["E01900002"]) == {"E01900001", "E01900003"}


def test_hexagons_by_hand():
    # 500 m hexagons (flat-to-flat): side 500 / sqrt(3) = 288.7 m, whole area sqrt(3) / 2 * 500**2
    area = gpd.GeoSeries([shapely.box(0, 0, 3000, 3000)], crs=CRS)
    hexes = make_hex_grid(area, 500, min_share=0.0)
    whole = hexes[np.isclose(hexes["area_m2"], 3**0.5 / 2 * 500**2)]
    assert len(whole) > 10
    # the cells tile the area: no gaps, no overlaps
    assert hexes["area_m2"].sum() == pytest.approx(9_000_000.0)
    # column 2, row 3 is centred at (1.5 * 2 * 288.68, 3 * 500); its six neighbours are all 500 m away
    cell = hexes.set_index("unit_id").loc["h500_2_3"]
    c = cell.geometry.centroid
    assert (c.x, c.y) == (pytest.approx(3 * 500 / 3**0.5), pytest.approx(1500.0))
    units = UnitSet(hexes, "hex500")
    queen = units.graph("queen")
    assert sorted(queen.neighbors["h500_2_3"]) == ["h500_1_2", "h500_1_3", "h500_2_2", "h500_2_4",
                                                   "h500_3_2", "h500_3_3"]
    pos = units.ids.get_loc("h500_2_3")
    d = np.hypot(*(units.centroids[[units.ids.get_loc(j) for j in queen.neighbors["h500_2_3"]]]
                   - units.centroids[pos]).T)
    np.testing.assert_allclose(d, 500.0)


def test_hexagon_ids_do_not_depend_on_the_area():
    small = make_hex_grid(gpd.GeoSeries([shapely.box(1000, 1000, 2000, 2000)], crs=CRS), 300)
    large = make_hex_grid(gpd.GeoSeries([shapely.box(0, 0, 5000, 5000)], crs=CRS), 300)
    inner = small[np.isclose(small["area_m2"], 3**0.5 / 2 * 300**2)]
    same = large.set_index("unit_id").loc[inner["unit_id"]]
    assert shapely.equals_exact(np.asarray(same.geometry.values), np.asarray(inner.geometry.values), 1e-6).all()


def test_cell_editions_and_the_size_chosen_from_the_data(store):
    assert cell_edition("hex300") == ("hexagon", 300.0) and cell_edition("grid") == ("square", None)
    assert cell_edition("lsoa2011") is None and cell_edition("hexagon") is None
    units = build_units(store, "hex250")
    assert units.frame["unit_id"].str.startswith("h250_").all() and units.meta["cell_size_m"] == 250.0
    # tiny borough: 5 distinct event locations (one outside the squares) over 1 km2 would give one
    # cell of 1 km2; the 30-cell minimum wins: 1e6 / 30 m2 per hexagon, sqrt(33,333 / 0.866) = 196 m
    # rounded up to 200 m
    auto = build_units(store, "hex")
    assert auto.edition == "hex" and auto.meta["cell_size_m"] == 200.0
    assert "at least 30 cells" in auto.meta["cell_size_rule"]
    assert auto.frame["unit_id"].str.startswith("h200_").all()
    square = build_units(store, "grid")
    assert square.meta["cell_size_m"] == 190.0  # sqrt(33,333) = 182.6 -> 190


def test_auto_cell_size_rule_by_hand():
    # 400 distinct points over 4 km2, 5 per cell: 80 cells of 50,000 m2 -> squares of 223.6 -> 230 m,
    # hexagons of sqrt(50,000 / 0.866) = 240.3 -> 250 m; repeated points count once
    xy = np.array([(x, y) for x in range(0, 2000, 100) for y in range(0, 2000, 100)], float)
    xy = np.vstack([xy, xy[:50], [[np.nan, 5.0]]])
    size, info = auto_cell_size(xy, 4e6, shape="square")
    assert size == 230.0 and info["distinct_locations"] == 400
    assert auto_cell_size(xy, 4e6, shape="hexagon")[0] == 250.0
    with pytest.raises(ValueError, match="no event locations"):
        auto_cell_size(np.empty((0, 2)), 4e6)


def test_band_graph_with_a_minimum_of_neighbours():
    # five squares in a row, 100 m apart, and one 1 km away
    boxes = [shapely.box(x, 0, x + 100, 100) for x in (0, 100, 200, 300, 400, 1400)]
    units = UnitSet(squares(boxes, list("abcdef")), "test")
    plain = units.band_graph(100.0)
    assert plain.cardinalities.to_dict() == {"a": 1, "b": 2, "c": 2, "d": 2, "e": 1, "f": 0}
    two = units.band_graph(100.0, min_neighbours=2)
    assert two.cardinalities.to_dict() == {"a": 2, "b": 2, "c": 2, "d": 2, "e": 2, "f": 2}
    # the far square takes its two nearest, but they do not take it: the top-up is one-way
    assert sorted(two.neighbors["f"]) == ["d", "e"] and "f" not in set(two.neighbors["e"])
    assert units.band_graph(100.0, min_neighbours=2) is two
    with pytest.raises(ValueError, match="distance band must be > 0"):
        units.band_graph(0)
