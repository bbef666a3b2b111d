"""The one month parser, ranges and the usable-cutoff rule, by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from features.months import (
    backtest_origins,
    month,
    months_between,
    ranges,
    unusable_months,
    usable_cutoffs,
)


@pytest.mark.parametrize("bad", ["2018-7", "2018/07", "2018-07\n", " 2018-07", "2018-13", "2018-07-01", "", "0000-00"])
def test_month_accepts_only_yyyy_mm_strings(bad):
    with pytest.raises(ValueError, match="not a month"):
        month(bad)


def test_month_of_dates_and_strings():
    assert month("2018-07") == pd.Timestamp("2018-07-01")
    assert month(pd.Timestamp("2018-07-19")) == pd.Timestamp("2018-07-01")


def test_a_month_passes_through_month_unchanged_and_anything_else_is_made_one():
    m = month("2018-07")
    assert month(m) is m  # a Month inside the packages is never parsed again
    for other in (pd.Timestamp("2018-07-01 12:00"), pd.Timestamp("2018-07-19"), "2018-07"):
        assert month(other) == m and month(other).day == 1 and month(other) == month(other).normalize()


def test_ranges_compacts_consecutive_months():
    ms = pd.to_datetime(["2018-07-01", "2018-08-01", "2018-09-01", "2019-01-01", "2019-03-01", "2019-04-01"])
    assert ranges(ms) == "2018-07..2018-09, 2019-01, 2019-03..2019-04"
    assert ranges([]) == ""


def test_usable_cutoffs_need_every_month_of_history_and_horizon():
    have = months_between("2016-01", "2016-12") + [month("2018-04")]  # an isolated month later
    assert [f"{c:%Y-%m}" for c in usable_cutoffs(have, 12)] == ["2017-01"]
    assert [f"{c:%Y-%m}" for c in usable_cutoffs(have, 1)][-2:] == ["2017-01", "2018-05"]
    assert [f"{c:%Y-%m}" for c in usable_cutoffs(have, 10, horizon=2)] == ["2016-11"]
    assert [f"{m:%Y-%m}" for m in unusable_months(have, "2018-05", 3)] == ["2018-02", "2018-03"]


def _labels(ms):
    return [f"{m:%Y-%m}" for m in ms]


def test_a_cutoff_needs_its_history_complete_with_no_one_month_histories_at_the_start():
    have = [m for m in months_between("2016-01", "2018-06") if m != month("2016-03")]  # 2016-03 thin
    # without a floor, every cutoff needs 12 complete months: the first is 2017-04
    assert _labels(usable_cutoffs(have, 12, 1))[0] == "2017-04"
    # with a floor of 7, a cutoff at the start may stand on 7..11 months, but not across 2016-03,
    # and never on the one month before it (2016-02 was counted usable when any history since the start was)
    assert "2016-02" not in _labels(usable_cutoffs(have, 12, 1, min_history=7))
    assert _labels(usable_cutoffs(have, 12, 1, min_history=7))[0] == "2017-04"
    assert _labels(unusable_months(have, "2016-02", 12, 1, min_history=7)) == _labels(months_between("2015-07", "2015-12"))


@pytest.mark.parametrize("thin, origins, removed", [
    ("2016-03", "2017-04..2018-06", {"2016-03": "2016-08..2017-03"}),  # early: the first origins go
    ("2017-06", "2016-08..2017-05", {"2017-06": "2017-06..2018-06"}),  # middle: every origin it touches
    ("2018-06", "2016-08..2018-05", {}),  # end: it is after the complete run; earlier origins fill in
])
def test_backtest_origins_name_each_thin_month_once_with_the_origins_it_removed(thin, origins, removed):
    have = [m for m in months_between("2016-01", "2018-06") if m != month(thin)]
    plan = backtest_origins(have, 12, 1, min_history=7, count=24)
    assert ranges(plan.origins) == origins
    assert {f"{m:%Y-%m}": ranges(o) for m, o in plan.removed.items()} == removed
    # origins before 2017-01 stand on a shortened history (7..11 months), and say so
    assert ranges(plan.short) == ranges([o for o in plan.origins if o < month("2017-01")])


def test_a_12_month_folder_backtests_on_a_shortened_window_and_6_months_refuse_naming_what_is_missing():
    plan = backtest_origins(months_between("2016-01", "2016-12"), 12, 1, min_history=7)
    assert ranges(plan.origins) == "2016-08..2016-12" and plan.short == plan.origins
    assert [plan.history_of(o, "2016-01") for o in plan.origins] == [7, 8, 9, 10, 11]
    assert ranges(backtest_origins(months_between("2016-01", "2016-12"), 12, 3, min_history=9).origins) == "2016-10"
    with pytest.raises(ValueError, match=r"at least 8 complete months in a row\); the complete months are 2016-01..2016-06"):
        backtest_origins(months_between("2016-01", "2016-06"), 12, 1, min_history=7)


def test_a_long_gap_before_a_later_extract_is_not_named_month_by_month():
    have = months_between("2016-01", "2018-06") + [month("2024-04")]  # years later, one extract
    plan = backtest_origins(have, 12, 1, min_history=7)
    assert ranges(plan.origins) == "2017-01..2018-06" and plan.removed == {}
    with_hole = [m for m in have if m not in (month("2017-09"), month("2017-10"))]  # a two-month hole
    plan = backtest_origins(with_hole, 12, 1, min_history=7)
    assert {f"{m:%Y-%m}": ranges(o) for m, o in plan.removed.items()} == {
        "2017-09": "2017-09..2018-06", "2017-10": "2017-10..2018-06"}
