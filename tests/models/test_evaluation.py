"""Hit rate, PAI, PEI* and RRI against hand-worked examples (with ties)."""

import itertools

import numpy as np
import pandas as pd
import pytest

from models.evaluation import (
    best_possible,
    calibration_table,
    evaluate_ranking,
    rank_order,
    top_slice,
)

IDS = list("ABCDEF")
# Six equal cells of 100 m² (A = 600). B and C tie on score: C had more events
# last period, so C comes first; D and E tie on score and on last period, so the
# unit_id decides (D before E).
SCORES = pd.Series([5, 4, 4, 1, 1, 0], index=IDS, dtype=float)
PREVIOUS = pd.Series([2, 0, 3, 1, 1, 0], index=IDS, dtype=float)  # N1 = 7
ACTUAL = pd.Series([2, 3, 1, 0, 4, 0], index=IDS, dtype=float)  # N = 10
AREAS = pd.Series(100.0, index=IDS)


def test_tie_rule_previous_count_then_unit_id():
    assert list(rank_order(SCORES, PREVIOUS)) == ["A", "C", "B", "D", "E", "F"]
    # without the previous period, only the unit_id breaks ties
    assert list(rank_order(SCORES)) == ["A", "B", "C", "D", "E", "F"]


def test_hand_worked_slices():
    table = evaluate_ranking(
        SCORES, AREAS, ACTUAL, previous=PREVIOUS, coverages=(1 / 3, 0.5), top_n=(4,)
    ).set_index("slice")
    third = table.loc["33.3333% area"]
    # slice {A, C}: n = 2 + 1 = 3 of N = 10 on 200 of 600 m²
    assert third["n_units"] == 2
    assert third["hit_rate"] == pytest.approx(0.3)
    assert third["pai"] == pytest.approx(0.3 / (1 / 3))  # 0.9
    # best two cells in hindsight: E (4) + B (3) = 7
    assert third["n_star"] == 7
    assert third["pei"] == pytest.approx(3 / 7)
    # RRI: (n2 / n1) / (N2 / N1) = (3 / 5) / (10 / 7)
    assert third["rri"] == pytest.approx((3 / 5) / (10 / 7))

    half = table.loc["50% area"]  # {A, C, B}: 6 events, best 4 + 3 + 2 = 9
    assert (half["hit_rate"], half["pai"], half["pei"]) == pytest.approx((0.6, 1.2, 6 / 9))

    top4 = table.loc["top 4"]  # {A, C, B, D}: 6 of 10 on 4/6 of the area, best 4 = 10
    assert (top4["hit_rate"], top4["pai"], top4["pei"]) == pytest.approx((0.6, 0.9, 0.6))


def test_harm_weighted_measures():
    harm = ACTUAL * pd.Series([150, 290, 150, 150, 150, 150], index=IDS)  # B's events are robberies
    table = evaluate_ranking(
        SCORES, AREAS, ACTUAL, harm=harm, coverages=(0.5,), top_n=()
    ).iloc[0]
    # slice {A, B, C} without tie-break data: harm 300 + 870 + 150 = 1320 of 1920
    assert table["harm_hit_rate"] == pytest.approx(1320 / 1920)
    # best three by harm: B 870, E 600, A 300 = 1770
    assert table["harm_pei"] == pytest.approx(1320 / 1770)
    assert np.isnan(table["harm_rri"])  # no harm_previous given


def test_area_slice_stops_at_first_unit_that_does_not_fit():
    areas = pd.Series([50.0, 400.0, 50.0, 100.0, 100.0, 100.0], index=IDS)  # A = 800
    # budget 10% = 80: A (50) fits, C... no: order A, C, B; C (50) would make 100 > 80
    assert list(top_slice(SCORES, areas, coverage=0.10, previous=PREVIOUS)) == ["A"]
    # budget 1% = 8: not even A fits; the slice is A alone
    assert list(top_slice(SCORES, areas, coverage=0.01, previous=PREVIOUS)) == ["A"]


def test_knapsack_beats_greedy_on_unequal_areas():
    ids = ["p", "q", "r", "s"]
    actual = pd.Series([9.0, 7.0, 5.0, 5.0], index=ids)
    areas = pd.Series([10.0, 6.0, 5.0, 5.0], index=ids)
    # by density q (7/6) first then nothing fits the remaining 4; p alone gives 9;
    # the optimum is r + s = 10
    assert best_possible(actual, areas, 10.0) == 10.0


def _brute_force(actual, areas, budget):
    """The best catch over every subset of units (2^n of them, as a 0/1 matrix)."""
    pick = np.array(list(itertools.product([0.0, 1.0], repeat=len(actual))))
    fits = pick @ areas.to_numpy() <= budget * (1 + 1e-9)
    return float((pick[fits] @ actual.to_numpy()).max())


def test_exact_n_star_on_a_hand_made_grid_with_a_clipped_cell():
    # a 3 x 3 grid of 100 m² cells plus one edge cell clipped to 40 m² (A = 940 m²)
    ids = [f"c{i}" for i in range(9)] + ["edge"]
    areas = pd.Series([100.0] * 9 + [40.0], index=ids)
    actual = pd.Series([5, 4, 3, 3, 2, 1, 0, 0, 0, 3], index=ids, dtype=float)
    # 30% = 282 m²: three full cells (300) do not fit; two full + the edge cell (240) do: 5 + 4 + 3
    assert best_possible(actual, areas, 0.30 * 940) == 12.0
    # 25% = 235 m²: two full (200) fit, two full + edge (240) do not: 5 + 4 beats 5 + 3
    assert best_possible(actual, areas, 0.25 * 940) == 9.0
    # on a grid of equal cells n* is the k largest counts, k = floor(budget / cell area)
    full = actual.iloc[:9]
    assert best_possible(full, areas.iloc[:9], 0.30 * 900) == 5 + 4
    assert best_possible(full, areas.iloc[:9], 0.34 * 900) == 5 + 4 + 3


def test_exact_n_star_where_area_rounding_lost_a_cell():
    # 69 full 62,500 m² cells fit 5% of this area exactly; rounding each cell up to 29 of
    # 2,000 steps (28.98) used to fit only 68 of them
    areas = pd.Series([62_500.0] * 1380 + [6_250.0], index=[f"c{i}" for i in range(1381)])
    actual = pd.Series(1.0, index=areas.index)
    budget = 69 * 62_500.0 + 1.0
    assert best_possible(actual, areas, budget) == 69.0


def test_exact_n_star_matches_brute_force_on_unequal_units():
    rng = np.random.default_rng(4)
    for _ in range(20):
        ids = [f"u{i}" for i in range(9)]
        areas = pd.Series(rng.uniform(1, 10, 9), index=ids)
        counts = pd.Series(rng.poisson(3, 9).astype(float), index=ids)
        harm = counts * rng.choice([150.0, 290.0, 0.5], 9)  # harm values need not be whole numbers
        budget = float(rng.uniform(5, 25))
        assert best_possible(counts, areas, budget) == _brute_force(counts, areas, budget)
        assert best_possible(harm, areas, budget) == pytest.approx(_brute_force(harm, areas, budget))


def test_n_star_is_taken_at_the_nominal_budget_on_unequal_units():
    # budget 10% of 1000 = 100 m²; every ranking's slice stops short of it, by different amounts
    ids = list("PQRST")
    areas = pd.Series([60.0, 30.0, 50.0, 45.0, 815.0], index=ids)
    actual = pd.Series([6.0, 3.0, 5.0, 4.0, 2.0], index=ids)
    one = pd.Series([9.0, 1.0, 8.0, 2.0, 0.0], index=ids)   # by density P (0.15), R (0.16)? R first: R, P
    two = pd.Series([1.0, 9.0, 2.0, 8.0, 0.0], index=ids)   # Q (0.3), T... S (0.18): Q + S = 75 m²
    a = evaluate_ranking(one, areas, actual, coverages=(0.10,), top_n=()).iloc[0]
    b = evaluate_ranking(two, areas, actual, coverages=(0.10,), top_n=()).iloc[0]
    # R (50) then P would make 110 > 100: the slice is R alone, 5% of the area, 5 events
    assert (a["n_units"], a["area_share"], a["n"]) == (1, 0.05, 5.0)
    # Q + S = 75 m², 7 events
    assert (b["n_units"], b["area_share"], b["n"]) == (2, 0.075, 7.0)
    # one denominator for both: the best within the nominal 100 m² is R + S (95 m²) = 9 events
    assert a["n_star"] == b["n_star"] == 9.0
    assert (a["pei"], b["pei"]) == pytest.approx((5 / 9, 7 / 9))


def test_a_slice_whose_one_unit_overflows_the_budget_is_its_own_benchmark():
    areas = pd.Series([500.0, 100.0, 400.0], index=list("xyz"))
    actual = pd.Series([10.0, 1.0, 0.0], index=list("xyz"))
    row = evaluate_ranking(pd.Series([10.0, 1.0, 0.0], index=list("xyz")), areas, actual,
                           coverages=(0.01,), top_n=()).iloc[0]
    # 1% = 10 m²: no unit fits; the slice is the top unit x alone (500 m²), n* at its area
    assert (row["n_units"], row["n"], row["n_star"], row["pei"]) == (1, 10.0, 10.0, 1.0)


def test_validation_names_the_unit():
    with pytest.raises(ValueError, match="unit_id 'F'"):
        evaluate_ranking(SCORES, AREAS, ACTUAL.drop("F"))
    with pytest.raises(ValueError, match="exactly one"):
        top_slice(SCORES, AREAS)


def test_calibration_table_groups_by_forecast():
    table = calibration_table(pd.Series([1.0, 2, 3, 4], index=list("abcd")),
                              pd.Series([0.0, 2, 3, 8], index=list("abcd")), bins=2)
    assert table["expected"].tolist() == [3.0, 7.0]
    assert table["observed"].tolist() == [2.0, 11.0]
    # exact Poisson interval of the ratio: 2 observed -> [0.242, 7.225] / 3
    assert table.loc[0, "ratio_lo"] == pytest.approx(0.2422 / 3, abs=1e-4)
    assert table.loc[0, "ratio_hi"] == pytest.approx(7.2247 / 3, abs=1e-4)
    assert (table["ratio_lo"] <= table["ratio"]).all() and (table["ratio"] <= table["ratio_hi"]).all()


def test_area_slice_orders_by_score_per_area():
    # B has the higher count forecast but spreads it over 8x the area of C
    scores = pd.Series({"A": 10.0, "B": 8.0, "C": 3.0, "D": 1.0})
    areas = pd.Series({"A": 100.0, "B": 800.0, "C": 100.0, "D": 1000.0})  # A = 2000
    # budget 10% = 200: by density A (0.1), C (0.03) fill it; B (0.01) would not fit anyway
    assert list(top_slice(scores, areas, coverage=0.10)) == ["A", "C"]
    # a top-N slice ranks by the score itself
    assert list(top_slice(scores, areas, n_places=2)) == ["A", "B"]
    actual = pd.Series({"A": 5.0, "B": 6.0, "C": 2.0, "D": 1.0})
    row = evaluate_ranking(scores, areas, actual, coverages=(0.10,), top_n=()).iloc[0]
    # n = 7 of 14 on 10% of the area: PAI 5; best in 200 m² is A + C = 7: PEI* 1
    assert (row["hit_rate"], row["pai"], row["pei"]) == pytest.approx((0.5, 5.0, 1.0))
