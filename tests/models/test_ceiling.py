"""The long-run-rate oracle's expected PEI* on constructed places whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from models.ceiling import long_run_rates, oracle_ceiling, overdispersion, window_sums

MONTHS = pd.date_range("2016-01-01", periods=24, freq="MS")


def panel_from(rates, months=MONTHS, alpha=0.0, seed=0, month_factor=None):
    """Units x months counts drawn around ``rates`` (negative binomial when alpha > 0)."""
    rng = np.random.default_rng(seed)
    mu = np.repeat(np.asarray(rates, dtype=float)[:, None], len(months), axis=1)
    if month_factor is not None:
        mu = mu * np.asarray(month_factor, dtype=float)[None, :]
    if alpha > 0:
        mu = mu * rng.gamma(1 / alpha, alpha, size=mu.shape)
    return pd.DataFrame(rng.poisson(mu).astype(float), index=[f"u{i}" for i in range(len(rates))], columns=months)


def test_rates_shrink_raw_means_toward_the_mean_by_their_poisson_noise():
    # two units, two months: raw means 5 and 0; m = 2.5, s2 = 6.25, v = 6.25 - 2.5/2 = 5, w = 0.8
    panel = pd.DataFrame([[4.0, 6.0], [0.0, 0.0]], index=["a", "b"], columns=MONTHS[:2])
    rates, info = long_run_rates(panel)
    assert info["weight"] == pytest.approx(0.8)
    assert rates.tolist() == pytest.approx([4.5, 0.5])
    # no more spread than Poisson noise: every unit gets the mean
    flat, info = long_run_rates(pd.DataFrame([[1.0, 1.0], [1.0, 1.0]], index=["a", "b"], columns=MONTHS[:2]))
    assert info["weight"] == 0.0 and flat.tolist() == [1.0, 1.0]


def test_window_sums_skip_windows_with_a_missing_month():
    panel = pd.DataFrame([[1.0] * 7], index=["a"], columns=MONTHS[[0, 1, 2, 4, 5, 6, 7]])  # month 3 absent
    sums = window_sums(panel, 2)
    # windows 0-1 and 4-5, 6-7; 2-3 holds the missing month
    assert list(sums.columns) == [MONTHS[0], MONTHS[4], MONTHS[6]] and sums.iloc[0].tolist() == [2.0] * 3


def test_overdispersion_is_near_zero_for_poisson_and_recovers_alpha():
    rates = np.r_[np.full(100, 6.0), np.full(100, 2.0)]
    assert overdispersion(panel_from(rates, seed=1)) == pytest.approx(0.0, abs=0.02)
    assert overdispersion(panel_from(rates, alpha=0.3, seed=2)) == pytest.approx(0.3, abs=0.06)
    # a borough-wide busy month moves every place together: not noise between places
    busy = panel_from(rates, seed=1, month_factor=np.where(np.arange(24) % 2 == 0, 1.0, 2.0))
    assert overdispersion(busy) == pytest.approx(0.0, abs=0.02)


def test_ceiling_is_near_perfect_when_all_events_are_in_the_known_hot_places():
    # 10 hot places of 100 equal cells hold every event: knowing the rates is perfect hindsight at 10%,
    # but for the tiny rate the shrinkage gives places never seen with an event (0.005 a month each)
    rates = np.r_[np.full(10, 4.0), np.zeros(90)]
    areas = pd.Series(1.0, index=[f"u{i}" for i in range(100)])
    c = oracle_ceiling(panel_from(rates), areas, 1, coverages=(0.10,), top_n=(), n_sims=30, seed=0)
    row = c["rows"][0]
    assert row["ceiling_pei"] == pytest.approx(1.0, abs=0.005)
    assert row["ceiling_hit_rate"] == pytest.approx(1.0, abs=0.015)


def test_ceiling_of_places_that_do_not_differ_is_no_better_than_chance():
    # 100 equal places at one event a month each: the oracle knows nothing that helps
    areas = pd.Series(1.0, index=[f"u{i}" for i in range(100)])
    panel = pd.DataFrame(1.0, index=areas.index, columns=MONTHS)  # exactly equal long-run rates
    c = oracle_ceiling(panel, areas, 1, coverages=(0.10,), top_n=(), n_sims=60, seed=0)
    row = c["rows"][0]
    assert row["ceiling_hit_rate"] == pytest.approx(0.10, abs=0.01)
    # it catches ~10 of the ~100 events; the best 10 places in hindsight hold ~25
    assert 0.3 < row["ceiling_pei"] < 0.5
    assert c["alpha"] == 0.0 and c["n_sims"] == 60 and c["months"] == ["2016-01", "2017-12", 24]


def test_more_noise_and_a_longer_horizon_move_the_ceiling_the_right_way():
    rates = np.r_[np.full(10, 3.0), np.full(40, 0.5)]
    areas = pd.Series(1.0, index=[f"u{i}" for i in range(50)])
    panel = panel_from(rates, seed=3)
    kw = dict(coverages=(0.10,), top_n=(), n_sims=40, seed=0)
    base = oracle_ceiling(panel, areas, 1, alpha=0.0, **kw)["rows"][0]["ceiling_pei"]
    noisy = oracle_ceiling(panel, areas, 1, alpha=0.5, **kw)["rows"][0]["ceiling_pei"]
    quarter = oracle_ceiling(panel, areas, 3, alpha=0.0, **kw)["rows"][0]["ceiling_pei"]
    assert noisy < base < quarter  # noise lowers it; three months of events are easier to rank
    again = oracle_ceiling(panel, areas, 1, alpha=0.0, **kw)["rows"][0]["ceiling_pei"]
    assert again == base  # seeded


def test_ceiling_validation():
    areas = pd.Series(1.0, index=["u0"])
    with pytest.raises(ValueError, match="horizon"):
        oracle_ceiling(panel_from([1.0]), areas, 0)
    with pytest.raises(ValueError, match="no month 2030-01"):
        oracle_ceiling(panel_from([1.0]), areas, 1, months=["2030-01"])


def test_at_a_small_slice_of_unequal_units_the_oracle_measures_packing_and_says_how_much_it_covers():
    # a (2 km², 10 a month) is densest, then b (10 km², 30), then c, d, e (1 km², 2.5 each); 85 fillers.
    # A 5% slice (5 of 100 km²) is a prefix: a, then b would overflow, so the oracle takes a alone
    # (2% of the area, 10 a month) while n* packs a + c + d + e (17.5 a month) into the budget.
    rates = np.r_[10.0, 30.0, 2.5, 2.5, 2.5, np.full(85, 0.05)]
    areas = pd.Series(np.r_[2.0, 10.0, 1.0, 1.0, 1.0, np.ones(85)], index=[f"u{i}" for i in range(90)])
    # seed 1: the estimated rates keep b denser than c, d and e, as the true ones are
    c = oracle_ceiling(panel_from(rates, seed=1), areas, 1, coverages=(0.05,), top_n=(), alpha=0.0,
                       n_sims=200, seed=0)
    (row,) = c["rows"]
    assert c["label"] == "expected PEI* of a long-run-rate oracle"
    assert row["oracle_area_share"] == pytest.approx(0.02)
    # about 10 / 17.5: far below what knowing the rates would give with a better packing
    assert 0.5 < row["ceiling_pei"] < 0.65 and row["ceiling_pei_lo"] < row["ceiling_pei"] < row["ceiling_pei_hi"]
