"""Rolling-origin backtests on a tiny hand-made borough (a fake feature builder)."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.months import LONG_MEAN_COLUMN, complete_windows, long_window_mean
from models.backtest import (
    NestedChoice,
    backtest,
    backtest_ceiling,
    backtest_records,
    backtest_report,
    default_methods,
    fit_at,
    forecast_matrix,
    paired_comparison,
    summarise_origins,
    training_origins,
    training_set,
)
from models.baselines import ColumnRanker, PanelMean
from models.boosting import BlendedBoost, PoissonBoost
from models.glm import PoissonGLM
from models.ranking import DEFAULT_METHOD

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


@pytest.mark.parametrize("model", [
    PoissonGLM(features=["cnt_sv_12m", "cnt_sv_3m"]),
    BlendedBoost(PoissonBoost(n_estimators=20)),
], ids=["glm", "blend"])
def test_no_leakage_data_after_the_cutoff_changes_nothing(model):
    fb = steady_builder()
    changed = fb.counts.copy()
    changed.loc["d", changed.columns >= "2017-03-01"] = 50.0  # a surge from the cutoff on
    fb2 = FakeBuilder(changed)
    p1 = fit_at(fb, model, "2017-03").predict(forecast_matrix(fb, "2017-03"))
    p2 = fit_at(fb2, model, "2017-03").predict(forecast_matrix(fb2, "2017-03"))
    np.testing.assert_allclose(p1, p2)


def test_long_window_mean_uses_months_with_data_before_the_cutoff_only():
    months = pd.date_range("2014-01-01", periods=40, freq="MS").delete(30)  # 2016-07 has no data
    panel = pd.DataFrame([np.arange(40.0)[np.arange(40) != 30], np.zeros(39)], index=["a", "b"], columns=months)
    # cutoff 2016-08: months 2014-01..2016-07 are in the 36-month window [2013-08, 2016-08);
    # 2016-07 has no data, so the mean is over 2014-01..2016-06 = values 0..29, mean 14.5
    m = long_window_mean(panel, "2016-08")
    assert m.name == LONG_MEAN_COLUMN == "mean_sv_36m"
    assert m.tolist() == [14.5, 0.0]
    # cutoff 2017-04 (the last month, value 39, not used): window 2014-04..2017-03 holds
    # values 3..38 without 30, 35 months: (738 - 30) / 35
    assert long_window_mean(panel, "2017-04")["a"] == pytest.approx(708 / 35)
    assert long_window_mean(panel, "2014-01").tolist() == [0.0, 0.0]  # nothing before the data
    with pytest.raises(ValueError, match="window"):
        long_window_mean(panel, "2016-08", window=0)


def test_training_and_forecast_rows_carry_the_long_window_as_of_their_origin():
    counts = pd.DataFrame(0.0, index=list("abcd"), columns=MONTHS)
    counts.loc["a"] = np.arange(18.0)  # 0, 1, ..., 17 events in months 2016-01..2017-06
    fb = FakeBuilder(counts)
    X, _ = training_set(fb, "2017-01", horizon=1, train_origins=2)
    # origin 2016-12: mean of 0..10 = 5; origin 2016-11: mean of 0..9 = 4.5
    assert X.loc[(pd.Timestamp("2016-12-01"), "a"), LONG_MEAN_COLUMN] == 5.0
    assert X.loc[(pd.Timestamp("2016-11-01"), "a"), LONG_MEAN_COLUMN] == 4.5
    assert forecast_matrix(fb, "2017-01").loc["a", LONG_MEAN_COLUMN] == 5.5  # mean of 0..11
    assert (X[LONG_MEAN_COLUMN].xs("b", level="unit_id") == 0).all()


def test_the_default_method_is_a_nested_choice_of_transparent_models():
    methods = default_methods(seed=3)
    assert isinstance(methods[DEFAULT_METHOD], NestedChoice)
    # every candidate is readable: the long mean or a Poisson GLM (rate ratios), never police-generated
    for name, model in methods[DEFAULT_METHOD].candidates.items():
        assert isinstance(model, ColumnRanker | PoissonGLM), name
        assert not getattr(model, "allow_police_generated", False)
    assert isinstance(methods["blend"], BlendedBoost) and methods["blend"].estimator.seed == 3


def test_paired_comparison_counts_wins_and_tests_them():
    origins = [f"2017-{m:02d}" for m in range(1, 11)]
    # a beats b by 0.02 at eight origins, loses by 0.01 at one, ties at one
    diff = [0.02] * 8 + [-0.01, 0.0]
    per = pd.DataFrame({
        "method": ["a"] * 10 + ["b"] * 10, "origin": origins * 2, "slice": "5% area",
        "pei": [0.7 + d for d in diff] + [0.7] * 10,
    })
    r = paired_comparison(per, "a", "b", n_boot=2000, seed=1)
    assert (r["n_origins"], r["wins"], r["losses"], r["ties"]) == (10, 8, 1, 1)
    assert r["mean_diff"] == pytest.approx(0.015)
    assert r["win_share"] == pytest.approx(8 / 9)
    assert r["sign_p"] == pytest.approx(20 / 512)  # two-sided: 2 x P(Bin(9, 1/2) >= 8) = 2 x 10/512
    assert r["boot_lo"] <= 0.015 <= r["boot_hi"] and r["boot_lo"] > 0
    assert r == paired_comparison(per, "a", "b", n_boot=2000, seed=1)  # seeded: same answer
    with pytest.raises(ValueError, match="'c'"):
        paired_comparison(per, "a", "c")


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


def test_summarise_origins_is_the_backtest_table():
    fb = steady_builder()
    methods = {"count_12m": ColumnRanker("cnt_sv_12m"), "long_mean": PanelMean()}
    kw = {"origins": ["2017-01", "2017-02"], "coverages": (0.25,), "top_n": (2,)}
    per = backtest(fb, methods, per_origin=True, **kw)
    pd.testing.assert_frame_equal(summarise_origins(per), backtest(fb, methods, **kw))


def test_backtest_default_origins_and_validation():
    fb = steady_builder()
    per = backtest(fb, {"c": ColumnRanker("cnt_sv_12m")}, horizon=1, coverages=(0.25,), top_n=(),
                   per_origin=True)
    # 18 months of data: origins with 12 months before them are 2017-01..2017-06
    assert per["origin"].tolist() == [f"2017-{m:02d}" for m in range(1, 7)]
    with pytest.raises(ValueError, match="2017-06"):
        backtest(fb, {"c": ColumnRanker("cnt_sv_12m")}, origins=["2017-06"], horizon=2)


def drifting_builder():
    """Serious violence moves: cell a holds it until 2016-12, cell c from 2017-01 (4 events a month)."""
    counts = pd.DataFrame(0.0, index=list("abcd"), columns=MONTHS)
    counts.loc["a", MONTHS < "2017-01-01"] = 4.0
    counts.loc["c", MONTHS >= "2017-01-01"] = 4.0
    return FakeBuilder(counts)


def test_nested_choice_judges_candidates_on_earlier_origins_only():
    # last month's count follows the move at once; the 12-month count lags it by months
    candidates = {"count_12m": ColumnRanker("cnt_sv_12m"), "count_1m": ColumnRanker("cnt_sv_1m")}
    nested = NestedChoice(candidates, inner_origins=3, min_inner=3, coverages=(0.25,))
    per = backtest(drifting_builder(), {"nested": nested}, origins=["2017-01", "2017-02", "2017-06"],
                   coverages=(0.25,), top_n=(), per_origin=True)
    # at 2017-01 and 2017-02 the earlier origins (up to 2017-01, where both still pointed at a)
    # tie, so the first candidate; by 2017-06 count_1m has won 2017-02..05
    assert nested.choices_ == {"2017-01": "count_12m", "2017-02": "count_12m", "2017-06": "count_1m"}
    assert per["chosen"].tolist() == ["count_12m", "count_12m", "count_1m"]
    # fitted as of a cutoff, the chosen candidate carries the evidence it was chosen on
    model = fit_at(drifting_builder(), nested, "2017-06", 1)  # 3 inner origins, all won by count_1m
    assert isinstance(model, ColumnRanker) and model.column == "cnt_sv_1m"
    assert model.chosen_["method"] == "count_1m"
    assert model.chosen_["inner_origins"] == ["2017-05", "2017-04", "2017-03"]
    assert model.chosen_["scores"]["count_1m"] == 1.0 and model.chosen_["scores"]["count_12m"] == 0.0


def test_nested_choice_takes_a_richer_candidate_only_on_enough_origins_and_beyond_its_paired_noise():
    candidates = {"count_12m": ColumnRanker("cnt_sv_12m"), "count_1m": ColumnRanker("cnt_sv_1m")}
    nested = NestedChoice(candidates, coverages=(0.25,))  # up to 12 inner origins, at least 6, 2 s.e.
    per = backtest(drifting_builder(), {"nested": nested}, origins=["2017-03", "2017-06"],
                   coverages=(0.25,), top_n=(), per_origin=True)
    # at 2017-03 the 7 inner origins 2016-08..2017-02 (each with a training origin 6 months into the data)
    # give count_1m - count_12m = 1 once, 0 six times: mean 1/7, s.e. sqrt(1/7) / sqrt(7) = 1/7,
    # so 2 s.e. = 0.2857 > 0.1429: the simple one
    assert nested.choices_["2017-03"] == "count_12m"
    assert nested.reasons_["2017-03"] == ("count_12m: no richer candidate beat it by more than its paired noise on "
                                          "7 inner origins (best count_1m +0.1429, 2 s.e. = 0.2857)")
    # at 2017-06, 10 inner origins with 4 wins: mean 0.4 > 2 s.e. = 2 sqrt(0.4 * 0.6 * 10 / 9 / 10) = 0.3266
    assert nested.choices_["2017-06"] == "count_1m"
    assert nested.reasons_["2017-06"] == ("count_1m: beat count_12m by +0.4000 on 10 inner origins, more than its "
                                          "paired noise (2 s.e. = 0.3266)")
    assert per["why"].tolist() == [nested.reasons_["2017-03"], nested.reasons_["2017-06"]]
    # the same evidence with too few origins to trust, or a stricter noise bar: the simple one
    few = NestedChoice(candidates, min_inner=11, coverages=(0.25,))
    model = fit_at(drifting_builder(), few, "2017-06", 1)
    assert model.chosen_["method"] == "count_12m"
    assert model.chosen_["why"] == "count_12m: 10 inner origins, fewer than the 11 a richer candidate needs"
    strict = NestedChoice(candidates, noise=3.0, coverages=(0.25,))
    assert fit_at(drifting_builder(), strict, "2017-06", 1).chosen_["method"] == "count_12m"


def test_backtest_report_has_per_origin_and_summary_rows_paired_differences_and_the_ceiling():
    fb = drifting_builder()
    methods = {"count_12m": ColumnRanker("cnt_sv_12m"), "count_1m": ColumnRanker("cnt_sv_1m")}
    origins = ["2017-02", "2017-03", "2017-04"]
    per = backtest(fb, methods, origins=origins, coverages=(0.25,), top_n=(1,), per_origin=True)
    report = backtest_report(per, "fake", default="count_1m", reference="count_12m",
                             ceiling=backtest_ceiling(fb, origins, 1, coverages=(0.25,), top_n=(1,), n_sims=20))
    per_rows = [r for r in report["records"] if "origin" in r]
    summary = [r for r in report["records"] if "origin" not in r]
    assert len(per_rows) == 2 * 3 * 2 and len(summary) == 2 * 2  # methods x origins x slices; methods x slices
    assert all(r["default"] == (r["method"] == "count_1m") for r in report["records"])
    # the 12-month count still points at a (the old place), last month's at c: PEI* 0 vs 1 every month
    (p,) = report["paired"]
    assert (p["method"], p["against"], p["slice"], p["mean_diff"], p["wins"], p["losses"]) == \
        ("count_1m", "count_12m", "25% area", 1.0, 3, 0)
    five = {r["method"]: r for r in summary if r["slice"] == "25% area"}
    # the ceiling knows long-run rates (2016-01..2017-04): a's 3 a month beat c's 1, so it ranks a first
    # and scores below 1; last month's count, following the move, beats it - the ceiling assumes
    # places keep their rates
    ceiling = five["count_1m"]["ceiling_pei"]
    assert 0.85 < ceiling < 1.0
    assert five["count_1m"]["pei_share"] == pytest.approx(1.0 / ceiling) and five["count_12m"]["pei_share"] == 0.0
    # it is the oracle's expected PEI*, not a bound: every count_1m month (3 of the 6 method-months) is above it
    (row,) = [r for r in report["ceiling"]["rows"] if r["slice"] == "25% area"]
    assert report["ceiling"]["label"] == "expected PEI* of a long-run-rate oracle"
    assert row["above"] == 0.5 and row["methods_above"] == ["count_1m"] and row["ceiling_pei_lo"] <= ceiling
    assert report["origins"] == ["2017-02", "2017-04", 3] and report["horizon"] == 1
    json.dumps(report)  # plain JSON: no NaN, no numpy scalars


def test_the_better_of_two_simple_yardsticks_is_the_one_a_richer_candidate_must_beat():
    from models.backtest import NestedChoice

    # last year's count leads the long mean on every inner origin (a place that changed); the GLM
    # beats the long mean but not the count by more than noise
    rows = pd.DataFrame({"long_mean": [0.60, 0.62, 0.58, 0.61, 0.59, 0.60],
                         "count_12m": [0.80, 0.82, 0.79, 0.81, 0.80, 0.80],
                         "glm": [0.81, 0.80, 0.80, 0.82, 0.79, 0.81]})
    nested = NestedChoice({"long_mean": None, "count_12m": None, "glm": None}, simple=2)
    name, why, paired = nested.decide(rows)
    assert name == "count_12m" and why.startswith("count_12m: count_12m led long_mean on 6 inner origins")
    assert set(paired) == {"glm"} and paired["glm"]["mean_diff"] == pytest.approx(0.0017, abs=1e-4)
    # with too few inner origins to judge, the first (the long-run mean) stands
    assert nested.decide(rows.head(3))[0] == "long_mean"
    # one simple yardstick (the old rule): the GLM clearly beats the long mean
    assert NestedChoice({"long_mean": None, "glm": None}).decide(rows[["long_mean", "glm"]])[0] == "glm"
    with pytest.raises(ValueError, match="simple must be between 1 and the 3 candidates"):
        NestedChoice({"long_mean": None, "count_12m": None, "glm": None}, simple=4)


class MonthsOnlyBuilder(FakeBuilder):
    """A builder that refuses text months: what the backtest asks it must already be a Month."""

    def matrix(self, cutoff):
        if not isinstance(cutoff, pd.Timestamp):
            raise TypeError(f"matrix({cutoff!r}): a month as text reached the builder")
        return super().matrix(cutoff)


def test_the_backtest_and_the_forecast_hand_the_builder_months_never_text():
    fb = MonthsOnlyBuilder(steady_builder().counts)
    table = backtest(fb, {"glm": PoissonGLM()}, origins=["2017-03", "2017-04"], horizon=1, train_origins=3,
                     min_train_history=6, coverages=(0.25,), top_n=())
    assert set(table["n_origins"]) == {2}
    assert forecast_matrix(fb, "2017-05").shape[0] == 4
    assert fb.requested and all(type(c) is pd.Timestamp for c in fb.requested)
