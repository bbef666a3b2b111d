"""Partner data in the needs assessment: what each route present shows, and which routes are absent.

The store's ``partner_counts`` (:mod:`sources.loaders.partner`) holds counts a partnership
added (A&E and ambulance assaults, youth justice, MARAC, education). For each route present
:func:`route_summary` gives the borough figure of the latest 12 months against the 12 before
(monthly routes) or the latest academic year against the one before (education), with the
number of suppressed cells, and :func:`route_areas` the areas with the most. Suppressed cells
are unknown, not zero, so a total holding any is a lower bound (said in the ``note`` column).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.figures import change_interval
from features.months import shift
from sources.loaders.partner import ROUTES

LEVELS = ("borough", "ward", "lsoa", "school")
"""Area levels, coarsest first: a borough total is the borough row when given, else the sum of the finest level."""
RATES = {"suspensions": ("pupils", 100.0, "per 100 pupils"),
         "permanent_exclusions": ("pupils", 100.0, "per 100 pupils"),
         "neet_16_17": ("cohort_16_17", 100.0, "% of the 16-17 cohort")}
"""Education measures with a denominator in the same layout."""
WINDOW = 12


def routes_status(partner: pd.DataFrame | None) -> list[dict]:
    """Every route, present or absent, with the template that adds it and who usually holds it."""
    present = set() if partner is None else set(partner["route"])
    return [{"kind": r.kind, "title": r.title, "present": r.kind in present, "template": f"docs/templates/{r.template}",
             "holder": r.holder} for r in ROUTES.values()]


def _periods(route: pd.DataFrame, end: pd.Timestamp | None) -> tuple[list[str], list[str], str]:
    """(latest periods, previous periods, text) of a route: 12 months to ``end`` (or the route's own last
    month, when earlier) and the 12 before; for academic years the latest and the one before."""
    if route["month"].notna().any():
        last = route["month"].max()
        last = min(last, end) if end is not None else last
        cur = [shift(last, -k) for k in range(WINDOW)]
        prev = [shift(last, -WINDOW - k) for k in range(WINDOW)]
        return ([f"{m:%Y-%m}" for m in cur], [f"{m:%Y-%m}" for m in prev],
                f"{shift(last, -(WINDOW - 1)):%Y-%m}..{last:%Y-%m}")
    years = sorted(set(route["period"]))
    return [years[-1]], years[-2:-1], years[-1]


def _borough(rows: pd.DataFrame) -> pd.DataFrame:
    """Per period, measure and service: the borough row when given, else the sum over the coarsest level given."""
    rows = rows.assign(_lv=rows["area_level"].map(LEVELS.index), service=rows["service"].fillna(""))
    best = rows.groupby(["period", "measure", "service"])["_lv"].transform("min")
    pick = rows[rows["_lv"] == best]
    return pick.groupby(["period", "measure", "service"], as_index=False).agg(
        value=("value", "sum"), suppressed=("suppressed", "sum"), level=("area_level", "first"))


def route_summary(partner: pd.DataFrame, end=None) -> pd.DataFrame:
    """One row per route, measure and service: latest period total, previous, change (95% interval), rate.

    Parameters
    ----------
    partner : DataFrame
        The store's ``partner_counts``.
    end : month, optional
        Last month of the pack's window: a monthly route's window ends there, or at its own last month
        when that is earlier.
    """
    end = None if end is None else pd.Timestamp(end)
    out = []
    for kind, route in partner.groupby("route", sort=False):
        cur, prev, text = _periods(route, end)
        b = _borough(route)
        for (measure, service), part in b.groupby(["measure", "service"], sort=False):
            now = part[part["period"].isin(cur)]
            before = part[part["period"].isin(prev)]
            count, previous = float(now["value"].sum()), float(before["value"].sum()) if len(before) else np.nan
            if len(now) < len(cur) or (len(before) and len(before) < len(prev)):
                note = f"{len(now)} of {len(cur)} periods given"
            else:
                note = ""
            supp = int(now["suppressed"].sum())
            if supp:
                note = "; ".join(filter(None, [note, f"{supp} suppressed cell{'s' if supp > 1 else ''}: a lower bound"]))
            out.append({"route": kind, "title": ROUTES[kind].title, "measure": measure, "service": service,
                        "period": text, "level": now["level"].iloc[0] if len(now) else "", "count": count,
                        "previous": previous, "suppressed_cells": supp, "note": note})
    table = pd.DataFrame(out)
    if not len(table):
        return table
    table["change_pct"] = 100.0 * (table["count"] / table["previous"].replace(0, np.nan) - 1.0)
    table["change_lo_pct"], table["change_hi_pct"] = change_interval(table["count"], table["previous"])
    rates = []
    for r in table.itertuples():
        spec = RATES.get(r.measure)
        den = table[(table["route"] == r.route) & (table["measure"] == spec[0])]["count"] if spec else []
        rates.append((spec[1] * r.count / float(den.iloc[0]), spec[2]) if spec and len(den) and den.iloc[0] > 0
                     else (np.nan, ""))
    table["rate"], table["rate_unit"] = [x[0] for x in rates], [x[1] for x in rates]
    return table


def route_areas(partner: pd.DataFrame, end=None, top: int = 5) -> pd.DataFrame:
    """The ``top`` areas (wards, LSOAs or schools) with the most of each route's first measure, latest period."""
    end = None if end is None else pd.Timestamp(end)
    out = []
    for kind, route in partner.groupby("route", sort=False):
        fine = route[route["area_level"] != "borough"]
        if not len(fine):
            continue
        cur, _, text = _periods(route, end)
        measure = next(m for m in ROUTES[kind].counts if m in set(fine["measure"]))
        part = fine[(fine["measure"] == measure) & fine["period"].isin(cur)]
        agg = part.groupby(["area_level", "area_code"], as_index=False).agg(
            count=("value", "sum"), suppressed=("suppressed", "sum"))
        agg = agg.sort_values(["count", "area_code"], ascending=[False, True]).head(top)
        out.append(agg.assign(route=kind, measure=measure, period=text))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["area_level", "area_code", "count", "suppressed", "route", "measure", "period"])
