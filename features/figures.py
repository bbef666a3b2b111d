"""The needs assessment's headline figures: rolling 12-month counts, rates per 1,000 and change."""

from __future__ import annotations

import pandas as pd

from features.months import month


def population_total(population: pd.DataFrame | None, cutoff: pd.Timestamp) -> tuple[float | None, str]:
    """Residents from the estimate nearest the cutoff (latest year not after it, else the earliest)."""
    if population is None or population.empty:
        return None, "no population table"
    years = sorted(population["year"].unique())
    usable = [y for y in years if y <= cutoff.year] or years[:1]
    year = usable[-1]
    rows = population[population["year"] == year]
    edition = sorted(rows["edition"].unique())[0]
    total = float(rows.loc[rows["edition"] == edition, "count"].sum())
    return total, f"{edition} {year}"


def needs_assessment_figures(events: pd.DataFrame, population: pd.DataFrame | None, cutoff) -> dict:
    """Counts in the 12 months before ``cutoff``, per 1,000 residents, and % change on the 12 before.

    One row per offence group plus "serious violence" (the groups flagged as such) and
    "all offences" (every group but anti-social behaviour). ``change_pct`` is NA when the
    previous 12 months are not fully covered by data.
    """
    cutoff = month(cutoff)
    start, prev_start = cutoff - pd.DateOffset(months=12), cutoff - pd.DateOffset(months=24)
    months = set(events["month"].unique())
    prev_covered = all(prev_start + pd.DateOffset(months=k) in months for k in range(12))
    now = events[(events["month"] >= start) & (events["month"] < cutoff)]
    before = events[(events["month"] >= prev_start) & (events["month"] < start)]
    pop, pop_source = population_total(population, cutoff)
    groups = {g: (now["group"] == g, before["group"] == g) for g in sorted(events["group"].unique())}
    groups["serious violence"] = (now["serious_violence"], before["serious_violence"])
    groups["all offences"] = (now["group"] != "asb", before["group"] != "asb")
    rows = []
    for name, (mask_now, mask_before) in groups.items():
        n, b = int(mask_now.sum()), int(mask_before.sum())
        rows.append({
            "group": name, "count_12m": n,
            "rate_per_1000": round(1000 * n / pop, 2) if pop else None,
            "previous_12m": b if prev_covered else None,
            "change_pct": round(100 * (n - b) / b, 1) if prev_covered and b > 0 else None,
            "police_generated": bool(now.loc[mask_now, "police_generated"].any()) if n else False,
        })
    return {"period_end": f"{cutoff - pd.DateOffset(months=1):%Y-%m}", "period_start": f"{start:%Y-%m}",
            "population": pop, "population_source": pop_source, "rows": rows,
            "note": "police.uk combines sexual offences with violence; domestic abuse is not flagged in open data"}
