"""The Strategic Needs Assessment evidence: every table and layer of the pack, from one store.

:func:`assess` picks, for each part of the needs assessment, the freshest complete data the
store has, computes the part, and records where each figure comes from (source, period,
units, residents year) so that no figure mixes periods silently:

1. **Borough profile**: residents and ages (10-24 share) by ward and LSOA; deprivation.
2. **Serious violence data and trends**: rolling 12-month counts, rates per 1,000 and change
   per offence group from the freshest monthly source; the monthly series with an STL trend
   and seasonality decomposition; what open data cannot show.
3. **Spatial distribution**: ward rates in bands, empirical-Bayes smoothed rates, hot spots and
   emerging hot spots, operational areas, concentration (top 5% share, Gini, Lorenz).
4. **Comparison** with the region and the most similar authorities (a comparison folder).
5. **Risk and protective factors**: an area-level negative binomial model of serious-violence
   rates, reported as rate ratios with intervals (associations, not causes); assets by ward.
6. **Monitoring framework**: KPIs per borough, ward and operational area, compared with a
   previous pack's baseline when given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from features.areas import borough_identity
from features.context import Context
from features.figures import (
    ALL_MEASURE,
    CORE_MEASURE,
    KNIFE_SERIES,
    KNIFE_SUBTYPES,
    SV_MEASURE,
    change_interval,
    dashboard_cohorts,
    dashboard_figures,
    knife_figures,
    window_figures,
)
from features.months import label, month, months_apart, shift
from features.needs import (
    AREA,
    POINTS,
    CountSource,
    borough_monthly,
    count_sources,
    population_bands,
    recording_changes,
    scheme_changes,
    unit_counts,
    unit_population,
)
from features.units import build_units
from geo.editions import LSOA_EDITIONS, WARD_EDITIONS
from geo.units import UnitSet
from models.needs import cohorts, monitoring, partner, risk, spatial, trends
from models.needs import compare as cmp
from sources.compare import CompareData
from sources.memstore import as_store

SV_GROUPS = ("violence", "robbery", "sexual")
"""Offence groups that make up serious violence (a source covering more of them describes it better)."""
WINDOW = 12
LSOA_LAG = 2
"""Months an LSOA table may end before the pack's window and still carry the hot spots (the finest current units)."""
WARDS_THEN_LSOAS = (*reversed(WARD_EDITIONS), *reversed(LSOA_EDITIONS))
"""Unit editions for the ward maps, in the order tried: wards before LSOAs, the newest of each first."""
GAPS_FILLED = {"knife": "Knife-related offences", "gun": "Gun-related offences",
               "domestic abuse": "Domestic abuse-related offences"}
"""Open-data gaps (:data:`models.needs.trends.OPEN_DATA_GAPS`) a dashboard cohort fills when present."""
ETHNICITY_RECORDED = 0.8
"""Share of a window's searches that must record ethnicity for a disproportionality figure."""


@dataclass
class Assessment:
    """What the evidence pack shows: tables (each written as CSV), map layers and provenance.

    Attributes
    ----------
    area_code, area_name : str
        The borough, from the store's own boundary.
    period_end : str
        Last month ("YYYY-MM") of the rolling 12-month window of the trends and spatial parts.
    tables : dict of str -> DataFrame
        Every table of the pack, by file stem.
    layers : dict of str -> GeoDataFrame
        Polygons and points the maps draw (EPSG:27700).
    parts : list of dict
        One row per part: section, what, source, period, units, residents.
    meta : dict
        Settings, notes per section, decomposition and model statistics.
    """

    area_code: str | None
    area_name: str
    period_end: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    parts: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def note(self, section: str, text: str) -> None:
        self.meta.setdefault("notes", {}).setdefault(section, []).append(text)

    def part(self, section: str, what: str, source: str, period: str, units: str, residents: str) -> None:
        self.parts.append({"section": section, "what": what, "source": source, "period": period,
                           "units": units, "residents": residents})



def _sv_groups(source: CountSource) -> int:
    return len(set(source.groups) & set(SV_GROUPS))


def trend_source(sources: list[CountSource]) -> CountSource:
    """The monthly source that describes serious violence best: most serious-violence groups, then
    the latest complete 12-month window, then the longest."""
    monthly = [s for s in sources if s.period == "month" and _sv_groups(s) and s.latest_window_end(WINDOW)]
    if not monthly:
        raise ValueError("the store has no monthly offence counts with 12 complete months of violence, robbery "
                         "or sexual offences (police.uk points or Met ward tables); nothing to assess")
    return max(monthly, key=lambda s: (_sv_groups(s), s.latest_window_end(WINDOW), len(s.complete)))


def resolve_period_end(source: CountSource, period_end=None) -> pd.Timestamp:
    """``period_end`` if the source has its 12 months complete, else an error naming the latest usable."""
    latest = source.latest_window_end(WINDOW)
    if period_end is None:
        return latest
    end = month(period_end)
    if not source.window_ok(end, WINDOW):
        bad = [f"{m:%Y-%m}" for m in pd.date_range(shift(end, -(WINDOW - 1)), end, freq="MS") if m not in set(source.complete)]
        raise ValueError(f"--period-end {end:%Y-%m}: {source.name} lacks complete data for {', '.join(bad[:6])}"
                         f"{'...' if len(bad) > 6 else ''}; the latest usable period end is {latest:%Y-%m}")
    return end


def _edition_for(store, source: CountSource, first, last, prefer: tuple[str, ...]) -> str | None:
    """The first edition of ``prefer`` the source can count over ``[first, last]``."""
    if source.kind == AREA:
        have = source.editions_for(first, last)
        return next((e for e in prefer if e in have), None)
    return next((e for e in prefer if store.has(f"units_{e}")), None)


def _lsoa_source(sources: list[CountSource], end: pd.Timestamp) -> tuple[CountSource, pd.Timestamp, str] | None:
    """The source with the latest complete 12-month window (up to ``end``) at LSOA level, its end and edition."""
    best = None
    for s in sources:
        if not _sv_groups(s):
            continue
        eds = list(LSOA_EDITIONS) if s.kind == POINTS else [e for e in s.editions if e.startswith("lsoa")]
        if not eds:
            continue
        ends = [m for m in s.complete if m <= end and s.window_ok(m, WINDOW)]
        if not ends:
            continue
        e = max(ends)
        if s.kind == AREA:
            eds = [x for x in eds if x in s.editions_for(shift(e, -(WINDOW - 1)), e)]
            if not eds:
                continue
        key = (e, _sv_groups(s))
        if best is None or key > best[0]:
            best = (key, s, e, eds[0])
    return None if best is None else best[1:]


def _complete_for(source: CountSource, edition: str) -> list[pd.Timestamp]:
    """Complete months of a source on one edition (an area table changes editions between releases)."""
    if source.kind == AREA and edition in source.edition_months:
        have = set(source.edition_months[edition])
        return [m for m in source.complete if m in have]
    return list(source.complete)


def _residents_text(pop: pd.DataFrame) -> str:
    a = pop.attrs
    if a.get("year") is None:
        return "no residents table"
    how = a["method"]
    short = ("" if how == "direct" else ", best-fit lookup" if "lookup" in how else ", interpolated")
    return f"residents {a['year']} ({a['edition']}{short})"


def _context_frame(ctx: Context, units: UnitSet, pop: pd.DataFrame, cutoff) -> pd.DataFrame:
    """Context factors per unit as the feature builder defines them, with this pack's residents."""
    c = month(cutoff)
    cols = dict(ctx.static())
    cols.update(ctx.footfall(c))
    cols.update(ctx.exclusions(c))
    X = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in cols.items()}, index=units.ids)
    total = pop["population"].reindex(units.ids).to_numpy(dtype=float)
    X["population"] = total
    X["pop_density"] = total / (units.frame["area_m2"].to_numpy() / 1e6)
    X["share_10_24"] = np.where(total > 0, pop["aged_10_24"].reindex(units.ids).to_numpy() / np.where(total > 0, total, 1), np.nan)
    return X


def _window_counts(counts: pd.DataFrame, ids, end, measure: str = SV_MEASURE, value: str = "count") -> pd.Series:
    end = month(end)
    sel = (counts["month"] >= shift(end, -(WINDOW - 1))) & (counts["month"] <= end)
    sel &= counts["serious_violence"] if measure == SV_MEASURE else counts["group"] == measure
    return counts[sel].groupby("unit_id")[value].sum().reindex(ids, fill_value=0.0)


def borough_headline(source: CountSource, end, population: float | None) -> pd.DataFrame:
    """The pack's headline: the borough's 12 months to ``end`` per offence group and measure (core when the
    source has it, broad, all offences), labelled, in reporting order (:func:`features.figures.window_figures`,
    the computation the briefing's figures use too)."""
    measures = trends.ordered_measures(source.groups)
    headline = window_figures(borough_monthly(source), end, population=population, complete=source.complete,
                              groups=measures)
    headline = trends.sort_measures(headline)
    headline.insert(1, "label", headline["measure"].map(trends.label))
    return headline


def _trend_estimates(series: pd.DataFrame, headline: pd.DataFrame, measures, changes: pd.DataFrame) -> pd.DataFrame:
    """Change statements with intervals: the rolling 12-month change and a Theil-Sen trend per measure."""
    h = headline.set_index("measure")
    rows = []
    for m in measures:
        r = h.loc[m]
        if pd.notna(r["previous"]):
            # the change in the 12-month total, per month: (this year - last year) / 12, its interval from the
            # rate ratio's (features.figures.change_interval)
            rows.append({"measure": m, "label": trends.label(m), "method": "rolling 12-month change, per month",
                         "estimate": (r["count"] - r["previous"]) / 12.0,
                         "lo": r["previous"] * r["change_lo_pct"] / 1200.0,
                         "hi": r["previous"] * r["change_hi_pct"] / 1200.0,
                         "period": f"{r['period_start']}..{r['period_end']} vs {r['previous_start']}..{r['previous_end']}",
                         "spans_recording_change": ", ".join(
                             c.short for c in changes.itertuples()
                             if pd.Timestamp(r["previous_start"] + "-01") <= c.month <= pd.Timestamp(r["period_end"] + "-01"))})
        s = series[series["measure"] == m].set_index("month")["count"]
        try:
            t = trends.robust_trend(s)
        except ValueError:
            continue
        rows.append({"measure": m, "label": trends.label(m), "method": t["method"] + ", change in offences a month per year",
                     "estimate": t["per_year"], "lo": t["lo"], "hi": t["hi"], "period": f"{t['first']}..{t['last']}",
                     "spans_recording_change": ", ".join(
                         c.short for c in changes.itertuples()
                         if pd.Timestamp(t["first"] + "-01") <= c.month <= pd.Timestamp(t["last"] + "-01"))})
    return pd.DataFrame(rows, columns=["measure", "label", "method", "estimate", "lo", "hi", "period",
                                       "spans_recording_change"])


def minor_categories(source: CountSource, end, population: float | None) -> pd.DataFrame | None:
    """Every minor category of an area source in the 12 months to ``end``, its group and whether it is
    in the core and the broad measure (:func:`features.figures.window_figures` per category).

    Category names are compared case-insensitively (the Met's schemes differ in case); a minor
    category that exists in only one of the two windows (a scheme change) has no change figure.
    None for sources without minor categories (police.uk points).
    """
    if source.kind != AREA or source.frame is None or source.frame["subcategory"].isna().all():
        return None
    f = source.frame
    minor = (f["category"].str.strip().str.casefold().str.capitalize() + " / "
             + f["subcategory"].fillna("-").str.strip().str.casefold().str.capitalize())
    long = f.assign(group=minor.to_numpy(), core=f["core"] if "core" in f else False)
    names = sorted(minor.unique())
    fig = window_figures(long, end, population=population, complete=source.complete, groups=names)
    fig = fig[fig["measure"].isin(names)].rename(columns={"measure": "minor_category"})
    flags = long.assign(parent=f["group"].to_numpy()).groupby("group").agg(
        group=("parent", "first"), broad=("serious_violence", "any"), core=("core", "any"))
    fig = fig.join(flags, on="minor_category")
    fig["in_core"] = fig["core"].map({True: "core", False: ""})
    fig["in_broad"] = fig["broad"].map({True: "broad", False: ""})
    fig = fig[(fig["count"] > 0) | (fig["previous"].fillna(0) > 0)]
    return trends.sort_measures(fig, "group").reset_index(drop=True)


def assess(store, *, compare: CompareData | None = None, period_end=None, baseline: pd.DataFrame | None = None,
           hotspot_options: dict | None = None, seed: int = 0, knn: int = 8, distance_band_m: float = 500.0,
           progress: Callable[[str], None] | None = None) -> Assessment:
    """Compute every part of the needs assessment from ``store`` (see the module notes).

    Parameters
    ----------
    store : Store, path or mapping of table name -> DataFrame
    compare : CompareData, optional
        A comparison folder (:func:`sources.compare.read_compare_folder`).
    period_end : month, optional
        Last month of the 12-month window; default the latest with 12 complete months.
    baseline : DataFrame, optional
        A previous pack's KPI baseline (:func:`models.needs.monitoring.read_baseline`).
    hotspot_options : dict, optional
        Keyword arguments of :func:`models.hotspots.analysis.analyse_hotspots` (neighbourhood,
        inference, permutations, FDR level, ...); its defaults where absent.
    seed : int
        Seed of every random draw (hot spot permutations, residual Moran's I).

    Raises
    ------
    ValueError
        No monthly offence counts, or ``period_end`` without 12 complete months.
    """
    say = progress or (lambda _m: None)
    store = as_store(store)
    code, name = borough_identity(store)
    sources = count_sources(store)
    src = trend_source(sources)
    end = resolve_period_end(src, period_end)
    cutoff, start, prev_start = shift(end, 1), shift(end, -(WINDOW - 1)), shift(end, -(2 * WINDOW - 1))
    a = Assessment(code, name, label(end))
    hs_options = {"seed": seed, **(hotspot_options or {})}
    a.meta.update({"hotspot_options": hs_options, "seed": seed, "window_months": WINDOW,
                   "sources": [s.describe() for s in sources], "trend_source": src.name,
                   "source_notes": {s.name: s.notes for s in sources if s.notes}})
    period = f"{start:%Y-%m}..{end:%Y-%m}"
    prev_period = f"{prev_start:%Y-%m}..{shift(start, -1):%Y-%m}"
    a.meta.update({"period": period, "previous_period": prev_period})

    # ---- units: wards for maps and KPIs ------------------------------------------------------
    ward_ed = _edition_for(store, src, prev_start, end, WARDS_THEN_LSOAS) \
        or _edition_for(store, src, start, end, WARDS_THEN_LSOAS)
    if ward_ed is None:
        raise ValueError(f"{src.name}: no unit edition covers {period}; the counts change units inside the window")
    say(f"units {ward_ed}: residents, deprivation and context")
    wards = build_units(store, ward_ed, knn=knn, distance_band_m=distance_band_m)
    ward_ctx = Context(store, wards)
    ward_pop = unit_population(store, wards, ward_ctx, cutoff)
    residents = _residents_text(ward_pop)
    pop_year = ward_pop.attrs.get("year")
    borough_pop = float(population_bands(store, ward_pop.attrs["edition"], pop_year)["count"].sum()) \
        if pop_year is not None else None
    a.meta.update({"population_year": pop_year, "population_edition": ward_pop.attrs.get("edition"),
                   "borough_population": borough_pop, "ward_edition": ward_ed,
                   "ward_population_method": ward_pop.attrs.get("method")})

    # ---- 1. profile ---------------------------------------------------------------------------
    say("borough profile")
    _profile(a, store, wards, ward_ctx, ward_pop, cutoff)

    # ---- 2. trends ----------------------------------------------------------------------------
    say("serious violence data and trends")
    measures, all_measures, headline = _trends(a, src, end, borough_pop, pop_year)

    # ---- 3. spatial ---------------------------------------------------------------------------
    say(f"spatial distribution on {ward_ed}")
    ward_complete = _complete_for(src, ward_ed)
    # every month up to the end: the emerging hot spots look back 12 quarters, further than the windows
    wc = unit_counts(src, wards, last=end)
    per_ward = _ward_rates(a, src, wards, wc, ward_pop, end, ward_complete, measures, headline, residents)

    lsoa = _lsoa_source(sources, end)
    hot = _hotspots(a, store, src, lsoa, start, end, cutoff, wards, wc, ward_pop, measures, hs_options, knn,
                    distance_band_m, say)

    _concentration(a, store, lsoa, [(hot.edition, hot.units, hot.counts, hot.end, hot.src.name)]
                   + ([(ward_ed, wards, wc, end, src.name)] if ward_ed != hot.edition else []), knn, distance_band_m)

    # ---- 3b. ward funnel limits, cohorts, stop and search ------------------------------------------
    _funnels(a, per_ward, headline)
    _population_bases(a, store, wards, ward_ctx, ward_pop, per_ward, cutoff)
    say("cohorts: knife, gun, domestic abuse, hate crime; stop and search")
    _cohorts(a, store, wards, ward_pop, borough_pop, pop_year, compare)
    _stop_search(a, store, pop_year)
    _partner(a, store, wards, end)

    # ---- 4. comparison ------------------------------------------------------------------------
    if compare is not None:
        say("comparison with the region and similar boroughs")
        _compare(a, compare, end, [SV_MEASURE, *measures, ALL_MEASURE], headline)
    else:
        a.note("comparison", "no comparison folder given (--compare or the compare_dir setting)")

    # ---- 5. risk and protective factors -------------------------------------------------------
    say("risk and protective factors")
    _risk(a, store, sources, src, end, wards, ward_ctx, wc, ward_pop, knn, distance_band_m, seed)
    _assets(a, store, wards, ward_ctx, ward_pop)

    # ---- 6. monitoring ------------------------------------------------------------------------
    say("monitoring framework")
    _monitoring(a, src, end, wards, wc, ward_pop, ward_complete, headline, all_measures, pop_year, residents,
                hot, baseline)
    return a


def _trends(a: Assessment, src: CountSource, end, borough_pop, pop_year) -> tuple[list, list, pd.DataFrame]:
    """Section 2: the borough's rolling 12-month headline, minor categories, monthly series,
    trend estimates and STL decomposition; returns the measures, every measure of the series
    and the headline."""
    period, prev_period = a.meta["period"], a.meta["previous_period"]
    measures = trends.ordered_measures(src.groups)
    bm = borough_monthly(src)
    headline = borough_headline(src, end, borough_pop)
    headline["population"], headline["population_year"], headline["source"] = borough_pop, pop_year, src.name
    a.tables["headline_rolling_12m"] = headline.reset_index(drop=True)
    gaps = pd.DataFrame(trends.OPEN_DATA_GAPS, columns=["measure", "why open data cannot show it", "where it lives"])
    a.tables["open_data_gaps"] = gaps
    a.part("2. Serious violence data and trends", "rolling 12-month counts, rates and change", src.name,
           f"{period} vs {prev_period}", "borough", f"residents {pop_year} ({borough_pop:,.0f})"
           if borough_pop else "no residents table")
    minors = minor_categories(src, end, borough_pop)
    if minors is not None:
        a.tables["minor_categories_12m"] = minors
        a.part("2. Serious violence data and trends", "every minor category (core and broad membership)",
               src.name, f"{period} vs {prev_period}", "borough", f"residents {pop_year}" if pop_year else "no residents table")
    if not src.has_core:
        a.note("trends", f"{src.name} has no minor categories: the core measure (violence with injury, homicide, "
               "personal robbery, sexual offences) cannot be separated; the broad measure is the headline")
    run = trends.consecutive_run(src.complete, end)
    all_measures = [*([CORE_MEASURE] if src.has_core else []), SV_MEASURE, *measures, ALL_MEASURE]
    series = trends.monthly_series(bm, run, all_measures)
    a.tables["monthly_series"] = series
    changes = [m for m in scheme_changes(src) if run[0] <= m <= end]
    a.meta["scheme_changes"] = [label(m) for m in changes]
    scheme = "policeuk" if src.kind == POINTS else "met"
    rec = recording_changes(run[0], end)
    rec = rec[rec["sources"].str.split(";").map(lambda v: scheme in v)]
    a.meta["recording_changes"] = [{"month": label(r.month), "short": r.short, "change": r.change, "effect": r.effect}
                                   for r in rec.itertuples()]
    a.tables["trend_estimates"] = _trend_estimates(series, headline, [m for m in (CORE_MEASURE, SV_MEASURE)
                                                                      if m in set(series["measure"])], rec)
    sv = series[series["measure"] == SV_MEASURE].set_index("month")["count"]
    a.part("2. Serious violence data and trends", "monthly series and rolling 12-month totals", src.name,
           f"{run[0]:%Y-%m}..{end:%Y-%m}", "borough", "counts (no rate)")
    try:
        stl = trends.decompose(sv)
        a.tables["stl_serious_violence"] = stl
        a.meta["stl"] = stl.attrs
        a.part("2. Serious violence data and trends", "trend and seasonality (STL)", src.name,
               f"{run[0]:%Y-%m}..{end:%Y-%m}", "borough", "counts (no rate)")
    except ValueError as exc:
        a.note("trends", f"no trend/seasonality decomposition: {exc}")
    return measures, all_measures, headline


def _ward_rates(a: Assessment, src: CountSource, wards: UnitSet, wc: pd.DataFrame, ward_pop: pd.DataFrame, end,
                ward_complete, measures, headline: pd.DataFrame, residents: str) -> pd.DataFrame:
    """Section 3 (wards): each ward's rolling 12-month counts, rates, smoothed rates and rate
    bands (table and map layer); returns the per-ward table."""
    period, pop_year, ward_ed = a.meta["period"], a.meta["population_year"], a.meta["ward_edition"]
    per_ward = window_figures(wc, end, by="unit_id", index=wards.ids, population=ward_pop["population"],
                              complete=ward_complete, groups=measures)
    rates_b = headline.set_index("measure")["rate_per_1000"]
    bands_rows, wide = [], wards.frame[["unit_id", "name", "area_m2", "geometry"]].copy()
    wide["population"] = ward_pop["population"].reindex(wide["unit_id"]).to_numpy()
    for m, part in per_ward.groupby("measure", sort=False):
        part = part.set_index("unit_id").reindex(wide["unit_id"])
        bounds = spatial.rate_bands(m, float(rates_b.get(m, np.nan)))
        eb = spatial.smoothed_rates(part["count"].to_numpy(), wide["population"].to_numpy())
        per_ward.loc[per_ward["measure"] == m, "rate_eb_per_1000"] = pd.Series(eb, index=part.index) \
            .reindex(per_ward.loc[per_ward["measure"] == m, "unit_id"]).to_numpy()
        band = spatial.band_of(part["rate_per_1000"].to_numpy(), bounds)
        labels = spatial.band_labels(bounds)
        per_ward.loc[per_ward["measure"] == m, "band"] = pd.Series(
            [labels[i] if i >= 0 else "" for i in band], index=part.index) \
            .reindex(per_ward.loc[per_ward["measure"] == m, "unit_id"]).to_numpy()
        wide[f"{m}__count"], wide[f"{m}__rate"] = part["count"].to_numpy(), part["rate_per_1000"].to_numpy()
        wide[f"{m}__eb"], wide[f"{m}__band"] = eb, band
        wide[f"{m}__change"] = part["change_pct"].to_numpy()
        bands_rows.append({"measure": m, "bounds": ";".join(f"{b:g}" for b in bounds), "labels": "|".join(labels),
                           "rule": "published by the needs assessment" if m in spatial.PUBLISHED_BANDS
                           else f"{'/'.join(f'{r:g}' for r in spatial.RELATIVE_BANDS)} x the borough rate"})
    per_ward.insert(1, "name", wards.frame.set_index("unit_id")["name"].reindex(per_ward["unit_id"]).to_numpy())
    per_ward["population"] = ward_pop["population"].reindex(per_ward["unit_id"]).to_numpy()
    per_ward["population_year"] = pop_year
    a.tables["ward_rolling_12m"] = trends.sort_measures(per_ward).reset_index(drop=True)
    a.tables["rate_bands"] = pd.DataFrame(bands_rows)
    a.layers["wards"] = gpd.GeoDataFrame(wide, geometry="geometry", crs=wards.frame.crs)
    a.part("3. Spatial distribution", "ward rates, bands and smoothed rates", src.name, period,
           f"{ward_ed} ({len(wards)})", residents)
    return per_ward


@dataclass
class HotspotUnits:
    """The units the hot spots and operational areas of a pack are on, with their counts and residents."""

    src: CountSource
    end: pd.Timestamp
    edition: str
    units: UnitSet
    counts: pd.DataFrame
    population: pd.DataFrame
    areas: gpd.GeoDataFrame


def _hotspots(a: Assessment, store, src: CountSource, lsoa, start, end, cutoff, wards: UnitSet, wc: pd.DataFrame,
              ward_pop: pd.DataFrame, measures, hs_options: dict, knn: int, distance_band_m: float,
              say) -> HotspotUnits:
    """Section 3 (hot spots): Gi*, LISA, emerging hot spots and operational areas on the finest
    current units (an area source's LSOA tables when they end within :data:`LSOA_LAG` months of
    the window: the Met's LSOA tables run a month behind its ward tables), and LSOA rates when
    those units are LSOAs."""
    ward_ed = a.meta["ward_edition"]
    if src.kind == AREA and lsoa is not None and months_apart(lsoa[1], end) <= LSOA_LAG:
        hs_src, hs_end, hs_ed = lsoa
    else:
        hs_src, hs_end = src, end
        hs_ed = ward_ed if src.kind == AREA else (_edition_for(store, src, start, end, tuple(reversed(LSOA_EDITIONS)))
                                                  or ward_ed)
    hs_period = f"{shift(hs_end, -(WINDOW - 1)):%Y-%m}..{hs_end:%Y-%m}"
    hs_units = wards if hs_ed == ward_ed else build_units(store, hs_ed, knn=knn, distance_band_m=distance_band_m)
    hs_counts = wc if hs_ed == ward_ed and hs_src is src else unit_counts(hs_src, hs_units, last=hs_end)
    hs_months = [m for m in _complete_for(hs_src, hs_ed) if m <= hs_end]
    say(f"hot spots on {hs_ed}")
    panel = spatial.count_panel(hs_units, hs_counts[hs_counts["serious_violence"]] if len(hs_counts) else hs_counts,
                                hs_months)
    hs = spatial.hotspots(panel, shift(hs_end, 1), hs_options)
    table = hs.table.copy()
    table.insert(1, "name", hs_units.frame.set_index("unit_id")["name"].reindex(table["unit_id"]).to_numpy())
    a.layers["hotspots"] = table
    a.layers["operational_areas"] = hs.areas
    a.tables["hotspots"] = pd.DataFrame(table.drop(columns="geometry"))
    a.meta["hotspots"] = {**hs.meta, "period": hs_period, "source": hs_src.name}
    if hs_src is not src:
        a.note("spatial", f"Hot spots, emerging hot spots and operational areas use {hs_src.name} on {hs_ed} "
               f"({len(hs_units)} areas) to {hs_end:%Y-%m}: the finest current units; the ward sections use "
               f"{src.name} to {end:%Y-%m}")
    a.part("3. Spatial distribution", "hot spots (Gi*, FDR), LISA, emerging hot spots", hs_src.name,
           f"{hs_period}; emerging: quarters {hs.meta['quarters'][0] if hs.meta['quarters'] else '-'}..{hs_end:%Y-%m}",
           f"{hs_ed} ({len(hs_units)})", "counts (no rate)")
    if len(hs.areas):
        areas = pd.DataFrame(hs.areas.drop(columns="geometry"))
        areas["unit_ids"] = areas["unit_ids"].map(lambda v: ";".join(monitoring.unit_list(v)))
        a.tables["operational_areas"] = areas
    hs_pop = ward_pop if hs_ed == ward_ed else unit_population(store, hs_units, Context(store, hs_units), cutoff)
    if hs_ed.startswith("lsoa"):
        _lsoa_rates(a, hs_units, hs_counts, hs_pop, hs_end, [m for m in _complete_for(hs_src, hs_ed) if m <= hs_end],
                    measures, hs_src.name, hs_period)
    return HotspotUnits(hs_src, hs_end, hs_ed, hs_units, hs_counts, hs_pop, hs.areas)


def _concentration(a: Assessment, store, lsoa, levels: list, knn: int, band_m: float) -> None:
    """Section 3 (concentration): top 5% share and Gini of each unit level (``[(edition, units,
    counts, end, source name)]``), and of the LSOA source's units when not among them."""
    conc_rows, curves = [], {}
    if lsoa is not None and lsoa[2] not in {lv[0] for lv in levels}:
        s2, e2, ed2 = lsoa
        u2 = build_units(store, ed2, knn=knn, distance_band_m=band_m)
        levels.append((ed2, u2, unit_counts(s2, u2, first=shift(e2, -(WINDOW - 1)), last=e2), e2, s2.name))
    for ed, units, counts, e, sname in levels:
        vals = {v: _window_counts(counts, units.ids, e, value=v).to_numpy() for v in ("count", "harm")}
        c = spatial.concentration(vals)
        c.insert(0, "units", ed)
        c["period"], c["source"] = f"{shift(e, -(WINDOW - 1)):%Y-%m}..{e:%Y-%m}", sname
        conc_rows.append(c)
        curves[f"{ed} {shift(e, -(WINDOW - 1)):%Y-%m}..{e:%Y-%m}"] = vals["count"]
        a.part("3. Spatial distribution", "concentration (top 5%, Gini)", sname,
               f"{shift(e, -(WINDOW - 1)):%Y-%m}..{e:%Y-%m}", f"{ed} ({len(units)})", "counts (no rate)")
    a.tables["concentration"] = pd.concat(conc_rows, ignore_index=True)
    a.meta["lorenz"] = {k: v.tolist() for k, v in curves.items()}


def _monitoring(a: Assessment, src: CountSource, end, wards: UnitSet, wc: pd.DataFrame, ward_pop: pd.DataFrame,
                ward_complete, headline: pd.DataFrame, all_measures, pop_year, residents: str, hot: HotspotUnits,
                baseline: pd.DataFrame | None) -> None:
    """Section 6: the KPI baseline of the borough, each ward and each operational area (the hot
    spots' and the baseline's
    footprints on that edition), and its comparison with ``baseline``."""
    hs_src, hs_ed, hs_counts, hs_pop, hs_end, hs_areas = hot.src, hot.edition, hot.counts, hot.population, \
        hot.end, hot.areas
    code, name, ward_ed = a.area_code, a.area_name, a.meta["ward_edition"]
    period, prev_period = a.meta["period"], a.meta["previous_period"]
    kpi_measures = [m for m in all_measures if m in set(headline["measure"])]
    borough_area = monitoring.KpiArea("borough", code or name, name, ward_ed, tuple(wards.ids))
    parts = []
    brow = headline[headline["measure"].isin(kpi_measures)].copy()
    brow = brow.assign(kpi_id=f"{borough_area.key}:" + brow["measure"], area_type="borough",
                       area_code=borough_area.area_code, area_name=name, edition=ward_ed, unit_ids="")
    parts.append(brow[list(monitoring.KPI_COLUMNS)])
    ward_areas = [monitoring.KpiArea("ward", u, n, ward_ed, (u,))
                  for u, n in zip(wards.ids, wards.frame["name"], strict=True)]
    parts.append(monitoring.kpi_table(wc, ward_pop["population"], ward_areas, end, complete=ward_complete,
                                      measures=kpi_measures, population_year=pop_year, source=src.name))
    op_areas = [monitoring.KpiArea("operational area", str(r.area_id), f"Operational area {r.area_id}", hs_ed,
                                   monitoring.unit_list(r.unit_ids)) for r in hs_areas.itertuples()] if len(hs_areas) else []
    if baseline is not None:
        kept = [f for f in monitoring.footprint_areas(baseline) if f.edition == hs_ed]
        op_areas += [f for f in kept if f.key not in {o.key for o in op_areas}]
    if op_areas:
        parts.append(monitoring.kpi_table(hs_counts, hs_pop["population"], op_areas, hs_end,
                                          complete=_complete_for(hs_src, hs_ed), measures=kpi_measures,
                                          population_year=pop_year, source=hs_src.name))
    kpis = pd.concat(parts, ignore_index=True)
    a.tables["kpi_baseline"] = kpis
    a.part("6. Monitoring framework", "KPI baseline (borough, wards, operational areas)", src.name,
           f"{period} vs {prev_period}", f"{ward_ed}; operational areas on {hs_ed}", residents)
    if baseline is not None:
        comp, notes = monitoring.compare_with_baseline(kpis, baseline)
        a.tables["kpi_vs_baseline"] = comp
        for n in notes:
            a.note("monitoring", n)


def _lsoa_rates(a: Assessment, units: UnitSet, counts: pd.DataFrame, pop: pd.DataFrame, end, complete, measures,
                source: str, period: str) -> None:
    """LSOA rolling 12-month counts, rates and empirical-Bayes smoothed rates of the core and broad measures."""
    per = window_figures(counts, end, by="unit_id", index=units.ids, population=pop["population"],
                         complete=complete, groups=measures)
    per = per[per["measure"].isin([CORE_MEASURE, SV_MEASURE])].copy()
    if not len(per):
        return
    per.insert(1, "name", units.frame.set_index("unit_id")["name"].reindex(per["unit_id"]).to_numpy())
    per["population"] = pop["population"].reindex(per["unit_id"]).to_numpy()
    per["rate_eb_per_1000"] = np.nan
    for _, part in per.groupby("measure", sort=False):
        per.loc[part.index, "rate_eb_per_1000"] = spatial.smoothed_rates(part["count"], part["population"])
    per["population_year"] = pop.attrs.get("year")
    a.tables["lsoa_rolling_12m"] = per.reset_index(drop=True)
    a.part("3. Spatial distribution", "LSOA counts, rates and smoothed rates", source, period,
           f"{units.edition} ({len(units)})", f"residents {pop.attrs.get('year')} ({pop.attrs.get('method')})")


def _population_bases(a: Assessment, store, wards: UnitSet, ctx: Context, ward_pop: pd.DataFrame,
                      per_ward: pd.DataFrame, cutoff) -> None:
    """Ward rates and ranks of the core and broad measures on every residents year the store has."""
    used = (a.meta["population_year"], ward_pop.attrs.get("edition"))
    picks = [p for p in ctx.population_years if p != used]
    if used[0] is None or not picks:
        a.note("spatial", "one residents year only: the ward ranks' sensitivity to the population base cannot be shown")
        return
    pops = {f"{spatial.base_label(used[0])} ({used[1]}, {ward_pop.attrs.get('method')})": ward_pop["population"]}
    for pick in picks:
        p = unit_population(store, wards, ctx, cutoff, pick=pick)
        pops[f"{spatial.base_label(pick[0])} ({pick[1]}, {p.attrs.get('method')})"] = p["population"]
    base = next(iter(pops))
    parts = []
    for m in (CORE_MEASURE, SV_MEASURE):
        w = per_ward[per_ward["measure"] == m]
        if not len(w):
            continue
        t = spatial.rank_sensitivity(w.set_index("unit_id")["count"], pops, base)
        t.insert(0, "measure", m)
        t.insert(2, "name", wards.frame.set_index("unit_id")["name"].reindex(t["unit_id"]).to_numpy())
        t["used_by_pack"] = t["base"] == base
        t["period"] = a.meta["period"]
        parts.append(t)
    if parts:
        a.tables["ward_rank_population_bases"] = pd.concat(parts, ignore_index=True)
        a.part("3. Spatial distribution", "ward rates and ranks on each residents year (population-base sensitivity)",
               a.meta["trend_source"], a.meta["period"], a.meta["ward_edition"],
               "; ".join(k.split(" (")[0] for k in pops))


def _funnels(a: Assessment, per_ward: pd.DataFrame, headline: pd.DataFrame) -> None:
    """Funnel limits of ward rates around the borough rate, for the core and broad measures."""
    h = headline.set_index("measure")
    parts = []
    for m in (CORE_MEASURE, SV_MEASURE):
        w = per_ward[per_ward["measure"] == m]
        if not len(w) or m not in h.index or not np.isfinite(h.loc[m, "rate_per_1000"]):
            continue
        f = cohorts.funnel_limits(w["count"].to_numpy(), w["population"].to_numpy(), float(h.loc[m, "rate_per_1000"]))
        f.insert(0, "measure", m)
        f.insert(1, "unit_id", w["unit_id"].to_numpy())
        f.insert(2, "name", w["name"].to_numpy())
        f["borough_rate_per_1000"] = float(h.loc[m, "rate_per_1000"])
        f["change_pct"], f["change_lo_pct"], f["change_hi_pct"] = (w[c].to_numpy() for c in
                                                                   ("change_pct", "change_lo_pct", "change_hi_pct"))
        f["borough_change_pct"] = float(h.loc[m, "change_pct"])
        # a ward's change differs from the borough's only when its interval leaves out the borough's change
        f["change_vs_borough"] = np.where(f["change_lo_pct"] > f["borough_change_pct"], "rose more than the borough",
                                          np.where(f["change_hi_pct"] < f["borough_change_pct"],
                                                   "rose less / fell more than the borough", ""))
        f["period"] = a.meta["period"]
        parts.append(f)
    if parts:
        a.tables["ward_funnel"] = pd.concat(parts, ignore_index=True)
        a.part("3. Spatial distribution", "ward funnel limits (Poisson, around the borough rate)",
               a.meta["trend_source"], a.meta["period"], f"{a.meta['ward_edition']}", f"residents {a.meta['population_year']}")


def _partner(a: Assessment, store, wards: UnitSet, end) -> None:
    """Partner data routes present in the store (:mod:`models.needs.partner`); every route's status in the meta."""
    data = store.table("partner_counts") if store.has("partner_counts") else None
    a.meta["partner_routes"] = partner.routes_status(data)
    if data is None or not len(data):
        a.note("partner", "no partner data in the store: A&E and ambulance assaults, youth justice, MARAC and "
               "education come from the partnership (docs/partner_data.md)")
        return
    summary = partner.route_summary(data, end)
    a.tables["partner_summary"] = summary
    areas = partner.route_areas(data, end)
    if len(areas):
        names = wards.frame.set_index("unit_id")["name"]
        areas.insert(2, "name", areas["area_code"].map(names).fillna(areas["area_code"]).to_numpy())
        a.tables["partner_areas"] = areas
    for r in summary.drop_duplicates("route").itertuples():
        files = sorted({f.rsplit("/", 1)[-1] for f in data.loc[data["route"] == r.route, "source_file"]})
        a.part("3c. Partner data", r.title, "; ".join(files), r.period, r.level, "counts (no rate)")


def _cohorts(a: Assessment, store, wards: UnitSet, ward_pop: pd.DataFrame, borough_pop, pop_year, compare) -> None:
    """The strategy's cohorts from the Met crime dashboard (:func:`features.figures.dashboard_cohorts`):
    borough and ward counts, change with intervals, rates; knife crime against London's boroughs."""
    if not store.has("dashboard_counts"):
        a.note("cohorts", "no Met crime dashboard in the data folder: knife, gun, domestic abuse and hate crime "
               "cannot be shown (they are not zero)")
        return
    dash = store.table("dashboard_counts")
    table = dashboard_cohorts()
    names = pd.DataFrame({"code": wards.ids, "name": wards.frame["name"].to_numpy()})
    pop = ward_pop["population"]
    brows, wrows = [], []
    for cohort, rows in table.groupby("cohort", sort=False):
        series, subtypes = rows["series"].iloc[0], list(rows["subtype"])
        labels = dict(zip(rows["subtype"], rows["label"], strict=True))
        # knife: the briefing's own computation, so the two documents show one number
        f = knife_figures(dash, names) if series == KNIFE_SERIES and tuple(subtypes) == KNIFE_SUBTYPES \
            else dashboard_figures(dash, series, subtypes, names)
        if f is None:
            a.note("cohorts", f"{cohort}: the dashboard has no {series!r} series")
            continue
        place = bool(rows["place_based"].iloc[0])
        for b in f["borough"]:
            lo, hi = change_interval([b["count"]], [b["previous"]])
            brows.append({"cohort": cohort, "measure": b["measure"], "label": labels[b["measure"]],
                          "count": b["count"], "previous": b["previous"], "change_pct": b["change_pct"],
                          "change_lo_pct": lo[0], "change_hi_pct": hi[0],
                          "rate_per_1000": 1000 * b["count"] / borough_pop if borough_pop else np.nan,
                          "period": f"{f['period_start']}..{f['period_end']}",
                          "previous_period": f"{f['previous_start']}..{f['previous_end']}", "place_based": place,
                          "source": f["source"]})
        first = subtypes[0]
        key = next(k for k in f["wards"][0] if k not in ("code", "name")) if f["wards"] else None
        if key is None or a.meta.get("ward_edition") != "ward2022":
            continue
        wf = pd.DataFrame(f["wards"])
        wf["population"] = pop.reindex(wf["code"]).to_numpy()
        total = float(wf[key].sum())
        rate = 1000 * total / float(wf["population"].sum()) if wf["population"].sum() > 0 else np.nan
        fl = cohorts.funnel_limits(wf[key].to_numpy(), wf["population"].to_numpy(), rate)
        wrows.append(pd.DataFrame({"cohort": cohort, "measure": first, "label": labels[first], "unit_id": wf["code"],
                                   "name": wf["name"], "count": wf[key], "previous": wf.get(f"{key}_previous"),
                                   "population": wf["population"], "rate_per_1000": fl["rate_per_1000"],
                                   "wards_rate_per_1000": rate, "lo_99.8": fl["lo_99.8"], "hi_99.8": fl["hi_99.8"],
                                   "outside": fl["outside"], "period": f"{f['period_start']}..{f['period_end']}",
                                   "place_based": place}))
        a.part("3b. Cohorts", f"{cohort} by borough and ward", f"{f['source']}: {series}",
               f"{f['period_start']}..{f['period_end']}", "borough; ward2022", f"residents {pop_year}")
        if not place:
            a.note("cohorts", f"{cohort}: shown here by ward for need, but left out of the place-based work "
                   "(hot spots, operational areas) as the strategy's place work does; the recorded-crime counts "
                   "behind the maps still contain it (the Met's tables do not flag it)")
    if brows:
        a.tables["cohorts_borough"] = pd.DataFrame(brows)
        shown = set(a.tables["cohorts_borough"]["cohort"])
        gaps = a.tables["open_data_gaps"]
        a.tables["open_data_gaps"] = gaps[~gaps["measure"].isin([g for c, g in GAPS_FILLED.items() if c in shown])]
    if wrows:
        a.tables["cohorts_wards"] = pd.concat(wrows, ignore_index=True)
    if compare is not None and compare.dashboard is not None and a.area_code:
        _knife_london(a, compare)


def _knife_london(a: Assessment, data) -> None:
    """Knife crime per 1,000 residents in every borough of the comparison folder, over the same 12 months."""
    rows = []
    for code, part in data.dashboard.groupby("area_code"):
        f = knife_figures(part)
        if f is None:
            continue
        for b in f["borough"]:
            rows.append({"area_code": str(code), "measure": b["measure"], "count": b["count"], "previous": b["previous"],
                         "period": f"{f['period_start']}..{f['period_end']}"})
    if not rows:
        return
    t = pd.DataFrame(rows)
    end = t["period"].str[-7:].max()
    year = cmp.population_year(data, end)
    pop = cmp._pop(data, year) if year is not None else pd.Series(dtype=float)
    t["population"] = pop.reindex(t["area_code"]).to_numpy()
    t["rate_per_1000"] = 1000 * t["count"] / t["population"]
    t["rank"] = t.groupby("measure")["rate_per_1000"].rank(ascending=False, method="min")
    t["of"] = t.groupby("measure")["rate_per_1000"].transform("count")
    t["name"] = t["area_code"].map(data.names).fillna(t["area_code"])
    t["population_year"] = year
    t["is_borough"] = t["area_code"] == a.area_code
    london = t.groupby("measure")[["count", "population"]].sum()
    t["london_rate_per_1000"] = t["measure"].map(1000 * london["count"] / london["population"])
    a.tables["knife_london"] = t
    a.part("4. Comparison with the region and similar boroughs", "knife crime in every borough",
           data.files.get("crime dashboard", "crime dashboard").rsplit("/", 1)[-1], t["period"].iloc[0],
           f"authorities ({t['area_code'].nunique()})", f"residents {year}")


def _stop_search(a: Assessment, store, pop_year) -> None:
    """Stop and search in the latest 12 months with data: by age, sex and ethnicity, and searches per 1,000
    residents of each ethnic group (Census 2021) against White residents. Police-generated."""
    if not store.has("stop_search"):
        a.note("stop_search", "no stop and search records in the data folder")
        return
    ss = store.table("stop_search")
    if not len(ss):
        return
    end = pd.Timestamp(ss["month"].max())
    start = shift(end, -(WINDOW - 1))
    w = ss[(ss["month"] >= start) & (ss["month"] <= end)]
    present = sorted(w["month"].unique())
    period = f"{start:%Y-%m}..{end:%Y-%m}"
    a.meta["stop_search"] = {"period": period, "searches": int(len(w)), "months_with_data": len(present),
                             "ethnicity_recorded": int(w.get("self_defined_ethnicity", pd.Series(dtype="string")).notna().sum())}
    people = []
    for col, what in (("age_range", "age"), ("gender", "sex"), ("officer_defined_ethnicity", "officer-defined ethnicity")):
        if col not in w:
            continue
        if w[col].isna().all():
            a.note("stop_search", f"no search of {period} records the {what}: not shown")
            continue
        vc = w[col].fillna("not recorded").value_counts()
        people.append(pd.DataFrame({"breakdown": what, "value": vc.index, "searches": vc.to_numpy(),
                                    "share": vc.to_numpy() / max(len(w), 1), "period": period}))
    if people:
        a.tables["stop_search_people"] = pd.concat(people, ignore_index=True)
    if store.has("ethnicity") and "self_defined_ethnicity" in ss:
        # the latest 12 months in which most searches record ethnicity (some months' files lack the column)
        recorded = ss["self_defined_ethnicity"].notna().groupby(ss["month"]).agg(["sum", "size"])
        e_end = None
        for m in sorted(recorded.index, reverse=True):
            win = recorded.loc[(recorded.index >= shift(m, -(WINDOW - 1))) & (recorded.index <= m)]
            if win["sum"].sum() >= ETHNICITY_RECORDED * win["size"].sum():
                e_end = m
                break
        if e_end is None:
            a.note("stop_search", "no 12 months in which most searches record ethnicity: no disproportionality")
        else:
            e_start = shift(e_end, -(WINDOW - 1))
            we = ss[(ss["month"] >= e_start) & (ss["month"] <= e_end)]
            eperiod = f"{e_start:%Y-%m}..{pd.Timestamp(e_end):%Y-%m}"
            eth = store.table("ethnicity")
            year = int(eth["year"].max())
            residents = eth[eth["year"] == year].groupby("group")["residents"].sum()
            d = cohorts.disproportionality(cohorts.census_group(we["self_defined_ethnicity"]), residents)
            d["basis"], d["period"], d["residents_year"] = "self-defined ethnicity; Census residents", eperiod, year
            d["searches_in_period"] = len(we)
            if eperiod != period:
                a.note("stop_search", f"disproportionality uses {eperiod}, the latest 12 months in which most "
                       f"searches record ethnicity (the files of later months do not); age and sex use {period}")
            period = eperiod
        a.tables["stop_search_disproportionality"] = d
        a.meta["stop_search"]["unrecorded"] = d.attrs["unrecorded"]
        a.part("3b. Cohorts", "stop and search by age, sex, ethnicity; disproportionality (police-generated)",
               "police.uk stop and search", period, "borough", f"Census {year} residents by ethnic group")
    a.note("stop_search", "stop and search is police-generated: its counts measure where and whom police search, "
           "not harm, and are never a target of svrisk's models")


def _profile(a: Assessment, store, wards: UnitSet, ctx: Context, pop: pd.DataFrame, cutoff) -> None:
    year, edition = pop.attrs.get("year"), pop.attrs.get("edition")
    if year is None:
        a.note("profile", "no residents table: the profile has no population figures")
        return
    bands = population_bands(store, edition, year)
    age = bands.groupby(["age_from", "age_to"], as_index=False)["count"].sum().sort_values("age_from")
    age["band"] = [f"{lo}-{hi}" if hi < 120 else f"{lo}+" for lo, hi in zip(age["age_from"], age["age_to"], strict=True)]
    age["share"] = age["count"] / age["count"].sum()
    age["year"], age["edition"] = year, edition
    a.tables["age_structure"] = age[["band", "age_from", "age_to", "count", "share", "year", "edition"]]
    static = ctx.static()
    wp = pd.DataFrame({"unit_id": wards.ids, "name": wards.frame["name"].to_numpy(),
                       "population": pop["population"].reindex(wards.ids).to_numpy(),
                       "aged_10_24": pop["aged_10_24"].reindex(wards.ids).to_numpy()})
    wp["share_10_24"] = wp["aged_10_24"] / wp["population"]
    wp["area_km2"] = wards.frame["area_m2"].to_numpy() / 1e6
    wp["residents_per_km2"] = wp["population"] / wp["area_km2"]
    if "imd_score" in static:
        wp["imd_score"] = static["imd_score"]
    wp["population_year"] = year
    a.tables["profile_wards"] = wp
    res = _residents_text(pop)
    a.part("1. Borough profile", "residents, ages 10-24, density, deprivation by ward", "population; IoD 2019",
           f"residents {year}; IMD 2019", f"{wards.edition} ({len(wards)})", res)
    if store.has("imd"):
        imd = store.table("imd")
        dec = pd.to_numeric(imd["imd_decile"], errors="coerce").value_counts().reindex(range(1, 11), fill_value=0)
        a.tables["deprivation_deciles"] = pd.DataFrame({"national_imd_decile": dec.index, "lsoas": dec.to_numpy(),
                                                        "share": dec.to_numpy() / max(dec.sum(), 1)})
        a.part("1. Borough profile", "deprivation: LSOAs by national IMD decile", "IoD 2019", "IMD 2019",
               f"lsoa2011 ({int(dec.sum())})", "n/a")
    lsoa_ed = "lsoa2011" if store.has("units_lsoa2011") else ("lsoa2021" if store.has("units_lsoa2021") else None)
    if lsoa_ed is not None:
        lu = build_units(store, lsoa_ed)
        lctx = Context(store, lu)
        lpop = unit_population(store, lu, lctx, cutoff)
        lst = lctx.static()
        lp = gpd.GeoDataFrame({"unit_id": lu.ids, "name": lu.frame["name"].to_numpy(),
                               "population": lpop["population"].to_numpy(),
                               "share_10_24": (lpop["aged_10_24"] / lpop["population"]).to_numpy(),
                               "imd_score": lst.get("imd_score", np.full(len(lu), np.nan)),
                               "imd_decile": lst.get("imd_decile", np.full(len(lu), np.nan))},
                              geometry=lu.frame.geometry.to_numpy(), crs=lu.frame.crs)
        a.layers["lsoas"] = lp
        a.tables["profile_lsoas"] = pd.DataFrame(lp.drop(columns="geometry")).assign(population_year=lpop.attrs["year"])
        a.part("1. Borough profile", "residents, ages 10-24 and deprivation by LSOA", "population; IoD 2019",
               f"residents {lpop.attrs['year']}; IMD 2019", f"{lsoa_ed} ({len(lu)})", _residents_text(lpop))


def _compare(a: Assessment, data: CompareData, end, measures, headline: pd.DataFrame) -> None:
    code = a.area_code
    for n in data.notes:
        a.note("comparison", n)
    if code is None or code not in set(data.monthly["area_code"]):
        a.note("comparison", f"the borough ({code or 'no GSS code'}) has no rows in the comparison folder "
               f"{data.root}: no comparison")
        return
    cend, why = cmp.compare_window(data, end)
    if cend is None:
        a.note("comparison", why)
        return
    if why:
        a.note("comparison", why)
    have = set(data.monthly["group"])
    measures = [m for m in measures if m in have or m in (SV_MEASURE, ALL_MEASURE)]
    rates = cmp.borough_rates(data, cend, measures)
    prof, notes = cmp.profile(data, cend)
    sim, notes2 = cmp.similar(prof, code)
    for n in notes + notes2:
        a.note("comparison", n)
    own_codes = list(sim.index[sim["similar"]])
    sim_codes, rule = cmp.similar_set(data, code, own_codes)
    for n in rule["notes"]:
        a.note("comparison", n)
    sim["in_comparison_set"] = sim.index.isin(sim_codes)
    a.tables["similarity"] = sim.reset_index()
    a.tables["region_rates"] = trends.sort_measures(rates).reset_index(drop=True)
    reg = trends.sort_measures(cmp.regional_table(rates, code, sim_codes))
    reg.insert(1, "label", reg["measure"].map(trends.label))
    a.tables["region_comparison"] = reg.reset_index(drop=True)
    roll = pd.concat([cmp.rolling_rates(data, m, code, sim_codes, last=cend)
                      for m in (SV_MEASURE, "violence", "robbery", "sexual", "weapons", "drugs") if m in measures],
                     ignore_index=True)
    a.tables["region_rolling_rates"] = roll
    year = cmp.population_year(data, cend)
    bases = cmp.rank_by_population_base(data, cend, code, [m for m in (SV_MEASURE, "violence") if m in measures])
    if len(bases) and bases["population_year"].nunique() > 1:
        bases.insert(2, "base", bases["population_year"].map(spatial.base_label))
        a.tables["rank_population_bases"] = bases
    files = ", ".join(data.files[k].rsplit("/", 1)[-1] for k in ("monthly counts", "population") if k in data.files)
    cperiod = f"{shift(cend, -(WINDOW - 1)):%Y-%m}..{cend:%Y-%m}"
    a.meta["comparison"] = {"period_end": label(cend), "period": cperiod, "population_year": year,
                            "similar": [str(data.names.get(c, c)) for c in sim_codes], "similar_codes": sim_codes,
                            "authorities": int(rates["area_code"].nunique()), "files": files,
                            "similarity_features": {k: v for k, v in cmp.SIMILARITY_FEATURES.items() if k in prof},
                            "k": cmp.SIMILAR_K, "similar_rule": rule["rule"], "similar_rule_text": rule["text"],
                            "svrisk_similar": [str(data.names.get(c, c)) for c in own_codes]}
    a.part("4. Comparison with the region and similar boroughs", "rates, ranks, similar boroughs, change",
           files, cperiod, f"authorities ({int(rates['area_code'].nunique())})", f"residents {year}")
    a.part("4. Comparison with the region and similar boroughs", "rolling 12-month rates over time", files,
           f"{roll['month'].min():%Y-%m}..{roll['month'].max():%Y-%m}" if len(roll) else "-",
           "borough, similar group, region", f"residents {year} for every month")
    if label(cend) == a.period_end:
        own = headline.set_index("measure")["count"]
        theirs = rates[rates["area_code"] == code].set_index("measure")["count"]
        rec = pd.DataFrame({"measure": own.index, "own_data": own.to_numpy(),
                            "comparison_folder": theirs.reindex(own.index).to_numpy()})
        rec = rec[rec["comparison_folder"].notna()]  # the folder's own measures (it has no minor categories: no core)
        rec["difference"] = rec["comparison_folder"] - rec["own_data"]
        a.tables["comparison_reconciliation"] = rec


def _risk(a: Assessment, store, sources, src, end, wards, ward_ctx, wc, ward_pop, knn, band_m, seed) -> None:
    fits = []
    lsoa = _lsoa_source(sources, end)
    if lsoa is not None:
        s2, e2, ed2 = lsoa
        # the risk model wants the LSOA edition deprivation is published on, when the source allows it
        if s2.kind == POINTS and store.has("units_lsoa2011"):
            ed2 = "lsoa2011"
        units = build_units(store, ed2, knn=knn, distance_band_m=band_m)
        ctx = Context(store, units)
        counts = unit_counts(s2, units, first=shift(e2, -(WINDOW - 1)), last=e2)
        pop = unit_population(store, units, ctx, shift(e2, 1))
        fits.append(("lsoa", units, ctx, counts, pop, e2, s2))
    fits.append(("ward", wards, ward_ctx, wc, ward_pop, end, src))
    rows, summary = [], []
    for level, units, ctx, counts, pop, e, s in fits:
        X = _context_frame(ctx, units, pop, shift(e, 1))
        y = _window_counts(counts, units.ids, e).to_numpy()
        groups = sorted(set(counts.loc[counts["serious_violence"], "group"])) if len(counts) else []
        factors = risk.choose_factors(X, len(units))
        if not factors:
            a.note("risk", f"{level}: no risk factor in the store; no model")
            continue
        fit = risk.fit_rate_model(y, X["population"].to_numpy(), X, factors)
        t = fit["table"].assign(level=level, units=units.edition, n=fit["n"], family=fit["family"],
                                period=f"{shift(e, -(WINDOW - 1)):%Y-%m}..{e:%Y-%m}", source=s.name,
                                outcome=f"serious violence ({', '.join(groups)})",
                                population_year=pop.attrs.get("year"))
        rows.append(t)
        resid = np.full(len(units), np.nan)
        resid[fit["kept"]] = fit["residuals"]
        mi, mp = risk.morans_i(np.nan_to_num(resid), units.graph("queen"), seed=seed)
        summary.append({"level": level, "units": units.edition, "n": fit["n"], "family": fit["family"],
                        "dispersion": fit["dispersion"], "pseudo_r2": fit["pseudo_r2"], "residual_morans_i": mi,
                        "residual_morans_p": mp, "period": t["period"].iloc[0], "source": s.name,
                        "outcome": t["outcome"].iloc[0], "population_year": pop.attrs.get("year"),
                        "factors": ", ".join(factors)})
        a.part("5. Risk and protective factors", f"area model of serious-violence rates ({level})", s.name,
               t["period"].iloc[0], f"{units.edition} ({fit['n']})", _residents_text(pop))
        if level == "lsoa" or len(fits) == 1:
            dom = risk.domain_table(y, X["population"].to_numpy(), X, factors)
            if len(dom):
                a.tables["risk_domains"] = dom.assign(level=level, units=units.edition, period=t["period"].iloc[0])
            gdf = units.frame[["unit_id", "name", "geometry"]].copy()
            gdf["sv_count"], gdf["population"] = y, X["population"].to_numpy()
            gdf["sv_rate_eb"] = spatial.smoothed_rates(y, X["population"].to_numpy())
            a.layers["risk_units"] = gdf
        for note in ctx.notes:
            if "left out" in note:
                a.note("risk", f"{units.edition}: {note}")
    if rows:
        a.tables["risk_factors"] = pd.concat(rows, ignore_index=True)
        a.tables["risk_model_summary"] = pd.DataFrame(summary)


def _assets(a: Assessment, store, wards: UnitSet, ctx: Context, pop: pd.DataFrame) -> None:
    """Protective assets per ward: schools, stations, street lights, parks."""
    out = pd.DataFrame({"unit_id": wards.ids, "name": wards.frame["name"].to_numpy()})
    km2 = wards.frame["area_m2"].to_numpy() / 1e6
    points = {}
    for table, col in (("schools", "schools"), ("stations", "stations"), ("street_lights", "street_lights"),
                       ("bus_stops", "bus_stops")):
        if not store.has(table):
            continue
        pts = store.table(table)
        if not isinstance(pts, gpd.GeoDataFrame):
            continue
        pts = pts[~(pts.geometry.isna() | pts.geometry.is_empty)]
        if table == "schools" and "status" in pts:
            pts = pts[~pts["status"].astype("string").str.contains("closed", case=False, na=False)]
        pos = wards.assign(pts)
        out[col] = np.bincount(pos[pos >= 0], minlength=len(wards))
        if table == "schools" and "phase" in pts:
            sec = pts["phase"].astype("string").str.contains("secondary|all.through", case=False, regex=True, na=False)
            out["secondary_schools"] = np.bincount(pos[(pos >= 0) & sec.to_numpy()], minlength=len(wards))
        if table in ("schools", "stations"):
            points[table] = pts
    if "street_lights" in out:
        out["street_lights_per_km2"] = out["street_lights"] / km2
    static = ctx.static()
    if "park_share" in static:
        out["park_share"] = static["park_share"]
    out["population"] = pop["population"].reindex(wards.ids).to_numpy()
    a.tables["assets_wards"] = out
    if store.has("parks"):
        parks = store.table("parks")
        if isinstance(parks, gpd.GeoDataFrame) and parks.geometry.notna().any() and \
                parks.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).any():
            a.layers["parks"] = parks[parks.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
        cols = [c for c in ("name", "town", "postcode_district", "facilities") if c in parks]
        a.tables["parks"] = pd.DataFrame(parks[cols]).sort_values(cols[:1])
    for k, v in points.items():
        a.layers[k] = v
    a.part("5. Risk and protective factors", "protective assets by ward", "schools, stations, street lights, parks",
           "as published (undated or the file's year)", f"{wards.edition} ({len(wards)})", "n/a")
