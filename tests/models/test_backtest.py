"""Rolling-origin backtests on a tiny hand-made borough (a fake feature builder)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.backtest import (
    backtest,
    backtest_records,
    complete_windows,
    fit_at,
    forecast_matrix,
    training_origins,
    training_set,
)
from models.baselines import ColumnRanker, PanelMean
from models.glm import PoissonGLM

MONTHS = pd.date_range("2016-01-01", periods=18, freq="MS")


class FakeBuilder:
    """The FeatureBuilder contract over a units x months count panel (a chain of units)."""

    def __init__(self, counts: pd.DataFrame, harm_per_event: float = 150.0):
        self.counts = counts
        self.harm_per_event = harm_per_event
        ids = counts.index.astype(str)
        self.units = SimpleNamespace(
            edition="fake", frame=pd.DataFrame({"unit_id": ids, "area_m2": 62500.0})
        )
        self.months = list(counts.columns)
        self.requested = []

    def _window(self, c, w):
        cols = (self.counts.columns < c) & (self.counts.columns >= c - pd.DateOffset(months=w))
        return self.counts.loc[:, cols].sum(axis=1).astype(float)

    def matrix(self, cutoff):
        c = pd.Timestamp(cutoff)
        self.requested.append(c)
        X = pd.DataFrame({f"cnt_sv_{w}m": self._window(c, w) for w in (1, 3, 12)})
        last = X["cnt_sv_12m"].to_numpy()
        lag = np.convolve(np.r_[last[1], last, last[-2]], [0.5, 0, 0.5], "valid")  # chain neighbours
        X["lag_cnt_sv_12m"] = lag
        X["nr_sv"] = X["cnt_sv_1m"]
        X.index.name = "unit_id"
        return X

    def panel(self, groups=None, weight="count"):
        return self.counts * (1.0 if weight == "count" else self.harm_per_event)


def steady_builder():
    # every month: a 3 events, b 1, c and d none (N = 4 a month)
    counts = pd.DataFrame(0.0, index=list("abcd"), columns=MONTHS)
    counts.loc["a"] = 3.0
    counts.loc["b"] = 1.0
    return FakeBuilder(counts)


def test_training_origins_end_before_the_cutoff():
    origins = training_origins(MONTHS[:12], "2017-01", horizon=1, train_origins=12, min_train_history=6)
    # 2016-12 back to 2016-07 (the first with 6 months of data before it)
    assert [f"{o:%Y-%m}" for o in origins] == [f"2016-{m:02d}" for m in range(12, 6, -1)]
    origins = training_origins(MONTHS[:12], "2017-01", horizon=3, train_origins=2, min_train_history=6)
    assert [f"{o:%Y-%m}" for o in origins] == ["2016-10", "2016-09"]  # targets end 2016-12 / 2016-11


def test_complete_windows_scales_partial_history():
    X = pd.DataFrame({"cnt_sv_12m": [6.0], "cnt_sv_3m": [3.0], "imd_score": [30.0]})
    out = complete_windows(X, MONTHS[:6], "2016-07")  # 6 of 12 months have data
    assert out.loc[0, "cnt_sv_12m"] == 12.0
    assert out.loc[0, "cnt_sv_3m"] == 3.0 and out.loc[0, "imd_score"] == 30.0


def test_training_set_rows_and_targets():
    fb = steady_builder()
    X, y = training_set(fb, "2017-07", horizon=1, train_origins=3)
    assert X.index.names == ["origin", "unit_id"] and len(X) == 12  # 3 origins x 4 units
    assert y.xs("a", level="unit_id").tolist() == [3.0, 3.0, 3.0]
    assert max(fb.requested) < pd.Timestamp("2017-07-01")


def test_no_leakage_data_after_the_cutoff_changes_nothing():
    fb = steady_builder()
    changed = fb.counts.copy()
    changed.loc["d", changed.columns >= "2017-03-01"] = 50.0  # a surge from the cutoff on
    fb2 = FakeBuilder(changed)
    glm = PoissonGLM(features=["cnt_sv_12m", "cnt_sv_3m"])
    p1 = fit_at(fb, glm, "2017-03").predict(forecast_matrix(fb, "2017-03"))
    p2 = fit_at(fb2, glm, "2017-03").predict(forecast_matrix(fb2, "2017-03"))
    np.testing.assert_allclose(p1, p2)


def test_backtest_hand_checkable_table():
    fb = steady_builder()
    methods = {"count_12m": ColumnRanker("cnt_sv_12m"), "long_mean": PanelMean()}
    table = backtest(fb, methods, origins=["2017-01", "2017-02", "2017-03"], horizon=1,
                     coverages=(0.25,), top_n=(2,)).set_index(["method", "slice"])
    row = table.loc[("count_12m", "25% area")]
    # the top cell is a: 3 of 4 events on 1/4 of the area, the best any cell could do
    assert row["n_origins"] == 3
    assert (row["hit_rate"], row["pai"], row["pei"], row["rri"]) == pytest.approx((0.75, 3.0, 1.0, 1.0))
    assert row["harm_pai"] == pytest.approx(3.0)
    top2 = table.loc[("long_mean", "top 2")]
    assert (top2["hit_rate"], top2["pai"], top2["pei"]) == pytest.approx((1.0, 2.0, 1.0))
    records = backtest_records(table.reset_index(), units="fake")
    assert {"units", "method", "horizon", "coverage", "hit_rate", "pai", "pei", "harm_pei"} <= set(records[0])
    assert records[0]["units"] == "fake"


def test_backtest_default_origins_and_validation():
    fb = steady_builder()
    per = backtest(fb, {"c": ColumnRanker("cnt_sv_12m")}, horizon=1, coverages=(0.25,), top_n=(),
                   per_origin=True)
    # 18 months of data: origins with 12 months before them are 2017-01..2017-06
    assert per["origin"].tolist() == [f"2017-{m:02d}" for m in range(1, 7)]
    with pytest.raises(ValueError, match="2017-06"):
        backtest(fb, {"c": ColumnRanker("cnt_sv_12m")}, origins=["2017-06"], horizon=2)
