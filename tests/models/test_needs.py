"""The needs assessment's statistics on numbers a person can check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.needs import compare, monitoring, risk, spatial, trends


def test_bands_published_for_drugs_and_relative_to_the_borough_otherwise():
    assert spatial.rate_bands("drugs", 9.0) == (1.0, 1.5, 2.0, 3.0, 5.0)
    assert spatial.rate_bands("violence", 20.0) == (8.0, 12.0, 16.0, 24.0, 40.0)
    assert spatial.band_labels((1.0, 1.5)) == ["< 1", "1 - 1.5", "> 1.5"]
    assert spatial.band_of([1.0, 1.2, 9.0, np.nan], (1.0, 1.5)).tolist() == [0, 1, 2, -1]


def test_concentration_top_share_gini_and_lorenz():
    v = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 30], dtype=float)
    share, k = spatial.top_share(v)  # 5% of 20 places = 1 place
    assert (share, k) == (0.75, 1)
    assert spatial.gini([1, 1, 1, 1]) == 0.0 and spatial.gini([0, 0, 0, 4]) == pytest.approx(0.75)
    x, y = spatial.lorenz([3, 1])
    assert x.tolist() == [0.0, 0.5, 1.0] and y.tolist() == [0.0, 0.75, 1.0]


def test_similar_boroughs_are_the_nearest_on_standardised_figures():
    p = pd.DataFrame({"name": ["A", "B", "C", "D"], "log_population": [12.0, 12.1, 11.0, 12.0],
                      "imd_score": [20.0, 21.0, 20.0, 40.0]}, index=pd.Index(list("abcd"), name="area_code"))
    out, notes = compare.similar(p, "a", k=2)
    assert list(out.index) == ["a", "b", "c", "d"]  # b is close on both figures; d is far on deprivation
    assert out["similar"].tolist() == [False, True, True, False] and notes == []
    with pytest.raises(ValueError, match="not among"):
        compare.similar(p, "z")


def test_regional_table_pools_counts_over_residents_and_ranks_from_the_top():
    rates = pd.DataFrame({
        "area_code": ["a", "b", "c"], "measure": "robbery", "count": [10.0, 40.0, 20.0], "previous": [5.0, 40.0, 20.0],
        "population": [1000.0, 2000.0, 1000.0], "rate_per_1000": [10.0, 20.0, 20.0], "change_pct": [100.0, 0.0, 0.0],
        "period_start": "2021-01", "period_end": "2021-12", "population_year": 2021, "rank": [3.0, 1.0, 1.0]})
    row = compare.regional_table(rates, "a", ["b"]).iloc[0]
    assert row["rank"] == 3 and row["of"] == 3
    assert row["region_rate_per_1000"] == pytest.approx(70 / 4000 * 1000)
    assert row["similar_rate_per_1000"] == pytest.approx(20.0)
    assert row["region_change_pct"] == pytest.approx(100 * (70 - 65) / 65)


def test_stl_finds_a_planted_summer_peak():
    months = pd.date_range("2019-01-01", periods=48, freq="MS")
    season = 20 * np.cos(2 * np.pi * (months.month - 7) / 12)
    s = pd.Series(500 + np.linspace(0, 24, 48) + season, index=months)
    out = trends.decompose(s)
    assert out.attrs["peak_month"] == 7 and out.attrs["trough_month"] == 1
    assert out.attrs["trend_change"] == pytest.approx(6.0, abs=1.5)  # +0.5 a month
    with pytest.raises(ValueError, match="at least 24"):
        trends.decompose(s.iloc[:20])


def test_rate_model_recovers_a_planted_rate_ratio_and_says_unclear_for_noise():
    rng = np.random.default_rng(4)
    n = 400
    X = pd.DataFrame({"imd_score": rng.normal(20, 8, n), "share_10_24": rng.uniform(0.1, 0.3, n)})
    pop = rng.integers(1000, 3000, n).astype(float)
    z = (X["imd_score"] - X["imd_score"].mean()) / X["imd_score"].std(ddof=0)
    y = rng.poisson(pop / 1000 * 5 * np.exp(0.3 * z))  # +1 SD of deprivation: x exp(0.3) = 1.35
    fit = risk.fit_rate_model(y, pop, X, ["imd_score", "share_10_24"])
    t = fit["table"].set_index("factor")
    assert t.loc["imd_score", "lo"] < np.exp(0.3) < t.loc["imd_score", "hi"]
    assert t.loc["imd_score", "direction"] == "higher" and t.loc["share_10_24", "direction"] == "unclear"
    assert fit["n"] == n


def _kpis(counts, period_end):
    ids = ("u1", "u2", "u3")
    areas = [monitoring.KpiArea("ward", u, u.upper(), "ward2022", (u,)) for u in ids]
    areas.append(monitoring.KpiArea("operational area", "1", "Area 1", "ward2022", ("u1", "u2")))
    return monitoring.kpi_table(counts, pd.Series(1000.0, index=list(ids)), areas, period_end,
                                complete=pd.date_range("2019-01-01", "2022-12-01", freq="MS"),
                                measures=["serious violence"], population_year=2021, source="test")


def _counts(per_month: dict[str, float], first: str, last: str) -> pd.DataFrame:
    ms = pd.date_range(first, last, freq="MS")
    return pd.DataFrame([{"unit_id": u, "month": m, "group": "robbery", "serious_violence": True,
                          "police_generated": False, "count": n} for u, n in per_month.items() for m in ms])


def test_kpis_sum_their_units_and_compare_with_a_baseline_on_the_same_footprint():
    base = _kpis(_counts({"u1": 1, "u2": 2, "u3": 1}, "2019-01", "2020-12"), "2020-12")
    op = base[base["area_type"] == "operational area"].iloc[0]
    assert op["count"] == 36 and op["rate_per_1000"] == pytest.approx(18.0)  # (1 + 2) x 12 / 2,000 residents
    # a year later the footprint is recounted: the baseline's areas are found by their units
    now = _kpis(_counts({"u1": 2, "u2": 2, "u3": 1}, "2021-01", "2021-12"), "2021-12")
    comp, notes = monitoring.compare_with_baseline(now, base)
    row = comp.set_index("area_name").loc["Area 1"]
    assert row["status"] == "compared" and row["change_pct"] == pytest.approx(100 * (48 - 36) / 36)
    assert monitoring.footprint_areas(base)[0].unit_ids == ("u1", "u2")
    gone = monitoring.compare_with_baseline(now[now["area_code"] != "u3"], base)[0]
    assert (gone["status"] != "compared").sum() == 1


def test_a_baseline_without_kpi_columns_is_refused():
    with pytest.raises(ValueError, match="kpi_id"):
        monitoring.compare_with_baseline(pd.DataFrame({"kpi_id": []}), pd.DataFrame({"x": [1]}))


def test_the_pack_and_the_briefing_count_the_same_broad_serious_violence():
    """The briefing's figures (feature builder groups) and the pack's headline (taxonomy flag) on one store."""
    from features.build import FeatureBuilder
    from features.figures import CORE_MEASURE, SV_MEASURE, needs_assessment_figures
    from features.needs import count_sources
    from models.needs.assessment import borough_headline, trend_source
    from sources.memstore import MemoryStore
    from tests.features.test_needs import _four_groups, _units

    frame, units = _units()
    store = MemoryStore({"area_counts": _four_groups(), "units_ward2022": frame})
    briefing = {r["group"]: r for r in needs_assessment_figures(FeatureBuilder(store, units, source="areas"),
                                                                None, "2022-07")["rows"]}
    src = trend_source(count_sources(store))
    pack = borough_headline(src, "2022-06", None).set_index("measure")
    assert briefing[SV_MEASURE]["count_12m"] == pack.loc[SV_MEASURE, "count"] == 12 * 7  # business robbery in both
    assert briefing[SV_MEASURE]["previous_12m"] == pack.loc[SV_MEASURE, "previous"]
    assert pack.loc[CORE_MEASURE, "count"] == 12 * 5 and pack.loc[CORE_MEASURE, "label"].startswith("Serious violence, core")


def test_the_robust_trend_ignores_a_spike_at_the_end():
    months = pd.date_range("2021-01-01", periods=36, freq="MS")
    s = pd.Series(100.0 + 2.0 * np.arange(36), index=months)
    s.iloc[-1] += 300  # one unusual last month: an end-point trend would jump, the median slope does not
    t = trends.robust_trend(s)
    assert t["per_month"] == pytest.approx(2.0) and t["per_year"] == pytest.approx(24.0)
    assert t["lo"] <= 24.0 <= t["hi"] and (t["first"], t["last"], t["months"]) == ("2021-01", "2023-12", 36)
    with pytest.raises(ValueError, match="at least 12 months"):
        trends.robust_trend(s.iloc[:6])


def test_disproportionality_rates_and_ratio_by_hand():
    from models.needs import cohorts

    groups = pd.Series(["Black"] * 6 + ["White"] * 4 + [None] * 2, dtype="string")
    residents = pd.Series({"Black": 1000.0, "White": 2000.0, "Asian": 500.0})
    d = cohorts.disproportionality(groups, residents).set_index("group")
    assert d.loc["Black", "rate_per_1000"] == 6.0 and d.loc["White", "rate_per_1000"] == 2.0
    assert d.loc["Black", "rate_ratio"] == pytest.approx(3.0) and d.loc["Asian", "searches"] == 0
    se = np.sqrt(1 / 6 + 1 / 4)  # Var(log rate ratio) = 1/n1 + 1/n0
    assert d.loc["Black", "lo"] == pytest.approx(3.0 * np.exp(-1.959964 * se), rel=1e-4)
    assert d.loc["Black", "hi"] == pytest.approx(3.0 * np.exp(1.959964 * se), rel=1e-4)
    assert d.attrs["unrecorded"] == 2
    with pytest.raises(ValueError, match="reference group 'White' has no residents"):
        cohorts.disproportionality(groups, residents.drop("White"))


def test_funnel_limits_are_the_poisson_quantiles_of_the_expected_count():
    from models.needs import cohorts

    # borough rate 10 per 1,000: a ward of 1,000 residents expects 10; a Poisson(10) count is >= 21 with
    # probability 0.0016 and >= 22 with 0.0007, so 99.8% (two-sided, 0.1% a tail) puts the upper limit at 21;
    # P(X <= 1) = 0.0005 and P(X <= 2) = 0.0028: the lower limit is 2
    f = cohorts.funnel_limits([10, 22, 21, 1], [1000, 1000, 1000, 1000], 10.0)
    assert f["expected"].tolist() == [10.0] * 4
    assert f["hi_99.8"].iloc[0] == pytest.approx(21.0) and f["lo_99.8"].iloc[0] == pytest.approx(2.0)
    assert f["outside"].tolist() == ["", "above 99.8%", "above 95%", "below 99.8%"]
    assert f["rate_per_1000"].tolist() == [10.0, 22.0, 21.0, 1.0]
