"""Counts for the needs assessment: which sources a store has, and their counts per unit and month.

A store can hold offence counts in several shapes: police.uk points (``events``), the Met's
monthly ward tables and annual LSOA tables (``area_counts``, one ``source_file`` each), and
crime records keyed by LSOA. The needs assessment wants, for each of its parts, the freshest
complete data, so this module describes every source the same way (:class:`CountSource`:
its units, groups, months and complete months) and turns any of them into one tidy table of
counts per unit, month and offence group (:func:`unit_counts`). Choosing between sources is
the caller's job (``models.needs``); nothing here does statistics.

Rules
-----
* A source's categories are re-classified with the offence taxonomy (the scheme that maps
  most of its rows), so every count carries its group, serious-violence flag and harm weight.
* Categories and periods the ingest flagged as unusable (``category_all_zero``,
  ``period_doubled``, ``period_inflated``) are left out, with a note.
* A month is *complete* when the source has rows for it and its total is at least
  ``THIN_RATIO`` of the source's median month (the ingest's thin-month rule,
  ``sources.loaders.crime.thin_counts``, as ``FeatureBuilder.complete_months``);
  an annual source covers the 12 months of each year it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from features.context import youth_share_counts
from features.months import month, months_between, shift
from geo.units import UnitSet
from sources.loaders.crime import THIN_RATIO, thin_counts
from sources.memstore import as_store
from sources.taxonomy import UNMAPPED_GROUP, load_taxonomy, read_data_table

UNUSABLE_CHECKS = ("category_all_zero", "period_doubled", "period_inflated")
"""Ingest quality checks whose categories or periods are left out of the counts."""
COUNT_COLUMNS = ("unit_code", "edition", "month", "group", "serious_violence", "police_generated", "count", "harm")
POINTS = "points"
AREA = "area table"


@dataclass
class CountSource:
    """One source of offence counts in a store.

    Attributes
    ----------
    name : str
        What a reader calls it, e.g. ``"police.uk street-level crime (points)"``.
    kind : str
        :data:`POINTS` (located events, assignable to any unit set) or :data:`AREA`
        (counts keyed on the codes of ``editions``).
    period : str
        ``"month"`` or ``"year"`` (an annual table: 12-month windows are calendar years).
    editions : tuple of str
        Unit editions the counts are keyed on; empty for points.
    groups : tuple of str
        Offence groups with counts.
    months : list of Timestamp
        Months the source has rows for (each month of a year for annual sources).
    complete : list of Timestamp
        Months with complete data (see the module notes).
    files : list of str
    notes : list of str
        What was left out and why.
    """

    name: str
    kind: str
    period: str
    editions: tuple[str, ...]
    groups: tuple[str, ...]
    months: list[pd.Timestamp]
    complete: list[pd.Timestamp]
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    frame: pd.DataFrame = field(default=None, repr=False)  # area sources: COUNT_COLUMNS + period months
    events: gpd.GeoDataFrame | None = field(default=None, repr=False)  # point sources
    edition_months: dict[str, list[pd.Timestamp]] = field(default_factory=dict)
    has_core: bool = False  # its categories can say the core measure (the taxonomy's ``core`` flag)

    @property
    def first(self) -> pd.Timestamp | None:
        return min(self.months) if self.months else None

    @property
    def last(self) -> pd.Timestamp | None:
        return max(self.months) if self.months else None

    def covers(self, first, last) -> bool:
        """Every month of ``[first, last]`` is complete."""
        have = set(self.complete)
        return all(m in have for m in months_between(first, last))

    def window_ok(self, end, months: int = 12) -> bool:
        """A ``months``-long window ending at ``end`` (inclusive) can be counted from this source."""
        end = month(end)
        start = shift(end, -(months - 1))
        if self.period == "year" and not (start.month == 1 and months % 12 == 0):
            return False
        return self.covers(start, end)

    def latest_window_end(self, months: int = 12) -> pd.Timestamp | None:
        """The last month that ends a complete ``months``-long window, None if there is none."""
        for end in sorted(self.complete, reverse=True):
            if self.window_ok(end, months):
                return end
        return None

    def editions_for(self, first, last) -> list[str]:
        """Editions whose months include every month of ``[first, last]`` (area sources)."""
        span = set(months_between(first, last))
        return [e for e, ms in self.edition_months.items() if span <= set(ms)]

    def describe(self) -> str:
        if not self.months:
            return f"{self.name}: no months"
        what = "years" if self.period == "year" else "months"
        return f"{self.name}: {self.first:%Y-%m}..{self.last:%Y-%m} ({what}), groups {', '.join(self.groups)}"


def _flags_by_source(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in report.get("quality_flags", []):
        if f.get("check") in UNUSABLE_CHECKS and f.get("source"):
            out.setdefault(str(f["source"]), []).append(f)
    return out


def _flags_for(path: str, flags: dict[str, list[dict]]) -> list[dict]:
    """Flags whose ``source`` names this file (the report keeps paths relative to the data folder)."""
    return [f for src, fs in flags.items() if path == src or path.endswith("/" + src.lstrip("./")) for f in fs]


def _complete(totals: pd.Series) -> list[pd.Timestamp]:
    """Months present that are not thin (the ingest's rule, :func:`thin_counts`)."""
    thin = thin_counts(totals)
    return sorted(m for m in totals.index if m not in thin)


def _area_source(rows: pd.DataFrame, paths: list[str], period: str, taxonomy, flags,
                 name: str | None = None) -> CountSource | None:
    notes: list[str] = []
    path = paths[0]
    sub = rows["subcategory"] if "subcategory" in rows else pd.Series(pd.NA, index=rows.index, dtype="string")
    scheme, cls = taxonomy.best_scheme(rows["category"], sub)
    keep = (cls["group"] != UNMAPPED_GROUP).to_numpy()
    for f in [f for p in paths for f in _flags_for(p, flags)]:
        if f["check"] == "category_all_zero":
            bad = rows["category"].astype("string") == str(f.get("category"))
            keep &= ~bad.to_numpy()
            notes.append(f"category {f.get('category')!r} left out: the ingest found it zero everywhere")
        elif f.get("period"):
            bad = rows["period_start"].dt.strftime("%Y-%m") == str(f["period"])
            keep &= ~bad.to_numpy()
            notes.append(f"period {f['period']} left out: {f['message'].split(': ', 1)[-1]}")
    # groups that only describe parts of another (the taxonomy's *_detail groups) are not additive
    keep &= ~cls["group"].str.endswith("_detail").to_numpy()
    rows, cls, sub = rows[keep], cls[keep], sub[keep]
    if rows.empty:
        return None
    frame = pd.DataFrame({
        "unit_code": rows["unit_code"].astype("string").to_numpy(),
        "edition": rows["edition"].astype("string").to_numpy(),
        "month": pd.to_datetime(rows["period_start"]).dt.to_period("M").dt.to_timestamp().to_numpy(),
        "group": cls["group"].astype("string").to_numpy(),
        "serious_violence": cls["serious_violence"].to_numpy(dtype=bool),
        "core": cls["core"].to_numpy(dtype=bool),
        "police_generated": cls["police_generated"].to_numpy(dtype=bool),
        "count": rows["count"].to_numpy(dtype=float),
        "harm": (rows["count"].to_numpy(dtype=float) * cls["harm"].to_numpy(dtype=float)),
        "category": rows["category"].astype("string").to_numpy(),
        "subcategory": sub.astype("string").to_numpy(),
        "release": (rows["release"].astype("string").to_numpy() if "release" in rows
                    else pd.array([pd.NA] * len(rows), dtype="string")),
    })
    totals = frame.groupby("month")["count"].sum()
    complete = _complete(totals)
    if period == "year":
        expand = lambda ms: sorted({shift(m, k) for m in ms for k in range(12)})  # noqa: E731
        months, complete = expand(totals.index), expand(complete)
        edition_months = {e: expand(g["month"].unique()) for e, g in frame.groupby("edition")}
    else:
        months = sorted(totals.index)
        edition_months = {e: sorted(g["month"].unique()) for e, g in frame.groupby("edition")}
    thin = sorted(set(months) - set(complete))
    if thin and period == "month":
        notes.append(f"months with under {THIN_RATIO:.0%} of a usual month's total are not complete: "
                     + ", ".join(f"{m:%Y-%m}" for m in thin[:12]))
    editions = tuple(sorted(frame["edition"].dropna().unique()))
    label = name or Path(path).name
    name = f"{label} ({'monthly' if period == 'month' else 'annual'} counts by {', '.join(editions)})"
    if len(paths) > 1:
        notes.append(f"{len(paths)} files, each month from the latest release that covers it: "
                     + ", ".join(Path(p).name for p in paths))
    return CountSource(name=name, kind=AREA, period=period, editions=editions,
                       groups=tuple(sorted(frame["group"].unique())), months=list(months), complete=list(complete),
                       files=list(paths), notes=notes, frame=frame, edition_months=edition_months,
                       has_core=taxonomy.has_core(scheme))


def _points_source(events: gpd.GeoDataFrame) -> CountSource | None:
    if events is None or events.empty:
        return None
    ev = events[events["group"].astype("string") != "asb"]
    totals = ev.groupby("month").size().astype(float)
    complete = _complete(totals)
    notes = []
    thin = sorted(set(totals.index) - set(complete))
    if thin:
        notes.append("months with under 20% of a usual month's events are not complete: "
                     + ", ".join(f"{m:%Y-%m}" for m in thin))
    files = sorted(events["source_file"].astype(str).unique()) if "source_file" in events else []
    return CountSource(name="police.uk street-level crime (points)", kind=POINTS, period="month", editions=(),
                       groups=tuple(sorted(events["group"].astype(str).unique())), months=sorted(totals.index),
                       complete=complete, files=files, notes=notes, events=events)


def count_sources(store) -> list[CountSource]:
    """Every source of offence counts in ``store``: the points first, then each area table.

    Parameters
    ----------
    store : Store, path or mapping of table name -> DataFrame

    Returns
    -------
    list of CountSource
    """
    store = as_store(store)
    taxonomy = load_taxonomy()
    report = store.report() if hasattr(store, "report") else {}
    flags = _flags_by_source(report)
    out: list[CountSource] = []
    if store.has("events"):
        src = _points_source(store.table("events"))
        if src is not None:
            out.append(src)
    if store.has("area_counts"):
        ac = store.table("area_counts")
        ac = ac.assign(source_file=ac["source_file"].astype(str), period=ac["period"].astype(str))
        # the Met's overlapping releases were resolved at ingest to one release per month, whatever file
        # each month came from: together they are one source per family of units (ward, LSOA)
        family = ac["edition"].astype("string").str.extract(r"^([a-z]+)", expand=False).fillna("area")
        released = ac["release"].notna() if "release" in ac else pd.Series(False, index=ac.index)
        ac = ac.assign(_source=np.where(released.to_numpy(), "Met " + family.astype(str) + " tables", ac["source_file"]))
        for (key, period), rows in ac.groupby(["_source", "period"], sort=True):
            paths = sorted(rows["source_file"].unique())
            src = _area_source(rows.drop(columns="_source"), paths, period, taxonomy, flags,
                               name=key if len(paths) > 1 else None)
            if src is not None:
                out.append(src)
    return out


def unit_counts(source: CountSource, units: UnitSet, first=None, last=None) -> pd.DataFrame:
    """Counts of ``source`` per unit of ``units``, month and offence group.

    Columns: ``unit_id``, ``month``, ``group``, ``serious_violence``, (``core`` when the source
    has the core measure), ``police_generated``, ``count``, ``harm``. Rows exist only for what happened (a unit and month with nothing
    is absent: treat it as 0 inside complete months). Points are assigned by
    point-in-polygon; area counts are taken as they are when their edition is the units'
    edition, and refused otherwise (no silent areal interpolation of crime counts).

    Raises
    ------
    ValueError
        The source is an area table keyed on other units.
    """
    cols = ["unit_id", "month", "group", "serious_violence", "police_generated", "count", "harm"]
    if source.kind == POINTS:
        ev = source.events
        if first is not None:
            ev = ev[ev["month"] >= month(first)]
        if last is not None:
            ev = ev[ev["month"] <= month(last)]
        pos = units.assign(ev)
        inside = pos >= 0
        ids = units.ids.to_numpy()
        frame = pd.DataFrame({
            "unit_id": ids[pos[inside]], "month": ev["month"].to_numpy()[inside],
            "group": ev["group"].astype("string").to_numpy()[inside],
            "serious_violence": ev["serious_violence"].to_numpy(dtype=bool)[inside],
            "police_generated": ev["police_generated"].to_numpy(dtype=bool)[inside],
            "count": 1.0, "harm": ev["harm"].to_numpy(dtype=float)[inside],
        })
    else:
        if units.edition not in source.editions:
            raise ValueError(f"{source.name}: counts are keyed on {list(source.editions)}, not {units.edition}; "
                             "pick units of one of those editions")
        f = source.frame[source.frame["edition"] == units.edition]
        if first is not None:
            f = f[f["month"] >= month(first)]
        if last is not None:
            f = f[f["month"] <= month(last)]
        if source.has_core:
            cols = [*cols[:4], "core", *cols[4:]]
        frame = f.rename(columns={"unit_code": "unit_id"})[cols]
        frame = frame[frame["unit_id"].isin(set(units.ids))]
    keys = [c for c in cols if c not in ("count", "harm")]
    return frame.groupby(keys, as_index=False, observed=True)[["count", "harm"]].sum()[cols]


def borough_monthly(source: CountSource) -> pd.DataFrame:
    """Borough totals per month and group (every edition of an area source summed).

    Columns ``month``, ``group``, ``serious_violence``, (``core`` when the source has the core
    measure), ``police_generated``, ``count``, ``harm``. For points every located event of the store counts (they were already checked to lie in
    the study area at ingest).
    """
    keys = ["month", "group", "serious_violence", "police_generated"]
    if source.kind == POINTS:
        ev = source.events
        frame = pd.DataFrame({"month": ev["month"].to_numpy(), "group": ev["group"].astype("string").to_numpy(),
                              "serious_violence": ev["serious_violence"].to_numpy(dtype=bool),
                              "police_generated": ev["police_generated"].to_numpy(dtype=bool),
                              "count": 1.0, "harm": ev["harm"].to_numpy(dtype=float)})
    else:
        frame = source.frame
        if source.has_core:
            keys = [*keys, "core"]
    return frame.groupby(keys, as_index=False, observed=True)[["count", "harm"]].sum()


def scheme_changes(source: CountSource) -> list[pd.Timestamp]:
    """Months where an area source's set of category names changes from the month before.

    The Met renamed and regrouped its categories between releases (e.g. upper-case names and
    new minor categories from 2023-04 and 2024-01): a level shift in a series at such a month
    may be a change of recording, not of crime.
    """
    if source.kind != AREA or source.period != "month" or source.frame is None:
        return []
    names = source.frame["category"].astype(str) + " / " + source.frame["subcategory"].astype(str)
    by_month = names.groupby(source.frame["month"]).agg(frozenset)
    months = sorted(by_month.index)
    return [m for prev, m in zip(months, months[1:], strict=False)
            if by_month[m] != by_month[prev] and shift(prev, 1) == m]


RECORDING_CHANGES = "recording_changes.csv"
"""Known changes in how police record crime (``sources/data``): month, sources, short, change, effect."""


def recording_changes(first=None, last=None, path=None) -> pd.DataFrame:
    """Known recording changes (e.g. the Met's move to CONNECT, 2024-02) between ``first`` and ``last``.

    The table is data, not code: an analyst adds a row for a change they know of. ``sources``
    names the taxonomy schemes (``met``, ``policeuk``) whose counts it affects, ``;``-separated.

    Raises
    ------
    ValueError
        A row whose month is not ``YYYY-MM`` (naming the file and row).
    """
    table, where = read_data_table(RECORDING_CHANGES, path)
    parsed = pd.to_datetime(table["month"], format="%Y-%m", errors="coerce")
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise ValueError(f"{where} row {row + 2}: month must be YYYY-MM, got {table['month'].iloc[row]!r}")
    table["month"] = parsed
    keep = pd.Series(True, index=table.index)
    if first is not None:
        keep &= table["month"] >= month(first)
    if last is not None:
        keep &= table["month"] <= month(last)
    return table[keep].reset_index(drop=True)


def population_bands(store, edition: str, year: int) -> pd.DataFrame:
    """The population table's age bands for one edition and year (``code, age_from, age_to, count``)."""
    store = as_store(store)
    pop = store.table("population")
    pop = pop[(pop["edition"].astype("string") == edition) & (pop["year"] == int(year))]
    return pop.assign(code=pop["code"].astype("string"))[["code", "age_from", "age_to", "count"]]


def population_years(store) -> list[tuple[int, str]]:
    """(year, edition) pairs the store's population table holds, oldest first."""
    store = as_store(store)
    if not store.has("population"):
        return []
    pop = store.table("population")
    pairs = pop[["year", "edition"]].drop_duplicates()
    return sorted((int(y), str(e)) for y, e in pairs.itertuples(index=False))


def unit_population(store, units: UnitSet, context, cutoff, pick: tuple[int, str] | None = None) -> pd.DataFrame:
    """Residents and residents aged 10-24 per unit, for the population year used at ``cutoff``
    (or the (year, edition) ``pick``, one of ``context.population_years``).

    The year follows :meth:`features.context.Context.population_year` (the latest estimate
    describing a date before the cutoff). Residents are summed directly when the estimate is
    on the units' own edition; through the ONS best-fit lookup when one links the estimate's
    LSOAs to the units (LSOA 2021 -> ward 2022, or LSOA 2021 -> LSOA 2011 when every 2021 LSOA
    has one 2011 parent); else by areal interpolation (``context.population``).

    Returns
    -------
    DataFrame indexed by ``unit_id`` with ``population`` and ``aged_10_24``; ``attrs`` holds
    ``year``, ``edition`` (of the estimate) and ``method``.
    """
    store = as_store(store)
    ids = units.ids
    pick = pick or context.population_year(month(cutoff))
    if pick is None:
        out = pd.DataFrame({"population": np.nan, "aged_10_24": np.nan}, index=ids)
        out.attrs = {"year": None, "edition": None, "method": "no population table"}
        return out
    year, edition = pick
    bands = population_bands(store, edition, year)
    bands = bands.assign(youth=youth_share_counts(bands))
    per = bands.groupby("code")[["count", "youth"]].sum()
    link, method = None, None
    if edition == units.edition:
        link, method = pd.Series(per.index, index=per.index), "direct"
    elif edition == "lsoa2021" and units.edition == "ward2022" and store.has("lookup_lsoa21_ward22"):
        lk = store.table("lookup_lsoa21_ward22")
        link = pd.Series(lk["ward22"].astype(str).to_numpy(), index=lk["lsoa21"].astype(str).to_numpy())
        method = "LSOA 2021 summed to wards by the ONS best-fit lookup"
    elif edition == "lsoa2021" and units.edition == "lsoa2011" and store.has("lookup_lsoa11_lsoa21"):
        lk = store.table("lookup_lsoa11_lsoa21")
        parents = lk.groupby(lk["lsoa21"].astype(str))["lsoa11"].nunique()
        if (parents == 1).all():
            link = pd.Series(lk["lsoa11"].astype(str).to_numpy(), index=lk["lsoa21"].astype(str).to_numpy())
            link = link[~link.index.duplicated()]
            method = "LSOA 2021 summed to their LSOA 2011 parents (ONS lookup)"
    if link is not None:
        target = link.reindex(per.index)
        summed = per.groupby(target.to_numpy()).sum()
        out = summed.reindex(ids).fillna(0.0).rename(columns={"count": "population", "youth": "aged_10_24"})
    else:
        total, youth = context.population(month(cutoff), pick)
        out = pd.DataFrame({"population": total, "aged_10_24": youth}, index=ids)
        method = f"areal interpolation from {edition} (uniform density within each source area)"
    out.index.name = "unit_id"
    out.attrs = {"year": int(year), "edition": edition, "method": method}
    return out
