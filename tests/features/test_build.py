"""Feature values against hand counts on the tiny borough (tests/_support/tiny_borough.py draws it)."""

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from tiny_borough import tiny_store

from features.build import FeatureBuilder, features_to_files
from features.context import eb_rate, youth_share_counts
from features.units import build_units
from sources.memstore import MemoryStore

A, B, C, D = "E01000001", "E01000002", "E01000003", "E01000004"


@pytest.fixture(scope="module")
def fb():
    store = MemoryStore(tiny_store())
    return FeatureBuilder(store, build_units(store, "lsoa2011"))


@pytest.fixture(scope="module")
def X(fb):
    return fb.matrix("2018-01")


def test_counts_by_window(X):
    # A has violence in 2017-01, 2017-06, 2017-12 and robbery in 2017-12;
    # the 6-month window before 2018-01 is 2017-07..2017-12, so 2017-06 is out of it
    assert X.loc[A, ["cnt_violence_1m", "cnt_violence_6m", "cnt_violence_12m"]].tolist() == [1, 1, 3]
    assert X.loc[A, ["cnt_sv_1m", "cnt_sv_3m", "cnt_sv_12m"]].tolist() == [2, 2, 4]
    # B: burglary in 2017-11 is outside the 1-month window, inside the 3-month one
    assert X.loc[B, ["cnt_burglary_1m", "cnt_burglary_3m"]].tolist() == [0, 1]
    # events at/after the cutoff (2018-01 in A and C) are not counted
    assert X.loc[C, "cnt_sv_12m"] == 0


def test_harm_and_trend(X):
    assert X.loc[A, "harm_sv_12m"] == 3 * 150 + 290
    # A: 4 in the last 12 months, 0 in the 12 before: 100 * (4 - 0) / max(0, 1)
    assert X.loc[A, "trend_sv_12m"] == 400
    # D: 0 now, 1 (2016-06) before
    assert X.loc[D, "trend_sv_12m"] == -100


def test_police_generated_groups_are_off_by_default(X, fb):
    assert not any(c.startswith(("cnt_drugs", "cnt_weapons", "sas_")) for c in X.columns)
    assert any("police-generated" in n for n in fb.notes)


def test_near_repeat_kde_and_lag_by_hand(X):
    # two SV events at A's point in 2017-12: age 0.5 month = 2.174 weeks, distance 0
    w = math.exp(-0.5 * (365.25 / 12 / 7) / 4)
    assert X.loc[A, "nr_sv"] == pytest.approx(2 * w)
    # B's point is 500 m away: exp(-500/200)
    assert X.loc[B, "nr_sv"] == pytest.approx(2 * w * math.exp(-2.5))
    # four SV events at A's point in the 12 months, Gaussian h = 300 m, per km²
    assert X.loc[A, "kde_sv_12m"] == pytest.approx(4 / (2 * math.pi * 300**2) * 1e6)
    # queen neighbours of B are A, C, D: (4 + 0 + 0) / 3
    assert X.loc[B, "lag_cnt_sv_12m"] == pytest.approx(4 / 3)
    assert X.loc[A, "lag_cnt_sv_12m"] == 0


def test_people(X):
    # 500 residents in 0.25 km²; aged 10-24: 100 * 6/16 + 140 * 9/14 = 127.5
    assert X.loc[A, "pop_total"] == 500
    assert X.loc[A, "pop_density"] == 2000
    assert X.loc[A, "share_10_24"] == pytest.approx(127.5 / 500)
    # EB by hand: b = 4/2000, s² = 1.2e-5, a = s² - b/500 = 8e-6, w = a / (a + b/500) = 2/3
    assert X.loc[A, "sv_rate_eb"] == pytest.approx(1000 * (2 / 3 * 4 / 500 + 1 / 3 * 4 / 2000))
    assert X.loc[B, "sv_rate_eb"] == pytest.approx(1000 * (1 / 3 * 4 / 2000))


def test_population_year_follows_the_cutoff(fb):
    # mid-2019 is known from 2019-07 on: 1000 residents, none aged 10-24
    X = fb.matrix("2019-08")
    assert X.loc[A, "pop_total"] == 1000 and X.loc[A, "share_10_24"] == 0
    # before mid-2017 no year is known: the earliest (2017) is used
    assert fb.matrix("2017-03").loc[A, "pop_total"] == 500


def test_youth_share_allocates_bands_by_year_of_age():
    bands = pd.DataFrame({"age_from": [0, 16, 25], "age_to": [15, 29, 120], "count": [160.0, 140.0, 50.0]})
    assert youth_share_counts(bands).tolist() == [60.0, 90.0, 0.0]


def test_eb_rate_hand_example():
    # equal raw rates: nothing to shrink
    np.testing.assert_allclose(eb_rate([1, 9], [100, 900]), [10.0, 10.0])
    # b = 0.01; rates 0.02 and 0.0; s² = (100*1e-4 + 100*1e-4)/200 = 1e-4; a = 1e-4 - 0.01/100 = 0
    # -> no between-area variance beyond chance: both go to the borough rate
    np.testing.assert_allclose(eb_rate([2, 0], [100, 100]), [10.0, 10.0])
    # a unit with no residents gets the borough rate
    np.testing.assert_allclose(eb_rate([5, 0, 1], [100, 0, 100])[1], 30.0)


def test_hubs(X):
    # station alpha at A's point; 2017 entries+exits (2,000,000) are known at 2018-01
    assert X.loc[A, "dist_station_m"] == 0
    assert X.loc[A, "foot_250"] == 2_000_000
    # beta (500,000 in 2016) is 1000 m from B's point
    assert X.loc[B, "foot_1000"] == 2_500_000
    assert X.loc[A, "foot_decay"] == pytest.approx(2_000_000 + 500_000 * math.exp(-1500 / 500))
    # bus stops: two within 500 m of A's point (a small unit uses the 500 m circle)
    assert X.loc[A, "bus_stop_density"] == pytest.approx(2 / (math.pi * 0.25))
    # schools: "Shut" (closed) at A is ignored; "One" is 400 m north of A's point
    assert X.loc[A, ["schools_500", "schools_1000", "dist_school_m"]].tolist() == [1, 2, 400]
    # exclusions: 2016/17 at 2018-01 (2017/18 ends August 2018): (40+10+10) / 1500 pupils
    assert X.loc[A, "excl_rate"] == pytest.approx(4.0)
    assert X.loc[A, "park_share"] == 0.5 and X.loc[B, "park_share"] == 0


def test_footfall_and_exclusions_years_move_with_the_cutoff(fb):
    X = fb.matrix("2017-06")  # 2017 not ended: alpha falls back to 2016
    assert X.loc[A, "foot_250"] == 1_000_000
    X = fb.matrix("2018-09")  # 2017/18 has ended: school 100 only, (90+10)/1000
    assert X.loc[A, "excl_rate"] == pytest.approx(10.0)


def test_stop_search_only_when_police_generated_allowed():
    store = MemoryStore(tiny_store())
    X = FeatureBuilder(store, build_units(store, "lsoa2011"), allow_police_generated=True).matrix("2018-01")
    # B: searches in 2017-12 and 2017-10 are within 12 months; 2016-01 is not
    assert X.loc[B, "sas_12m"] == 2 and X.loc[A, "sas_12m"] == 0
    assert X.loc[B, "cnt_drugs_1m"] == 1


def test_exclusions_left_out_without_a_file():
    store = MemoryStore(tiny_store(exclusions=False))
    fb = FeatureBuilder(store, build_units(store, "lsoa2011"))
    assert "excl_rate" not in fb.matrix("2018-01").columns
    assert "excl_rate" not in set(fb.dictionary()["name"])
    assert any("exclusions" in n for n in fb.notes)


def test_deprivation_carried_to_other_units():
    store = MemoryStore(tiny_store())
    for edition, expect in {
        # split LSOA D -> D1, D2 take D's score through the lookup
        "lsoa2021": {"E01100041": 40.0, "E01100042": 40.0, "E01100001": 10.0},
        # West ward = A + C, equal residents: (10 + 30) / 2
        "ward2022": {"E05000001": 20.0, "E05000002": 30.0},
        # a grid cell inside A
        "grid250": {"g250_530000_180000": 10.0, "g250_530750_180750": 40.0},
    }.items():
        fb = FeatureBuilder(store, build_units(store, edition))
        X = fb.matrix("2018-01")
        for unit, score in expect.items():
            assert X.loc[unit, "imd_score"] == pytest.approx(score), (edition, unit)
        # residents move by area: a ward holds two LSOAs, a 250 m cell a quarter of one
        if edition == "ward2022":
            assert X["pop_total"].tolist() == [1000.0, 1000.0]
        if edition == "grid250":
            assert X["pop_total"].sum() == pytest.approx(2000.0)
            assert X.loc["g250_530000_180000", "pop_total"] == pytest.approx(125.0)


def test_target_and_panel(fb):
    y = fb.target("2018-01", horizon=1)
    assert y[A] == 1 and y[C] == 1 and y.sum() == 2
    assert fb.target("2018-01", horizon=2).sum() == 3
    assert fb.target("2018-01", horizon=2, groups=["sexual"])[D] == 1
    assert fb.target("2018-01", horizon=1, weight="harm")[A] == 150
    with pytest.raises(ValueError, match="no event data for 2018-03"):
        fb.target("2018-02", horizon=2)
    with pytest.raises(ValueError, match="police-generated"):
        fb.target("2018-01", groups=["drugs"])
    with pytest.raises(ValueError, match="weight must be"):
        fb.target("2018-01", weight="days")
    P = fb.panel()
    assert [f"{m:%Y-%m}" for m in P.columns] == [f"{m:%Y-%m}" for m in fb.months]
    assert fb.months[0] == pd.Timestamp("2016-06-01") and len(fb.months) == 7
    assert P.loc[A, pd.Timestamp("2017-12-01")] == 2
    # SV events inside a unit: A 5 (four in 2017, one in 2018-01), C 1, D 2 (the far event is outside)
    assert P.to_numpy().sum() == 8


def test_assignment_report(fb):
    assert fb.assignment_report() == {
        "read": 11, "no_location": 0, "assigned": 10, "outside": 1, "on_shared_boundary": 0, "edition": "lsoa2011",
    }


def test_dictionary_matches_matrix(fb, X):
    d = fb.dictionary()
    assert d["name"].tolist() == X.columns.tolist()
    assert list(d.columns) == ["name", "meaning", "source", "unit", "window"]
    assert d.set_index("name").loc["cnt_sv_3m", "window"] == "3 months before the cutoff"
    assert X.notna().all().all()
    assert (X.dtypes == "float64").all()


def test_bad_cutoff_is_named(fb):
    with pytest.raises(ValueError, match="'2018-13'"):
        fb.matrix("2018-13")


def test_features_to_files(fb, tmp_path):
    paths = features_to_files(fb, "2018-01", tmp_path)
    geo = gpd.read_parquet(paths["matrix"])
    assert geo.crs.to_epsg() == 27700
    assert geo["unit_id"].tolist() == [A, B, C, D]
    assert geo.loc[0, "cnt_sv_12m"] == 4
    assert pd.read_csv(paths["dictionary"])["name"].tolist() == fb.dictionary()["name"].tolist()
    assert paths["matrix"].name == "features_lsoa2011_2018-01.parquet"
