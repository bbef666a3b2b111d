"""Count sources for the needs assessment and the rolling-window figures, on hand-made counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from geopandas import GeoDataFrame

from features.figures import window_figures
from features.months import months_between
from features.needs import count_sources, scheme_changes, unit_counts
from features.sources.memstore import MemoryStore
from geo.crs import WORKING_CRS
from geo.units import boundary_units

MONTHS = months_between("2020-01", "2022-06")  # 30 months


def _area_counts(thin: str | None = "2021-03") -> pd.DataFrame:
    """Two wards; ward A has 3 violence and 1 robbery a month, ward B 1 violence; one thin month."""
    rows = []
    for m in MONTHS:
        scale = 0.05 if thin and f"{m:%Y-%m}" == thin else 1.0
        new = m >= pd.Timestamp("2021-07-01")  # a new minor category name from 2021-07
        for ward, cat, sub, n in (("E05000001", "Violence Against the Person", "Violence with Injury", 3),
                                  ("E05000001", "Robbery", "Robbery of Personal Property", 1),
                                  ("E05000002", "Violence Against the Person",
                                   "Stalking and Harassment" if new else "Violence with Injury", 1)):
            rows.append({"unit_code": ward, "edition": "ward2022", "period_start": m, "period": "month",
                         "category": cat, "subcategory": sub, "group": "x", "count": n * scale, "release": "r1",
                         "source_file": "/data/wards.csv"})
    return pd.DataFrame(rows)


def _units():
    frame = GeoDataFrame({"code": ["E05000001", "E05000002"], "name": ["A", "B"]},
                         geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)], crs=WORKING_CRS)
    return frame, boundary_units(frame, "ward2022")


def test_an_area_table_is_described_with_its_complete_months_and_groups():
    frame, _ = _units()
    (src,) = count_sources(MemoryStore({"area_counts": _area_counts(), "units_ward2022": frame}))
    assert src.kind == "area table" and src.period == "month" and src.editions == ("ward2022",)
    assert src.groups == ("robbery", "violence")  # re-classified with the taxonomy, not the table's group
    assert len(src.months) == 30 and pd.Timestamp("2021-03-01") not in src.complete  # 5% of a usual month
    assert src.latest_window_end(12) == pd.Timestamp("2022-06-01")
    assert not src.window_ok("2021-06") and src.window_ok("2022-03")  # the thin month spoils windows over it
    assert scheme_changes(src) == [pd.Timestamp("2021-07-01")]


def test_unit_counts_take_area_tables_as_they_are_and_refuse_other_units():
    frame, units = _units()
    (src,) = count_sources(MemoryStore({"area_counts": _area_counts(thin=None), "units_ward2022": frame}))
    c = unit_counts(src, units, first="2022-01", last="2022-06")
    per = c.groupby(["unit_id", "group"])["count"].sum()
    assert per[("E05000001", "violence")] == 18 and per[("E05000001", "robbery")] == 6
    assert per[("E05000002", "violence")] == 6
    other = boundary_units(frame.assign(code=["E01000001", "E01000002"]), "lsoa2021")
    with pytest.raises(ValueError, match="keyed on"):
        unit_counts(src, other)


def test_window_figures_by_unit_with_rates_and_change():
    frame, units = _units()
    (src,) = count_sources(MemoryStore({"area_counts": _area_counts(thin=None), "units_ward2022": frame}))
    c = unit_counts(src, units)
    pop = pd.Series([2000.0, 500.0], index=["E05000001", "E05000002"])
    f = window_figures(c, "2022-06", by="unit_id", index=units.ids, population=pop, complete=src.complete,
                       groups=["violence", "robbery"]).set_index(["unit_id", "measure"])
    a = f.loc[("E05000001", "serious violence")]
    assert (a["count"], a["previous"], a["change_pct"]) == (48.0, 48.0, 0.0)  # 3 + 1 a month, both windows
    assert a["rate_per_1000"] == pytest.approx(24.0)  # 48 / 2,000 residents x 1,000
    assert f.loc[("E05000002", "violence"), "rate_per_1000"] == pytest.approx(24.0)  # 12 / 500 x 1,000
    assert (a["period_start"], a["period_end"], a["previous_start"]) == ("2021-07", "2022-06", "2020-07")


def test_window_figures_have_no_change_when_the_previous_window_is_incomplete():
    frame, units = _units()
    (src,) = count_sources(MemoryStore({"area_counts": _area_counts(), "units_ward2022": frame}))
    c = unit_counts(src, units)
    f = window_figures(c, "2022-03", by="unit_id", complete=src.complete)  # previous: 2020-04..2021-03, thin
    assert f["previous"].isna().all() and f["change_pct"].isna().all()
    assert np.isfinite(f["count"]).all()
