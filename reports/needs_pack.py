"""The Strategic Needs Assessment evidence pack: HTML and PDF, figures (PNG + SVG), every table as CSV.

:func:`write_pack` lays out one folder::

    <pack>/
      evidence_pack.html      the document (open in a browser; prints to A4)
      evidence_pack.pdf       the same, printed by headless Chromium
      kpi_baseline.csv        the monitoring baseline the next pack compares against (--baseline)
      pack.json               provenance: each part's source, period, units and residents; files
      figures/<stem>.png|svg  every figure, footer naming source, period and population base
      tables/<stem>.csv       every table of the pack
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.figures import ALL_MEASURE, CORE_MEASURE, SV_MEASURE
from models.hotspots.analysis import analyse_hotspots
from models.needs import risk
from models.needs.assessment import Assessment
from models.needs.monitoring import BASELINE_FILE, unit_list
from models.needs.trends import label as measure_label
from reports import needs_figures as nf
from reports.pdf import PdfError, html_to_pdf
from reports.templating import environment

TEMPLATE = "needs_pack.html.j2"
HEADLINE_DOMAINS = ("income_score", "employment_score", "education_score")
"""Deprivation domains the summary leads with: none of them is built from crime."""
FIGURE_NUMBERS = {"age": "1.1", "deciles": "1.2", "profile_maps": "1.3", "monthly": "2.1", "stl": "2.2",
                  "ward_rates": "3.1", "eb": "3.2", "funnel": "3.3", "hotspots": "3.4", "lorenz": "3.5",
                  "cohort_funnel": "3b.1", "ranks": "4.1", "region_trends": "4.2", "forest": "5.1", "assets": "5.2"}
"""Each figure's number in the pack (the template and the recommendations' evidence use the same)."""
THEMES = {
    "overall": "Serious violence overall", "places": "Places where violence concentrates",
    "young": "Young people under 25 and weapon-enabled violence", "weapons": "Weapons and drug markets",
    "domestic": "Domestic abuse", "sexual": "Sexual violence", "fair": "Fair and proportionate policing",
    "risk": "Risk and protective factors", "comparison": "Comparison with similar areas",
    "data": "Data and information sharing", "monitoring": "Monitoring",
}
"""Strategy themes of the Serious Violence Duty (the London definition's focus areas and the needs
assessment's own questions) that findings are grouped under; not any one borough's wording."""
TO_COMPLETE = "[to be completed by the partnership]"
HTML_NAME, PDF_NAME, META_NAME = "evidence_pack.html", "evidence_pack.pdf", "pack.json"
TABLES = {
    "headline_rolling_12m": ("2", "Rolling 12-month counts, rates per 1,000 and change, borough"),
    "minor_categories_12m": ("2", "Every minor category: 12-month counts, change, core and broad membership"),
    "open_data_gaps": ("2", "What open data cannot show"),
    "trend_estimates": ("2", "Change statements with intervals: rolling 12-month change and Theil-Sen trend"),
    "monthly_series": ("2", "Monthly counts and rolling 12-month totals, borough"),
    "stl_serious_violence": ("2", "Trend and seasonality decomposition (STL) of serious violence"),
    "age_structure": ("1", "Residents by age band"),
    "profile_wards": ("1", "Ward profile: residents, ages 10-24, density, deprivation"),
    "profile_lsoas": ("1", "LSOA profile: residents, ages 10-24, deprivation"),
    "deprivation_deciles": ("1", "LSOAs by national IMD decile"),
    "ward_rolling_12m": ("3", "Ward rolling 12-month counts, rates, smoothed rates and bands"),
    "rate_bands": ("3", "Map bands per measure"),
    "hotspots": ("3", "Hot spots (Gi*), LISA and emerging hot spots per unit"),
    "operational_areas": ("3", "Operational areas (contiguous highest-harm units)"),
    "concentration": ("3", "Concentration of serious violence (top 5% share, Gini)"),
    "ward_rank_population_bases": ("3", "Ward rates and ranks on every residents year (population-base sensitivity)"),
    "rank_population_bases": ("4", "The borough's rank among the authorities on every residents year"),
    "lsoa_rolling_12m": ("3", "LSOA rolling 12-month counts, rates and smoothed rates (core and broad)"),
    "ward_funnel": ("3", "Ward funnel limits around the borough rate (core and broad)"),
    "cohorts_borough": ("3b", "Cohorts from the Met crime dashboard: borough counts, change, rate"),
    "cohorts_wards": ("3b", "Cohorts by ward with funnel limits"),
    "stop_search_people": ("3b", "Stop and search by age, sex and ethnicity (police-generated)"),
    "stop_search_disproportionality": ("3b", "Stop and search per 1,000 residents by ethnic group (police-generated)"),
    "partner_summary": ("3c", "Partner data: latest period against the one before, borough"),
    "partner_areas": ("3c", "Partner data: the areas with the most"),
    "knife_london": ("4", "Knife crime in every London borough"),
    "region_comparison": ("4", "Comparison with the region and similar boroughs"),
    "region_rates": ("4", "Every authority's counts, rates and ranks"),
    "similarity": ("4", "Similarity of authorities (the similarity rule's figures and distances)"),
    "region_rolling_rates": ("4", "Rolling 12-month rates: borough, similar boroughs, region"),
    "comparison_reconciliation": ("4", "The borough's own counts against the comparison folder's"),
    "risk_factors": ("5", "Area model of serious-violence rates: rate ratios"),
    "risk_model_summary": ("5", "Area model fit"),
    "risk_domains": ("5", "Deprivation domains one at a time"),
    "assets_wards": ("5", "Protective assets by ward"),
    "parks": ("5", "Parks and open spaces"),
    "kpi_baseline": ("6", "KPI baseline"),
    "recommendations_skeleton": ("7", "Recommendations skeleton: findings, evidence, blanks for the partnership"),
    "kpi_vs_baseline": ("6", "KPIs against the previous pack's baseline"),
}


def _num(v, digits: int = 0, pct: bool = False, sign: bool = False) -> str:
    if v is None or (isinstance(v, float | np.floating) and not np.isfinite(v)) or v is pd.NA:
        return "–"
    try:
        if pd.isna(v):
            return "–"
    except (TypeError, ValueError):
        pass
    if isinstance(v, str):
        return v
    f = f"{{:{'+' if sign else ''},.{digits}f}}".format(float(v))
    return f + ("%" if pct else "")


def _rows(frame: pd.DataFrame | None, columns: dict[str, tuple]) -> list[dict]:
    """Formatted rows for the template: ``columns`` maps output key -> (column, digits, pct, sign)."""
    if frame is None:
        return []
    out = []
    for _, r in frame.iterrows():
        row = {}
        for key, (col, *fmt) in columns.items():
            v = r.get(col)
            row[key] = _num(v, *fmt) if fmt else ("–" if v is None or (not isinstance(v, str) and pd.isna(v)) else v)
        out.append(row)
    return out


def _month_text(ym: str) -> str:
    return pd.Timestamp(ym + "-01").strftime("%B %Y")


@dataclass(frozen=True)
class Finding:
    """One sentence of the summary, the strategy theme it bears on and the evidence it rests on."""

    text: str
    theme: str
    evidence: str


def findings(a: Assessment) -> list[str]:
    """The summary's sentences, each from one table of the pack."""
    return [f.text for f in pack_findings(a)]


def _evidence(spec: str) -> str:
    """``"T:table;F:figure"`` as the pack names them: ``tables/<table>.csv``, ``Figure <number>``."""
    out = []
    for part in spec.split(";"):
        kind, _, key = part.partition(":")
        out.append(f"tables/{key}.csv" if kind == "T" else f"Figure {FIGURE_NUMBERS[key]}")
    return "; ".join(out)


def pack_findings(a: Assessment) -> list[Finding]:
    """The summary's findings with their theme (:data:`THEMES`) and evidence (tables and figures)."""
    out: list[Finding] = []

    def add(theme: str, evidence: str, text: str) -> None:
        out.append(Finding(text, THEMES[theme], _evidence(evidence)))

    h = a.tables["headline_rolling_12m"].set_index("measure")
    end = _month_text(a.period_end)
    def said(m):
        r = h.loc[m]
        ch = "" if pd.isna(r["change_pct"]) else f", {abs(r['change_pct']):.1f}% {'more' if r['change_pct'] > 0 else 'fewer'} than in the previous 12 months"
        rate = "" if pd.isna(r["rate_per_1000"]) else f" ({r['rate_per_1000']:.1f} per 1,000 residents)"
        return f"{r['count']:,.0f}{rate}{ch}"

    if CORE_MEASURE in h.index:
        add("overall", "T:headline_rolling_12m;F:monthly", f"In the 12 months to {end}, {said(CORE_MEASURE)} offences of core serious violence (violence "
                   "with injury, homicide, personal robbery, sexual offences) were recorded.")
        if SV_MEASURE in h.index:
            add("overall", "T:headline_rolling_12m;F:monthly", f"Broad serious violence (all violence against the person, robbery and sexual offences, the "
                       f"briefing's measure): {said(SV_MEASURE)}.")
    elif SV_MEASURE in h.index:
        add("overall", "T:headline_rolling_12m;F:monthly", f"In the 12 months to {end}, {said(SV_MEASURE)} offences of broad serious violence (all violence "
                   "against the person, robbery, sexual offences) were recorded; this source cannot separate the core.")
    mc = a.tables.get("minor_categories_12m")
    if mc is not None and SV_MEASURE in h.index and pd.notna(h.loc[SV_MEASURE, "previous"]):
        rise = h.loc[SV_MEASURE, "count"] - h.loc[SV_MEASURE, "previous"]
        broad = mc[mc["in_broad"] == "broad"].assign(d=lambda f: f["count"] - f["previous"].fillna(0))
        top = broad.sort_values("d", ascending=abs(rise) != rise).head(2)
        if rise and len(top):
            add("overall", "T:minor_categories_12m", f"Of the broad measure's change ({rise:+,.0f}), " + " and ".join(
                f"{r.minor_category.split(' / ')[-1].lower()} {r.d:+,.0f}" for r in top.itertuples())
                + f" make {100 * top['d'].sum() / rise:.0f}%.")
    parts = []
    for m in ("violence", "robbery", "sexual"):
        if m in h.index and pd.notna(h.loc[m, "change_pct"]):
            parts.append(f"{measure_label(m).lower()} {h.loc[m, 'count']:,.0f} ({h.loc[m, 'change_pct']:+.1f}%)")
    if parts:
        add("overall", "T:headline_rolling_12m", "Of these offence groups: " + "; ".join(parts) + ".")
    pg = []
    for m in ("weapons", "drugs"):
        if m in h.index and pd.notna(h.loc[m, "change_pct"]):
            share = h.loc[m, "police_generated_share"]
            how = "mostly found by police activity" if share >= 0.5 else \
                f"{100 * share:.0f}% of them possession, found by police activity"
            pg.append(f"{measure_label(m).lower()} {h.loc[m, 'count']:,.0f} ({h.loc[m, 'change_pct']:+.1f}%; {how})")
    if pg:
        add("weapons", "T:headline_rolling_12m", "Weapon and drug offences, which depend on police activity as much as on harm: " + "; ".join(pg) + ".")
    w = a.tables.get("ward_rolling_12m")
    if w is not None:
        sv = w[w["measure"] == SV_MEASURE].sort_values("rate_eb_per_1000", ascending=False).head(3)
        if len(sv):
            add("places", "T:ward_rolling_12m;F:ward_rates;F:eb", "Highest smoothed ward rates of serious violence: " + ", ".join(
                f"{r.name} ({r.rate_eb_per_1000:.1f} per 1,000)" for r in sv.itertuples()) + ".")
    c = a.tables.get("concentration")
    if c is not None and len(c):
        finest = c[c["value"] == "count"].sort_values("places", ascending=False).iloc[0]
        add("places", "T:concentration;F:lorenz", f"Concentration: the top {finest['top_places']:.0f} of {finest['places']:.0f} {finest['units']} areas "
                   f"(5%) hold {100 * finest['top_share']:.0f}% of serious violence (Gini {finest['gini']:.2f}; "
                   f"{finest['period']}).")
    reg = a.tables.get("region_comparison")
    if reg is not None:
        r = reg.set_index("measure")
        if SV_MEASURE in r.index:
            x = r.loc[SV_MEASURE]
            sims = ", ".join(a.meta["comparison"]["similar"]) + (
                "; the Home Office most similar group" if a.meta["comparison"].get("similar_rule") == "home office msg"
                else "; svrisk's own similarity rule, not the Home Office's groups")
            add("comparison", "T:region_comparison;F:ranks", f"Among {x['of']} authorities the borough ranks {x['rank']} for serious violence (1 = highest "
                       f"rate): {x['rate_per_1000']:.1f} per 1,000 against {x['region_rate_per_1000']:.1f} for the region "
                       f"and {x['similar_rate_per_1000']:.1f} for its most similar boroughs ({sims}).")
        bases = borough_bases_sentence(a)
        if bases:
            add("comparison", "T:rank_population_bases", bases)
        if "violence" in r.index:
            x = r.loc["violence"]
            add("comparison", "T:region_comparison;F:ranks", f"Violence against the person: rank {x['rank']} of {x['of']} "
                       f"({x['rate_per_1000']:.1f} per 1,000; region {x['region_rate_per_1000']:.1f}).")
    dom = a.tables.get("risk_domains")
    if dom is not None and len(dom):
        head = dom[dom["factor"].isin(HEADLINE_DOMAINS)].set_index("factor").reindex(
            [d for d in HEADLINE_DOMAINS if d in set(dom["factor"])])
        if len(head):
            add("risk", "T:risk_domains", f"Deprivation without the crime domain ({head['units'].iloc[0]}, {head['period'].iloc[0]}; one "
                       "model per domain, other factors held): serious violence is higher where " + "; ".join(
                           f"{r.label[:1].lower() + r.label[1:]} is higher (×{r.rate_ratio:.2f} per SD, 95% interval "
                           f"{r.lo:.2f} to {r.hi:.2f})" for r in head.itertuples())
                       + ". The IMD score below includes a crime domain built from recorded crime, so it partly "
                       "measures the outcome itself.")
    rf = a.tables.get("risk_factors")
    if rf is not None and len(rf):
        lv = rf["level"].iloc[0]
        t = rf[rf["level"] == lv]
        hi = [f"{r.label.lower()} (×{r.rate_ratio:.2f} {r.per.split(' (')[0]})" for r in t.itertuples() if r.direction == "higher"]
        lo = [f"{r.label.lower()} (×{r.rate_ratio:.2f})" for r in t.itertuples() if r.direction == "lower"]
        if hi or lo:
            add("risk", "T:risk_factors;F:forest", f"Area associations ({t['units'].iloc[0]}, {t['period'].iloc[0]}): higher rates where "
                       + (", ".join(hi) or "no factor clearly") + (f"; lower where {', '.join(lo)}" if lo else "")
                       + ". These are associations between places, not causes.")
    cb = a.tables.get("cohorts_borough")
    if cb is not None and len(cb):
        c = cb.set_index("measure")
        if "Knife Crime" in c.index:
            parts = [f"{c.loc[m, 'label'].lower()} {c.loc[m, 'count']:,.0f} ({_num(c.loc[m, 'change_pct'], 1, True, True)}, "
                     f"95% interval {_num(c.loc[m, 'change_lo_pct'], 0, True, True)} to {_num(c.loc[m, 'change_hi_pct'], 0, True, True)})"
                     for m in ("Knife Crime", "Knife Crime with Injury", "Knife Injury Victims (1-24)") if m in c.index]
            kl = a.tables.get("knife_london")
            rank = ""
            if kl is not None and len(kl[kl["is_borough"] & (kl["measure"] == "Knife Crime")]):
                r = kl[kl["is_borough"] & (kl["measure"] == "Knife Crime")].iloc[0]
                rank = (f"; {r['rate_per_1000']:.2f} per 1,000 against {r['london_rate_per_1000']:.2f} for London "
                        f"(rank {r['rank']:.0f} of {r['of']:.0f}, 1 = highest)")
            add("young", "T:cohorts_borough;T:knife_london", f"Knife crime, {c.loc['Knife Crime', 'period']}: " + "; ".join(parts) + rank + ".")
        if "Domestic Abuse" in c.index:
            r = c.loc["Domestic Abuse"]
            add("domestic", "T:cohorts_borough;F:cohort_funnel", f"Domestic abuse (shown separately, {r['period']}): {r['count']:,.0f} offences "
                       f"({_num(r['change_pct'], 1, True, True)}), {r['rate_per_1000']:.1f} per 1,000 residents.")
    d = a.tables.get("stop_search_disproportionality")
    if d is not None and d["searches"].sum() > 0:
        top = d[d["group"] != d.attrs.get("reference", "White")].sort_values("rate_ratio", ascending=False)
        if len(top) and pd.notna(top["rate_ratio"].iloc[0]):
            r = top.iloc[0]
            add("fair", "T:stop_search_disproportionality", f"Stop and search (police-generated, {r['period']}): {r['group'].split(',')[0]} residents were "
                       f"searched {r['rate_ratio']:.1f} times as often per head as White residents (95% interval "
                       f"{r['lo']:.1f} to {r['hi']:.1f}; Census {r['residents_year']}).")
    k = a.tables.get("kpi_vs_baseline")
    if k is not None and len(k):
        b = k[(k["area_type"] == "borough") & (k["measure"] == SV_MEASURE) & (k["status"] == "compared")]
        if len(b):
            r = b.iloc[0]
            add("monitoring", "T:kpi_vs_baseline", f"Against the previous pack's baseline ({r['baseline_period']}): serious violence "
                       f"{r['baseline_count']:,.0f} then, {r['count']:,.0f} now ({r['change_pct']:+.1f}%).")
    return out


def recommendations(a: Assessment) -> pd.DataFrame:
    """The recommendations skeleton: each finding of the pack, its theme and evidence, with the
    implication, action, lead and date left blank for the partnership to complete.

    The summary's findings come first (same sentences, same numbers), then what the summary leaves
    out: the robust trend, wards outside the funnel limits, hot spots, partner data present, and
    every data gap (partner routes absent, what open data cannot show).
    """
    rows = [(f.theme, f.text, f.evidence) for f in pack_findings(a)]
    te = a.tables.get("trend_estimates")
    if te is not None and len(te):
        for r in te[te["method"].str.contains("Theil", case=False)].itertuples():
            rows.append((THEMES["overall"], f"{r.label}: {r.method} {r.estimate:+,.1f} (95% interval {r.lo:+,.1f} to "
                         f"{r.hi:+,.1f}), {r.period}" + (f"; the period spans a recording change ({r.spans_recording_change})"
                                                          if isinstance(r.spans_recording_change, str)
                                                          and r.spans_recording_change else "") + ".", _evidence("T:trend_estimates;F:monthly")))
    wf = a.tables.get("ward_funnel")
    if wf is not None and len(wf):
        for m, g in wf.groupby("measure", sort=False):
            above = g[g["outside"].astype(str).str.startswith("above 99.8")]
            rows.append((THEMES["places"], f"{measure_label(m)}: {len(above)} of {len(g)} wards above the 99.8% funnel "
                         "limit around the borough rate" + (f" ({', '.join(above['name'])})" if len(above) else "") + ".",
                         _evidence("T:ward_funnel;F:funnel")))
    hs = a.tables.get("hotspots")
    if hs is not None and len(hs):
        hot = hs[hs["Gi_Bin"] > 0]
        rows.append((THEMES["places"], f"{len(hot)} of {len(hs)} areas ({a.meta['hotspots'].get('units', '')}) are "
                     "significant hot spots of serious violence (Gi*, false discovery rate controlled)"
                     + (f": {', '.join(hot.sort_values('Zs', ascending=False)['name'].astype(str).head(5))}" if len(hot)
                        else "") + ".", _evidence("T:hotspots;F:hotspots")))
    ps = a.tables.get("partner_summary")
    if ps is not None:
        for r in ps.itertuples():
            change = "" if pd.isna(r.change_pct) else f", {r.change_pct:+.1f}% on the period before"
            theme = {"partner_education": "young", "partner_youth_justice": "young", "partner_marac": "domestic"}
            rows.append((THEMES[theme.get(r.route, "overall")],
                         f"{r.title}, {r.measure.replace('_', ' ')}{f' ({r.service})' if r.service else ''}, {r.period}: "
                         f"{r.count:,.0f}{change}" + (f" ({r.note})" if r.note else "") + ".",
                         "tables/partner_summary.csv"))
    for st in a.meta.get("partner_routes", []):
        if not st["present"]:
            rows.append((THEMES["data"], f"No data in this pack for {st['title']} (usually held by {st['holder']}).",
                         f"section 3c; {st['template']}"))
    for g in a.tables["open_data_gaps"].itertuples(index=False):
        rows.append((THEMES["data"], f"Open data cannot show: {g[0]} ({g[1]}).", "tables/open_data_gaps.csv"))
    out = pd.DataFrame(rows, columns=["theme", "finding", "evidence"])
    out.insert(0, "number", np.arange(1, len(out) + 1))
    for col in ("implication for the strategy", "action", "lead", "by when"):
        out[col] = ""
    return out


def _figures(a: Assessment, folder: Path) -> dict[str, nf.FigureFile]:
    figs: dict[str, nf.FigureFile] = {}
    period = a.meta["period"]
    src = a.meta["trend_source"]
    pop_year = a.meta.get("population_year")
    residents = f"residents {pop_year} (per 1,000)" if pop_year else "no residents table"
    parts = {(p["section"][0], p["what"]): p for p in a.parts}

    def part(sec, what):
        return parts.get((sec, what), {})

    if "age_structure" in a.tables:
        yr = a.tables["age_structure"]["year"].iloc[0]
        figs["age"] = nf.age_structure(a.tables["age_structure"], nf.FigureFile(
            "profile_age", "Age structure", "Residents by age band.", "population table (store)", f"{yr}",
            f"residents {yr}"), folder)
    if "lsoas" in a.layers and "profile_wards" in a.tables:
        w = a.layers["wards"].merge(a.tables["profile_wards"][["unit_id", "aged_10_24"]], on="unit_id")
        p = part("1", "residents, ages 10-24 and deprivation by LSOA")
        figs["profile_maps"] = nf.profile_maps(a.layers["lsoas"], w, nf.FigureFile(
            "profile_maps", "Deprivation and young residents",
            "Left: national IMD 2019 decile of each LSOA (ward outlines). Right: share of residents aged 10-24 by ward.",
            "IoD 2019; population table", "IMD 2019; " + p.get("period", ""), p.get("residents", "")), folder)
    if "deprivation_deciles" in a.tables:
        figs["deciles"] = nf.deprivation_deciles(a.tables["deprivation_deciles"], nf.FigureFile(
            "profile_deprivation_deciles", "Deprivation distribution",
            "LSOAs by national IMD 2019 decile.", "IoD 2019 (LSOA 2011)", "IMD 2019 (indicators mostly 2015/16)",
            "LSOAs (count)"), folder)
    run = part("2", "monthly series and rolling 12-month totals")
    shown = [m for m in (CORE_MEASURE, *nf.MAP_MEASURES) if m in set(a.tables["monthly_series"]["measure"])]
    figs["monthly"] = nf.monthly_trends(a.tables["monthly_series"], tuple(period.split("..")), a.meta["scheme_changes"],
                                        nf.FigureFile("trends_monthly", "Monthly offences",
                                                      "Offences per month and the 12-month average, by group.",
                                                      src, run.get("period", ""), "counts (no rate)"), folder,
                                        measures=shown,
                                        recording=[(r["month"], r["short"]) for r in a.meta.get("recording_changes", [])])
    if "stl_serious_violence" in a.tables:
        figs["stl"] = nf.stl_panels(a.tables["stl_serious_violence"], nf.FigureFile(
            "trends_stl", "Trend and seasonality", "STL decomposition of serious violence per month.", src,
            part("2", "trend and seasonality (STL)").get("period", ""), "counts (no rate)"), folder,
            recording=[(r["month"], r["short"]) for r in a.meta.get("recording_changes", [])])
    wards = a.layers["wards"]
    figs["ward_rates"] = nf.ward_rate_maps(wards, a.tables["rate_bands"], nf.FigureFile(
        "spatial_ward_rates", "Ward rates", "Rate per 1,000 residents by ward, in bands.", src, period,
        part("3", "ward rates, bands and smoothed rates").get("residents", residents)), folder)
    bands = a.tables["rate_bands"].set_index("measure")
    if SV_MEASURE in bands.index:
        bounds = tuple(float(x) for x in str(bands.loc[SV_MEASURE, "bounds"]).split(";") if x)
        figs["eb"] = nf.raw_vs_smoothed(wards, bounds, SV_MEASURE, nf.FigureFile(
            "spatial_sv_raw_vs_smoothed", "Serious violence: recorded and smoothed",
            "Serious violence per 1,000 residents by ward: recorded (left) and empirical-Bayes smoothed (right).",
            src, period, part("3", "ward rates, bands and smoothed rates").get("residents", residents)), folder)
    if "ward_funnel" in a.tables:
        wf = a.tables["ward_funnel"]
        panels = [(m, measure_label(m).split(" (")[0]) for m in (CORE_MEASURE, SV_MEASURE) if m in set(wf["measure"])]
        figs["funnel"] = nf.funnel_plot(wf, panels, nf.FigureFile(
            "spatial_funnel", "Ward rates with funnel limits", "Each ward's rate against its residents; lines: the "
            "borough rate and Poisson 95% (dashed) and 99.8% (solid) limits; red, named: outside 99.8%.", src, period,
            part("3", "ward rates, bands and smoothed rates").get("residents", residents)), folder)
    cw = a.tables.get("cohorts_wards")
    if cw is not None and len(cw):
        panels = [(m, lab) for m, lab in cw[["measure", "label"]].drop_duplicates().itertuples(index=False)
                  if m in ("Knife Crime", "Domestic Abuse")]
        if panels:
            figs["cohort_funnel"] = nf.funnel_plot(cw, panels, nf.FigureFile(
                "cohorts_funnel", "Knife crime and domestic abuse by ward", "Ward rates per 1,000 residents with "
                "Poisson 99.8% limits around the wards' rate; red, named: outside.", "Met crime dashboard",
                "; ".join(sorted(set(cw["period"]))), residents), folder, levels=("99.8",))
    hp = part("3", "hot spots (Gi*, FDR), LISA, emerging hot spots")
    figs["hotspots"] = nf.hotspot_maps(a.layers["hotspots"], a.layers.get("operational_areas"), nf.FigureFile(
        "spatial_hotspots", "Hot spots", "Gi* hot and cold spots of serious violence (left) and emerging hot spot "
        "categories (right); purple: operational areas.", hp.get("source", src), hp.get("period", period),
        f"counts; {hp.get('units', '')}"), folder)
    curves = {k: np.asarray(v) for k, v in a.meta["lorenz"].items()}
    figs["lorenz"] = nf.lorenz_curves(curves, nf.FigureFile(
        "spatial_concentration", "Concentration", "Cumulative share of serious violence against cumulative share "
        "of places, most harmed first.", "; ".join(sorted(set(a.tables["concentration"]["source"]))),
        "; ".join(sorted(set(a.tables["concentration"]["period"]))), "counts (no rate)"), folder)
    if "region_rates" in a.tables:
        c = a.meta["comparison"]
        figs["ranks"] = nf.region_ranks(a.tables["region_rates"], a.area_code, c["similar_codes"],
                                        [SV_MEASURE, "violence"], nf.FigureFile(
            "compare_ranks", "Rates across the region", f"Rate per 1,000 residents, every authority; red: {a.area_name}, "
            "blue: most similar boroughs; dashed: the region.", c["files"], c["period"],
            f"residents {c['population_year']}"), folder)
        figs["region_trends"] = nf.region_trends(a.tables["region_rolling_rates"], a.area_name, nf.FigureFile(
            "compare_trends", "Change over time against the region",
            "Rolling 12-month rate per 1,000: the borough, its most similar boroughs (pooled) and the region.",
            c["files"], part("4", "rolling 12-month rates over time").get("period", ""),
            f"residents {c['population_year']} for every month"), folder)
    if "risk_factors" in a.tables:
        rf = a.tables["risk_factors"]
        figs["forest"] = nf.forest(rf, nf.FigureFile(
            "risk_forest", "Risk and protective factors", "Rate ratios of serious violence with 95% intervals; "
            "red: higher rates, blue: lower, grey: unclear.", "; ".join(sorted(set(rf["source"]))),
            "; ".join(sorted(set(rf["period"]))), "residents " + ", ".join(sorted({str(y) for y in rf["population_year"]}))
            + " (exposure)"), folder)
    aw = a.tables.get("assets_wards")
    if aw is not None:
        w = wards.merge(aw.drop(columns=["name", "population"]), on="unit_id")
        figs["assets"] = nf.assets_map(w, a.layers, nf.FigureFile(
            "risk_assets", "Protective assets", "Street light density by ward, parks, schools and stations.",
            "street lighting assets, schools, stations, parks (store)", "as published", "areas (per km²)"), folder)
    return figs


def context(a: Assessment, figs: dict[str, nf.FigureFile], *, created: str) -> dict:
    """Everything the template shows, as strings and lists."""
    h = a.tables["headline_rolling_12m"]
    headline = _rows(h, {"label": ("label",), "count": ("count", 0), "previous": ("previous", 0),
                         "change": ("change_pct", 1, True, True), "rate": ("rate_per_1000", 2),
                         "pg": ("police_generated",), "lo": ("change_lo_pct", 0, True, True),
                         "hi": ("change_hi_pct", 0, True, True)})
    for row, m in zip(headline, h["measure"], strict=True):
        row["key"] = m in (CORE_MEASURE, SV_MEASURE, "violence", "robbery", "sexual", "weapons", "drugs")
        row["headline"] = m in (CORE_MEASURE, SV_MEASURE)
    minors = _rows(a.tables.get("minor_categories_12m"), {
        "group": ("group",), "label": ("minor_category",), "count": ("count", 0), "previous": ("previous", 0),
        "change": ("change_pct", 1, True, True), "rate": ("rate_per_1000", 2), "core": ("in_core",),
        "broad": ("in_broad",)})
    for row in minors:
        row["group"] = measure_label(row["group"])
    w = a.tables["ward_rolling_12m"]
    sv_w = w[w["measure"] == SV_MEASURE].sort_values("rate_eb_per_1000", ascending=False)
    ward_rows = _rows(sv_w, {"name": ("name",), "count": ("count", 0), "rate": ("rate_per_1000", 1),
                             "eb": ("rate_eb_per_1000", 1), "band": ("band",), "change": ("change_pct", 0, True, True),
                             "population": ("population", 0)})
    ward_measure = {}
    for m in ("violence", "robbery", "sexual", "weapons", "drugs"):
        part = w[w["measure"] == m].set_index("unit_id")
        if len(part):
            ward_measure[m] = part
    wide_rows = []
    for r in sv_w.itertuples():
        row = {"name": r.name, "sv": _num(r.rate_per_1000, 1)}
        for m, part in ward_measure.items():
            row[m] = _num(part.loc[r.unit_id, "rate_per_1000"], 1) if r.unit_id in part.index else "–"
        wide_rows.append(row)
    hs = a.tables["hotspots"]
    hot = hs[hs["Gi_Bin"] > 0].sort_values("Zs", ascending=False)
    emerging = hs[~hs["emerging"].astype(str).str.lower().isin(
        {"no pattern detected", "not enough periods", "none", ""})]["emerging"].value_counts()
    areas = []
    if "operational_areas" in a.tables:
        names = a.tables["hotspots"].set_index("unit_id")["name"]
        for r in a.tables["operational_areas"].itertuples():
            ids = unit_list(r.unit_ids)
            areas.append({"id": r.area_id, "n": r.n_units, "share": _num(100 * r.risk_share, 0, True),
                          "km2": _num(r.area_km2, 1), "places": ", ".join(str(names.get(u, u)) for u in ids)})
    conc = _rows(a.tables["concentration"][a.tables["concentration"]["value"] == "count"],
                 {"units": ("units",), "places": ("places", 0), "top": ("top_places", 0),
                  "share": ("top_share", 2), "gini": ("gini", 2), "period": ("period",), "source": ("source",)})
    for row, r in zip(conc, a.tables["concentration"][a.tables["concentration"]["value"] == "count"].itertuples(), strict=True):
        row["share"] = _num(100 * r.top_share, 0, True)
    comp = None
    if "region_comparison" in a.tables:
        c = a.meta["comparison"]
        rc = a.tables["region_comparison"]
        sim = a.tables["similarity"]
        comp = {
            "meta": c,
            "rows": _rows(rc, {"label": ("label",), "rate": ("rate_per_1000", 2), "rank": ("rank",), "of": ("of",),
                               "region": ("region_rate_per_1000", 2), "similar": ("similar_rate_per_1000", 2),
                               "ratio": ("ratio_to_region", 2), "change": ("change_pct", 1, True, True),
                               "region_change": ("region_change_pct", 1, True, True),
                               "similar_change": ("similar_change_pct", 1, True, True)}),
            "similar": _rows(sim.head(c["k"] + 1), {"name": ("name",), "population": ("population", 0),
                                                    "density": ("log_density",), "imd": ("imd_score", 1),
                                                    "youth": ("share_10_24",), "distance": ("distance", 2)}),
            "features": list(c["similarity_features"].values()),
        }
        for row, r in zip(comp["similar"], sim.head(c["k"] + 1).itertuples(), strict=True):
            row["density"] = _num(np.exp(r.log_density), 0) if pd.notna(getattr(r, "log_density", np.nan)) else "–"
            row["youth"] = _num(100 * r.share_10_24, 1, True) if pd.notna(getattr(r, "share_10_24", np.nan)) else "–"
            row["self"] = r.area_code == a.area_code
        rec = a.tables.get("comparison_reconciliation")
        comp["reconciled"] = None if rec is None else bool((rec["difference"].abs() < 0.5).all())
        comp["max_difference"] = None if rec is None else float(rec["difference"].abs().max())
    rf = a.tables.get("risk_factors")
    risk_ctx = None
    if rf is not None:
        summ = a.tables["risk_model_summary"]
        models = []
        for s in summ.itertuples():
            t = rf[rf["level"] == s.level]
            models.append({
                "level": s.level, "units": s.units, "n": s.n, "period": s.period, "source": s.source,
                "outcome": s.outcome, "family": s.family, "pseudo_r2": _num(s.pseudo_r2, 2),
                "moran": _num(s.residual_morans_i, 2), "moran_p": _num(s.residual_morans_p, 3),
                "population_year": s.population_year,
                "rows": _rows(t.assign(p=t["p_value"].map(lambda v: "<0.001" if v < 0.001 else f"{v:.3f}")),
                              {"label": ("label",), "per": ("per",), "rr": ("rate_ratio", 2), "lo": ("lo", 2),
                               "hi": ("hi", 2), "p": ("p",), "direction": ("direction",)}),
            })
        risk_ctx = {"models": models,
                    "domains": _rows(a.tables.get("risk_domains"), {"label": ("label",), "rr": ("rate_ratio", 2),
                                                                    "lo": ("lo", 2), "hi": ("hi", 2)}),
                    "protective": [r for r in risk.PROTECTIVE]}
    assets = a.tables.get("assets_wards")
    asset_cols = [c for c in ("schools", "secondary_schools", "stations", "bus_stops", "street_lights_per_km2", "park_share")
                  if assets is not None and c in assets]
    asset_rows = []
    if assets is not None:
        for r in assets.sort_values("name").itertuples():
            asset_rows.append({"name": r.name, **{c: _num(getattr(r, c), 0 if c != "park_share" else 2) for c in asset_cols}})
    kpi = a.tables["kpi_baseline"]
    kb = kpi[kpi["area_type"] == "borough"]
    kpi_rows = _rows(kb, {"measure": ("measure",), "count": ("count", 0), "rate": ("rate_per_1000", 2),
                          "change": ("change_pct", 1, True, True)})
    for row in kpi_rows:
        row["measure"] = measure_label(row["measure"])
    vs = a.tables.get("kpi_vs_baseline")
    vs_rows = None
    if vs is not None:
        sel = vs[vs["area_type"].isin(["borough", "operational area"])]
        vs_rows = _rows(sel, {"area": ("area_name",), "measure": ("measure",), "bperiod": ("baseline_period",),
                              "bcount": ("baseline_count", 0), "period": ("period",), "count": ("count", 0),
                              "change": ("change_pct", 1, True, True), "status": ("status",)})
        for row in vs_rows:
            row["measure"] = measure_label(row["measure"])
        a.meta["kpi_vs_baseline_counts"] = vs["status"].value_counts().to_dict()
    stl = a.meta.get("stl")
    month_name = lambda m: pd.Timestamp(2000, int(m), 1).strftime("%B")  # noqa: E731
    notes = a.meta.get("notes", {})
    made = pd.Timestamp(created[:10])
    end = pd.Timestamp(a.period_end + "-01")
    age = (made.year - end.year) * 12 + made.month - end.month
    return {
        "a": a, "created": created[:10], "end_text": _month_text(a.period_end), "age_months": age, "period": a.meta["period"],
        "previous_period": a.meta["previous_period"], "parts": a.parts, "findings": findings(a),
        "figs": {k: {"src": v.files.get("svg"), "png": v.files.get("png"), "title": v.title, "caption": v.caption,
                     "footer": v.footer} for k, v in figs.items()},
        "cohorts": _cohort_context(a),
        "partner": _partner_context(a),
        "lsoa_top": _lsoa_context(a),
        "pop_bases": _ward_bases_context(a), "borough_bases": borough_bases_sentence(a),
        "fig_no": FIGURE_NUMBERS, "to_complete": TO_COMPLETE,
        "recommendations": a.tables["recommendations_skeleton"].to_dict("records")
        if "recommendations_skeleton" in a.tables else recommendations(a).to_dict("records"),
        "headline": headline, "minors": minors, "recording_changes": a.meta.get("recording_changes", []),
        "trend_rows": _rows(a.tables.get("trend_estimates"), {
            "label": ("label",), "method": ("method",), "estimate": ("estimate", 0, False, True), "lo": ("lo", 0, False, True),
            "hi": ("hi", 0, False, True), "period": ("period",), "spans": ("spans_recording_change",)}),
        "gaps": a.tables["open_data_gaps"].to_dict("records"),
        "population": _num(a.meta.get("borough_population"), 0), "population_year": a.meta.get("population_year"),
        "ward_population_method": a.meta.get("ward_population_method"), "ward_edition": a.meta.get("ward_edition"),
        "trend_source": a.meta["trend_source"], "scheme_changes": a.meta["scheme_changes"],
        "stl": None if stl is None else {**stl, "peak": month_name(stl["peak_month"]), "trough": month_name(stl["trough_month"]),
                                         "range": _num(stl["seasonal_range"], 0),
                                         "trend_change": _num(stl["trend_change"], 0, False, True),
                                         "trend_strength": _num(stl["trend_strength"], 2),
                                         "seasonal_strength": _num(stl["seasonal_strength"], 2)},
        "ward_rows": ward_rows, "wide_rows": wide_rows, "wide_measures": [(m, measure_label(m)) for m in ward_measure],
        "bands": a.tables["rate_bands"].to_dict("records"),
        "hot": _rows(hot, {"name": ("name",), "y": ("y", 0), "z": ("Zs", 2), "cls": ("gi_class",)}),
        "emerging": emerging.to_dict(), "hs_meta": a.meta["hotspots"], "areas": areas, "conc": conc,
        "comparison": comp, "risk": risk_ctx, "asset_cols": asset_cols, "asset_rows": asset_rows,
        "parks": None if "parks" not in a.tables else len(a.tables["parks"]),
        "kpi_rows": kpi_rows, "kpi_count": len(kpi), "kpi_areas": kpi["area_type"].value_counts().to_dict(),
        "vs_rows": vs_rows, "notes": notes, "sources": a.meta["sources"], "source_notes": a.meta["source_notes"],
        "tables": [{"file": f"tables/{k}.csv", "title": TABLES.get(k, ("", k))[1], "section": TABLES.get(k, ("", ""))[0],
                    "rows": len(v)} for k, v in a.tables.items()],
        "sv_label": measure_label(SV_MEASURE), "all_label": measure_label(ALL_MEASURE),
        # the options the hot spots ran with: those given, else analyse_hotspots' own defaults
        "hs_options": {**_defaults(analyse_hotspots), **a.meta["hotspot_options"]}, "seed": a.meta["seed"],
    }


def _defaults(func) -> dict:
    """The keyword defaults of ``func``."""
    return {k: p.default for k, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _cohort_context(a: Assessment) -> dict | None:
    """The cohorts section: borough table, knife in London, wards outside the limits, stop and search."""
    cb = a.tables.get("cohorts_borough")
    d = a.tables.get("stop_search_disproportionality")
    sp = a.tables.get("stop_search_people")
    if cb is None and d is None and sp is None:
        return None
    out = {"borough": _rows(cb, {"label": ("label",), "period": ("period",), "count": ("count", 0),
                                  "previous": ("previous", 0), "change": ("change_pct", 1, True, True),
                                  "lo": ("change_lo_pct", 0, True, True), "hi": ("change_hi_pct", 0, True, True),
                                  "rate": ("rate_per_1000", 2), "place": ("place_based",)}),
           "knife_london": None, "wards": [], "ss_people": [], "ss_disp": [], "ss_meta": a.meta.get("stop_search")}
    kl = a.tables.get("knife_london")
    if kl is not None:
        out["knife_london"] = _rows(kl[kl["is_borough"]], {
            "measure": ("measure",), "rate": ("rate_per_1000", 2), "london": ("london_rate_per_1000", 2),
            "rank": ("rank", 0), "of": ("of", 0), "period": ("period",), "year": ("population_year",)})
    cw = a.tables.get("cohorts_wards")
    if cw is not None:
        for (label, period), g in cw.groupby(["label", "period"], sort=False):
            hi = g[g["outside"].str.startswith("above 99.8")].sort_values("rate_per_1000", ascending=False)
            top = g.sort_values("count", ascending=False).head(3)
            out["wards"].append({"label": label, "period": period,
                                 "above": ", ".join(f"{r.name} ({r.rate_per_1000:.1f})" for r in hi.itertuples()) or "none",
                                 "top": ", ".join(f"{r.name} {r.count:,.0f}" for r in top.itertuples())})
    if sp is not None:
        out["ss_people"] = _rows(sp, {"breakdown": ("breakdown",), "value": ("value",), "searches": ("searches", 0),
                                      "share": ("share", 2), "period": ("period",)})
        for row, v in zip(out["ss_people"], sp["share"], strict=True):
            row["share"] = _num(100 * v, 0, True)
    if d is not None:
        out["ss_disp"] = _rows(d, {"group": ("group",), "searches": ("searches", 0), "residents": ("residents", 0),
                                   "rate": ("rate_per_1000", 1), "ratio": ("rate_ratio", 2), "lo": ("lo", 2),
                                   "hi": ("hi", 2), "period": ("period",)})
        out["ss_disp_meta"] = {"period": d["period"].iloc[0], "year": d["residents_year"].iloc[0],
                               "unrecorded": d.attrs.get("unrecorded"), "in_period": int(d["searches_in_period"].iloc[0])
                               if "searches_in_period" in d else None}
    return out


def borough_bases_sentence(a: Assessment) -> str:
    """The borough's serious-violence rank among the authorities with each residents year, in one sentence."""
    b = a.tables.get("rank_population_bases")
    if b is None or not len(b):
        return ""
    b = b[b["measure"] == SV_MEASURE]
    if not len(b):
        return ""
    said = "; ".join(f"{'the pack uses ' if r.used_by_pack else ''}{r.base} ({r.population:,.0f} residents): "
                     f"{r.rate_per_1000:.1f} per 1,000, rank {r.rank:.0f} of {r.of}" for r in b.itertuples())
    ranks = sorted(set(int(r) for r in b["rank"].dropna()))
    how = (f"the rank moves between {ranks[0]} and {ranks[-1]} with the base alone" if len(ranks) > 1
           else "the rank does not depend on the base")
    return (f"Serious violence, {b['period'].iloc[0]}, with each residents year the comparison folder holds: "
            f"{said}. The counts are the same; {how}.")


def _lsoa_context(a: Assessment, top: int = 10) -> dict | None:
    """The LSOAs with the highest smoothed rates of the core measure (else the broad one)."""
    t = a.tables.get("lsoa_rolling_12m")
    if t is None or not len(t):
        return None
    m = CORE_MEASURE if CORE_MEASURE in set(t["measure"]) else SV_MEASURE
    t = t[t["measure"] == m].sort_values(["rate_eb_per_1000", "unit_id"], ascending=[False, True])
    p = next((x for x in a.parts if x["what"] == "LSOA counts, rates and smoothed rates"), {})
    return {"measure": measure_label(m).split(" (")[0].lower(), "n": len(t), "top": top, "period": p.get("period", ""),
            "source": p.get("source", ""), "residents": p.get("residents", ""),
            "rows": _rows(t.head(top), {"name": ("name",), "code": ("unit_id",), "count": ("count", 0),
                                        "rate": ("rate_per_1000", 1), "eb": ("rate_eb_per_1000", 1),
                                        "change": ("change_pct", 0, True, True), "population": ("population", 0)})}


def _ward_bases_context(a: Assessment) -> dict | None:
    t = a.tables.get("ward_rank_population_bases")
    if t is None or not len(t):
        return None
    m = CORE_MEASURE if CORE_MEASURE in set(t["measure"]) else SV_MEASURE
    t = t[t["measure"] == m]
    bases = list(dict.fromkeys(t["base"]))
    wide = t.pivot(index="unit_id", columns="base", values="rank").reindex(columns=bases)
    used = bases[0]
    wide = wide.sort_values(used)
    names = t.drop_duplicates("unit_id").set_index("unit_id")["name"]
    change = t.groupby("unit_id")["rank_change"].apply(lambda s: int(s.abs().max()))
    return {"measure": measure_label(m).split(" (")[0].lower(), "bases": [b.split(" (")[0] for b in bases],
            "used": used, "n": len(wide), "moved": int((change > 0).sum()), "largest": int(change.max()),
            "rows": [{"name": names[u], "ranks": [_num(v) for v in r]} for u, r in zip(wide.index, wide.to_numpy(),
                                                                                     strict=True)]}


def _partner_context(a: Assessment) -> list[dict]:
    """One entry per partner route: its rows when present, else how to add it."""
    summary, areas = a.tables.get("partner_summary"), a.tables.get("partner_areas")
    out = []
    for st in a.meta.get("partner_routes", []):
        entry = dict(st)
        if st["present"] and summary is not None:
            s = summary[summary["route"] == st["kind"]]
            entry["rows"] = _rows(s, {"measure": ("measure",), "service": ("service",), "period": ("period",),
                                      "level": ("level",), "count": ("count", 0), "previous": ("previous", 0),
                                      "change": ("change_pct", 1, True, True), "lo": ("change_lo_pct", 0, True, True),
                                      "hi": ("change_hi_pct", 0, True, True), "rate": ("rate", 1),
                                      "unit": ("rate_unit",), "note": ("note",)})
            for row in entry["rows"]:
                row["measure"] = row["measure"].replace("_", " ") + (f" ({row['service']})" if row["service"] else "")
            top = areas[areas["route"] == st["kind"]] if areas is not None else None
            entry["top"] = "" if top is None or not len(top) else (
                f"Most {top['measure'].iloc[0].replace('_', ' ')}, {top['period'].iloc[0]}: " + ", ".join(
                    f"{r.name} {r.count:,.0f}{' (+ suppressed)' if r.suppressed else ''}" for r in top.itertuples()))
        out.append(entry)
    return out


def render_pack(a: Assessment, figs: dict[str, nf.FigureFile], *, created: str, template_dir=None) -> str:
    return environment(template_dir).get_template(TEMPLATE).render(**context(a, figs, created=created))


def write_pack(a: Assessment, out_dir, *, pdf: bool = True, browser=None, template_dir=None,
               progress=None) -> dict[str, Path]:
    """Write the evidence pack of ``a`` into ``out_dir`` (see the module notes); return its files.

    A PDF that cannot be printed (no Chromium) is reported in ``pack.json`` and by the
    returned ``pdf_error``; the HTML and everything else are still written.
    """
    say = progress or (lambda _m: None)
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    a.tables["recommendations_skeleton"] = recommendations(a)  # from the pack's own findings
    for name, table in a.tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
    a.tables["kpi_baseline"].to_csv(out / BASELINE_FILE, index=False)
    say("figures")
    figs = _figures(a, out / "figures")
    created = datetime.now(UTC).isoformat(timespec="seconds")
    html = out / HTML_NAME
    html.write_text(render_pack(a, figs, created=created, template_dir=template_dir), encoding="utf-8")
    paths: dict[str, Path] = {"html": html, "baseline": out / BASELINE_FILE}
    meta = {"created": created, "area_code": a.area_code, "area_name": a.area_name, "period_end": a.period_end,
            "parts": a.parts, "settings": {k: a.meta[k] for k in ("hotspot_options", "seed", "window_months")},
            "population_year": a.meta.get("population_year"), "sources": a.meta["sources"],
            "notes": a.meta.get("notes", {}),
            "figures": {k: {"title": v.title, "footer": v.footer, "files": v.files} for k, v in figs.items()},
            "tables": {k: {"file": f"tables/{k}.csv", "rows": len(v), "title": TABLES.get(k, ("", k))[1]}
                       for k, v in a.tables.items()}}
    if pdf:
        say("PDF (headless Chromium)")
        try:
            paths["pdf"] = html_to_pdf(html, out / PDF_NAME, browser=browser)
        except PdfError as exc:
            meta["pdf_error"] = str(exc)
            paths["pdf_error"] = exc  # type: ignore[assignment]
    (out / META_NAME).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    paths["meta"] = out / META_NAME
    return paths
