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
from geo.crs import WORKING_CRS
from geo.units import boundary_units
from sources.memstore import MemoryStore

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


def _four_groups() -> pd.DataFrame:
    """The two-ward table plus business robbery (broad, not core) and rape (core), 1 a month each, in ward A."""
    ac = _area_counts(thin=None)
    ac["group"] = ac["category"].map({"Violence Against the Person": "violence", "Robbery": "robbery"})
    personal = ac[ac["subcategory"] == "Robbery of Personal Property"]
    business = personal.assign(subcategory="Robbery of Business Property")
    rape = personal.assign(category="Sexual Offences", subcategory="Rape", group="sexual")
    return pd.concat([ac, business, rape], ignore_index=True)


def test_the_core_and_broad_measures_count_what_the_taxonomy_flags():
    frame, _ = _units()
    (src,) = count_sources(MemoryStore({"area_counts": _four_groups(), "units_ward2022": frame}))
    assert src.has_core
    from features.figures import CORE_MEASURE, SV_MEASURE
    from features.needs import borough_monthly

    f = window_figures(borough_monthly(src), "2022-06", complete=src.complete).set_index("measure")
    # by hand, 2021-07..2022-06: A violence with injury 3 + personal robbery 1 + rape 1 a month (core); B's
    # violence is stalking and harassment from 2021-07 (broad only), business robbery 1 a month (broad only)
    assert f.loc[CORE_MEASURE, "count"] == 12 * (3 + 1 + 1)
    assert f.loc[SV_MEASURE, "count"] == 12 * (3 + 1 + 1 + 1 + 1)
    # 2020-07..2021-06: B's violence was with injury then, so it was core
    assert f.loc[CORE_MEASURE, "previous"] == 12 * (3 + 1 + 1 + 1)


def test_police_uk_has_no_core_measure():
    from sources.taxonomy import load_taxonomy

    t = load_taxonomy()
    assert t.has_core("met") and not t.has_core("policeuk") and not t.has_core("met_annual")


def test_the_broad_flag_is_set_exactly_on_the_target_groups():
    """One definition of broad serious violence: the taxonomy's flag and the feature builder's groups agree,
    row by row, so the briefing (groups) and the pack (flag) cannot count different totals."""
    from features.build import TARGET_GROUPS
    from sources.taxonomy import load_taxonomy

    t = load_taxonomy().table
    assert (t["serious_violence"] == t["group"].isin(TARGET_GROUPS)).all(), \
        t.loc[t["serious_violence"] != t["group"].isin(TARGET_GROUPS), ["scheme", "category", "subcategory"]]
    assert not (t["core"] & ~t["serious_violence"]).any()  # the core is inside the broad measure


def test_the_change_interval_is_the_log_rate_ratio_wald_interval():
    from features.figures import change_interval

    lo, hi = change_interval([110.0, 0.0, 5.0], [100.0, 4.0, np.nan])
    se = np.sqrt(1 / 110 + 1 / 100)  # by hand: Var(log n1/n0) = 1/n1 + 1/n0
    assert lo[0] == pytest.approx(100 * (1.1 * np.exp(-1.959964 * se) - 1), abs=1e-3)
    assert hi[0] == pytest.approx(100 * (1.1 * np.exp(1.959964 * se) - 1), abs=1e-3)
    assert np.isnan(lo[1:]).all() and np.isnan(hi[1:]).all()  # no interval from a zero or a missing count


def test_recording_changes_are_data_with_connect_and_a_bad_month_is_named(tmp_path):
    from features.needs import recording_changes

    rc = recording_changes("2020-01", "2026-03")
    connect = rc[rc["short"] == "CONNECT"]
    assert connect["month"].tolist() == [pd.Timestamp("2024-02-01")] and "met" in connect["sources"].iloc[0]
    assert recording_changes("2024-03", "2026-03").empty  # outside the window: not marked
    bad = tmp_path / "changes.csv"
    bad.write_text("month,sources,short,change,effect\n2024-02,met,A,a,b\nFeb 2025,met,B,b,c\n")
    with pytest.raises(ValueError, match=r"changes.csv row 3: month must be YYYY-MM, got 'Feb 2025'"):
        recording_changes(path=bad)


def _dash(rows):
    return pd.DataFrame([{"month": pd.Timestamp(m + "-01"), "area_type": t, "area_code": c, "area_name": c,
                          "series": s, "subtype": sub, "measure": "Offences", "count": float(n)}
                         for m, t, c, s, sub, n in rows])


def test_a_dashboard_cohort_sums_its_windows_and_knife_is_the_same_computation():
    from features.figures import (
        KNIFE_SERIES,
        KNIFE_SUBTYPES,
        dashboard_cohorts,
        dashboard_figures,
        knife_figures,
    )

    rows = [("2024-12", "borough", "E09000099", "Domestic Abuse", "Domestic Abuse", 5),      # previous window
            ("2025-06", "borough", "E09000099", "Domestic Abuse", "Domestic Abuse", 7),      # last window
            ("2025-12", "borough", "E09000099", "Domestic Abuse", "Domestic Abuse", 3),      # last month
            ("2025-12", "ward", "E05000001", "Domestic Abuse", "Domestic Abuse", 3),
            ("2025-12", "borough", "E09000099", "Knife Crime", "Knife Crime", 2),
            ("2023-12", "borough", "E09000099", "Domestic Abuse", "Domestic Abuse", 100)]    # before both
    f = dashboard_figures(_dash(rows), "Domestic Abuse", ["Domestic Abuse"])
    assert (f["period_start"], f["period_end"], f["previous_start"]) == ("2025-01", "2025-12", "2024-01")
    assert f["borough"] == [{"measure": "Domestic Abuse", "count": 10.0, "previous": 5.0, "change_pct": 100.0}]
    assert f["wards"] == [{"code": "E05000001", "name": "E05000001", "domestic_abuse": 3.0,
                           "domestic_abuse_previous": 0.0, "domestic_abuse_change_pct": None}]
    knife = knife_figures(_dash(rows))
    same = dashboard_figures(_dash(rows), KNIFE_SERIES, KNIFE_SUBTYPES)
    assert knife["borough"] == same["borough"] and knife["borough"][0]["count"] == 2.0
    t = dashboard_cohorts()
    assert set(t.loc[t["cohort"] == "knife", "subtype"]) == set(KNIFE_SUBTYPES)
    assert not t.loc[t["cohort"] == "domestic abuse", "place_based"].any()
