"""Counting events per unit and month (the missing-data check of ingest) agrees with pandas' crosstab."""

import numpy as np
import pandas as pd
import pytest

from sources.ingest import unit_month_counts


def _events(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    unit = pd.array(rng.choice(["E01000003", "E01000001", "E01000002", None], n, p=[0.4, 0.3, 0.2, 0.1]),
                    dtype="string")
    month = pd.Series(pd.to_datetime(rng.choice(["2020-03-01", "2020-01-01", "2020-02-01"], n)))
    month[rng.random(n) < 0.05] = pd.NaT
    return pd.DataFrame({"lsoa_code": unit, "month": month})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_equal_a_crosstab_of_the_rows_with_a_unit_and_a_month(seed):
    ev = _events(500, seed)
    got = unit_month_counts(ev["lsoa_code"], ev["month"])
    want = pd.crosstab(ev["lsoa_code"], ev["month"])  # drops rows with either missing
    assert list(got.index) == list(want.index) == ["E01000001", "E01000002", "E01000003"]
    assert list(got.columns) == list(want.columns)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


def test_a_unit_with_no_rows_in_a_month_counts_zero_and_no_units_give_an_empty_table():
    ev = pd.DataFrame({"lsoa_code": pd.array(["a", "a", "b"], dtype="string"),
                       "month": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-02-01"])})
    got = unit_month_counts(ev["lsoa_code"], ev["month"])
    assert got.loc["b"].tolist() == [0, 1] and got.loc["a"].tolist() == [1, 1]
    none = ev.assign(lsoa_code=pd.array([None] * 3, dtype="string"))
    assert unit_month_counts(none["lsoa_code"], none["month"]).empty


def test_a_month_with_under_a_fifth_of_the_median_months_rows_is_thin():
    from sources.loaders.crime import thin_months

    months = pd.Series(pd.to_datetime(["2020-01-01"] * 10 + ["2020-02-01"] * 1 + ["2020-03-01"] * 12
                                      + ["2020-04-01"] * 9 + [None] * 30))
    assert thin_months(months) == {"2020-02": 1}
    assert thin_months(months[months != pd.Timestamp("2020-02-01")]) == {}
