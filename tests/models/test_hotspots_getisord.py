import math
import warnings

import numpy as np
import pytest
from libpysal.graph import Graph
from libpysal.weights import W, lat2W
from scipy import stats

from models.hotspots import GI_CLASSES, GetisOrdGStar


def queen(rows, cols):
    return Graph.from_W(lat2W(rows, cols, rook=False))


def planted_9x9():
    y = np.ones(81)
    for r in (3, 4, 5):
        for c in (3, 4, 5):
            y[r * 9 + c] = 10.0
    return y


def esda_gi(y, graph, **kw):
    import esda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return esda.G_Local(y, graph, star=True, **kw)


def test_z_by_hand_binary_weights_3x3():
    # Corner unit 0 with queen neighbours 1, 3, 4 and itself: 4 binary weights.
    # y sums to 9 over 9 units: mean 1, S = sqrt(81/9 - 1) = sqrt(8).
    # z = (9 - 1*4) / (S * sqrt((9*4 - 16) / 8)) = 5 / sqrt(20).
    y = np.array([0, 0, 0, 0, 9, 0, 0, 0, 0])
    est = GetisOrdGStar(transform="B", permutations=99).fit(y, queen(3, 3))
    assert est.Zs_[0] == pytest.approx(5 / math.sqrt(20), abs=1e-12)
    # the centre's neighbourhood is the whole map: no variance, nothing to test
    assert np.isnan(est.Zs_[4]) and np.isnan(est.p_sim_[4]) and est.Gi_Bin_[4] == 0


@pytest.mark.parametrize("transform", ["R", "B"])
def test_z_equals_esda(transform):
    rng = np.random.default_rng(7)
    g = queen(12, 15)
    y = rng.poisson(2.5, 180)  # integer counts are cast to float
    ours = GetisOrdGStar(transform=transform, permutations=99).fit(y, g)
    ref = esda_gi(y.astype(float), g, transform=transform, permutations=0)
    np.testing.assert_allclose(ours.Zs_, ref.Zs, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.Gs_, ref.Gs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.EGs_, ref.EGs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.VGs_, ref.VGs, rtol=0, atol=1e-12)


def test_accepts_libpysal_W_like_graph():
    rng = np.random.default_rng(1)
    y = rng.poisson(3, 30).astype(float)
    w = lat2W(5, 6, rook=False)
    a = GetisOrdGStar(seed=3).fit(y, w)
    b = GetisOrdGStar(seed=3).fit(y, Graph.from_W(w))
    np.testing.assert_array_equal(a.Zs_, b.Zs_)
    np.testing.assert_array_equal(a.p_sim_, b.p_sim_)


def test_permutation_p_exact_small_case():
    # Unit 0's only neighbour is unit 4 (value 10). Conditional randomisation draws
    # that neighbour from units 1..4 = {1, 2, 3, 10}: only 10 reaches the observed
    # G, so P(sim >= obs) = 1/4 and the directed p-value is ~0.25.
    w = W({0: [4], 1: [2], 2: [1, 3], 3: [2], 4: [0]}, silence_warnings=True)
    y = [0.0, 1.0, 2.0, 3.0, 10.0]
    est = GetisOrdGStar(permutations=9999, seed=11, fdr=False).fit(y, w)
    assert abs(est.p_sim_[0] - 0.25) < 0.02  # sd of the estimate ~0.0043


def test_seeded_and_reproducible():
    y = planted_9x9()
    a = GetisOrdGStar(seed=5).fit(y, queen(9, 9))
    b = GetisOrdGStar(seed=5).fit(y, queen(9, 9))
    c = GetisOrdGStar(seed=6).fit(y, queen(9, 9))
    np.testing.assert_array_equal(a.p_sim_, b.p_sim_)
    assert not np.array_equal(a.p_sim_, c.p_sim_)


def test_planted_hotspot_is_99_percent_hot():
    y = planted_9x9()
    # 9999 permutations: with FDR over 81 units 999 cannot reach q <= 0.01
    est = GetisOrdGStar(permutations=9999, seed=0).fit(y, queen(9, 9))
    centre = 4 * 9 + 4
    assert est.gi_class_[centre] == "Hot Spot - 99% Confidence"
    assert est.Gi_Bin_[centre] == 3
    # far corners are not hot
    assert est.Gi_Bin_[0] <= 0 and est.Gi_Bin_[80] <= 0


def test_bins_follow_documented_rule():
    rng = np.random.default_rng(2)
    y = rng.poisson(2, 400).astype(float)
    y[:40] += 6  # a band of high values along the first rows
    for fdr in (True, False):
        est = GetisOrdGStar(seed=1, fdr=fdr, alpha=0.10).fit(y, queen(20, 20))
        s = est.q_value_ if fdr else est.p_value_
        expect = np.where(s <= 0.01, 3, np.where(s <= 0.05, 2, np.where(s <= 0.10, 1, 0)))
        np.testing.assert_array_equal(est.Gi_Bin_, np.sign(est.Zs_).astype(int) * expect)
        assert (est.Gi_Bin_ > 0).any()
        assert set(est.gi_class_) <= set(GI_CLASSES.values())
        for b, label in zip(est.Gi_Bin_, est.gi_class_, strict=True):
            assert GI_CLASSES[b] == label


def test_fdr_only_survivors_get_a_bin():
    rng = np.random.default_rng(4)
    y = rng.poisson(2, 400).astype(float)
    y[:30] += 4
    raw = GetisOrdGStar(seed=1, fdr=False).fit(y, queen(20, 20))
    adj = GetisOrdGStar(seed=1, fdr=True).fit(y, queen(20, 20))
    assert (adj.Gi_Bin_ != 0).sum() <= (raw.Gi_Bin_ != 0).sum()
    assert np.all(adj.q_value_[adj.Gi_Bin_ != 0] <= 0.05)


def test_constant_y_is_a_clear_error():
    with pytest.raises(ValueError, match="constant"):
        GetisOrdGStar().fit(np.full(9, 2.0), queen(3, 3))


def test_negative_and_nan_values_named():
    y = np.ones(9)
    y[2] = -1
    with pytest.raises(ValueError, match=r"y\[2\]"):
        GetisOrdGStar().fit(y, queen(3, 3))
    y[2] = np.nan
    with pytest.raises(ValueError, match=r"y\[2\]"):
        GetisOrdGStar().fit(y, queen(3, 3))


def test_length_mismatch():
    with pytest.raises(ValueError, match="10"):
        GetisOrdGStar().fit(np.arange(10.0), queen(3, 3))


def test_island_is_reported_not_tested():
    w = W({0: [1], 1: [0, 2], 2: [1, 3], 3: [2], 4: []}, silence_warnings=True)
    y = [1.0, 5.0, 6.0, 2.0, 9.0]
    with pytest.warns(UserWarning, match="no neighbours"):
        est = GetisOrdGStar(permutations=99).fit(y, w)
    assert est.islands_.tolist() == [4]
    assert np.isnan(est.p_sim_[4]) and est.Gi_Bin_[4] == 0
    assert est.gi_class_[4] == "Not Significant"
    assert np.isfinite(est.p_sim_[:4]).all()


@pytest.mark.slow
def test_p_values_consistent_with_esda():
    # esda's numba path compiles for ~30-60 s on first use.
    rng = np.random.default_rng(8)
    g = queen(15, 20)
    # continuous values: with heavily tied counts esda's float comparisons break ties
    # arbitrarily, so calls near 0.05 differ for reasons other than sampling noise
    y = rng.lognormal(1.0, 0.6, 300)
    y[:25] += 3
    ours = GetisOrdGStar(permutations=999, seed=1).fit(y, g)
    ref = esda_gi(y, g, permutations=999, seed=1)
    same_call = np.mean((ours.p_sim_ <= 0.05) == (ref.p_sim <= 0.05))
    assert same_call > 0.95
    # each pair of estimates within 5 binomial sd of each other (two independent runs)
    p = (ours.p_sim_ + ref.p_sim) / 2
    sd = np.sqrt(2 * p * (1 - p) / 999) + 1 / 1000
    assert np.mean(np.abs(ours.p_sim_ - ref.p_sim) <= 5 * sd) > 0.99


def test_normal_inference_by_hand_without_permutations():
    # 3x3 block of tens among 72 ones on a 9x9 queen lattice: mean 2, S = sqrt(12 - 4) = sqrt(8).
    # The centre's neighbourhood (binary, itself included) is the block: sum 90 over 9 weights,
    # z = (90 - 2 * 9) / (sqrt(8) * sqrt((81 * 9 - 81) / 80)) = 72 / sqrt(64.8) = 8.94.
    y = planted_9x9()
    est = GetisOrdGStar(permutations=0).fit(y, queen(9, 9))
    assert est.Zs_[40] == pytest.approx(72 / math.sqrt(64.8), abs=1e-12)
    np.testing.assert_allclose(est.p_value_, np.minimum(1, 2 * stats.norm.sf(np.abs(est.Zs_))), atol=1e-15)
    assert np.isnan(est.p_sim_).all()  # no permutations were run
    assert est.Gi_Bin_[40] == 3 and est.n_neighbours_[40] == 8 and est.n_neighbours_[0] == 3
    # esda's row-standardised z divides by a binary-weights variance: 2.83 instead of 8.94
    rs = GetisOrdGStar(permutations=0, transform="R").fit(y, queen(9, 9))
    assert rs.Zs_[40] == pytest.approx(2 * math.sqrt(2), abs=1e-12)


def test_inference_choice_is_checked():
    y = planted_9x9()
    with pytest.raises(ValueError, match="permutations must be >= 99"):
        GetisOrdGStar(permutations=0, inference="permutation").fit(y, queen(9, 9))
    with pytest.raises(ValueError, match="inference must be one of"):
        GetisOrdGStar(inference="exact").fit(y, queen(9, 9))
    perm = GetisOrdGStar(permutations=999, seed=2, inference="permutation").fit(y, queen(9, 9))
    np.testing.assert_array_equal(perm.p_value_, np.minimum(1.0, 2 * perm.p_sim_))


def test_island_has_no_normal_p_value():
    w = W({0: [1], 1: [0, 2], 2: [1, 3], 3: [2], 4: []}, silence_warnings=True)
    with pytest.warns(UserWarning, match="no neighbours"):
        est = GetisOrdGStar(permutations=0).fit([1.0, 5.0, 6.0, 2.0, 9.0], w)
    assert np.isnan(est.p_value_[4]) and np.isfinite(est.Zs_[4]) and np.isnan(est.q_value_[4])
