"""Monthly counts by area as an event source: the tiny borough's two wards, counted by hand."""

from __future__ import annotations

import pandas as pd
import pytest
from tiny_borough import EVENTS, events_frame, tiny_store, ward_counts

from features.areas import (
    MIN_TARGET_SHARE,
    area_sums,
    choose_source,
    residents_by_group,
    target_coverage,
)
from features.build import FeatureBuilder
from features.units import build_units
from sources.memstore import MemoryStore

# every month 2020-01..2021-12: west 3 violence + 1 robbery, east 1 violence and 0 sexual
# offences; in 2021-06 the west has 10 violence instead of 3; burglary in the east is not a
# target group
MONTHS = [f"{m:%Y-%m}" for m in pd.date_range("2020-01-01", "2021-12-01", freq="MS")]
ROWS = ([(m, "W", "violence", 10 if m == "2021-06" else 3) for m in MONTHS]
        + [(m, "W", "robbery", 1) for m in MONTHS] + [(m, "E", "violence", 1) for m in MONTHS]
        + [(m, "E", "burglary", 2) for m in MONTHS] + [(m, "E", "sexual", 0) for m in MONTHS])


def store(rows=ROWS, events=True):
    tables = tiny_store()
    tables["area_counts"] = ward_counts(rows)
    if not events:
        tables.pop("events")
    return MemoryStore(tables)


def test_ward_windows_and_targets_are_the_table_s_counts():
    st = store()
    fb = FeatureBuilder(st, build_units(st, "ward2022"))
    assert fb.source == "areas"
    X = fb.matrix("2022-01")
    west, east = "E05000001", "E05000002"
    assert X.loc[west, "cnt_sv_12m"] == 11 * 4 + 11  # 2021: 11 months of 3 + 1, June 10 + 1
    assert X.loc[east, "cnt_sv_12m"] == 12 and X.loc[east, "cnt_burglary_12m"] == 24
    assert X.loc[west, "harm_sv_12m"] == 100 * X.loc[west, "cnt_sv_12m"]
    assert X.loc[west, "trend_sv_12m"] == pytest.approx(100 * (55 - 48) / 48)
    assert "nr_sv" not in X.columns and "kde_sv_12m" not in X.columns  # no points, no kernels
    assert fb.target("2021-06").loc[west] == 11
    assert fb.data_span() == "2020-01..2021-12"


def test_the_source_is_the_one_that_reaches_later():
    st = store()  # point events stop in 2018: the ward table (2020-21) is newer
    assert choose_source(st, "ward2022", target_groups=["violence", "robbery"]) == "areas"
    assert choose_source(st, "lsoa2011", target_groups=["violence"]) == "points"  # no LSOA table
    # a table that lacks a target group cannot stand in for the points
    assert choose_source(st, "ward2022", target_groups=["violence", "theft"]) == "points"
    # with a cutoff only the points cover, the points serve
    assert choose_source(st, "ward2022", target_groups=["violence"], history=1, cutoff="2018-01") == "points"
    with pytest.raises(ValueError, match="no monthly area counts for 'lsoa2011'"):
        choose_source(st, "lsoa2011", "areas")


def test_area_sums_count_unknown_areas_as_outside():
    st = store(ROWS + [("2021-01", "W", "violence", 0)])
    tables = {"units_ward2022": st.table("units_ward2022"), "area_counts": st.table("area_counts")}
    extra = ward_counts([("2021-01", "W", "violence", 5)]).assign(unit_code="E05999999")
    tables["area_counts"] = pd.concat([tables["area_counts"], extra], ignore_index=True)
    ms = MemoryStore(tables)
    from features.build import event_groups

    sums = area_sums(ms, build_units(ms, "ward2022"), event_groups()[0])
    assert sums.source == "areas" and sums.assignment["outside"] == 5
    assert sums.assignment["read"] == sums.assignment["assigned"] + 5


def test_a_thin_month_is_not_complete_and_stops_a_cutoff_after_it():
    rows = [r for r in ROWS if r[0] != "2021-06"] + [("2021-06", "W", "violence", 0)]
    st = store(rows)
    fb = FeatureBuilder(st, build_units(st, "ward2022"))
    assert list(fb.thin_months) == [pd.Timestamp("2021-06-01")]
    assert pd.Timestamp("2021-06-01") not in fb.complete_months
    with pytest.raises(ValueError, match=r"too few events in 2021-06 \(0 where about 7 is usual\); "
                                         r"the latest usable cutoff is 2021-06"):
        fb.check_cutoff("2022-01", 12)
    assert fb.check_cutoff("2021-06", 12) == pd.Timestamp("2021-06-01")


def test_a_gap_names_the_missing_months_and_the_latest_usable_cutoff():
    rows = [r for r in ROWS if not ("2020-09" <= r[0] <= "2020-11")]
    st = store(rows)
    fb = FeatureBuilder(st, build_units(st, "ward2022"), source="areas")
    with pytest.raises(ValueError) as err:
        fb.check_cutoff("2021-06", 12)
    msg = str(err.value)
    assert "no data for 2020-09..2020-11" in msg and "latest usable cutoff is 2022-01" in msg
    with pytest.raises(ValueError, match="no data for 2029-01..2029-12"):
        fb.check_cutoff("2030-01", 12)
    # a window reaching back before the data is shortened down to what fitting needs, not below
    assert fb.check_cutoff("2020-08", 12, min_history=7) == pd.Timestamp("2020-08-01")
    with pytest.raises(ValueError, match=r"no data for 2019-09..2019-12"):
        fb.check_cutoff("2020-04", 12, min_history=7)


def test_a_table_that_withholds_a_small_target_group_stands_in_and_says_so():
    rows = [r for r in ROWS if r[2] != "sexual"]  # like the Met's LSOA tables: no sexual offences at all
    target = ["violence", "robbery", "sexual"]
    st = store(rows)
    # in the points, sexual offences are 1 of the 9 target events (7 violence, 1 robbery): the table holds 8/9
    cov = target_coverage(st, "ward2022", target)
    assert cov["missing"] == ["sexual"] and cov["reference"] == "points" and cov["share"] == pytest.approx(8 / 9)
    assert 8 / 9 >= MIN_TARGET_SHARE and choose_source(st, "ward2022", target_groups=target) == "areas"
    fb = FeatureBuilder(st, build_units(st, "ward2022"), target_groups=target)
    assert any("hold no sexual offences" in n and "violence + robbery only" in n for n in fb.notes)
    # where sexual offences are a third of the target, the table cannot stand in
    tables = dict(tiny_store(), area_counts=ward_counts(rows))
    tables["events"] = events_frame(EVENTS + [("2018-02", "sexual", 530100.0, 180100.0, 250.0)] * 3)
    assert target_coverage(MemoryStore(tables), "ward2022", target)["share"] == pytest.approx(8 / 12)
    assert choose_source(MemoryStore(tables), "ward2022", target_groups=target) == "points"


def test_residents_by_ethnic_group_reach_older_lsoas_and_wards_through_the_lookups():
    eth = pd.DataFrame({"code": ["L21a", "L21a", "L21b", "L21b", "L21c", "L21c"], "edition": "lsoa2021", "year": 2021,
                        "group": ["White", "Black"] * 3, "residents": [10.0, 5.0, 20.0, 1.0, 7.0, 3.0]})
    st = MemoryStore({
        "ethnicity": eth,
        # L11x split into L21a and L21b in 2021; L21c is unchanged (L11y)
        "lookup_lsoa11_lsoa21": pd.DataFrame({"lsoa11": ["L11x", "L11x", "L11y"], "lsoa21": ["L21a", "L21b", "L21c"]}),
        "lookup_lsoa21_ward22": pd.DataFrame({"lsoa21": ["L21a", "L21b", "L21c"], "ward22": ["W1", "W2", "W2"]}),
    })
    assert residents_by_group(st, "lsoa2021").loc["L21b"].to_dict() == {"Black": 1.0, "White": 20.0}
    assert residents_by_group(st, "lsoa2011").loc["L11x"].to_dict() == {"Black": 6.0, "White": 30.0}
    assert residents_by_group(st, "ward2022").loc["W2"].to_dict() == {"Black": 4.0, "White": 27.0}
    assert residents_by_group(st, "grid250") is None
