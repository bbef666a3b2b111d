"""No feature may see the cutoff month or later; windows move with the cutoff."""

import pandas as pd
import pytest
from tiny_borough import CENTRES, EVENTS, STOP_SEARCH, tiny_store

from features.build import FeatureBuilder
from features.units import build_units
from sources.memstore import MemoryStore

A, B = "E01000001", "E01000002"
EDITIONS = ["lsoa2011", "lsoa2021", "ward2022", "grid250"]

# events at and after the 2018-01 cutoff, of every kind, right on top of the units
LATE = [
    (month, group, *CENTRES[k], 500.0)
    for month in ("2018-01", "2018-02", "2018-06")
    for group in ("violence", "robbery", "sexual", "burglary", "drugs", "weapons", "asb")
    for k in "ABCD"
]


LATE_SEARCHES = [(m, *CENTRES[k]) for m in ("2018-01", "2018-03") for k in "ABCD"]


def builder(events, edition, police=False, searches=STOP_SEARCH):
    store = MemoryStore(tiny_store(events, stop_search=searches))
    return FeatureBuilder(store, build_units(store, edition), allow_police_generated=police)


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("police", [False, True])
def test_events_after_the_cutoff_change_no_feature(edition, police):
    before = builder(EVENTS, edition, police).matrix("2018-01")
    after_fb = builder(EVENTS + LATE, edition, police, STOP_SEARCH + LATE_SEARCHES)
    after = after_fb.matrix("2018-01")
    pd.testing.assert_frame_equal(before, after)
    assert ("sas_12m" in after.columns) == police
    # ...and the late events are really there: the next cutoff sees them
    assert after_fb.matrix("2018-02")["cnt_sv_1m"].sum() > before["cnt_sv_1m"].sum()


def test_moving_the_cutoff_moves_the_windows():
    fb = builder(EVENTS, "lsoa2011")
    # A's SV events: 2017-01, 2017-06, 2017-12 (x2: violence and robbery), 2018-01
    hand = {
        # cutoff: (1m, 3m, 6m, 12m)
        "2017-01": (0, 0, 0, 0),
        "2017-02": (1, 1, 1, 1),
        "2017-07": (1, 1, 2, 2),
        "2017-12": (0, 0, 1, 2),
        "2018-01": (2, 2, 2, 4),
        "2018-02": (1, 3, 3, 4),  # 2017-01 has left the 12-month window
        "2019-01": (0, 0, 0, 1),  # the 12 months 2018-01..2018-12 hold only the 2018-01 event
    }
    cols = ["cnt_sv_1m", "cnt_sv_3m", "cnt_sv_6m", "cnt_sv_12m"]
    for cutoff, counts in hand.items():
        assert tuple(fb.matrix(cutoff).loc[A, cols]) == counts, cutoff


def test_target_starts_at_the_cutoff_and_features_end_before_it():
    fb = builder(EVENTS, "lsoa2011")
    # the 2018-01 events are the target at cutoff 2018-01 and a feature from cutoff 2018-02 on
    assert fb.target("2018-01")[A] == 1
    assert fb.matrix("2018-01").loc[A, "cnt_violence_1m"] == 1  # the 2017-12 one
    assert fb.matrix("2018-02").loc[A, "cnt_violence_1m"] == 1  # the 2018-01 one
    assert fb.target("2017-12")[A] == 2
