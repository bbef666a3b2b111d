"""The needs assessment's headline figures: rolling 12-month counts, rates per 1,000 and change.

:func:`window_figures` is the one computation: counts in a window ending at a month, the
window before it, the % change and the rate per 1,000 residents, per offence group, for the
borough or per unit. The briefing's :func:`needs_assessment_figures` and the evidence pack
(``svrisk assess``) both use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from features.months import month, months_between, ranges, shift, window_months
from sources.taxonomy import read_data_table

SV_MEASURE = "serious violence"
"""The broad measure: every offence of the groups violence against the person, robbery and sexual
offences (the taxonomy's ``serious_violence`` flag, which is set exactly on those groups)."""
CORE_MEASURE = "core serious violence"
"""The core measure: violence with injury, homicide, personal robbery and sexual offences (the
taxonomy's ``core`` flag); only sources with the Met's minor categories can give it."""
ALL_MEASURE = "all offences"
MEASURE_NAMES = {
    CORE_MEASURE: "Serious violence, core (violence with injury, homicide, personal robbery, sexual offences)",
    SV_MEASURE: "Serious violence, broad (all violence against the person, robbery, sexual offences)",
}
"""One name per measure, used by the evidence pack and the briefing alike."""
NOT_AN_OFFENCE = ("asb",)
"""Groups that are not notifiable offences: left out of "all offences"."""


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


def window_figures(
    counts: pd.DataFrame,
    period_end,
    *,
    by: str | None = None,
    index: Iterable | None = None,
    population: float | pd.Series | None = None,
    complete: Iterable | None = None,
    months: int = 12,
    groups: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Counts in the ``months`` ending at ``period_end`` (inclusive), the ``months`` before, change and rate.

    Parameters
    ----------
    counts : DataFrame
        Columns ``month``, ``group``, ``serious_violence``, ``police_generated`` and, optionally,
        ``core`` (the core measure is reported only with it), ``count`` (else each row counts 1)
        and the ``by`` column.
    period_end : month
        Last month of the window ("YYYY-MM").
    by : str, optional
        Column to report per value of (e.g. ``"unit_id"``); None for one total.
    index : iterable, optional
        Every value of ``by`` to report (those without counts get 0).
    population : float or Series, optional
        Residents (one number, or a Series indexed like ``by``); rates are NA without it.
    complete : iterable of months, optional
        Months with complete data; default the months present in ``counts``. The change is NA
        when the previous window is not all complete.
    months : int
        Window length.
    groups : sequence of str, optional
        Offence groups to report, in order; default every group in ``counts`` (sorted). The
        measures follow them: :data:`SV_MEASURE` (rows flagged serious violence), then
        :data:`CORE_MEASURE` (rows flagged core, when ``counts`` has the column) and
        :data:`ALL_MEASURE` (every group but :data:`NOT_AN_OFFENCE`).

    Returns
    -------
    DataFrame
        One row per (``by`` value, measure): ``measure``, ``count``, ``previous``, ``change_pct``,
        ``change_lo_pct`` and ``change_hi_pct`` (95% interval of the change, :func:`change_interval`),
        ``rate_per_1000``, ``previous_rate_per_1000``, ``police_generated_share``,
        ``police_generated`` (share >= 0.5), ``period_start``, ``period_end``,
        ``previous_start``, ``previous_end`` ("YYYY-MM").

    Examples
    --------
    >>> c = pd.DataFrame({"month": pd.to_datetime(["2020-01-01", "2021-01-01"]), "group": "robbery",
    ...                   "serious_violence": True, "police_generated": False, "count": [4.0, 6.0]})
    >>> f = window_figures(c, "2021-01", population=2000.0, complete=months_between("2019-02", "2021-01"))
    >>> f.loc[f["measure"] == "robbery", ["count", "previous", "change_pct", "rate_per_1000"]].to_numpy().tolist()
    [[6.0, 4.0, 50.0, 3.0]]
    """
    end = month(period_end)
    start = shift(end, -(months - 1))
    prev_end, prev_start = shift(start, -1), shift(start, -months)
    have = {month(m) for m in (complete if complete is not None else counts["month"].unique())}
    prev_covered = all(m in have for m in months_between(prev_start, prev_end))
    weight = counts["count"].astype(float) if "count" in counts else pd.Series(1.0, index=counts.index)
    m = pd.to_datetime(counts["month"])
    now, before = (m >= start) & (m <= end), (m >= prev_start) & (m <= prev_end)
    group = counts["group"].astype("string")
    names = list(groups) if groups is not None else sorted(group.dropna().unique())
    masks = {g: (group == g).to_numpy() for g in names}
    masks[SV_MEASURE] = counts["serious_violence"].to_numpy(dtype=bool)
    if "core" in counts:
        masks[CORE_MEASURE] = counts["core"].to_numpy(dtype=bool)
    masks[ALL_MEASURE] = (~group.isin(NOT_AN_OFFENCE)).to_numpy(dtype=bool)
    key = counts[by] if by is not None else pd.Series("all", index=counts.index)
    keys = pd.Index(list(index) if index is not None else sorted(key.dropna().unique()) if by else ["all"])
    police = counts["police_generated"].to_numpy(dtype=bool)
    rows = []
    for name, mask in masks.items():
        def total(window, extra=None, mask=mask):
            sel = mask & window.to_numpy() & (True if extra is None else extra)
            return weight[sel].groupby(key[sel]).sum().reindex(keys, fill_value=0.0)
        n, b, pg = total(now), total(before), total(now, police)
        part = pd.DataFrame({"key": keys, "measure": name, "count": n.to_numpy(),
                             "previous": b.to_numpy() if prev_covered else np.nan})
        with np.errstate(divide="ignore", invalid="ignore"):
            part["change_pct"] = np.where(prev_covered & (b.to_numpy() > 0),
                                          100.0 * (n.to_numpy() - b.to_numpy()) / np.where(b > 0, b, 1), np.nan)
            part["police_generated_share"] = np.where(n.to_numpy() > 0, pg.to_numpy() / np.where(n > 0, n, 1), np.nan)
        rows.append(part)
    out = pd.concat(rows, ignore_index=True)
    lo, hi = change_interval(out["count"].to_numpy(dtype=float), out["previous"].to_numpy(dtype=float))
    out.insert(out.columns.get_loc("change_pct") + 1, "change_lo_pct", lo)
    out.insert(out.columns.get_loc("change_pct") + 2, "change_hi_pct", hi)
    if population is None:
        pop = np.full(len(out), np.nan)
    elif isinstance(population, pd.Series):
        pop = population.reindex(out["key"]).to_numpy(dtype=float)
    else:
        pop = np.full(len(out), float(population))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate_per_1000"] = np.where(pop > 0, 1000.0 * out["count"] / pop, np.nan)
        out["previous_rate_per_1000"] = np.where(pop > 0, 1000.0 * out["previous"] / pop, np.nan)
    out["police_generated"] = out["police_generated_share"].fillna(0.0) >= 0.5
    out["period_start"], out["period_end"] = f"{start:%Y-%m}", f"{end:%Y-%m}"
    out["previous_start"], out["previous_end"] = f"{prev_start:%Y-%m}", f"{prev_end:%Y-%m}"
    if by is None:
        return out.drop(columns="key")
    return out.rename(columns={"key": by})


def change_interval(count, previous, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """95% interval of the % change from ``previous`` to ``count``, both read as Poisson counts over
    equal periods: the rate ratio's Wald interval on the log scale (statsmodels
    ``confint_poisson_2indep``, ``method="wald-log"``), as % change. NA where either count is 0 or NA.

    A change whose interval contains 0 is within what chance alone gives two years of
    counts: say "no clear change", not "rose" or "fell".

    Examples
    --------
    >>> lo, hi = change_interval([110.0], [100.0])
    >>> round(float(lo[0]), 1), round(float(hi[0]), 1)
    (-16.1, 44.2)
    """
    from statsmodels.stats.rates import confint_poisson_2indep

    n = np.asarray(count, dtype=float)
    b = np.asarray(previous, dtype=float)
    ok = np.isfinite(n) & np.isfinite(b) & (n > 0) & (b > 0)
    lo, hi = np.full(n.shape, np.nan), np.full(n.shape, np.nan)
    if ok.any():
        low, upp = confint_poisson_2indep(n[ok], 1.0, b[ok], 1.0, method="wald-log", compare="ratio", alpha=alpha)
        lo[ok], hi[ok] = 100.0 * (np.asarray(low) - 1.0), 100.0 * (np.asarray(upp) - 1.0)
    return lo, hi


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
    now_ok = all(m in complete for m in now_months)
    before_ok = all(m in complete for m in before_months)
    totals = fb.group_totals()
    long = totals.rename_axis(columns="group").stack().rename("count").reset_index()
    long["serious_violence"] = long["group"].isin(list(fb.target_groups))
    long["police_generated"] = long["group"].isin(list(fb.police_groups))
    pop, pop_source = population_total(population, cutoff)
    groups = [g for g in totals.columns if totals[g].sum() > 0]
    fig = window_figures(long, shift(cutoff, -1), population=pop, complete=complete, groups=groups)
    rows = []
    for r in fig.itertuples(index=False):
        members = [r.measure] if r.measure in groups else list(fb.target_groups) if r.measure == SV_MEASURE \
            else [g for g in totals.columns if g not in NOT_AN_OFFENCE]
        rows.append({
            "group": r.measure, "count_12m": int(round(r.count)) if now_ok else None,
            "rate_per_1000": round(float(r.rate_per_1000), 2) if pop and now_ok else None,
            "previous_12m": int(round(r.previous)) if before_ok else None,
            "change_pct": round(float(r.change_pct), 1) if now_ok and before_ok and pd.notna(r.change_pct) else None,
            "police_generated": bool(set(members) <= set(fb.police_groups)),
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


KNIFE_SERIES = "Knife Crime"
KNIFE_SUBTYPES = ("Knife Crime", "Knife Crime with Injury", "Knife Injury Victims (1-24)")
"""The strategy's knife measures, as the Met crime dashboard names its subtypes."""


def knife_figures(dashboard: pd.DataFrame | None, wards: pd.DataFrame | None = None, months: int = 12) -> dict | None:
    """Knife crime, knife crime with injury and knife injury victims aged 1-24 (offences) from the
    Met crime dashboard (:func:`dashboard_figures` of :data:`KNIFE_SERIES`); None when the table has
    no knife series."""
    out = dashboard_figures(dashboard, KNIFE_SERIES, KNIFE_SUBTYPES, wards, months)
    if out is not None:
        out["note"] = ("the dashboard lists only months with at least one offence: an absent month is zero; "
                       "a knife offence is also counted in its own category (violence or robbery), so these "
                       "figures are a view of serious violence, not an addition to it")
    return out


def dashboard_figures(dashboard: pd.DataFrame | None, series: str, subtypes: Sequence[str],
                      wards: pd.DataFrame | None = None, months: int = 12) -> dict | None:
    """One series of the Met crime dashboard (offences): the borough's and each ward's last ``months``
    to the series' latest month, the ``months`` before, the change, and the borough's monthly series
    of the first subtype.

    The dashboard lists only months with at least one offence, so a month absent for a
    subtype and area counts as zero (every month of the window is reported). ``wards``
    (``code``, ``name``) names the wards; None when the table has no such series.
    """
    if dashboard is None or dashboard.empty:
        return None
    rows = dashboard[(dashboard["series"].str.casefold() == series.casefold())
                     & (dashboard["measure"].str.casefold() == "offences")]
    if rows.empty:
        return None
    end = pd.Timestamp(rows["month"].max())
    span = window_months(shift(end, 1), 2 * months)
    previous, last = span[:months], span[months:]
    names = dict(zip(wards["code"].astype(str), wards["name"].astype(str), strict=False)) if wards is not None else {}
    first = _key(subtypes[0])

    def sums(rows: pd.DataFrame) -> dict:
        out = {}
        for sub in subtypes:
            r = rows[rows["subtype"].str.casefold() == sub.casefold()]
            now = float(r.loc[r["month"].isin(last), "count"].sum())
            before = float(r.loc[r["month"].isin(previous), "count"].sum())
            out[sub] = {"count": now, "previous": before,
                        "change_pct": round(100.0 * (now - before) / before, 1) if before else None}
        return out

    borough = rows[rows["area_type"] == "borough"]
    by_ward = rows[rows["area_type"] == "ward"]
    ward_rows = []
    for code, part in by_ward.groupby("area_code"):
        s = sums(part)
        ward_rows.append({"code": str(code), "name": names.get(str(code), str(part["area_name"].iloc[0])),
                          **{_key(k): v["count"] for k, v in s.items()},
                          f"{first}_previous": s[subtypes[0]]["previous"],
                          f"{first}_change_pct": s[subtypes[0]]["change_pct"]})
    ward_rows.sort(key=lambda w: (-w[first], w["name"]))
    monthly = borough[borough["subtype"].str.casefold() == subtypes[0].casefold()].groupby("month")["count"].sum()
    trend = [{"month": f"{m:%Y-%m}", first: float(monthly.get(m, 0.0))} for m in span]
    return {"source": "Met crime dashboard (offences)", "series": series, "period_start": f"{last[0]:%Y-%m}",
            "period_end": f"{last[-1]:%Y-%m}", "previous_start": f"{previous[0]:%Y-%m}",
            "previous_end": f"{previous[-1]:%Y-%m}",
            "borough": [{"measure": k, **v} for k, v in sums(borough).items()] if len(borough) else [],
            "wards": ward_rows, "monthly": trend,
            "note": "the dashboard lists only months with at least one offence: an absent month is zero"}


DASHBOARD_COHORTS = "dashboard_cohorts.csv"
"""The strategy's cohorts from the Met crime dashboard (``sources/data``): cohort, series,
subtype, label, place_based (false: left out of place-based work, e.g. domestic abuse)."""


def dashboard_cohorts(path=None) -> pd.DataFrame:
    """The cohort table (the packaged one when ``path`` is None); ``place_based`` as bool.

    Raises
    ------
    ValueError
        A missing column, or a ``place_based`` that is not true/false (naming the file and row).
    """
    table, where = read_data_table(DASHBOARD_COHORTS, path)
    need = ["cohort", "series", "subtype", "label", "place_based"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; expected {need}")
    flag = table["place_based"].str.strip().str.lower()
    bad = ~flag.isin(["true", "false"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{where} row {row + 2}: place_based must be true/false, got {table['place_based'].iloc[row]!r}")
    return table.assign(place_based=flag == "true")


def _key(subtype: str) -> str:
    """``"Knife Injury Victims (1-24)"`` -> ``"knife_injury_victims_1_24"``."""
    return "_".join(p for p in "".join(c.lower() if c.isalnum() else " " for c in subtype).split())
