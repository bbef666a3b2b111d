"""The one month parser, ranges and the usable-cutoff rule, by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from features.months import month, months_between, ranges, unusable_months, usable_cutoffs


@pytest.mark.parametrize("bad", ["2018-7", "2018/07", "2018-07\n", " 2018-07", "2018-13", "2018-07-01", "", "0000-00"])
def test_month_accepts_only_yyyy_mm_strings(bad):
    with pytest.raises(ValueError, match="not a month"):
        month(bad)


def test_month_of_dates_and_strings():
    assert month("2018-07") == pd.Timestamp("2018-07-01")
    assert month(pd.Timestamp("2018-07-19")) == pd.Timestamp("2018-07-01")


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
