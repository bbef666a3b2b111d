"""Kernel baselines: expected counts (not densities), bandwidths chosen on earlier origins only."""

import numpy as np
import pandas as pd
import pytest
from tiny_borough import CENTRES, X0, Y0, tiny_store

from features.incidents import month_ordinal
from features.units import build_units
from models.baselines import EventSurface, KernelBaseline, baseline_methods
from sources.memstore import MemoryStore


@pytest.fixture(scope="module")
def units():
    return build_units(MemoryStore(tiny_store()), "lsoa2011")  # four 500 m squares A B / C D


def surface_of(units, events):
    """events: (month "YYYY-MM", x, y)."""
    xy = np.array([(x, y) for _, x, y in events], dtype=float).reshape(-1, 2)
    m = month_ordinal(pd.to_datetime([f"{mo}-01" for mo, _, _ in events]))
    return EventSurface(xy, m, units, cell_m=25.0)


def test_a_kernel_spreads_each_event_as_an_expected_count(units):
    s = surface_of(units, [("2017-01", *CENTRES["A"])])
    narrow = s.unit_sums("gaussian", 50.0).iloc[:, 0]
    # a 50 m kernel at A's centre keeps (almost) all of the event in A: one expected event
    assert narrow.iloc[0] == pytest.approx(1.0, abs=1e-3) and narrow.iloc[1:].sum() < 1e-3
    wide = s.unit_sums("gaussian", 400.0).iloc[:, 0]
    # a 400 m kernel shares it with the neighbours (B and C equally, D least) and loses some
    # outside the borough; never more than the one event in all
    assert wide.iloc[1] == pytest.approx(wide.iloc[2], rel=1e-6) and wide.iloc[0] > wide.iloc[1] > wide.iloc[3]
    assert 0.5 < wide.sum() < 1.0


def test_an_event_outside_the_units_spreads_into_them_only_by_its_kernel(units):
    s = surface_of(units, [("2017-01", X0 + 1100, Y0 + 250)])  # 100 m east of B, outside every unit
    sums = s.unit_sums("exponential", 100.0).iloc[:, 0]
    assert sums.iloc[1] > 0.1 and sums.iloc[0] < sums.iloc[1]


def test_kde_is_a_mean_monthly_count_times_the_horizon(units):
    events = [(f"2017-{m:02d}", *CENTRES["A"]) for m in range(1, 13)]  # one event in A every month
    s = surface_of(units, events)
    kde = KernelBaseline("kde", scales=(50.0,))
    assert kde.expected(s, "2018-01", 1, 50.0).iloc[0] == pytest.approx(1.0, abs=1e-3)
    assert kde.expected(s, "2018-01", 3, 50.0).iloc[0] == pytest.approx(3.0, abs=3e-3)
    # prospective: recent months weigh more, but a steady place is still one a month (less the
    # ~1% of an exponential kernel of 50 m that reaches past A's edges, 250 m away)
    pro = KernelBaseline("prospective", scales=(50.0,), weeks=(4.0,))
    assert pro.expected(s, "2018-01", 1, 50.0, 4.0).iloc[0] == pytest.approx(1.0, abs=0.02)


class ScriptedKernel(KernelBaseline):
    """A kernel baseline whose candidates rank the units as scripted (the choice rule, kernel aside)."""

    def expected(self, surface, cutoff, horizon, scale, weeks=None):
        ranks = {"A first": [4.0, 3.0, 2.0, 1.0], "B first": [3.0, 4.0, 2.0, 1.0]}[scale]
        return pd.Series(ranks, index=surface.ids)


def test_bandwidth_is_chosen_on_earlier_origins_only(units):
    s = surface_of(units, [("2017-01", *CENTRES["A"])])
    months = pd.date_range("2017-01-01", periods=15, freq="MS")
    counts = np.zeros((4, 15))
    counts[1, :12] = 1.0   # before 2018 the events are in B
    counts[0, 12:] = 5.0   # from 2018 on, in A
    panel = pd.DataFrame(counts, index=units.ids, columns=months)
    areas = pd.Series(units.frame["area_m2"].to_numpy(), index=units.ids)
    kde = ScriptedKernel("kde", scales=("A first", "B first"), coverages=(0.25,))
    select = pd.date_range("2017-06-01", "2017-12-01", freq="MS")  # targets end by 2018-01
    kde.scores(s, panel, areas, "2018-01", 1, select)
    assert kde.choices_["2018-01"] == ("B first", None)  # 2018's events in A are not looked at
    # a later cutoff judged on origins that include 2018 chooses the other
    kde.scores(s, panel, areas, "2018-04", 1, pd.date_range("2018-01-01", "2018-03-01", freq="MS"))
    assert kde.choices_["2018-04"] == ("A first", None)
    with pytest.raises(ValueError, match="ends after the cutoff"):
        kde.scores(s, panel, areas, "2018-01", 3, ["2017-12"])


def test_ties_go_to_the_first_candidate_and_baselines_are_named(units):
    s = surface_of(units, [("2017-01", *CENTRES["A"])])
    panel = pd.DataFrame(0.0, index=units.ids, columns=pd.date_range("2017-01-01", periods=3, freq="MS"))
    areas = pd.Series(units.frame["area_m2"].to_numpy(), index=units.ids)
    kde = KernelBaseline("kde", scales=(300.0, 50.0))
    assert kde.choose(s, panel, areas, 1, ["2017-02"]) == (300.0, None)  # nothing to catch: a tie
    assert set(baseline_methods()) == {"count_12m", "count_1m", "long_mean", "kde", "prospective"}
    with pytest.raises(ValueError, match="kind"):
        KernelBaseline("quartic")
