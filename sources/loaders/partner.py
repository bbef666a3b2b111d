"""Partner data routes: counts a Serious Violence Duty partnership holds that open data lacks.

Four documented CSV layouts (``docs/partner_data.md``; a blank template of each, header plus
one commented example row, in ``docs/templates/``), one catalogue kind each:

==========================  =====================================================================
kind                        columns (in any order; extra columns are ignored)
==========================  =====================================================================
``partner_ae_assaults``     ``month, area_code, service, assault_attendances``
``partner_youth_justice``   ``month, area_code, first_time_entrants, proven_offences``
``partner_marac``           ``month, marac_cases, repeat_cases`` (``area_code`` optional)
``partner_education``       ``academic_year, area_code, school_urn, pupils, suspensions,
                            permanent_exclusions, neet_16_17, cohort_16_17``
==========================  =====================================================================

Counts only, never people: a row is one area (borough, ward or LSOA GSS code; or a school by
URN for education) and one period. Every count cell may hold a small-number suppression marker
(``*``, ``c``, ``x``, ``[c]``, ``[x]``, ``~`` or ``<N``, as partners publish them): it is kept as
*suppressed* (value unknown, ``<N`` giving the bound ``N - 1``), never read as zero, and the pack
says how many cells were suppressed. A line whose first field starts with ``#`` (the templates'
example) is a comment: it is kept in the rejects as such, so the counts reconcile.

All four go to one tidy table, ``partner_counts``: ``route, period, month, area_level,
area_code, service, measure, value, suppressed, suppressed_below, source_file, source_row``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sources.loaders.areas import AREA_COUNTS_FIRST_MONTH, FAMILY, GSS
from sources.loaders.context import IngestContext
from sources.readers import DataError, LoadResult, RowChecks, check_month, read_csv_raw

SUPPRESSED = re.compile(r"^\s*(?:\*|c|x|\[c\]|\[x\]|~|<\s*(\d+))\s*$", re.I)
"""Small-number suppression markers: ``*``, ``c``, ``x``, ``[c]``, ``[x]``, ``~`` or ``<N``."""
URN = re.compile(r"^\d{6,7}$")
ACADEMIC_YEAR = re.compile(r"^(\d{4})[/-]?(\d{2})$")
SERVICES = ("ae", "ambulance")


@dataclass(frozen=True)
class Route:
    """One partner data route: its kind, the columns its layout requires and which hold counts."""

    kind: str
    title: str
    template: str
    required: tuple[str, ...]
    counts: tuple[str, ...]
    period: str = "month"  # "month" (YYYY-MM) or "academic_year" (YYYY/YY)
    area_required: bool = True
    holder: str = ""
    """Who in a partnership usually holds the data (said in the pack when it is absent)."""


ROUTES: dict[str, Route] = {r.kind: r for r in (
    Route("partner_ae_assaults", "A&E and ambulance assault attendances", "ae_ambulance_assaults.csv",
          ("month", "area_code", "service", "assault_attendances"), ("assault_attendances",),
          holder="the ISTV (Information Sharing to Tackle Violence) lead of the local A&E; London Ambulance Service"),
    Route("partner_youth_justice", "Youth justice: first-time entrants and proven offences", "youth_justice.csv",
          ("month", "area_code", "first_time_entrants", "proven_offences"),
          ("first_time_entrants", "proven_offences"), holder="the Youth Justice Service"),
    Route("partner_marac", "MARAC: domestic abuse cases heard", "marac.csv",
          ("month", "marac_cases", "repeat_cases"), ("marac_cases", "repeat_cases"), area_required=False,
          holder="the MARAC coordinator (domestic abuse lead)"),
    Route("partner_education", "Education: suspensions, exclusions and NEET", "education_summary.csv",
          ("academic_year", "area_code", "school_urn", "pupils", "suspensions", "permanent_exclusions",
           "neet_16_17", "cohort_16_17"),
          ("pupils", "suspensions", "permanent_exclusions", "neet_16_17", "cohort_16_17"),
          period="academic_year", holder="the council's education (inclusion) and post-16 participation teams"),
)}
"""Every partner route, by catalogue kind."""


def recognise(low: set[str]) -> str | None:
    """The partner route a CSV header (lower-cased names) is laid out as, or None."""
    for route in ROUTES.values():
        if set(route.required) <= low:
            return route.kind
    return None


def parse_counts(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """A count column as (value, suppressed, bound, bad): suppression markers are not numbers.

    Examples
    --------
    >>> v, s, b, bad = parse_counts(pd.Series(["3", "<5", "*", "x1", None]))
    >>> v.tolist()[:1], s.tolist(), b.tolist()[1], bad.tolist()
    ([3.0], [False, True, True, False, False], 4.0, [False, False, False, True, False])
    """
    text = values.astype("string").str.strip()
    marker = text.str.extract(SUPPRESSED.pattern, flags=re.I, expand=False)
    suppressed = text.fillna("").str.match(SUPPRESSED).astype(bool)
    bound = pd.to_numeric(marker, errors="coerce") - 1
    number = pd.to_numeric(text.str.replace(",", "", regex=False), errors="coerce")
    whole = number.notna() & (number >= 0) & (number == np.floor(number))
    bad = (text.notna() & ~suppressed & ~whole).astype(bool)
    return number.where(whole), suppressed, bound.where(suppressed), bad


def load_partner(path: Path, ctx: IngestContext, kind: str) -> LoadResult:
    """One partner route's CSV (:data:`ROUTES`) as tidy rows of ``partner_counts``.

    Rows are rejected, with the column and value named, for: a comment line (``#``), a missing
    or unparseable period, a period in the future, an area code that is not a GSS code of a
    borough, ward or LSOA (or not in the loaded boundaries), an unknown service, a count that is
    neither a whole number >= 0 nor a suppression marker, and a repeat of an earlier row's
    period and area.

    Raises
    ------
    DataError
        The file cannot be read, or lacks a column its layout requires (named).
    """
    route = ROUTES[kind]
    raw = read_csv_raw(path, kind=route.title, limits=ctx.limits)
    f = raw.frame
    cols = {c.strip().lower(): c for c in f.columns if c != "_row"}
    missing = [c for c in route.required if c not in cols]
    if missing:
        raise DataError(raw.source, f"missing column(s) {missing} for the {route.title} layout "
                        f"(docs/templates/{route.template}); found {list(cols)}")
    col = {k: f[v].astype("string").str.strip() for k, v in cols.items()}
    checks = RowChecks(f, raw.source)
    first = f[[c for c in f.columns if c != "_row"][0]].astype("string").str.strip()
    checks.reject(first.fillna("").str.startswith("#"), "comment line", "a line starting with '#' (template example)")
    if route.period == "month":
        when = check_month(checks, col["month"], today=ctx.today, first=AREA_COUNTS_FIRST_MONTH,
                           source_name=route.title)
        period = when.dt.strftime("%Y-%m").astype("string")
    else:
        parts = col["academic_year"].str.extract(ACADEMIC_YEAR.pattern)
        start = pd.to_numeric(parts[0], errors="coerce")
        ok = (start.notna() & ((start + 1) % 100 == pd.to_numeric(parts[1], errors="coerce"))).fillna(False)
        checks.reject(col["academic_year"].isna(), "missing academic_year", "academic_year blank")
        checks.reject(~ok, "unparseable academic_year", "expected YYYY/YY like 2024/25, got academic_year "
                      + col["academic_year"])
        checks.reject((start >= ctx.today.year + (ctx.today.month >= 9)).fillna(False), "academic year in the future",
                      "academic_year " + col["academic_year"] + f" starts after {ctx.today:%Y-%m}")
        period = (parts[0] + "/" + parts[1]).astype("string")
        when = pd.Series(pd.NaT, index=f.index, dtype="datetime64[ns]")
    code = col.get("area_code", pd.Series(pd.NA, index=f.index, dtype="string")).str.upper()
    urn = col.get("school_urn", pd.Series(pd.NA, index=f.index, dtype="string"))
    level = code.str[:3].map(FAMILY).astype("string")
    level = level.where(level.isin(["borough", "ward", "lsoa"]))
    if route.kind == "partner_education":
        checks.reject(code.isna() & urn.isna(), "no area or school", "area_code and school_urn both blank")
        checks.reject(code.notna() & urn.notna(), "both an area and a school",
                      "area_code " + code.fillna("") + " and school_urn " + urn.fillna("") + ": give one per row")
        checks.reject(urn.notna() & ~urn.fillna("").str.match(URN), "not a school URN",
                      "school_urn " + urn.fillna("") + " (expected 6 or 7 digits)")
        level = level.mask(urn.notna(), "school")
    elif route.area_required:
        checks.reject(code.isna(), "missing area_code", "area_code blank")
    code_given = code.notna()
    checks.reject(code_given & ~code.fillna("").str.match(GSS), "not a GSS code", "area_code " + code.fillna(""))
    checks.reject(code_given & level.isna(), "not a borough, ward or LSOA code",
                  "area_code " + code.fillna("") + " (expected E09..., E05... or E01...)")
    for family in ("ward", "lsoa", "borough"):
        known = set().union(*[ctx.codes[e] for e in ctx.codes if e.startswith(family)] or [set()])
        if known:
            checks.reject((level == family).fillna(False) & ~code.isin(known), f"{family} code not in any loaded boundary",
                          "area_code " + code.fillna(""))
    level = level.fillna("borough")  # MARAC rows without an area are the borough's
    service = pd.Series(pd.NA, index=f.index, dtype="string")
    if "service" in route.required:
        service = col["service"].str.lower()
        checks.reject(~service.isin(SERVICES), "unknown service",
                      "service " + col["service"].fillna("") + f" (expected one of {list(SERVICES)})")
    parsed = {}
    for c in route.counts:
        value, suppressed, bound, bad = parse_counts(col[c])
        checks.reject(bad, f"bad {c}", f"{c} " + col[c].fillna("") + " (expected a whole number >= 0, or a "
                      "suppression marker such as * or <5)")
        parsed[c] = (value, suppressed, bound)
    checks.reject(pd.concat([parsed[c][0].isna() & ~parsed[c][1] for c in route.counts], axis=1).all(axis=1),
                  "no counts", "every count column blank")
    key = pd.DataFrame({"p": period, "c": code.fillna(""), "u": urn.fillna(""), "s": service.fillna("")})
    dup = key[checks.ok].duplicated().reindex(f.index, fill_value=False)
    checks.reject(dup, "duplicate row",
                  "period " + period.fillna("") + ", area " + code.fillna(urn.fillna("borough")) + " given again")
    good, rejects = checks.split()
    idx = good.index
    out = []
    for c in route.counts:
        value, suppressed, bound = (s[idx] for s in parsed[c])
        keep = value.notna() | suppressed
        out.append(pd.DataFrame({
            "route": route.kind, "period": period[idx], "month": when[idx], "area_level": level[idx],
            "area_code": code.fillna(urn)[idx], "service": service[idx], "measure": c,
            "value": value.astype("float64"), "suppressed": suppressed.astype(bool), "suppressed_below": bound,
            "source_file": raw.source, "source_row": good["_row"].astype("int64"),
        })[keep.to_numpy()])
    frame = pd.concat(out, ignore_index=True).astype({"period": "string", "area_code": "string",
                                                      "area_level": "string", "service": "string",
                                                      "suppressed_below": "float64"})
    result = raw.result("partner_counts", frame, rejects, accepted_rows=len(good))
    n_supp = int(frame["suppressed"].sum())
    if n_supp:
        result.flag("suppressed_cells", f"{raw.source}: {n_supp} count cell{'s' if n_supp > 1 else ''} suppressed "
                    "(small numbers: '*', '<5' and the like); kept as unknown, not zero", severity="info",
                    cells=n_supp)
    result.notes.append(f"{route.title}: {len(good)} rows, {len(frame)} counts, {n_supp} suppressed")
    return result
