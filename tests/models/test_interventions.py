"""Evaluating an intervention: hand-checkable pieces, then the planted demo intervention recovered.

The planted demo (``tests/_support/intervention_demo.py``): rate ratio 0.6 in the area from
2017-09, three quarters of the removed events moved within 300 m.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import stats

from features.build import FeatureBuilder
from features.units import build_units
from geo.units import UnitSet
from models import interventions as mi
from sources.store import Store

# ---------------------------------------------------------------------------- a 5 x 5 grid by hand


def grid_units(n: int = 5, size: float = 100.0) -> UnitSet:
    """Cells ``c<row><col>`` of ``size`` metres, row 0 at the south."""
    rows = [{"unit_id": f"c{r}{c}", "name": f"cell {r}-{c}", "area_m2": size * size,
             "geometry": shapely.box(c * size, r * size, (c + 1) * size, (r + 1) * size)}
            for r in range(n) for c in range(n)]
    return UnitSet(gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:27700"), "grid100")


def test_buffer_is_the_ring_within_the_width_and_comparison_touches_neither():
    units = grid_units()
    assert mi.buffer_units(units, ["c22"], 50.0) == ["c11", "c12", "c13", "c21", "c23", "c31", "c32", "c33"]
    ring2 = mi.buffer_units(units, ["c22"], 120.0)
    assert len(ring2) == 24 - 4  # everything but the four corners (their nearest point is 141 m away)
    assert mi.buffer_units(units, ["c22"], 0.0) == []
    eligible = mi.eligible_units(units, ["c22"], mi.buffer_units(units, ["c22"], 50.0))
    # the outer ring touches the buffer, so nothing is left on a 5 x 5 grid
    assert eligible == []
    eligible = mi.eligible_units(units, ["c00"], mi.buffer_units(units, ["c00"], 50.0))
    assert "c11" not in eligible and "c22" not in eligible and "c33" in eligible and "c03" in eligible


def test_units_in_polygon_need_half_their_area_inside():
    units = grid_units()
    poly = shapely.box(0, 0, 160, 100)  # all of c00, 60% of c01
    assert mi.units_in_polygon(units, poly) == ["c00", "c01"]
    assert mi.units_in_polygon(units, shapely.box(0, 0, 140, 100)) == ["c00"]
    with pytest.raises(ValueError, match="holds no grid100 unit"):
        mi.units_in_polygon(units, shapely.box(10, 10, 30, 30))


def test_did_rate_ratio_is_the_ratio_of_ratios_of_totals():
    rng = np.random.default_rng(0)
    control = rng.poisson(50, 24).astype(float)
    treated = rng.poisson(20, 24).astype(float)
    post = np.arange(24) >= 12
    d = mi.count_did(treated, control, post)
    by_hand = (treated[post].sum() / control[post].sum()) / (treated[~post].sum() / control[~post].sum())
    assert d["rate_ratio"] == pytest.approx(by_hand, rel=1e-6)
    assert d["lo"] < d["rate_ratio"] < d["hi"]
    # no worse than the textbook Poisson standard error sqrt(1/A_b + 1/A_a + 1/C_b + 1/C_a) by much
    textbook = np.sqrt(sum(1 / v for v in (treated[post].sum(), treated[~post].sum(),
                                           control[post].sum(), control[~post].sum())))
    assert 0.5 * textbook < d["se"] < 3 * textbook


def test_wdq_components_by_hand():
    r = mi.wdq(A_b=100, A_a=70, B_b=200, B_a=215, C_b=1000, C_a=1100)
    assert r["success_measure"] == pytest.approx(70 / 1100 - 100 / 1000)
    assert r["buffer_measure"] == pytest.approx(215 / 1100 - 200 / 1000)
    assert r["wdq"] == pytest.approx(r["buffer_measure"] / r["success_measure"])
    assert r["prevented_in_area"] == pytest.approx(100 * 1.1 - 70)
    assert r["displaced_to_buffer"] == pytest.approx(215 - 200 * 1.1)
    assert "diffusion" in r["reading"]  # the buffer fell relative to C: benefits spread
    worse = mi.wdq(A_b=100, A_a=110, B_b=200, B_a=200, C_b=1000, C_a=1000)
    assert worse["wdq"] is None and "not defined" in worse["reading"]


def test_synthetic_control_recovers_known_weights():
    rng = np.random.default_rng(1)
    X = rng.gamma(5.0, 1.0, (30, 4))
    y = X @ np.array([0.2, 0.0, 0.8, 0.0])
    sc = mi.SyntheticControl().fit(X, y)
    np.testing.assert_allclose(sc.coef_, [0.2, 0.0, 0.8, 0.0], atol=1e-6)
    assert sc.coef_.sum() == pytest.approx(1.0) and (sc.coef_ >= 0).all()
    np.testing.assert_allclose(sc.predict(X), y, atol=1e-6)


def test_minimum_detectable_effect_shrinks_with_more_events():
    small = mi.minimum_detectable_effect(np.full(24, 2.0), np.full(24, 20.0), 12)
    large = mi.minimum_detectable_effect(np.full(24, 50.0), np.full(24, 500.0), 12)
    assert large["mde"] < small["mde"] < 1
    # by hand (steady counts: no overdispersion): SE(e) = sqrt(1/48 + 1/480 + 1/(24 (1 - e)) + 1/240),
    # and at the MDE the power F_t34(|log(1 - e)| / SE(e) - t_34,0.975) is 80%
    e = small["mde"]
    se = np.sqrt(1 / 48 + 1 / 480 + 1 / (24 * (1 - e)) + 1 / 240)
    assert small["dispersion"] == pytest.approx(1.0)
    assert stats.t.cdf(abs(np.log(1 - e)) / se - stats.t.ppf(0.975, 34), 34) == pytest.approx(0.8, abs=1e-6)
    # overdispersed shares raise it
    rng = np.random.default_rng(3)
    noisy = mi.minimum_detectable_effect(rng.negative_binomial(2, 0.04, 24).astype(float) + 2.0,
                                         np.full(24, 480.0), 12)
    assert noisy["dispersion"] > 2 and noisy["mde"] > large["mde"]


def _toy_panel(units: UnitSet, months: int = 30, level: float = 8.0, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = pd.date_range("2016-01-01", periods=months, freq="MS")
    return pd.DataFrame(rng.poisson(level, (len(units), months)).astype(float), index=units.ids.astype(str),
                        columns=cols)


def test_refuses_a_short_pre_period_and_warns_about_gaps():
    units = grid_units(7)
    panel = _toy_panel(units)
    months = list(panel.columns)
    with pytest.raises(mi.EvaluationRefused, match="only 9 complete month"):
        mi.evaluate_intervention(panel, units, ["c00"], "2016-10", complete_months=months, buffer_m=50.0,
                                 n_placebos=0)
    holes = [m for m in months if m != pd.Timestamp("2017-03-01")]
    ev = mi.evaluate_intervention(panel, units, ["c00", "c01"], "2017-07", complete_months=holes,
                                  pre_months=18, buffer_m=50.0, n_placebos=0)
    assert any("2017-03" in w and "left out" in w for w in ev.warnings)
    assert "2017-03" not in ev.estimates["months_before"]
    assert ev.series.set_index("month").loc["2017-03", "period"] == "left out"
    assert ev.estimates["end"] == "2018-06"  # the last month of data


def test_refuses_an_area_too_small_to_say_anything():
    units = grid_units(7)
    panel = _toy_panel(units, level=0.3)
    with pytest.raises(mi.EvaluationRefused, match=r"too small.*(only a change of about \d+%|no fall at all)"):
        mi.evaluate_intervention(panel, units, ["c00"], "2017-07", complete_months=list(panel.columns),
                                 pre_months=18, buffer_m=50.0, n_placebos=0)


# ---------------------------------------------------------------------------- the planted demo


@pytest.fixture(scope="module")
def lsoa(planted_demo):
    store = Store(planted_demo["store"])
    units = build_units(store, "lsoa2011")
    fb = FeatureBuilder(store, units)
    return units, fb.panel(), fb.complete_months


def test_planted_reduction_is_recovered_within_its_interval(planted_demo, lsoa):
    units, panel, months = lsoa
    truth = planted_demo["truth"]
    ev = mi.evaluate_intervention(panel, units, truth["area_lsoa11"], truth["start_month"],
                                  complete_months=months, pre_months=20, buffer_m=300.0, n_placebos=19)
    d = ev.estimates["did"]
    assert d["lo"] < truth["rate_ratio"] < d["hi"]
    assert d["hi"] < 1  # and it is told apart from no effect
    assert ev.estimates["finding"]["verdict"] == "reduced"
    assert ev.estimates["verdict"].startswith("Reduced. Serious violence in the area fell by about")
    assert ev.estimates["in_time_placebo"]["holds_no_change"]
    scm = ev.estimates["synthetic_control"]
    assert -60 < scm["effect_pct"] < -20
    assert ev.estimates["pre_trend"]["parallel"]
    # the series are the panel's sums over the chosen units
    s = ev.series.set_index("month")
    area_total = panel.loc[truth["area_lsoa11"]].sum(axis=0)
    assert s.loc[truth["start_month"], "area"] == area_total[pd.Timestamp(truth["start_month"] + "-01")]
    assert (s["period"] == "after").sum() == 36 - 20


def test_without_a_planted_effect_the_interval_covers_no_change(planted_demo, lsoa):
    units, panel, months = lsoa
    truth = planted_demo["truth"]
    labels = planted_demo["months"]
    ev = mi.evaluate_intervention(panel, units, truth["area_lsoa11"], labels[12], end=labels[19],
                                  complete_months=months, pre_months=12, buffer_m=300.0, n_placebos=19)
    d = ev.estimates["did"]
    assert d["lo"] <= 1.0 <= d["hi"]
    finding = ev.estimates["finding"]
    assert finding["verdict"] in ("no detectable change", "inconclusive")
    if finding["verdict"] == "no detectable change":
        mde = ev.estimates["minimum_detectable_effect"]["mde"]
        assert ev.estimates["verdict"].startswith(f"No detectable change (could have detected {100 * mde:.0f}%). "
                                                  "We cannot tell")
    assert any("only 12 months before the start" in w for w in ev.warnings)


def test_displacement_to_the_buffer_is_detected_on_fine_cells(planted_demo):
    store = Store(planted_demo["store"])
    truth = planted_demo["truth"]
    grid = build_units(store, "grid200")
    fb = FeatureBuilder(store, grid)
    lsoa = store.units("lsoa2011")
    polygon = shapely.union_all(lsoa[lsoa["code"].isin(truth["area_lsoa11"])].geometry.to_numpy())
    cells = mi.units_in_polygon(grid, polygon)
    ev = mi.evaluate_intervention(fb.panel(), grid, cells, truth["start_month"], complete_months=fb.complete_months,
                                  pre_months=20, buffer_m=300.0, n_placebos=0)
    b = ev.estimates["displacement"]["buffer_did"]
    assert b["lo"] > 1  # the buffer rose more than similar places did
    w = ev.estimates["displacement"]["wdq"]
    assert w["wdq"] < 0 and "displacement" in w["reading"]
    assert w["displaced_to_buffer"] > 0
    assert ev.estimates["displacement"]["wdq_informative"]  # the area itself clearly improved


def test_the_same_borough_without_the_intervention_shows_no_effect(planted_demo, plain_demo):
    truth = planted_demo["truth"]
    assert plain_demo["truth"] is None  # nothing planted
    store = Store(plain_demo["store"])
    units = build_units(store, "lsoa2011")
    fb = FeatureBuilder(store, units)
    ev = mi.evaluate_intervention(fb.panel(), units, truth["area_lsoa11"], truth["start_month"],
                                  complete_months=fb.complete_months, pre_months=20, buffer_m=300.0, n_placebos=19)
    d = ev.estimates["did"]
    assert d["lo"] <= 1.0 <= d["hi"]
    # the counterfactual's area counts are the truth's counts without the intervention
    assert d["treated_after"] == sum(truth["area_counts_without"][20:])


# ---------------------------------------------------------------------------- displacement with uncertainty


def _constructed_panel():
    """Four places, 6 months before and 6 after: area A, buffer B, their controls C and CB (Poisson-like)."""
    A = np.array([10, 12, 9, 11, 10, 8, 6, 7, 5, 6, 7, 5], dtype=float)
    B = np.array([8, 9, 10, 7, 8, 8, 9, 10, 9, 11, 8, 9], dtype=float)
    C = np.array([11, 10, 9, 12, 10, 8, 10, 9, 11, 10, 9, 11], dtype=float)
    CB = np.array([7, 9, 8, 10, 8, 8, 9, 8, 8, 9, 7, 9], dtype=float)
    post = np.arange(12) >= 6
    return A, B, C, CB, post


def test_displacement_test_se_is_wheeler_and_ratcliffe_by_hand():
    A, B, C, CB, post = _constructed_panel()
    tot = {k: (v[~post].sum(), v[post].sum()) for k, v in dict(A=A, B=B, C=C, CB=CB).items()}
    # A: 60 -> 36, B: 50 -> 56, C: 60 -> 60, CB: 50 -> 50: equal levels, controls unchanged (k = g = 1)
    assert tot == {"A": (60, 36), "B": (50, 56), "C": (60, 60), "CB": (50, 50)}
    r = mi.displacement_test(*tot["A"], *tot["B"], *tot["C"], *tot["CB"])
    # Wheeler & Ratcliffe (2018): WDD = dT - dC + dD - dCD, Var = the sum of the eight counts
    assert r["wdd"] == pytest.approx((36 - 60) - (60 - 60) + (56 - 50) - (50 - 50))
    assert r["se_poisson"] == pytest.approx(np.sqrt(60 + 36 + 50 + 56 + 60 + 60 + 50 + 50))
    assert r["z"] == pytest.approx(-18 / np.sqrt(422))
    assert r["net_effect"] == pytest.approx(18) and r["displaced"] == pytest.approx(6)
    lo, hi = r["net_effect_interval"]
    assert lo == pytest.approx(18 - 1.959964 * np.sqrt(422), rel=1e-6) and hi > 18
    # overdispersion widens the interval by its square root
    wide = mi.displacement_test(*tot["A"], *tot["B"], *tot["C"], *tot["CB"], dispersion=4.0)
    assert wide["se"] == pytest.approx(2 * r["se_poisson"])


def test_displacement_test_scales_a_larger_shared_comparison_by_hand():
    # comparison 4x the area's level and rising 10%: k_A = 0.25, k_B = 0.5, g = 1.1
    r = mi.displacement_test(A_b=50, A_a=40, B_b=100, B_a=120, C_b=200, C_a=220)
    g, kA, kB = 1.1, 0.25, 0.5
    assert r["prevented"] == pytest.approx(50 * g - 40)
    assert r["displaced"] == pytest.approx(120 - 100 * g)
    var_c = 220 + g ** 2 * 200
    var = (40 + g ** 2 * 50) + (120 + g ** 2 * 100) + (kA + kB) ** 2 * var_c
    assert r["se_poisson"] == pytest.approx(np.sqrt(var))
    assert r["net_effect"] == pytest.approx(mi.wdq(50, 40, 100, 120, 200, 220)["net_effect"])  # Guerette's


def test_wdq_is_not_meaningful_when_the_area_did_not_clearly_improve():
    ok, why = mi.wdq_meaningful({"lo": 0.5, "hi": 0.8})
    assert ok and why == ""
    ok, why = mi.wdq_meaningful({"lo": 0.7, "hi": 1.3})
    assert not ok and "within chance" in why and "-30% to +30%" in why
    ok, why = mi.wdq_meaningful({"lo": 1.1, "hi": 1.4})
    assert not ok and "got worse" in why


# ---------------------------------------------------------------------------- one verdict


def _did(rr, lo, hi):
    return {"rate_ratio": rr, "lo": lo, "hi": hi, "change_pct": 100 * (rr - 1)}


PARALLEL = {"parallel": True, "change_pct_per_year": 2.0}
CALM = {"holds_no_change": True, "change_pct": 3.0}


def test_one_verdict_claims_a_change_only_when_every_method_agrees():
    scm_down = {"effect_pct": -35.0, "p_value": 0.05}
    assert mi.one_verdict(_did(0.6, 0.45, 0.8), scm_down, PARALLEL, CALM, 0.3)["verdict"] == "reduced"
    assert mi.one_verdict(_did(1.5, 1.2, 1.9), {"effect_pct": 30.0, "p_value": 0.2}, PARALLEL, CALM,
                          0.3)["verdict"] == "increased"
    # the synthetic control points the other way: methods disagree
    other = mi.one_verdict(_did(0.6, 0.45, 0.8), {"effect_pct": 5.0, "p_value": 0.6}, PARALLEL, CALM, 0.3)
    assert other["verdict"] == "inconclusive" and other["label"] == "Inconclusive (methods disagree)"
    # drift before the start, or a change at a false start: not claimed
    drift = mi.one_verdict(_did(0.6, 0.45, 0.8), scm_down, {"parallel": False, "change_pct_per_year": -30.0},
                           CALM, 0.3)
    assert drift["verdict"] == "inconclusive" and "drifting" in drift["reasons"][0]
    fake = mi.one_verdict(_did(0.6, 0.45, 0.8), scm_down, PARALLEL, {"holds_no_change": False, "change_pct": -25.0},
                          0.3)
    assert fake["verdict"] == "inconclusive" and "false start" in fake["reasons"][0]


def test_one_verdict_without_a_clear_did_is_no_detectable_change_or_disagreement():
    none = mi.one_verdict(_did(0.9, 0.7, 1.15), {"effect_pct": -8.0, "p_value": 0.5}, PARALLEL, CALM, 0.312)
    assert none["verdict"] == "no detectable change"
    assert none["label"] == "No detectable change (could have detected 31%)"
    # the 21 placebos: DiD "cannot tell", synthetic control "bigger than almost all"
    split = mi.one_verdict(_did(0.9, 0.7, 1.15), {"effect_pct": -30.0, "p_value": 0.05}, PARALLEL, CALM, 0.312)
    assert split["label"] == "Inconclusive (methods disagree)"
    assert mi.one_verdict(_did(0.9, 0.7, 1.15), None, PARALLEL, None, 0.312)["verdict"] == "no detectable change"


def test_in_time_placebo_splits_the_pre_period_in_half():
    A, _, C, _, _ = _constructed_panel()
    r = mi.in_time_placebo(A, C)
    assert r["fake_start_index"] == 6
    by_hand = (A[6:].sum() / C[6:].sum()) / (A[:6].sum() / C[:6].sum())
    assert r["rate_ratio"] == pytest.approx(by_hand, rel=1e-6)


def test_plan_looks_only_at_the_months_before_and_matches_the_evaluation_mde():
    units = grid_units(7)
    panel = _toy_panel(units, months=36, level=6.0)
    months = list(panel.columns)
    plan = mi.plan_intervention(panel, units, ["c00", "c01"], 12, complete_months=months, pre_months=18,
                                buffer_m=50.0, before="2017-07")
    assert plan["months_before"][0] == "2016-01" and plan["months_before"][-1] == "2017-06"
    later = panel.copy()
    later.loc[:, later.columns >= "2017-07-01"] *= 3  # what happens after cannot change the plan
    again = mi.plan_intervention(later, units, ["c00", "c01"], 12, complete_months=months, pre_months=18,
                                 buffer_m=50.0, before="2017-07")
    assert again["mde"] == plan["mde"] and again["power"] == plan["power"]
    ev = mi.evaluate_intervention(panel, units, ["c00", "c01"], "2017-07", end="2018-06", complete_months=months,
                                  pre_months=18, buffer_m=50.0, n_placebos=0)
    assert ev.estimates["minimum_detectable_effect"]["mde"] == pytest.approx(plan["mde"])
    assert plan["power"]["20%"] < plan["power"]["30%"] < plan["power"]["40%"]
    # at the MDE the power is the stated 80%: between the powers at the effects either side
    assert (plan["mde"] < 0.3) == (plan["power"]["30%"] > 0.8)


# ---------------------------------------------------------------------------- completeness of the comparison


def test_a_thin_month_of_the_comparison_is_left_out_and_stated():
    units = grid_units(7)
    panel = _toy_panel(units, months=36, level=8.0, seed=5)
    total = panel.sum(axis=0).to_numpy()
    # by hand: 50 of the borough's 450 a month, but 10 in 2016-04; share (35 x 50 + 10) / (36 x 450)
    comp = np.full(36, 50.0)
    comp[3] = 10.0
    flagged = mi.thin_months({"comparison": comp}, np.full(36, 450.0), panel.columns)
    assert [(t["month"], t["count"]) for t in flagged] == [("2016-04", 10.0)]
    assert flagged[0]["expected"] == pytest.approx(450 * 1760 / (36 * 450))
    assert mi.thin_months({"comparison": np.full(36, 50.0)}, np.full(36, 450.0), panel.columns) == []
    # in an evaluation: every unit that may be a comparison (not touching the area's ring) records a tenth of its
    # events in 2016-04, the area and the units near it do not
    near = set(mi.buffer_units(units, ["c00", "c01"], 50.0)) | {"c00", "c01"}
    far = mi.eligible_units(units, ["c00", "c01"], sorted(near - {"c00", "c01"}))
    panel.loc[far, pd.Timestamp("2016-04-01")] = np.floor(panel.loc[far, pd.Timestamp("2016-04-01")] / 10)
    ev = mi.evaluate_intervention(panel, units, ["c00", "c01"], "2017-07", complete_months=list(panel.columns),
                                  pre_months=18, buffer_m=50.0, n_placebos=0)
    assert total.sum() > 0 and [t["month"] for t in ev.estimates["months_thin"]] == ["2016-04"]
    assert "2016-04" not in ev.estimates["months_before"] and "2016-04" in ev.estimates["months_left_out"]
    assert any("thin month" in w and "2016-04 comparison" in w for w in ev.warnings)


@pytest.mark.realdata
def test_brunswick_park_april_2016_is_found_thin_on_real_data(real_store):
    store = Store(real_store)
    units = build_units(store, "lsoa2011")
    fb = FeatureBuilder(store, units)
    wards = store.units("ward2022")
    ward = wards[wards["name"] == "Brunswick Park"].geometry.iloc[0]
    ids = mi.units_in_polygon(units, ward)
    ev = mi.evaluate_intervention(fb.panel(), units, ids, "2017-07", complete_months=fb.complete_months,
                                  pre_months=18, n_placebos=0)
    thin = ev.estimates["months_thin"]
    assert [(t["month"], t["series"]) for t in thin] == [("2016-04", "area")]
    assert thin[0]["count"] < thin[0]["expected"] / 5  # police.uk lost most of the ward that month
    assert "2016-04" not in ev.estimates["months_before"]


def test_event_study_month_effects_are_ratios_against_the_reference_half():
    A, _, C, _, _ = _constructed_panel()
    A = np.r_[A, [4.0, 5.0]]
    C = np.r_[C, [10.0, 10.0]]
    post = np.arange(14) >= 8  # 8 months before: the first 4 are the reference
    es = mi.event_study(A, C, post)
    ref = A[:4].sum() / C[:4].sum()
    assert es.loc[:3, "rate_ratio"].isna().all()
    for m in range(4, 14):  # each later month: (A_m / C_m) / (A_ref / C_ref), by hand
        assert es.loc[m, "rate_ratio"] == pytest.approx((A[m] / C[m]) / ref, rel=1e-5)
        assert es.loc[m, "lo"] < es.loc[m, "rate_ratio"] < es.loc[m, "hi"]
    assert es["post"].tolist() == post.tolist()


# ---------------------------------------------------------------------------- staggered adoption


def _staggered_panel():
    """Six units over 6 months: u1, u2 start 2016-04, u3 starts 2016-05, u4-u6 never treated."""
    cols = pd.date_range("2016-01-01", periods=6, freq="MS")
    rows = {"u1": [4, 6, 5, 2, 3, 2], "u2": [6, 4, 7, 3, 4, 3], "u3": [5, 5, 6, 7, 3, 2],
            "u4": [5, 6, 4, 6, 5, 7], "u5": [3, 5, 4, 5, 4, 3], "u6": [6, 6, 5, 7, 6, 5]}
    return pd.DataFrame(rows, index=cols).T.astype(float)


def test_group_time_effects_match_a_hand_computation():
    panel = _staggered_panel()
    starts = {"u1": "2016-04", "u2": "2016-04", "u3": "2016-05"}
    gt = mi.group_time_att(panel, starts, ["u4", "u5", "u6"], complete_months=list(panel.columns), pre_months=2)
    cell = gt.set_index(["cohort", "month"])
    # cohort 2016-04, month 2016-04: base = Feb, Mar. Treated changes: u1 2 - 5.5, u2 3 - 5.5 -> mean -3.0.
    # Controls: never treated u4 6 - 5, u5 5 - 4.5, u6 7 - 5.5, and u3 (not yet treated) 7 - 5.5 -> mean 1.125
    assert cell.loc[("2016-04", "2016-04"), "att"] == pytest.approx(-3.0 - 1.125)
    assert cell.loc[("2016-04", "2016-04"), "n_controls"] == 4
    # month 2016-05: u3 is treated now, so only the never treated: (5 - 5 + 4 - 4.5 + 6 - 5.5) / 3 = 0
    assert cell.loc[("2016-04", "2016-05"), "att"] == pytest.approx((3 - 5.5 + 4 - 5.5) / 2 - 0.0)
    # cohort 2016-05, month 2016-05: base = Mar, Apr; u3 3 - 6.5; controls u4 5 - 5, u5 4 - 4.5, u6 6 - 6
    assert cell.loc[("2016-05", "2016-05"), "att"] == pytest.approx(-3.5 - (-0.5 / 3))
    never = mi.group_time_att(panel, starts, ["u4", "u5", "u6"], complete_months=list(panel.columns),
                              pre_months=2, control="never").set_index(["cohort", "month"])
    assert never.loc[("2016-04", "2016-04"), "att"] == pytest.approx(-3.0 - (1 + 0.5 + 1.5) / 3)
    # aggregation: weighted by cohort size (2 units, 2 units, 2 units, 1 unit, 1 unit)
    agg = mi.aggregate_att(gt)
    w = gt["n_units"].to_numpy(dtype=float)
    assert agg["overall"] == pytest.approx(np.sum(w * gt["att"]) / w.sum())
    e0 = gt[gt["event_time"] == 0]
    assert agg["by_event_time"][0] == pytest.approx(np.sum(e0["n_units"] * e0["att"]) / e0["n_units"].sum())


def test_staggered_did_recovers_a_planted_effect_with_a_bootstrap_interval():
    rng = np.random.default_rng(8)
    cols = pd.date_range("2016-01-01", periods=30, freq="MS")
    ids = [f"u{i}" for i in range(40)]
    panel = pd.DataFrame(rng.poisson(10.0, (40, 30)).astype(float), index=ids, columns=cols)
    starts = {u: ("2017-01" if i < 5 else "2017-07") for i, u in enumerate(ids[:10])}
    for u, s in starts.items():  # a 40% cut from each unit's start
        after = cols >= pd.Timestamp(f"{s}-01")
        panel.loc[u, after] = rng.poisson(6.0, after.sum())
    r = mi.staggered_did(panel, starts, ids[10:], complete_months=list(cols), n_boot=49)
    assert r["n_cohorts"] == 2
    assert r["interval"][0] < -4.0 < r["interval"][1] and r["interval"][1] < 0
    assert -55 < r["overall_pct"] < -25


def test_wdq_interval_holds_the_quotient_and_narrows_with_more_events():
    small = mi.wdq_interval(A_b=100, A_a=60, B_b=200, B_a=215, C_b=1000, C_a=1000)
    big = mi.wdq_interval(A_b=10000, A_a=6000, B_b=20000, B_a=21500, C_b=100000, C_a=100000)
    q = mi.wdq(100, 60, 200, 215, 1000, 1000)["wdq"]  # -0.375, the same for both by construction
    assert small[0] < q < small[1] and big[0] < q < big[1]
    assert big[1] - big[0] < (small[1] - small[0]) / 5
    wide = mi.wdq_interval(A_b=100, A_a=60, B_b=200, B_a=215, C_b=1000, C_a=1000, dispersion=4.0)
    assert wide[1] - wide[0] > small[1] - small[0]
