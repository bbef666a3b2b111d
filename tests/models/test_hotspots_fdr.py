import numpy as np
import pytest

from models.hotspots.fdr import benjamini_hochberg


def test_hand_worked_example():
    # m = 6; sorted p with m*p/rank: 0.002->0.012, 0.010->0.030, 0.030->0.060,
    # 0.040->0.060, 0.045->0.054, 0.300->0.300; step-up minima from the right give
    # q = 0.012, 0.030, 0.054, 0.054, 0.054, 0.300. At alpha 0.05 only the first two
    # survive, although 0.030, 0.040 and 0.045 are below 0.05 on their own.
    p = [0.010, 0.040, 0.030, 0.002, 0.300, 0.045]
    reject, q = benjamini_hochberg(p, alpha=0.05)
    assert reject.tolist() == [True, False, False, True, False, False]
    np.testing.assert_allclose(q, [0.030, 0.054, 0.054, 0.012, 0.300, 0.054])


def test_nan_means_not_tested_and_is_not_counted():
    reject, q = benjamini_hochberg([0.01, np.nan, 0.04], alpha=0.05)
    # m = 2: q = [min(0.02, 0.04), nan, 0.04]
    np.testing.assert_allclose(q, [0.02, np.nan, 0.04])
    assert reject.tolist() == [True, False, True]


def test_q_capped_at_one():
    _, q = benjamini_hochberg([0.9, 0.95], alpha=0.05)
    assert q.max() == 1.0 or np.all(q <= 1.0)
    np.testing.assert_allclose(q, [0.95, 0.95])


@pytest.mark.parametrize("p", [[0.5, 1.2], [-0.1, 0.2]])
def test_out_of_range_p_names_the_value(p):
    with pytest.raises(ValueError, match=r"p\[\d\]"):
        benjamini_hochberg(p)


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        benjamini_hochberg([0.1], alpha=1.5)
