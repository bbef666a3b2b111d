"""The needs assessment's headline figures: rolling 12-month counts, rates per 1,000 and change."""

from __future__ import annotations

import pandas as pd

from features.months import month, ranges, shift, window_months


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


def needs_assessment_figures(fb, population: pd.DataFrame | None, cutoff) -> dict:
    """Counts in the 12 months before ``cutoff``, per 1,000 residents, and % change on the 12 before.

    ``fb`` is a :class:`features.build.FeatureBuilder`: its events (points or area
    tables) summed per month and group over its units, and its complete months. One
    row per offence group, plus "serious violence" (the builder's target groups) and
    "all offences" (every group but anti-social behaviour). A 12-month figure is given
    only when all 12 months are complete: a window over a gap or a thin month would
    count fewer months than it says (its value is None and ``note`` says why).
    """
    cutoff = month(cutoff)
    now_months, before_months = window_months(cutoff, 12), window_months(shift(cutoff, -12), 12)
    complete = set(fb.complete_months)
    totals = fb.group_totals()
    now_ok = all(m in complete for m in now_months)
    before_ok = all(m in complete for m in before_months)
    now = totals.reindex(now_months).fillna(0.0).sum()
    before = totals.reindex(before_months).fillna(0.0).sum()
    pop, pop_source = population_total(population, cutoff)
    names = {g: [g] for g in totals.columns if totals[g].sum() > 0}
    names["serious violence"] = list(fb.target_groups)
    names["all offences"] = [g for g in totals.columns if g != "asb"]
    rows = []
    for name, groups in names.items():
        n, b = float(now[groups].sum()), float(before[groups].sum())
        rows.append({
            "group": name, "count_12m": int(round(n)) if now_ok else None,
            "rate_per_1000": round(1000 * n / pop, 2) if pop and now_ok else None,
            "previous_12m": int(round(b)) if before_ok else None,
            "change_pct": round(100 * (n - b) / b, 1) if now_ok and before_ok and b > 0 else None,
            "police_generated": bool(set(groups) <= set(fb.police_groups)),
        })
    notes = ["police.uk combines sexual offences with violence; domestic abuse is not flagged in open data"]
    if not now_ok:
        notes.append(f"the 12 months {ranges(now_months)} are not all complete "
                     f"(missing or thin: {ranges([m for m in now_months if m not in complete])}): no 12-month figures")
    elif not before_ok:
        notes.append(f"the previous 12 months {ranges(before_months)} are not all complete: no change figures")
    return {"period_end": f"{shift(cutoff, -1):%Y-%m}", "period_start": f"{now_months[0]:%Y-%m}",
            "population": pop, "population_source": pop_source, "rows": rows,
            "source": fb.source, "units": fb.units.edition, "complete": now_ok, "note": "; ".join(notes)}
