"""Monthly counts by area (e.g. the Met's ward tables) as an event source for units of that edition.

The store's ``area_counts`` table holds recorded offences per area code, month and
category (see ``features.sources.loaders.areas``). For units whose edition the table
covers month by month (wards, for the Met's tables), the counts make the same
(unit x month x group) cube that point events make, so every window, target, panel,
hot-spot statistic and backtest works on them unchanged. What needs a point is left
out: near-repeat and kernel density (their sums are zero and the builder drops them).

:func:`choose_source` picks, for one unit edition, the source that reaches the most
recent month: monthly area counts when they cover the edition and end later than
the point events do, else the points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.incidents import CUBE_KEYS, group_positions, month_ordinal
from features.months import month, usable_cutoffs
from features.scale import COUNT_KEYS, KERNEL_META, EventSums, finish_sums
from features.sources.loaders.crime import thin_counts
from features.sources.memstore import as_store

SOURCES = ("auto", "points", "areas")


def monthly_area_counts(store, edition: str) -> pd.DataFrame:
    """Rows of ``area_counts`` that are monthly counts for units of ``edition`` (empty if none)."""
    store = as_store(store)
    if not store.has("area_counts"):
        return pd.DataFrame(columns=["unit_code", "period_start", "group", "count", "harm"])
    table = store.table("area_counts")
    keep = (table["period"].astype("string") == "month") & (table["edition"].astype("string") == edition)
    return table[keep.fillna(False).to_numpy(dtype=bool)]


def point_month_counts(store) -> pd.Series:
    """Events per month of the events table (empty without events)."""
    store = as_store(store)
    if not store.has("events"):
        return pd.Series(dtype=float)
    path = store.path("events") if hasattr(store, "path") else None
    if path is not None and path.exists():  # a file, or the partitioned dataset folder
        months = pd.read_parquet(path, columns=["month"])["month"]
    else:
        months = store.table("events")["month"]
    return months.dropna().value_counts().sort_index().astype(float)


def latest_cutoff_of(month_counts: pd.Series, history: int = 12) -> pd.Timestamp | None:
    """The latest cutoff with ``history`` complete months before it, from counts per month."""
    thin = thin_counts(month_counts)
    usable = usable_cutoffs([m for m in month_counts.index if m not in thin], history)
    return usable[-1] if usable else None


def choose_source(store, edition: str, source: str = "auto", target_groups=None, history: int = 12,
                  cutoff=None) -> str:
    """``"points"`` or ``"areas"`` for units of ``edition``.

    ``"auto"``: areas when the store has monthly area counts for this edition that
    cover every target group (a table of burglaries alone cannot stand in for the
    points) and whose latest cutoff with ``history`` complete months is later than
    the point events' (an isolated month of points years later does not count), or
    there are no point events; points otherwise. With a ``cutoff``, a source whose
    data covers that cutoff wins over one that does not. Asking for ``"areas"``
    where the store has none for the edition is an error.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source == "points":
        return "points"
    counts = monthly_area_counts(store, edition)
    missing = sorted(set(target_groups or []) - set(counts["group"].dropna().astype(str)))
    if counts.empty or missing:
        if source == "areas":
            what = f"of the target groups {missing}" if not counts.empty else "at all"
            raise ValueError(f"the store has no monthly area counts for {edition!r} units {what} "
                             "(area tables cover wards or LSOAs of the editions their codes belong to)")
        return "points"
    if source == "areas":
        return "areas"
    point_counts = point_month_counts(store)
    area_counts = counts.groupby("period_start")["count"].sum()
    if cutoff is not None:
        covers = {name: month(cutoff) in usable_cutoffs([m for m in c.index if m not in thin_counts(c)], history)
                  for name, c in (("areas", area_counts), ("points", point_counts))}
        if covers["areas"] != covers["points"]:
            return "areas" if covers["areas"] else "points"
    points = latest_cutoff_of(point_counts, history)
    areas = latest_cutoff_of(area_counts, history)
    if areas is None:
        return "points"
    return "areas" if points is None or areas > points else "points"


def area_sums(store, units, groups: list[str]) -> EventSums:
    """The (unit, month, group) cube of monthly area counts for ``units`` (one edition).

    Counts are offences, harm is count x the taxonomy's harm weight of the category.
    Areas of the table that are not among the units are counted as ``outside``.
    """
    rows = monthly_area_counts(store, units.edition)
    if rows.empty:
        raise ValueError(f"the store has no monthly area counts for {units.edition!r} units")
    pos = pd.Series(np.arange(len(units)), index=units.ids.astype(str))
    unit = pos.reindex(rows["unit_code"].astype(str).to_numpy()).fillna(-1).to_numpy(dtype=np.int64)
    g = group_positions(rows["group"], groups)
    n = rows["count"].to_numpy(dtype=float)
    weight = rows["harm"].to_numpy(dtype=float, na_value=0.0) if "harm" in rows else np.zeros(len(rows))
    counted = (unit >= 0) & (g >= 0)
    cells = pd.DataFrame({
        "unit": np.where(counted, unit, -1), "m": month_ordinal(rows["period_start"]),
        "g": np.where(counted, g, -1), "n": np.where(counted, n, 0.0),
        "harm": np.where(counted, n * weight, 0.0),
    })
    cells = cells[cells["m"] >= 0].groupby(CUBE_KEYS, as_index=False, sort=True).sum()
    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts.update(read=int(n.sum()), assigned=int(n[unit >= 0].sum()), outside=int(n[unit < 0].sum()))
    sums = finish_sums(cells, KERNEL_META, counts, units, groups)
    sums.source = "areas"
    return sums
