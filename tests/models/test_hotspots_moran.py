import warnings

import numpy as np
import pytest
from libpysal.graph import Graph
from libpysal.weights import lat2W

from models.hotspots import LocalMoran, LocalMoranRate, assuncao_reis_rates


def queen(rows, cols):
    return Graph.from_W(lat2W(rows, cols, rook=False))


def esda_quiet(cls, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(*args, **kw)


def test_is_and_quadrants_equal_esda():
    import esda

    rng = np.random.default_rng(5)
    g = queen(10, 12)
    y = rng.poisson(3, 120)
    ours = LocalMoran(permutations=99).fit(y, g)
    ref = esda_quiet(esda.Moran_Local, y.astype(float), g, permutations=0)
    np.testing.assert_allclose(ours.Is_, ref.Is, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.q_, ref.q)


def test_rate_version_equals_esda():
    import esda

    rng = np.random.default_rng(6)
    g = queen(10, 12)
    events = rng.poisson(4, 120)
    pop = rng.integers(200, 3000, 120)
    ours = LocalMoranRate(permutations=99).fit(events, g, pop)
    ref = esda_quiet(esda.Moran_Local_Rate, events, pop, g, permutations=0)
    np.testing.assert_allclose(ours.Is_, ref.Is, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.q_, ref.q)
    same = LocalMoran(permutations=99).fit(events, g, population=pop)
    np.testing.assert_array_equal(same.Is_, ours.Is_)


def test_assuncao_reis_matches_esda_docstring_values():
    e = np.array([30, 25, 25, 15, 33, 21, 30, 20])
    b = np.array([100, 100, 110, 90, 100, 90, 110, 90])
    np.testing.assert_allclose(
        assuncao_reis_rates(e, b)[:4],
        [1.03843594, -0.04099089, -0.56250375, -1.73061861],
        atol=1e-8,
    )


def test_planted_high_high_cluster():
    # 9x9 of ones with a 3x3 block of tens: the block centre is High-High, a far
    # corner is low among low neighbours (quadrant 3).
    y = np.ones(81)
    block = [r * 9 + c for r in (3, 4, 5) for c in (3, 4, 5)]
    y[block] = 10.0
    est = LocalMoran(permutations=9999, seed=0).fit(y, queen(9, 9))
    centre = 40
    assert est.q_[centre] == 1 and est.labels_[centre] == "High-High"
    assert est.q_[0] == 3  # corner: low value, low neighbours
    assert set(est.labels_) <= {"High-High", "Low-Low", "High-Low", "Low-High", "Not Significant"}
    # labels only where significant after FDR
    assert np.all(est.q_value_[est.labels_ != "Not Significant"] <= 0.05)


def test_population_checks():
    g = queen(3, 3)
    with pytest.raises(ValueError, match=r"population\[2\]"):
        LocalMoranRate().fit(np.arange(9.0), g, [1, 1, 0, 1, 1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="population"):
        LocalMoranRate().fit(np.arange(9.0), g)


def test_constant_y_error():
    with pytest.raises(ValueError, match="constant"):
        LocalMoran().fit(np.zeros(9), queen(3, 3))


@pytest.mark.slow
def test_p_values_consistent_with_esda():
    import esda

    rng = np.random.default_rng(9)
    g = queen(15, 20)
    # continuous values: with heavily tied counts esda's float comparisons break ties
    # arbitrarily, so calls near 0.05 differ for reasons other than sampling noise
    y = rng.lognormal(1.0, 0.6, 300)
    y[:25] += 3
    ours = LocalMoran(permutations=999, seed=2).fit(y, g)
    ref = esda_quiet(esda.Moran_Local, y, g, permutations=999, seed=2)
    assert np.mean((ours.p_sim_ <= 0.05) == (ref.p_sim <= 0.05)) > 0.95
    p = (ours.p_sim_ + ref.p_sim) / 2
    sd = np.sqrt(2 * p * (1 - p) / 999) + 1 / 1000
    assert np.mean(np.abs(ours.p_sim_ - ref.p_sim) <= 5 * sd) > 0.99


def test_analytical_moments_equal_esda_and_drive_normal_inference():
    import esda
    from scipy import stats

    rng = np.random.default_rng(11)
    g = queen(10, 12)
    y = rng.poisson(3, 120).astype(float)
    ours = LocalMoran(permutations=0).fit(y, g)
    ref = esda_quiet(esda.Moran_Local, y, g, permutations=0)
    np.testing.assert_allclose(ours.EI_, ref.EI, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.VI_, ref.VI, rtol=0, atol=1e-12)
    z = (ref.Is - ref.EI) / np.sqrt(ref.VI)
    np.testing.assert_allclose(ours.z_I_, z, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.p_value_, 2 * stats.norm.sf(np.abs(z)), rtol=0, atol=1e-12)
    assert np.isnan(ours.p_sim_).all()
    perm = LocalMoran(permutations=999, seed=1, inference="permutation").fit(y, g)
    np.testing.assert_array_equal(perm.p_value_, np.minimum(1.0, 2 * perm.p_sim_))
