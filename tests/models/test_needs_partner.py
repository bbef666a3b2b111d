"""Partner data in the needs assessment: totals, changes and rates a person can check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.needs.partner import route_areas, route_summary, routes_status


def rows(route, period, level, code, measure, value, suppressed=False, service=pd.NA, month=True):
    return {"route": route, "period": period, "month": pd.Timestamp(period + "-01") if month else pd.NaT,
            "area_level": level, "area_code": code, "service": service, "measure": measure,
            "value": np.nan if suppressed else float(value), "suppressed": suppressed,
            "suppressed_below": 4.0 if suppressed else np.nan, "source_file": "f.csv", "source_row": 1}


def monthly_ae() -> pd.DataFrame:
    months = pd.period_range("2024-01", "2025-12", freq="M").strftime("%Y-%m")
    out = []
    for i, m in enumerate(months):
        # ward A: 2 a month in 2024, 3 a month in 2025; ward B: 1 a month, suppressed in 2025-06
        out.append(rows("partner_ae_assaults", m, "ward", "E05000001", "assault_attendances", 2 if i < 12 else 3,
                        service="ae"))
        out.append(rows("partner_ae_assaults", m, "ward", "E05000002", "assault_attendances", 1, service="ae",
                        suppressed=(m == "2025-06")))
    return pd.DataFrame(out)


def test_a_monthly_route_sums_wards_over_12_months_and_says_suppressed_cells_make_a_lower_bound():
    s = route_summary(monthly_ae(), end="2025-12").iloc[0]
    assert (s["count"], s["previous"]) == (3 * 12 + 11, 2 * 12 + 12)  # 47 against 36
    assert s["period"] == "2025-01..2025-12" and s["level"] == "ward"
    assert round(s["change_pct"], 1) == round(100 * (47 / 36 - 1), 1)
    assert s["change_lo_pct"] < s["change_pct"] < s["change_hi_pct"]
    assert s["suppressed_cells"] == 1 and "lower bound" in s["note"]


def test_the_window_ends_at_the_packs_end_when_the_route_runs_later():
    s = route_summary(monthly_ae(), end="2024-12").iloc[0]
    assert s["period"] == "2024-01..2024-12" and s["count"] == 36 and np.isnan(s["previous"])


def test_a_borough_row_is_preferred_over_the_sum_of_its_wards():
    f = pd.concat([monthly_ae(), pd.DataFrame([rows("partner_ae_assaults", "2025-12", "borough", "E09000001",
                                                    "assault_attendances", 10, service="ae")])])
    s = route_summary(f, end="2025-12").iloc[0]
    assert s["count"] == 47 - 4 + 10  # December: the borough's 10 rather than the wards' 3 + 1
    assert s["suppressed_cells"] == 1  # June 2025 of ward B still counts as suppressed


def test_education_rates_use_the_layouts_own_denominators_and_the_latest_year():
    f = pd.DataFrame([rows("partner_education", y, "borough", "E09000001", m, v, month=False)
                      for y, vals in (("2023/24", (1000, 50, 40, 400)), ("2024/25", (1000, 80, 20, 400)))
                      for m, v in zip(("pupils", "suspensions", "neet_16_17", "cohort_16_17"), vals, strict=True)])
    s = route_summary(f).set_index("measure")
    assert s.loc["suspensions", "period"] == "2024/25" and s.loc["suspensions", "previous"] == 50
    assert s.loc["suspensions", "rate"] == 8.0 and s.loc["suspensions", "rate_unit"] == "per 100 pupils"
    assert s.loc["neet_16_17", "rate"] == 5.0 and np.isnan(s.loc["pupils", "rate"])


def test_areas_with_the_most_and_every_routes_status():
    top = route_areas(monthly_ae(), end="2025-12", top=1)
    assert top[["area_code", "count"]].values.tolist() == [["E05000001", 36.0]]
    status = {r["kind"]: r["present"] for r in routes_status(monthly_ae())}
    assert status == {"partner_ae_assaults": True, "partner_youth_justice": False, "partner_marac": False,
                      "partner_education": False}
    assert all(r["template"].startswith("docs/templates/") for r in routes_status(None))
