import math

import numpy as np
import pytest
from libpysal.graph import Graph
from libpysal.weights import lat2W
from scipy import stats

from models.hotspots import EmergingHotSpots, mann_kendall
from models.hotspots.emerging import PATTERNS, classify_pattern, space_time_weights

H, C, N = 3, -3, 0  # hot, cold, neither


@pytest.mark.parametrize(
    ("bins", "trend", "expected"),
    [
        # hot in >= 90% of 10 periods including the last
        ([H] * 10, +1, "Intensifying Hot Spot"),
        ([H] * 10, 0, "Persistent Hot Spot"),
        ([N] + [H] * 9, 0, "Persistent Hot Spot"),  # 9/10 = 90%
        ([H] * 10, -1, "Diminishing Hot Spot"),
        # hot in the last period only
        ([N] * 9 + [H], 0, "New Hot Spot"),
        # one final run of >= 2, never hot before
        ([N] * 7 + [H] * 3, 0, "Consecutive Hot Spot"),
        # final run but hot earlier too: on-and-off
        ([H, N, N, N, N, N, N, N, H, H], 0, "Sporadic Hot Spot"),
        ([N, H, N, H, N, N, N, N, N, H], 0, "Sporadic Hot Spot"),
        # hot now, cold before
        ([C, N, N, N, N, N, N, N, N, H], 0, "Oscillating Hot Spot"),
        ([C, C, N, N, N, N, N, H, H, H], 0, "Oscillating Hot Spot"),
        # mostly hot but not in the last period
        ([H] * 9 + [N], 0, "Historical Hot Spot"),
        # cold counterparts (a falling z trend intensifies a cold spot)
        ([C] * 10, -1, "Intensifying Cold Spot"),
        ([C] * 10, 0, "Persistent Cold Spot"),
        ([C] * 10, +1, "Diminishing Cold Spot"),
        ([N] * 9 + [C], 0, "New Cold Spot"),
        ([N] * 8 + [C] * 2, 0, "Consecutive Cold Spot"),
        ([C, N, N, C, N, N, N, N, N, C], 0, "Sporadic Cold Spot"),
        ([H, N, N, N, N, N, N, N, N, C], 0, "Oscillating Cold Spot"),
        ([C] * 9 + [N], 0, "Historical Cold Spot"),
        # nothing
        ([N] * 10, 0, "No Pattern Detected"),
        ([H, H, N, N, N, N, N, N, N, N], 0, "No Pattern Detected"),
    ],
)
def test_each_category_on_a_constructed_series(bins, trend, expected):
    assert classify_pattern(bins, trend) == expected
    assert expected in PATTERNS


def test_mann_kendall_by_hand():
    # [1, 2, 3, 4]: S = 6, Var = 4*3*13/18 = 26/3, Z = (6 - 1)/sqrt(26/3)
    S, z, p = mann_kendall([1, 2, 3, 4])
    assert S == 6
    assert z == pytest.approx(5 / math.sqrt(26 / 3))
    assert p == pytest.approx(2 * stats.norm.sf(5 / math.sqrt(26 / 3)))


def test_mann_kendall_ties_correction():
    # [1, 1, 2, 3]: pairs (1,1) tie -> S = 5; ties: one group of 2 -> Var = (4*3*13 - 2*1*9)/18 = 138/18
    S, z, _ = mann_kendall([1, 1, 2, 3])
    assert S == 5
    assert z == pytest.approx(4 / math.sqrt(138 / 18))
    S, z, p = mann_kendall([2, 2, 2, 2])
    assert S == 0 and math.isnan(z) and math.isnan(p)


def test_space_time_neighbourhood_counts():
    # 1 x 3 line of units (0-1-2), 3 periods, time_window 1:
    # bin (1, t=2) sees units 0 and 2 at t=2, and units 0, 1, 2 at t=1 -> 5 neighbours.
    g = Graph.from_W(lat2W(1, 3))
    st = space_time_weights(g, 3, 3, time_window=1)
    assert st.shape == (9, 9)
    row = st.getrow(2 * 3 + 1).indices.tolist()
    assert sorted(row) == [3, 4, 5, 6, 8]
    assert st.getrow(0 * 3 + 1).indices.tolist() == [0, 2]  # first period: no past
    assert st[0, 3] == 0  # never a later period


def planted(T, fill):
    g = Graph.from_W(lat2W(7, 7, rook=False))
    Y = np.random.default_rng(1).poisson(3, (49, T)).astype(float)
    block = [r * 7 + c for r in (2, 3, 4) for c in (2, 3, 4)]
    fill(Y, block)
    return Y, g


def test_new_hot_spot_end_to_end():
    def fill(Y, b):
        Y[b, -1] = 15

    Y, g = planted(10, fill)
    est = EmergingHotSpots(permutations=9999, seed=0).fit(Y, g)
    assert est.pattern_[24] == "New Hot Spot"
    assert est.Gi_Bin_[24, -1] > 0 and (est.Gi_Bin_[24, :-1] == 0).all()


def test_persistent_and_diminishing_end_to_end():
    def steady(Y, b):
        Y[b, :] = 12

    def fading(Y, b):
        for t in range(Y.shape[1]):
            Y[b, t] = 30 - 2 * t

    Y, g = planted(10, steady)
    assert EmergingHotSpots(seed=0).fit(Y, g).pattern_[24] == "Persistent Hot Spot"
    Y, g = planted(10, fading)
    est = EmergingHotSpots(seed=0).fit(Y, g)
    assert est.trend_[24] == -1
    assert est.pattern_[24] == "Diminishing Hot Spot"


def test_historical_end_to_end():
    def fill(Y, b):
        Y[b, :-2] = 12  # the last period still sees the previous one (time_window 1)

    Y, g = planted(20, fill)
    est = EmergingHotSpots(permutations=9999, seed=0).fit(Y, g)
    assert est.pattern_[24] == "Historical Hot Spot"


def test_input_checks():
    g = Graph.from_W(lat2W(2, 2))
    with pytest.raises(ValueError, match="periods"):
        EmergingHotSpots().fit(np.ones((4, 3)), g)
    with pytest.raises(ValueError, match="units x periods"):
        EmergingHotSpots().fit(np.ones(4), g)
    with pytest.raises(ValueError, match="time_window"):
        EmergingHotSpots(time_window=12).fit(np.arange(40.0).reshape(4, 10), g)


def test_both_inferences_find_the_new_hot_spot():
    def fill(Y, b):
        Y[b, -1] = 15

    Y, g = planted(10, fill)
    normal = EmergingHotSpots(permutations=0).fit(Y, g)
    perm = EmergingHotSpots(permutations=9999, seed=0, inference="permutation").fit(Y, g)
    assert normal.pattern_[24] == perm.pattern_[24] == "New Hot Spot"
    assert np.isnan(normal.p_sim_).all() and np.isfinite(perm.p_sim_).any()
    with pytest.raises(ValueError, match="permutations must be >= 99"):
        EmergingHotSpots(permutations=0, inference="permutation").fit(Y, g)
