"""Monthly counts by area (e.g. the Met's ward tables) as an event source for units of that edition.

The store's ``area_counts`` table holds recorded offences per area code, month and
category (see ``sources.loaders.areas``). For units whose edition the table
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
from geo.editions import WARD_EDITIONS
from sources.loaders.crime import thin_counts
from sources.memstore import as_store

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


MIN_TARGET_SHARE = 0.8
"""Share of the target's offences an area table must hold when it lacks some target groups.

The Met's LSOA tables withhold sexual offences (small numbers, disclosure); the ward
tables of the same months hold them, at about 8% of serious violence. A table whose
groups make at least this share of the target in a source that has every group can
stand in for it, and every output says which groups it lacks; a table of burglaries
alone cannot."""


def group_totals(store, points: bool = True) -> dict[str, pd.Series]:
    """Offences per group of each monthly source: ``{"<edition>": ..., "points": ...}`` (the points,
    whose table may be large, only when ``points``)."""
    store = as_store(store)
    out: dict[str, pd.Series] = {}
    if points and store.has("events"):
        path = store.path("events") if hasattr(store, "path") else None
        groups = (pd.read_parquet(path, columns=["group"])["group"] if path is not None and path.exists()
                  else store.table("events")["group"])
        out["points"] = groups.astype("string").value_counts().astype(float)
    if store.has("area_counts"):
        table = store.table("area_counts")
        monthly = table[(table["period"].astype("string") == "month").fillna(False).to_numpy(dtype=bool)]
        for ed, rows in monthly.groupby(monthly["edition"].astype("string")):
            out[str(ed)] = rows.groupby(rows["group"].astype("string"))["count"].sum()
    return out


def target_coverage(store, edition: str, target_groups) -> dict:
    """Which target groups the monthly area table of ``edition`` holds, and what share of the target they are.

    ``share`` is measured in another source that holds every target group (another
    edition's area table, else the points): the covered groups' offences over all target
    offences there. ``None`` when no source holds them all (then a partial table is not used).
    """
    target = list(target_groups or [])
    tables = group_totals(store, points=False)
    mine = tables.get(edition, pd.Series(dtype=float))
    covered = [g for g in target if mine.get(g, 0) > 0]
    missing = [g for g in target if g not in covered]
    out = {"edition": edition, "covered": covered, "missing": missing, "share": 1.0 if not missing else None,
           "reference": None}
    if missing and covered:  # only then is another source's share needed (reading the points)
        for name, tot in group_totals(store).items():
            if name != edition and all(tot.get(g, 0) > 0 for g in target):
                out["share"] = float(sum(tot.get(g, 0) for g in covered) / sum(tot.get(g, 0) for g in target))
                out["reference"] = name
                break
    if not covered:
        out["share"] = 0.0
    return out


def coverage_note(coverage: dict) -> str | None:
    """One sentence for every output when a table lacks target groups, else None."""
    if not coverage.get("missing"):
        return None
    share = f"; in the {coverage['reference']} data they are {1 - coverage['share']:.0%} of the target" \
        if coverage.get("share") is not None and coverage.get("reference") else ""
    return (f"the {coverage['edition']} area tables hold no {' or '.join(coverage['missing'])} offences (the "
            f"publisher withholds them at this level): serious violence here is {' + '.join(coverage['covered'])} "
            f"only{share}")


def choose_source(store, edition: str, source: str = "auto", target_groups=None, history: int = 12,
                  cutoff=None) -> str:
    """``"points"`` or ``"areas"`` for units of ``edition``.

    ``"auto"``: areas when the store has monthly area counts for this edition that
    cover the target groups (all of them, or at least :data:`MIN_TARGET_SHARE` of the
    target's offences where another source can tell, or any of them when the store has no
    point events at all: a table of burglaries alone cannot stand in for the points) and whose latest cutoff with ``history`` complete months is
    later than the point events' (an isolated month of points years later does not
    count), or there are no point events; points otherwise. With a ``cutoff``, a source
    whose data covers that cutoff wins over one that does not. Asking for ``"areas"``
    where the store has none for the edition is an error.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source == "points":
        return "points"
    counts = monthly_area_counts(store, edition)
    coverage = target_coverage(store, edition, target_groups) if not counts.empty else None
    # with no point events at all the table is the only crime data: it serves whatever groups it has
    only_source = coverage is not None and bool(coverage["covered"]) and not as_store(store).has("events")
    enough = coverage is not None and (not coverage["missing"] or (coverage["share"] or 0) >= MIN_TARGET_SHARE
                                       or only_source)
    if counts.empty or not enough:
        if source == "areas":
            what = (f"of the target groups {coverage['missing']} (they are more than {1 - MIN_TARGET_SHARE:.0%} "
                    "of the target, or no source tells how much)") if not counts.empty else "at all"
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


def residents_by_group(store, edition: str) -> pd.DataFrame | None:
    """Census residents by ethnic group per unit of ``edition`` (rows unit code, one column per group).

    The ``ethnicity`` table is by LSOA (2021); LSOA 2011 units take the sum of their 2021
    parts and 2022 wards the sum of their LSOAs (ONS lookups in the store). None when the
    store has no such table or no way to reach ``edition`` (grid cells: the profile says so).
    """
    store = as_store(store)
    if not store.has("ethnicity"):
        return None
    eth = store.table("ethnicity")
    wide = eth.pivot_table(index="code", columns="group", values="residents", aggfunc="sum")
    have = str(eth["edition"].iloc[0]) if len(eth) else None
    if edition == have:
        return wide
    if have == "lsoa2021" and edition == "lsoa2011" and store.has("lookup_lsoa11_lsoa21"):
        look = store.table("lookup_lsoa11_lsoa21").drop_duplicates("lsoa21").set_index("lsoa21")["lsoa11"]
    elif have == "lsoa2021" and edition == "ward2022" and store.has("lookup_lsoa21_ward22"):
        look = store.table("lookup_lsoa21_ward22").set_index("lsoa21")["ward22"]
    else:
        return None
    mapped = wide.groupby(look.reindex(wide.index).to_numpy()).sum()
    return mapped if len(mapped) else None


def borough_identity(store) -> tuple[str | None, str]:
    """(GSS code, name) of the study area from the store's borough boundary, else the catalogue's name."""
    store = as_store(store)
    if store.has("units_borough"):
        b = store.units("borough")
        if len(b) == 1 and pd.notna(b["name"].iloc[0]):
            return str(b["code"].iloc[0]), str(b["name"].iloc[0])
    name = store.report().get("catalogue", {}).get("name") if hasattr(store, "report") else None
    return None, str(name or "study area")


def latest_wards(store):
    """The newest ward boundaries in the store (``code``, ``name``, geometry), or None."""
    for edition in reversed(WARD_EDITIONS):
        if store.has(f"units_{edition}"):
            return store.units(edition)
    return None
