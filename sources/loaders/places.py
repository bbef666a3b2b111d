"""Loaders for what describes a place: deprivation, population, hubs, schools, parks, lighting."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import WORKING_CRS
from sources.loaders.areas import GSS, _check_crs, _find, read_layer
from sources.loaders.context import IngestContext
from sources.loaders.points import pick_coordinates, point_table
from sources.readers import (
    DataError,
    LoadResult,
    RowChecks,
    read_csv_raw,
    to_number,
)

IMD_DOMAINS = [
    (r"Index of Multiple Deprivation \(IMD\)", "imd"), (r"Income Deprivation Affecting Children Index \(IDACI\)", "idaci"),
    (r"Income Deprivation Affecting Older People \(IDAOPI\)", "idaopi"), (r"Income", "income"),
    (r"Employment", "employment"), (r"Education, Skills and Training", "education"),
    (r"Health Deprivation and Disability", "health"), (r"Crime", "crime"),
    (r"Barriers to Housing and Services", "housing"), (r"Living Environment", "living_env"),
    (r"Children and Young People Sub-domain", "cyp"), (r"Adult Skills Sub-domain", "adult_skills"),
    (r"Geographical Barriers Sub-domain", "geo_barriers"), (r"Wider Barriers Sub-domain", "wider_barriers"),
    (r"Indoors Sub-domain", "indoors"), (r"Outdoors Sub-domain", "outdoors"),
]


def snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def _lsoa11_column(cols) -> str | None:
    return _find(cols, r"LSOA code \(2011\)", r"lsoa11cd", r"lsoa_?code")


def load_imd(path: Path, ctx: IngestContext) -> LoadResult:
    """IoD2019 scores/ranks/deciles by LSOA 2011 (MHCLG/GLA column names)."""
    raw = read_csv_raw(path, kind="Indices of Deprivation", limits=ctx.limits)
    f = raw.frame
    code = _lsoa11_column(list(f.columns))
    if code is None or not any(c.startswith("Index of Multiple Deprivation") for c in f.columns):
        raise DataError(raw.source, "expected 'LSOA code (2011)' and 'Index of Multiple Deprivation (IMD) Score' columns")
    renames = {}
    for col in f.columns:
        for pattern, short in IMD_DOMAINS:
            m = re.match(rf"^{pattern} (Score|Rank|Decile)", col)
            if m:
                renames[col] = f"{short}_{m.group(1).lower()}"
                break
        else:
            if re.match(r"^(Total population|Dependent Children|Population aged|Older population|Working age)", col):
                renames[col] = "pop2015_" + snake(col.split(":")[0])
    checks = RowChecks(f, raw.source)
    checks.reject(~f[code].fillna("").str.match(GSS), "not a GSS code", f[code].astype("string"))
    checks.reject(f[code].duplicated(), "duplicate LSOA", f[code].astype("string"))
    values = {new: to_number(f[old]) for old, new in renames.items()}
    score = values.get("imd_score")
    if score is not None:
        checks.reject(score.isna(), "IMD score not numeric", f[[k for k, v in renames.items() if v == "imd_score"][0]].astype("string"))
    good, rejects = checks.split()
    out = pd.DataFrame({"lsoa11": good[code], **{k: v[good.index].astype("float64") for k, v in values.items()}})
    result = raw.result("imd", out.reset_index(drop=True), rejects)
    result.notes.append(f"{len(values)} measures kept; ranks and deciles are national (1 = most deprived)")
    return result


def load_generic_lsoa_table(path: Path, ctx: IngestContext, table: str, code_patterns: tuple[str, ...]) -> LoadResult:
    """A table keyed by an area code with numeric columns (IoD underlying indicators, ward summaries)."""
    raw = read_csv_raw(path, kind=table, limits=ctx.limits)
    f = raw.frame
    code = _find(list(f.columns), *code_patterns)
    if code is None:
        raise DataError(raw.source, f"no area code column for {table}; found {list(f.columns[:-1])}")
    checks = RowChecks(f, raw.source)
    checks.reject(~f[code].fillna("").str.match(GSS), "not a GSS code", f[code].astype("string"))
    checks.reject(f[code].duplicated(), "duplicate code", f[code].astype("string"))
    good, rejects = checks.split()
    cols = {"code": good[code]}
    for c in good.columns:
        if c in (code, "_row"):
            continue
        num = to_number(good[c])
        cols[snake(c)] = num.astype("float64") if num.notna().sum() >= 0.9 * good[c].notna().sum() and good[c].notna().any() else good[c]
    return raw.result(table, pd.DataFrame(cols).reset_index(drop=True), rejects)


def _band(label: str) -> tuple[int, int] | None:
    s = label.lower()
    if m := re.search(r"(\d+) years and under", s):
        return 0, int(m.group(1))
    if m := re.search(r"(\d+) years and over", s) or re.search(r"(\d+)\+$", s):
        return int(m.group(1)), 120
    if m := re.search(r"(\d+) to (\d+)", s) or re.search(r"(\d+)-(\d+)$", s):
        return int(m.group(1)), int(m.group(2))
    return None


def _partition(bands: dict[str, tuple[int, int]]) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Keep the finest non-overlapping bands; drop derived ones that span others (e.g. 'Aged 10 to 24')."""
    items = sorted(bands.items(), key=lambda kv: (kv[1][1] - kv[1][0], kv[1][0]))
    kept: dict[str, tuple[int, int]] = {}
    dropped = []
    for name, (lo, hi) in items:
        if any(not (hi < a or lo > b) for a, b in kept.values()):
            dropped.append(name)
        else:
            kept[name] = (lo, hi)
    return kept, dropped


def _count_columns(raw, f, code: str, columns, what: str) -> tuple[RowChecks, dict[str, pd.Series]]:
    """Checks of a table of counts by area (one row per area, one count column each of ``columns``):
    a GSS code once per area, every count a number >= 0; returns the checks and the parsed counts."""
    checks = RowChecks(f, raw.source)
    checks.reject(~f[code].fillna("").str.match(GSS), "not a GSS code", f[code].astype("string"))
    checks.reject(f[code].duplicated(), "duplicate area", f[code].astype("string"))
    nums = {c: to_number(f[c]) for c in columns}
    bad = pd.concat([(v.isna() | (v < 0)) for v in nums.values()], axis=1).any(axis=1)
    checks.reject(bad, f"{what} count missing or negative", "non-numeric or negative count")
    return checks, nums


def _population(raw, f, code, edition, year, band_cols: dict[str, str], total_col: str | None, ctx) -> LoadResult:
    bands = {c: b for c in band_cols if (b := _band(band_cols[c])) is not None}
    kept, dropped = _partition(bands)
    checks, nums = _count_columns(raw, f, code, kept, "age band")
    if total_col is not None:
        total = to_number(f[total_col])
        sums = sum(nums.values())
        checks.reject((total - sums).abs() > 0.5 + 0.001 * total.abs(), "bands do not add up to the total",
                      "total " + f[total_col].astype("string") + " vs bands " + sums.astype("string"))
    good, rejects = checks.split()
    parts = [pd.DataFrame({"code": good[code], "edition": edition, "year": year, "age_from": lo, "age_to": hi,
                           "count": nums[c][good.index].astype("float64")}) for c, (lo, hi) in kept.items()]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    result = raw.result("population", out, rejects, accepted_rows=len(good))
    result.notes.append(f"{edition} {year}: {len(kept)} age bands; tidy rows = areas x bands")
    if dropped:
        result.notes.append(f"derived bands not used (they overlap others): {[band_cols[c] for c in dropped]}")
    return result


def load_population_mye(path: Path, ctx: IngestContext, year: int | None = None) -> LoadResult:
    """ONS mid-year estimates, broad age bands (``LSOA11CD, Persons_All-Ages, Persons_0-15, ...``)."""
    raw = read_csv_raw(path, kind="mid-year population estimates", limits=ctx.limits)
    f = raw.frame
    code = _find(list(f.columns), r"lsoa11cd", r"lsoa21cd", r"lsoa_?code")
    band_cols = {c: c.split("_", 1)[1] for c in f.columns if c.startswith("Persons_") and c != "Persons_All-Ages"}
    if code is None or not band_cols:
        raise DataError(raw.source, "expected an LSOA code column and Persons_<band> columns")
    edition = "lsoa2021" if "21" in code else "lsoa2011"
    year = year or _year_from(raw, f, path)
    return _population(raw, f, code, edition, year, band_cols, "Persons_All-Ages" if "Persons_All-Ages" in f else None, ctx)


def load_population_census(path: Path, ctx: IngestContext, year: int | None = None) -> LoadResult:
    """Census 2021 TS007A five-year age bands by LSOA 2021 (``LSOA21CD, Total, Aged ... years``)."""
    raw = read_csv_raw(path, kind="Census age bands", limits=ctx.limits)
    f = raw.frame
    code = _find(list(f.columns), r"lsoa21cd", r"geography code", r"lsoa_?code")
    band_cols = {c: c for c in f.columns if c.lower().startswith("aged ")}
    if code is None or not band_cols:
        raise DataError(raw.source, "expected LSOA21CD and 'Aged ...' columns")
    year = year or _year_from(raw, f, path)
    total = "Total" if "Total" in f else None
    return _population(raw, f, code, "lsoa2021" if "21" in code else "lsoa2011", year, band_cols, total, ctx)


def _year_from(raw, f, path) -> int:
    if "date" in f and f["date"].notna().any():
        m = re.match(r"(\d{4})", str(f["date"].dropna().iloc[0]))
        if m:
            return int(m.group(1))
    hint = re.search(r"(19|20)\d\d", path.stem)
    if hint:
        return int(hint.group(0))
    raise DataError(raw.source, "cannot tell the estimate's year (no date column or year in the file name); "
                    "give `year` in the catalogue")


def station_key(name: pd.Series) -> pd.Series:
    s = name.astype("string").str.lower().str.replace("&", " and ", regex=False)
    s = s.str.replace(r"\(.*?\)", " ", regex=True).str.replace(r"\b(lu|dlr|rail|underground)?\s*station\b", " ", regex=True)
    s = s.str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()
    return s


def load_stations(path: Path, ctx: IngestContext) -> LoadResult:
    raw = read_csv_raw(path, kind="station list", limits=ctx.limits)
    f = raw.frame
    name = _find(list(f.columns), r"station", r"station_?name", r"name")
    if name is None:
        raise DataError(raw.source, "expected a Station (name) column")
    coords = pick_coordinates([c for c in f.columns if c != "_row"])
    checks = RowChecks(f, raw.source)
    checks.reject(f[name].isna(), "missing station name", "blank name")
    key = station_key(f[name])
    flags: list[dict] = []
    network = _find(list(f.columns), r"network", r"mode")
    lines = _find(list(f.columns), r"lines?")
    blank = pd.Series(pd.NA, index=f.index, dtype="string")
    cols = {"station_key": key, "name": f[name], "network": f[network] if network else blank,
            "lines": f[lines] if lines else blank}
    ll = ("Longitude", "Latitude", "EPSG:4326") if {"Longitude", "Latitude"} <= set(f.columns) else None
    gdf, rejects = point_table(raw, checks, cols, ctx.area, ctx.options.hub_tolerance_m, coords=ll or coords, flags=flags)
    return raw.result("stations", gdf, rejects, flags=flags)


def merge_stations(results: list[LoadResult], far_m: float = 250.0) -> None:
    """One station per ``station_key`` across station lists, in load order.

    A station a later list repeats is merged into the first list's row: its attributes
    (network, lines) fill what that row lacks, and the row counts as accepted, not as a
    duplicate. Stations only the later list has are added. Locations more than ``far_m``
    apart are flagged (the first list's location is kept).
    """
    seen: dict[str, tuple[int, int]] = {}
    for i, res in enumerate(results):
        frame = res.frame
        keys = frame["station_key"].to_numpy()
        known = np.array([k in seen for k in keys], dtype=bool) & frame["station_key"].notna().to_numpy()
        filled, far, merged_from = 0, [], set()
        for pos in np.flatnonzero(known):
            j, row = seen[keys[pos]]
            base = results[j].frame
            merged_from.add(results[j].source)
            for col in ("network", "lines"):
                if col in frame and pd.isna(base.at[row, col]) and pd.notna(frame.at[pos, col]):
                    base.at[row, col] = frame.at[pos, col]
                    filled += 1
            gap = base.geometry.iloc[row].distance(frame.geometry.iloc[pos])
            if gap > far_m:
                far.append(f"{keys[pos]} ({gap:,.0f} m)")
        if known.any():
            res.frame = frame[~known].reset_index(drop=True)
            res.flag("stations_merged", f"{res.source}: {int(known.sum())} stations already listed in "
                     f"{sorted(merged_from)} merged into them ({filled} network/lines values added); "
                     f"{int((~known).sum())} new stations", severity="info", merged=int(known.sum()), filled=filled)
        if far:
            res.flag("station_locations_disagree", f"{res.source}: {len(far)} merged stations lie more than "
                     f"{far_m:g} m from the first list's location (kept): {far[:10]}")
        for pos, key in enumerate(res.frame["station_key"].to_numpy()):
            if pd.notna(key):
                seen.setdefault(key, (i, pos))


def load_station_footfall(path: Path, ctx: IngestContext) -> LoadResult:
    raw = read_csv_raw(path, required=["year", "station"], kind="station entries/exits", limits=ctx.limits)
    f = raw.frame
    value = _find(list(f.columns), r"annualised_entries_exits", r"entries_exits", r"annual_?entries_?exits")
    if value is None:
        raise DataError(raw.source, "expected an annualised_entries_exits column")
    checks = RowChecks(f, raw.source)
    year = to_number(f["year"])
    checks.reject(year.isna(), "bad year", f["year"].astype("string"))
    val = to_number(f[value])
    checks.reject(val.isna() | (val < 0), "bad entries/exits", f[value].astype("string"))
    good, rejects = checks.split()
    out = pd.DataFrame({"station_key": station_key(good["station"]), "year": year[good.index].astype("int64"),
                        "entries_exits": val[good.index].astype("float64")}).reset_index(drop=True)
    if "mode" in good:
        out["mode"] = good["mode"].to_numpy()
    return raw.result("station_footfall", out, rejects)


def load_bus_stops(path: Path, ctx: IngestContext) -> LoadResult:
    raw = read_csv_raw(path, kind="bus stops", limits=ctx.limits)
    f = raw.frame
    code = _find(list(f.columns), r"stop_code_lbsl", r"naptan_atco", r"atcocode", r"stop_?code")
    name = _find(list(f.columns), r"stop_name", r"commonname", r"name")
    checks = RowChecks(f, raw.source)
    cols = {"stop_code": f[code] if code else f["_row"].astype("string"), "name": f[name] if name else pd.NA}
    gdf, rejects = point_table(raw, checks, cols, ctx.area, ctx.options.point_tolerance_m)
    return raw.result("bus_stops", gdf, rejects)


def load_schools(path: Path, ctx: IngestContext) -> LoadResult:
    """Schools from DfE GIAS (``URN, EstablishmentName, ...``) or the London Schools Atlas (``URN, SCHOOL_NAM``)."""
    raw = read_csv_raw(path, required=["URN"], kind="schools", limits=ctx.limits)
    f = raw.frame
    cols = list(f.columns)
    name = _find(cols, r"EstablishmentName", r"SCHOOL_NAM", r"school_?name", r"name")
    phase = _find(cols, r"PhaseOfEducation \(name\)", r"PHASE", r"phase")
    typ = _find(cols, r"TypeOfEstablishment \(name\)", r"TYPE", r"type")
    status = _find(cols, r"EstablishmentStatus \(name\)", r"STATUS", r"status")
    checks = RowChecks(f, raw.source)
    checks.reject(f["URN"].isna(), "missing URN", "blank URN")
    checks.reject(f["URN"].duplicated() & f["URN"].notna(), "duplicate URN", f["URN"].astype("string"))
    na = pd.Series(pd.NA, index=f.index, dtype="string")
    fields = {"urn": f["URN"], "name": f[name] if name else na, "phase": f[phase] if phase else na,
              "type": f[typ] if typ else na, "status": f[status] if status else na}
    coords = pick_coordinates([c for c in cols if c != "_row"])
    gdf, rejects = point_table(raw, checks, fields, ctx.area, ctx.options.hub_tolerance_m, coords=coords)
    return raw.result("schools", gdf, rejects)


def load_school_exclusions(path: Path, ctx: IngestContext) -> LoadResult:
    """DfE Explore Education Statistics suspensions and permanent exclusions by school."""
    raw = read_csv_raw(path, required=["time_period", "school_urn"], kind="school exclusions", limits=ctx.limits)
    f = raw.frame
    if "geographic_level" in f:
        level = f["geographic_level"].str.lower()
    else:
        level = pd.Series("school", index=f.index)
    checks = RowChecks(f, raw.source)
    checks.reject(level != "school", "not a school-level row", "geographic_level " + level.astype("string"))
    period = f["time_period"].str.extract(r"^(\d{4})(\d{2})$")
    checks.reject(period[0].isna(), "bad time_period", "expected YYYYYY like 201718, got " + f["time_period"].astype("string"))
    nums = {k: to_number(f[c]) if c in f else pd.Series(np.nan, index=f.index)
            for k, c in [("headcount", "headcount"), ("suspensions", "susp"), ("permanent_exclusions", "perm_excl")]}
    checks.reject(nums["headcount"].isna() & nums["suspensions"].isna(), "no counts", "headcount and susp blank or suppressed")
    good, rejects = checks.split()
    out = pd.DataFrame({"urn": good["school_urn"], "year": period[0][good.index] + "/" + period[1][good.index],
                        **{k: v[good.index].astype("float64") for k, v in nums.items()}}).reset_index(drop=True)
    return raw.result("school_exclusions", out, rejects)


def load_parks(path: Path, ctx: IngestContext) -> LoadResult:
    """Parks and open spaces: polygons (any OGR format), or a list without coordinates (kept, flagged)."""
    if path.suffix.lower() in (".csv", ".gz"):
        raw = read_csv_raw(path, kind="parks list", limits=ctx.limits)
        f = raw.frame
        name = _find(list(f.columns), r"record name", r"name", r"site_?name")
        if name is None:
            raise DataError(raw.source, "expected a name column (e.g. 'Record Name')")
        facility_cols = [c for c in f.columns if c not in (name, "_row") and not re.match(
            r"(date|address|town|postal|postcode|history)", c, re.I)]
        checks = RowChecks(f, raw.source)
        checks.reject(f[name].isna(), "missing name", "blank name")
        good, rejects = checks.split()
        postcode = _find(list(f.columns), r"postal code", r"postcode")
        out = pd.DataFrame({"name": good[name], "town": good.get("Town", pd.NA),
                            "postcode_district": good[postcode] if postcode else pd.NA,
                            "facilities": good[facility_cols].notna().sum(axis=1).astype("int64")}).reset_index(drop=True)
        out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries([None] * len(out), crs=WORKING_CRS), crs=WORKING_CRS)
        result = raw.result("parks", out, rejects)
        result.flag("no_coordinates", f"{raw.source}: parks list has no coordinates or polygons; kept as a list, "
                    "not usable for spatial features (supply a polygon layer such as OS Open Greenspace)", severity="info")
        return result
    frame = read_layer(path, ctx)
    frame = _check_crs(frame, str(path)).reset_index(drop=True)
    frame["_row"] = np.arange(1, len(frame) + 1)
    checks = RowChecks(frame.drop(columns="geometry"), str(path))
    checks.reject(frame.geometry.isna() | frame.geometry.is_empty, "missing geometry", "no geometry")
    checks.reject(~frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"]), "not a polygon",
                  frame.geometry.geom_type.astype("string"))
    good, rejects = checks.split()
    name = _find(list(frame.columns), r"name", r"distname1", r"site_?name")
    out = gpd.GeoDataFrame({"name": frame[name][good.index] if name else pd.NA, "town": pd.NA, "postcode_district": pd.NA,
                            "facilities": 0}, geometry=frame.geometry[good.index], crs=WORKING_CRS).reset_index(drop=True)
    return LoadResult("parks", out, rejects, str(path), len(frame), files=[str(path)])


def load_street_lighting(path: Path, ctx: IngestContext) -> LoadResult:
    raw = read_csv_raw(path, kind="street lighting assets", limits=ctx.limits)
    f = raw.frame
    ident = _find(list(f.columns), r"asset_?id", r"id", r"unitid")
    checks = RowChecks(f, raw.source)
    cols = {"asset_id": f[ident] if ident else f["_row"].astype("string")}
    gdf, rejects = point_table(raw, checks, cols, ctx.area, ctx.options.point_tolerance_m)
    return raw.result("street_lights", gdf, rejects)


def load_ethnicity_census(path: Path, ctx: IngestContext) -> LoadResult:
    """Census 2021 TS021 ethnic group by LSOA (``LSOA21CD, Total`` and one count column per group,
    named as ONS writes them), as tidy rows ``code, edition, year, group, residents``.

    Denominators for the ethnicity profile of a ranking and for stop-and-search
    disproportionality. ONS perturbs small cells, so group columns need not add up to the
    total exactly: a row is rejected only when they differ by more than 5% (and 10 people).
    """
    raw = read_csv_raw(path, kind="Census ethnic group", limits=ctx.limits)
    f = raw.frame
    cols = [c for c in f.columns if c != "_row"]
    code = _find(cols, r"lsoa21cd", r"lsoa11cd", r"geography code", r"lsoa_?code")
    total = _find(cols, r"total", r"all usual residents")
    groups = [c for c in cols if c not in (code, total) and not re.fullmatch(r"(date|year|geography|lsoa\d\dnm)", c, re.I)]
    if code is None or not groups:
        raise DataError(raw.source, f"expected an LSOA code column and one column per ethnic group; found {cols}")
    edition = "lsoa2011" if "11" in code else "lsoa2021"
    checks, nums = _count_columns(raw, f, code, groups, "group")
    if total is not None:
        tot, sums = to_number(f[total]), sum(nums.values())
        off = ((tot - sums).abs() > (0.05 * tot.abs()).clip(lower=10)).fillna(False)
        checks.reject(off, "groups do not add up to the total",
                      "total " + f[total].astype("string") + " vs groups " + sums.astype("string"))
    good, rejects = checks.split()
    year = _year_from(raw, f, path) if ("date" in f or re.search(r"(19|20)\d\d", path.stem)) else 2021
    out = pd.concat([pd.DataFrame({"code": good[code].astype("string"), "edition": edition, "year": year,
                                   "group": c, "residents": nums[c][good.index].astype("float64")})
                     for c in groups], ignore_index=True)
    result = raw.result("ethnicity", out, rejects, accepted_rows=len(good))
    result.notes.append(f"{edition} {year}: {len(groups)} ethnic groups; tidy rows = areas x groups")
    return result
