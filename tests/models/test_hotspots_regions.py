import geopandas as gpd
import numpy as np
import pytest
from libpysal.graph import Graph
from shapely.geometry import box

from models.hotspots import operational_areas


def grid(n=6, size=100.0):
    cells = [
        box(c * size, r * size, (c + 1) * size, (r + 1) * size) for r in range(n) for c in range(n)
    ]
    return gpd.GeoDataFrame(
        {"unit": [f"u{i:02d}" for i in range(n * n)]}, geometry=cells, crs=27700
    )


def risk_two_clusters():
    # 6x6 grid, cell i at row i // 6, column i % 6. Cluster A: cells 0, 1, 6, 7, 12
    # (bottom-left); cluster B: 22, 23, 28, 29, 34, 35 (right side). Everything else 0.
    r = np.zeros(36)
    r[[0, 1, 6, 7, 12]] = 5.0
    r[[22, 23, 28, 29, 34, 35]] = 4.0
    return r


def connected(units):
    return Graph.build_contiguity(units.reset_index(drop=True), rook=False).n_components == 1


@pytest.mark.parametrize("method", ["maxp", "skater"])
def test_areas_are_contiguous_and_cover_the_top_units(method):
    g = grid()
    areas = operational_areas(
        g, risk_two_clusters(), top_share=11 / 36, min_units=2, method=method, id_column="unit"
    )
    covered = sorted(",".join(areas["unit_ids"]).split(","))
    assert covered == sorted(f"u{i:02d}" for i in [0, 1, 6, 7, 12, 22, 23, 28, 29, 34, 35])
    for ids in areas["unit_ids"]:
        assert connected(g[g["unit"].isin(ids.split(","))])
    assert areas["risk_sum"].sum() == pytest.approx(5 * 5 + 6 * 4)
    assert areas["risk_share"].sum() == pytest.approx(1.0)
    assert list(areas["area_id"]) == list(range(1, len(areas) + 1))
    assert areas["risk_sum"].is_monotonic_decreasing
    assert areas.crs.to_epsg() == 27700


def test_skater_keeps_whole_components_without_bounds():
    areas = operational_areas(grid(), risk_two_clusters(), top_share=11 / 36, method="skater")
    assert sorted(areas["n_units"]) == [5, 6]
    assert areas.loc[0, "area_km2"] == pytest.approx(0.05)  # five 100 m cells


def test_max_area_bound_splits_large_areas():
    areas = operational_areas(
        grid(),
        risk_two_clusters(),
        top_share=11 / 36,
        min_units=2,
        method="skater",
        max_area_km2=0.03,
    )
    assert (areas["area_km2"] <= 0.03 + 1e-9).all()
    assert areas["n_units"].sum() == 11


def test_population_bound_and_column():
    pop = np.full(36, 1000.0)
    areas = operational_areas(
        grid(),
        risk_two_clusters(),
        population=pop,
        top_share=11 / 36,
        min_units=2,
        method="skater",
        max_population=3000,
    )
    assert (areas["population"] <= 3000).all()
    assert areas["population"].sum() == 11000


def test_ties_broken_by_order():
    r = np.ones(36)
    areas = operational_areas(grid(), r, top_share=2 / 36, method="skater", id_column="unit")
    assert areas["unit_ids"].tolist() == ["u00,u01"]


def test_input_checks():
    g = grid()
    with pytest.raises(ValueError, match="27700"):
        operational_areas(g.to_crs(4326), np.ones(36))
    with pytest.raises(ValueError, match="one value per unit"):
        operational_areas(g, np.ones(35))
    with pytest.raises(ValueError, match="max_population needs population"):
        operational_areas(g, np.ones(36), max_population=10)
