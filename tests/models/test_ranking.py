"""The ranking table, its reasons, deployment lists and fairness profile on a 3x3 grid."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from libpysal.graph import Graph
from shapely.geometry import box

from models.fairness import fairness_profile
from models.ranking import (
    RANKING_COLUMNS,
    clear_hold_build,
    predictive_interval,
    rank_places,
    youth_list,
)
from models.reasons import describe, family, reasons

# 3x3 grid of 100 m cells, ids c0..c8 row by row:
#   c6 c7 c8
#   c3 c4 c5
#   c0 c1 c2
IDS = [f"c{i}" for i in range(9)]
UNITS = gpd.GeoDataFrame(
    {"unit_id": IDS, "name": [f"cell {i}" for i in range(9)],
     "geometry": [box(100 * (i % 3), 100 * (i // 3), 100 * (i % 3 + 1), 100 * (i // 3 + 1)) for i in range(9)]},
    crs="EPSG:27700",
)
# c0 and c1 are a hot pair in one corner; c8 is a hot cell alone in the other; c4 and c5 tie.
EXPECTED = pd.Series([6.0, 4.0, 0.5, 0.5, 1.0, 1.0, 0.2, 0.3, 5.0], index=IDS)
RECENT = pd.Series([60, 40, 5, 5, 8, 12, 2, 3, 50], index=IDS, dtype=float)


def test_rank_places_contract_ties_and_intervals():
    hot = pd.DataFrame({"unit_id": ["c0"], "gi_class": ["Hot Spot - 99% Confidence"], "Gi_Bin": [3],
                        "emerging": ["persistent"]})
    prev = pd.DataFrame({"unit_id": IDS, "rank": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
    r = rank_places(UNITS, EXPECTED, recent_count=RECENT, hotspots=hot, previous=prev)
    assert list(r.columns) == RANKING_COLUMNS
    assert r.crs.to_epsg() == 27700
    # c5 and c4 tie on 1.0: c5 had 12 events in 12 months against c4's 8
    assert r["unit_id"].tolist()[:5] == ["c0", "c8", "c1", "c5", "c4"]
    assert r["rank"].tolist() == list(range(1, 10))
    assert r["risk_share"].sum() == pytest.approx(1.0)
    row = r.set_index("unit_id").loc["c8"]
    assert row["rank_change"] == 9 - 2  # was 9th, now 2nd
    assert row["Gi_Bin"] is pd.NA and r.set_index("unit_id").loc["c0", "Gi_Bin"] == 3
    # Poisson(6): P(X <= 3) = 0.151 >= 0.1 > P(X <= 2); P(X <= 9) = 0.916 >= 0.9 > P(X <= 8)
    top = r.iloc[0]
    assert (top["expected_lo"], top["expected_hi"]) == (3.0, 9.0)
    lo, hi = predictive_interval([6.0], dispersion=0.5)
    assert lo[0] <= 3.0 and hi[0] > 9.0  # overdispersed: wider


def test_place_names_ride_along_and_fall_back_to_the_unit_name():
    r = rank_places(UNITS, EXPECTED, places=pd.Series({"c0": "Hale, by Edgware station"}))
    place = r.set_index("unit_id")["place"]
    assert place["c0"] == "Hale, by Edgware station" and place["c8"] == "cell 8"


def test_rank_change_is_na_without_previous_run():
    r = rank_places(UNITS, EXPECTED)
    assert r["rank_change"].isna().all() and r["gi_class"].isna().all()


def test_reasons_pool_families_and_say_the_sign():
    X = pd.DataFrame({"cnt_sv_12m": [14.0, 4, 4, 2], "cnt_sv_3m": [5.0, 1, 1, 0],
                      "imd_score": [8.0, 20, 25, 30], "foot_250": [9.1e6, 0, 0, 0]},
                     index=["p", "q", "r", "s"])
    contrib = pd.DataFrame({"cnt_sv_12m": [0.9, 0, 0, 0], "cnt_sv_3m": [0.3, 0, 0, 0],
                            "imd_score": [-0.5, 0, 0, 0], "foot_250": [0.4, 0, 0, 0]}, index=X.index)
    out = reasons(contrib, X)
    assert out.loc["p"].tolist() == [
        # 12-month and 3-month counts pool to +1.2; the 12-month one leads; median 4 -> 3.5x
        "12-month serious violence 14 events, 3.5x the borough median",
        "Lowers risk: deprivation score 8 (borough median 22)",
        "Within 250 m of stations with 9.1M entries/exits a year",
    ]
    assert out.loc["q"].isna().all()  # nothing to say about an average place


def test_no_reason_raises_risk_with_a_value_below_the_borough_median():
    # p's density (4,263) is below the borough median (5,300) yet the model pushes it up (+0.5,
    # the strongest family): that would read "raises risk: 4,263 residents per km2 (0.8x the
    # median)". It is skipped; the coherent families follow in order of strength.
    X = pd.DataFrame({"pop_density": [4263.0, 5300, 5300, 9000], "cnt_sv_12m": [14.0, 4, 4, 2],
                      "dist_station_m": [150.0, 800, 900, 400], "imd_score": [30.0, 20, 22, 25]},
                     index=["p", "q", "r", "s"])
    contrib = pd.DataFrame({"pop_density": [0.5, 0, 0, 0], "cnt_sv_12m": [0.4, 0, 0, 0],
                            "dist_station_m": [0.3, 0, 0, 0], "imd_score": [-0.2, 0, 0, 0]},
                           index=X.index)
    out = reasons(contrib, X)
    assert out.loc["p"].tolist() == [
        "12-month serious violence 14 events, 3.5x the borough median",
        "150 m from the nearest station (borough median 600 m)",  # close is the risky end
        pd.NA,  # imd 30 > median 23.5 cannot "lower" risk either
    ]
    assert not any("residents per km" in t for t in out.loc["p"].dropna())
    s_out = reasons(contrib.set_axis(["s", "q", "r", "p"]), X)  # the same push on s (9,000): a reason
    assert s_out.loc["s", "reason_1"] == "9,000 residents per km² (1.7x the borough median)"


def test_clear_hold_build_groups_contiguous_top_units_by_harm():
    r = rank_places(UNITS, EXPECTED, recent_count=RECENT)
    harm = EXPECTED * pd.Series(150.0, index=IDS)
    harm["c8"] = 5.0 * 290  # c8's events are robberies
    hubs = gpd.GeoDataFrame({"kind": ["station"], "name": ["Corner Station"]},
                            geometry=gpd.points_from_xy([20], [20]), crs="EPSG:27700")
    graph = Graph.build_contiguity(UNITS.set_index("unit_id"), rook=False)
    areas = clear_hold_build(r, graph, harm=harm, coverage=3 / 9, hubs=hubs)
    # top third of the area by expected per m²: c0, c8, c1 -> {c0, c1} and {c8}
    assert areas["unit_ids"].tolist() == ["c0; c1", "c8"]  # 1500 harm before 1450
    assert areas["n_units"].tolist() == [2, 1]
    assert areas["expected"].tolist() == [10.0, 5.0]
    assert areas["harm_share"].iloc[0] == pytest.approx(1500 / harm.sum())
    assert areas["hubs"].tolist() == ["Corner Station", ""]
    assert areas.geometry.iloc[0].area == pytest.approx(20000.0)


def test_clear_hold_build_names_wards_and_uses_the_unit_graph():
    r = rank_places(UNITS, EXPECTED, recent_count=RECENT)
    wards = gpd.GeoDataFrame({"code": ["W", "E"], "name": ["West", "East"]},
                             geometry=[box(0, 0, 150, 300), box(150, 0, 300, 300)], crs="EPSG:27700")
    graph = Graph.build_contiguity(UNITS.set_index("unit_id"), rook=False)
    areas = clear_hold_build(r, graph, coverage=3 / 9, wards=wards)
    # {c0, c1}: c0 (x 0..100) and half of c1 are West (75%), the other half East (25%)
    assert areas["wards"].tolist() == ["West; East", "East"]
    # a graph without the c0-c1 link: three areas, c0 (6) before c8 (5) before c1 (4)
    adj = graph.adjacency.reset_index()
    cut = adj[~adj[["focal", "neighbor"]].isin(["c0", "c1"]).all(axis=1)]
    cut_graph = Graph.from_arrays(*(cut[c].to_numpy() for c in ("focal", "neighbor", "weight")))
    apart = clear_hold_build(r, cut_graph, coverage=3 / 9)
    assert apart["unit_ids"].tolist() == ["c0", "c8", "c1"]
    assert apart["area_id"].tolist() == ["A1", "A2", "A3"]
    # an area bound of 0.01 km² (one cell) splits the pair
    assert clear_hold_build(r, graph, coverage=3 / 9, max_area_km2=0.01)["n_units"].tolist() == [1, 1, 1]


def test_youth_list_weights_youth_features():
    r = rank_places(UNITS, EXPECTED, recent_count=RECENT)
    X = pd.DataFrame({"share_10_24": np.linspace(0.1, 0.3, 9), "cnt_robbery_12m": [0.0] * 8 + [9.0]},
                     index=IDS)
    lst = youth_list(r, X, top_n=3, weights={"expected": 1.0, "share_10_24": 1.0, "cnt_robbery_12m": 1.0})
    assert lst["unit_id"].iloc[0] == "c8"  # top percentile on all three terms
    assert lst["youth_rank"].tolist() == [1, 2, 3]
    assert "robbery" in lst["reasons"].iloc[0]


def test_fairness_profile_population_weighted():
    ranking = pd.DataFrame({"unit_id": ["a", "b", "c"], "rank": [1, 2, 3]})
    X = pd.DataFrame({"imd_score": [40.0, 10.0, 10.0], "imd_decile": [1.0, 6.0, 8.0],
                      "pop_total": [100.0, 200.0, 100.0]}, index=["a", "b", "c"])
    prof = fairness_profile(ranking, X, top_n=1)
    rows = {r["measure"].split(" (")[0]: r for r in prof["rows"]}
    imd = rows["mean IMD 2019 score"]
    # borough: (40*100 + 10*200 + 10*100) / 400 = 17.5
    assert (imd["top_places"], imd["borough"]) == (40.0, 17.5)
    assert imd["ratio"] == pytest.approx(40 / 17.5, abs=1e-4)
    deprived = rows["share of residents in the most deprived 20% of England"]
    assert (deprived["top_places"], deprived["borough"]) == (1.0, 0.25)
    assert "ethnicity" in prof["note"] and "exclude" in prof["note"]


def test_serious_violence_history_is_one_reason():
    X = pd.DataFrame({"cnt_violence_12m": [30.0, 10], "harm_sv_12m": [6000.0, 1500],
                      "cnt_asb_12m": [50.0, 10]}, index=["p", "q"])
    contrib = pd.DataFrame({"cnt_violence_12m": [0.2, 0], "harm_sv_12m": [0.7, 0],
                            "cnt_asb_12m": [0.1, 0]}, index=X.index)
    out = reasons(contrib, X)
    # violence counts and harm pool to +0.9, described by the larger part (harm)
    assert out.loc["p", "reason_1"].startswith("12-month harm-weighted serious violence")
    assert out.loc["p", "reason_2"].startswith("12-month anti-social behaviour 50 events")
    assert out.loc["p"].isna().sum() == 1


def test_long_run_levels_of_other_crime_read_as_reasons():
    # the default GLM's long-run levels pool with the same group's recent counts
    assert family("mean_asb_36m") == family("cnt_asb_12m") == "cnt_asb"
    assert family("mean_sv_36m") == "cnt_sv"
    assert describe("mean_public_order_36m", 2.0, 0.5) == \
        "long-run public order offences 2.0 events a month (up to 36 months), 4.0x the borough median"
