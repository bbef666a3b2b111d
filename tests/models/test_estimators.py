"""Every predictive estimator svrisk owns passes scikit-learn's estimator checks."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from models.baselines import ColumnRanker
from models.boosting import BlendedBoost, PoissonBoost, boost_threads
from models.glm import PoissonGLM
from models.interventions import SyntheticControl

ESTIMATORS = [
    ColumnRanker(column=0),
    PoissonGLM(features="all", spatial_lag=False),
    PoissonGLM(features="all", spatial_lag=False, family="negbin"),
    PoissonBoost(n_estimators=20, seed=0),
    BlendedBoost(PoissonBoost(n_estimators=20, seed=0), anchor=0),
    SyntheticControl(),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _counts_frame():
    rng = np.random.default_rng(3)
    n = 400
    X = pd.DataFrame(
        {
            "cnt_sv_12m": rng.poisson(5, n).astype(float),
            "lag_cnt_sv_12m": rng.gamma(2.0, 2.0, n),
            "imd_score": rng.normal(20, 8, n),
            "cnt_drugs_12m": rng.poisson(2, n).astype(float),
        }
    )
    # planted: rate doubles when (1 + 12-month count) doubles; +1 SD of IMD multiplies by e^0.3
    z = (X["imd_score"] - X["imd_score"].mean()) / X["imd_score"].std(ddof=0)
    mu = 0.2 * (1 + X["cnt_sv_12m"]) * np.exp(0.3 * z)
    return X, rng.poisson(mu).astype(float)


def test_glm_recovers_planted_rate_ratios_and_drops_police_generated():
    X, y = _counts_frame()
    glm = PoissonGLM(features=["cnt_sv_12m", "imd_score", "cnt_drugs_12m"]).fit(X, y)
    rr = glm.rate_ratios().set_index("feature")
    assert "cnt_drugs_12m" not in rr.index  # police-generated: off by default
    assert list(rr.index) == ["cnt_sv_12m", "lag_cnt_sv_12m", "imd_score"]  # lag added, matrix order
    assert rr.loc["cnt_sv_12m", "lo"] < 2.0 < rr.loc["cnt_sv_12m", "hi"]
    assert rr.loc["imd_score", "lo"] < np.exp(0.3) < rr.loc["imd_score", "hi"]
    assert rr.loc["lag_cnt_sv_12m", "lo"] < 1.0 < rr.loc["lag_cnt_sv_12m", "hi"]
    contrib = glm.contributions(X)
    np.testing.assert_allclose(
        np.exp(glm.intercept_ + contrib.sum(axis=1)), glm.predict(X), rtol=1e-9
    )


def test_glm_needs_the_spatial_lag_column():
    X, y = _counts_frame()
    with pytest.raises(ValueError, match="lag_cnt_sv_12m"):
        PoissonGLM().fit(X.drop(columns="lag_cnt_sv_12m"), y)


def test_boosting_is_monotone_in_prior_counts_and_shap_adds_up():
    X, y = _counts_frame()
    model = PoissonBoost(n_estimators=60, seed=1).fit(X, y)
    grid = pd.concat([X.iloc[[0]]] * 20, ignore_index=True)
    grid["cnt_sv_12m"] = np.arange(20.0)
    assert (np.diff(model.predict(grid)) >= -1e-9).all()
    shap_values = model.contributions(X.iloc[:5])
    assert list(shap_values.columns) == ["cnt_sv_12m", "lag_cnt_sv_12m", "imd_score"]
    assert shap_values["cnt_sv_12m"].abs().mean() > shap_values["lag_cnt_sv_12m"].abs().mean()


def test_boosting_threads_do_not_change_the_fit(monkeypatch):
    """Local training uses every core (n_jobs=None); XGBoost's hist sums are the same on 1 or 2 threads."""
    X, y = _counts_frame()
    X = pd.concat([X] * 10, ignore_index=True)  # 4,000 rows: each thread gets a share of the histogram
    y = np.tile(y, 10)
    assert PoissonBoost().n_jobs is None
    small = PoissonBoost(n_estimators=5, n_jobs=2).fit(X, y)
    assert small.n_threads_ == 1 and small.booster_.get_params()["n_jobs"] == 1  # 12,000 cells: one thread
    monkeypatch.setattr("models.boosting.CELLS_PER_THREAD", 1_000)  # 12 threads' worth, so n_jobs decides
    one = PoissonBoost(n_estimators=80, n_jobs=1).fit(X, y)
    two = PoissonBoost(n_estimators=80, n_jobs=2).fit(X, y)
    assert two.booster_.get_params()["n_jobs"] == 2 and two.n_threads_ == 2
    np.testing.assert_array_equal(one.predict(X), two.predict(X))


@pytest.mark.parametrize(("n_jobs", "cells", "cores", "threads"), [
    (2, 5_580_120, 2, 1),      # 8 boroughs' training matrix: one thread
    (2, 22_336_860, 2, 2),     # London's: two
    (1, 22_336_860, 2, 1),     # n_jobs is the most
    (None, 45_000_000, 8, 4),  # every core at most, one per 10M cells
    (None, 45_000_000, 2, 2),
    (-1, 100, 8, 1),           # a tiny matrix: one, never 0
])
def test_boost_threads_one_per_ten_million_cells_within_n_jobs(n_jobs, cells, cores, threads):
    assert boost_threads(n_jobs, cells, cores) == threads


def _anchored_frame():
    # long-run means 0, 1, 2, 3 events a month; the next month's counts equal them
    X = pd.DataFrame({"cnt_sv_12m": [0.0, 12.0, 24.0, 36.0] * 5, "mean_sv_36m": [0.0, 1.0, 2.0, 3.0] * 5},
                     index=pd.Index([f"u{i}" for i in range(20)], name="unit_id"))
    return X, X["mean_sv_36m"].to_numpy().copy()


def test_blend_at_weight_zero_is_the_long_mean_scaled_to_the_total():
    X, y = _anchored_frame()
    model = BlendedBoost(PoissonBoost(n_estimators=10), weight=0.0, floor=0.05).fit(X, y)
    # floor_ = 0.05 x mean anchor 1.5 = 0.075; forecasts (a + 0.075) x 30 / 31.5 add up to the 30 events
    assert model.floor_ == pytest.approx(0.075)
    np.testing.assert_allclose(model.predict(X.iloc[:4]), np.array([0.075, 1.075, 2.075, 3.075]) * 30 / 31.5)
    assert model.predict(X).sum() == pytest.approx(y.sum())


def test_blend_at_weight_one_ranks_as_the_boosting_alone():
    X, y = _anchored_frame()
    y = y[::-1].copy()  # the boosting learns the reverse of the anchor
    boost = PoissonBoost(n_estimators=30).fit(X, y)
    model = BlendedBoost(PoissonBoost(n_estimators=30), weight=1.0).fit(X, y)
    ratio = model.predict(X) / boost.predict(X)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)  # a constant rescaling only
    assert model.predict(X).sum() == pytest.approx(y.sum(), rel=1e-6)


def test_blend_sits_between_its_two_parts_and_contributions_add_up():
    X, y = _anchored_frame()
    y = np.array([1.0, 1.0, 1.0, 1.0] * 5)  # flat outcome: the boosting forecasts ~1 everywhere
    model = BlendedBoost(PoissonBoost(n_estimators=30), weight=0.5).fit(X, y)
    pred = model.predict(X.iloc[:4])
    assert (np.diff(pred) > 0).all()  # the anchor still orders the places
    # half the log of the anchor's spread: (3.075 / 1.075) ** 0.5 = 1.69 between the top two
    assert pred[3] / pred[1] == pytest.approx((3.075 / 1.075) ** 0.5, rel=0.02)
    contrib = model.contributions(X)
    assert list(contrib.columns) == ["cnt_sv_12m", "mean_sv_36m"] and list(contrib.index) == list(X.index)
    gap = np.log(model.predict(X)) - contrib.sum(axis=1).to_numpy()
    np.testing.assert_allclose(gap, gap[0], atol=1e-5)  # log forecast = constant + contributions
    from models.reasons import reasons

    text = reasons(contrib, X).loc["u3", "reason_1"]
    assert text.startswith("Long-run serious violence 3.0 events a month"), text


def test_blend_validates_its_anchor_and_weight_and_leaves_a_missing_anchor_to_the_boosting():
    X, y = _anchored_frame()
    with pytest.raises(ValueError, match="mean_sv_36m"):
        BlendedBoost(PoissonBoost(n_estimators=5)).fit(X.drop(columns="mean_sv_36m"), y)
    with pytest.raises(ValueError, match="weight"):
        BlendedBoost(weight=1.5).fit(X, y)
    model = BlendedBoost(PoissonBoost(n_estimators=30), weight=0.5).fit(X, y)
    gap = X.iloc[[1, 2]].copy()
    gap.loc["u2", "mean_sv_36m"] = np.nan
    boost = model.estimator_.predict(gap)
    pred = model.predict(gap)
    # u2's anchor term is 0: its forecast is exp(intercept) x boost ** 0.5 exactly
    assert pred[1] == pytest.approx(np.exp(model.intercept_) * boost[1] ** 0.5, rel=1e-6)
    assert model.contributions(gap).loc["u2", "mean_sv_36m"] == pytest.approx(
        0.5 * model.estimator_.contributions(gap).loc["u2", "mean_sv_36m"], abs=1e-9)


@pytest.fixture(scope="module")
def demo_builder(tmp_path_factory):
    from features.build import FeatureBuilder
    from features.units import build_units
    from sources.demo.borough import generate_demo
    from sources.ingest import ingest
    from sources.store import Store

    root = tmp_path_factory.mktemp("demo")
    ingest(generate_demo(root / "data"), root / "store")  # seed 7, 2016-01..2018-12
    store = Store(root / "store")
    return FeatureBuilder(store, build_units(store, "lsoa2011"))


def test_glm_recovers_planted_demo_drivers(demo_builder):
    """The demo plants log-rate effects of +0.45 per SD of deprivation and +0.6 on log station footfall."""
    from models.backtest import training_set

    X, y = training_set(demo_builder, "2018-01", horizon=1, train_origins=12)
    rr = (PoissonGLM(features=["imd_score", "foot_decay"], spatial_lag=False)
          .fit(X, y.to_numpy()).rate_ratios().set_index("feature"))
    # signs: both raise risk, clearly
    assert rr.loc["imd_score", "lo"] > 1.2 and rr.loc["foot_decay", "lo"] > 1.1
    # size: +1 SD of IMD multiplies the rate by about exp(0.45) = 1.57
    assert 1.3 < rr.loc["imd_score", "rate_ratio"] < 2.0


def test_glm_recovers_every_planted_driver_with_its_sign(demo_builder):
    """Deprivation, station footfall and secondary-school proximity are all planted as raising risk."""
    from models.backtest import training_set

    X, y = training_set(demo_builder, "2018-01", horizon=1, train_origins=12)
    rr = (PoissonGLM(features=["imd_score", "foot_decay", "sec_school_prox"], spatial_lag=False)
          .fit(X, y.to_numpy()).rate_ratios().set_index("feature"))
    assert (rr["lo"] > 1.0).all(), rr
    # the largest planted effect on this scale is deprivation (+0.45 per SD of a field with wide spread)
    assert rr["rate_ratio"].idxmax() == "imd_score"


def test_a_column_constant_up_to_rounding_gets_no_coefficient_and_finite_rate_ratios():
    import numpy as np
    import pandas as pd

    from models.glm import PoissonGLM

    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 2.0, 200)
    # the same value written with rounding noise, as a 36-month mean of zero events comes out
    const = np.full(200, 0.1) + rng.normal(0, 1e-17, 200)
    X = pd.DataFrame({"cnt_sv_12m": x, "mean_asb_36m": const, "lag_cnt_sv_12m": x[::-1]})
    y = rng.poisson(0.5 + 0.3 * x)
    glm = PoissonGLM().fit(X, y)
    assert glm.coef_[1] == 0.0 and glm.coef_[0] != 0.0
    ratios = glm.rate_ratios()
    assert np.isfinite(ratios[["rate_ratio", "lo", "hi"]].to_numpy(dtype=float)[0]).all()
    assert ratios.loc[1, "rate_ratio"] == 1.0
