import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from libpysal.graph import Graph
from shapely.geometry import box
from sklearn.base import clone

from models.hotspots import EmergingHotSpots, GetisOrdGStar, LocalMoran, hotspot_table


def grid9():
    cells = [
        box(c * 250, r * 250, (c + 1) * 250, (r + 1) * 250) for r in range(9) for c in range(9)
    ]
    ids = [f"c{i:02d}" for i in range(81)]
    return gpd.GeoDataFrame(geometry=cells, index=pd.Index(ids, name="unit_id"), crs=27700)


def test_table_columns_and_planted_hotspot():
    units = grid9()
    graph = Graph.build_contiguity(units, rook=False)
    y = pd.Series(1.0, index=units.index)
    y[[f"c{r * 9 + c:02d}" for r in (3, 4, 5) for c in (3, 4, 5)]] = 10.0
    out = hotspot_table(
        units, y.iloc[::-1], graph, permutations=9999, seed=0
    )  # Series aligned on ids
    for col in [
        "unit_id",
        "Gs",
        "Zs",
        "p_sim",
        "q_value",
        "Gi_Bin",
        "gi_class",
        "Is",
        "lisa_q",
        "lisa_class",
    ]:
        assert col in out.columns
    centre = out.set_index("unit_id").loc["c40"]
    assert centre["y"] == 10.0
    assert centre["gi_class"] == "Hot Spot - 99% Confidence"
    assert centre["lisa_class"] == "High-High"
    assert out.crs.to_epsg() == 27700
    assert out.attrs["permutations"] == 9999 and out.attrs["seed"] == 0


def test_graph_order_must_match_units():
    units = grid9()
    graph = Graph.build_contiguity(units.iloc[::-1], rook=False)
    with pytest.raises(ValueError, match="graph's unit ids differ"):
        hotspot_table(units, np.ones(81), graph)


@pytest.mark.parametrize("est", [GetisOrdGStar(), LocalMoran(), EmergingHotSpots()])
def test_estimators_follow_sklearn_parameter_conventions(est):
    # __init__ only stores parameters: clone round-trips them
    params = est.get_params()
    assert clone(est).get_params() == params


def test_too_many_significant_units_and_empty_hot_spots_are_named():
    import numpy as np
    import pandas as pd

    from models.hotspots.analysis import hotspot_diagnostics

    class Nb:  # a neighbourhood where every unit neighbours every other
        label, rule, band_m = "a 9,000 m band", "fixed", 9000.0

        def __init__(self, n):
            import libpysal

            self.graph = libpysal.graph.Graph.from_W(libpysal.weights.lat2W(n, 1))

        def neighbour_counts(self):
            return {"min": 1, "mean": 2.0, "max": 2}

    y = np.array([0.0, 9, 8, 7, 1, 0])
    table = pd.DataFrame({"Gi_Bin": [3, 3, 3, 0, 0, -1], "q_value": 0.01, "lisa_class": "Not Significant",
                          "lisa_q_value": 0.5})
    dg = hotspot_diagnostics(y, table, Nb(6), inference="normal", fdr_alpha=0.05)
    assert any("4 of 6 units (67%) are significant" in w and "too wide" in w for w in dg["warnings"])
    assert any("1 hot spot(s) had no events themselves" in w for w in dg["warnings"])
    table["Gi_Bin"] = [0, 3, 0, 0, 0, 0]
    assert hotspot_diagnostics(y, table, Nb(6), inference="normal", fdr_alpha=0.05)["warnings"] == []
