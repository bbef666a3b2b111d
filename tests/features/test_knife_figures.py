"""Knife crime and young victims from the Met crime dashboard: absent months are zero, windows by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from features.figures import knife_figures


def dash(rows):
    """Dashboard rows (month, area_type, code, subtype, count) as the ingest stores them."""
    f = pd.DataFrame(rows, columns=["month", "area_type", "area_code", "subtype", "count"])
    f["month"] = pd.to_datetime(f["month"] + "-01")
    return f.assign(series="Knife Crime", measure="Offences", area_name=f["area_code"])


def test_last_twelve_months_against_the_twelve_before_with_absent_months_as_zero():
    rows = [("2024-06", "borough", "E09000099", "Knife Crime", 4),   # previous window (2024-03..2025-02)
            ("2025-01", "borough", "E09000099", "Knife Crime", 6),
            ("2025-03", "borough", "E09000099", "Knife Crime", 5),   # last window (2025-03..2026-02)
            ("2026-02", "borough", "E09000099", "Knife Crime", 7),
            ("2026-02", "borough", "E09000099", "Knife Injury Victims (1-24)", 2),
            ("2025-09", "ward", "E05000002", "Knife Crime", 3),
            ("2025-10", "ward", "E05000001", "Knife Crime", 9),
            ("2024-04", "ward", "E05000001", "Knife Crime", 6),
            ("2023-12", "borough", "E09000099", "Knife Crime", 50)]   # before both windows: not counted
    k = knife_figures(dash(rows), pd.DataFrame({"code": ["E05000001", "E05000002"], "name": ["West", "East"]}))
    assert (k["period_start"], k["period_end"], k["previous_start"], k["previous_end"]) == \
        ("2025-03", "2026-02", "2024-03", "2025-02")
    borough = {r["measure"]: r for r in k["borough"]}
    assert (borough["Knife Crime"]["count"], borough["Knife Crime"]["previous"]) == (12.0, 10.0)
    assert borough["Knife Crime"]["change_pct"] == pytest.approx(20.0)
    assert borough["Knife Injury Victims (1-24)"]["count"] == 2.0
    assert borough["Knife Injury Victims (1-24)"]["change_pct"] is None  # nothing before: no percentage
    assert borough["Knife Crime with Injury"]["count"] == 0.0  # never listed = zero every month
    assert [(w["name"], w["knife_crime"], w["knife_crime_change_pct"]) for w in k["wards"]] == \
        [("West", 9.0, 50.0), ("East", 3.0, None)]
    assert len(k["monthly"]) == 24 and k["monthly"][-1] == {"month": "2026-02", "knife_crime": 7.0}
    assert sum(m["knife_crime"] for m in k["monthly"]) == 22.0


def test_no_dashboard_or_no_knife_series_gives_nothing():
    assert knife_figures(None) is None
    assert knife_figures(dash([("2025-01", "borough", "E09000099", "Knife Crime", 1)]).assign(series="Gun Crime")) is None


@pytest.mark.realdata
def test_the_real_knife_figures_are_the_raw_dashboard_sums(real_store, real_data):
    raw = pd.read_csv(real_data / "crime" / "barnet_mps_crime_dashboard_knife_202203_202602.csv")
    table = pd.read_parquet(real_store / "dashboard_counts.parquet")
    k = knife_figures(table)
    borough = raw[(raw["area_type"] == "Borough") & (raw["measure"] == "Offences")]
    for sub in ("Knife Crime", "Knife Crime with Injury", "Knife Injury Victims (1-24)"):
        rows = borough[borough["crime_subtype"] == sub]
        last = rows[(rows["month_year"] >= "2025-03") & (rows["month_year"] <= "2026-02")]["count"].sum()
        prev = rows[(rows["month_year"] >= "2024-03") & (rows["month_year"] <= "2025-02")]["count"].sum()
        mine = next(r for r in k["borough"] if r["measure"] == sub)
        assert (mine["count"], mine["previous"]) == (last, prev), sub
    snt = raw[(raw["area_type"] != "Borough") & (raw["measure"] == "Offences") & (raw["crime_subtype"] == "Knife Crime")
              & (raw["month_year"] >= "2025-03")]
    by_ward = snt.groupby(snt["area_code"].str.strip())["count"].sum()
    assert {w["code"]: w["knife_crime"] for w in k["wards"] if w["knife_crime"]} == by_ward[by_ward > 0].to_dict()
