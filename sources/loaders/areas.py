"""Loaders for boundaries, code lookups and counts by area.

Boundaries come in any format OGR reads (GeoPackage, Shapefile, GeoJSON, ...).
The code column is the one whose values are all ONS GSS codes; the edition
(lsoa2011, lsoa2021, ward2018, ward2022, borough) comes from the catalogue, else
from the year in the code column's name (``LSOA11CD``, ``WD22CD``), else from a
year in the layer's name (files with several layers) or the file name. A CRS label
the coordinates contradict (EPSG:3857 on British National Grid numbers) is refused
with what the coordinates fit, never silently projected into the sea.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo.crs import WORKING_CRS, is_working_crs
from sources.loaders.context import IngestContext
from sources.loaders.points import E_RANGE, N_RANGE
from sources.readers import (
    DEFAULT_LIMITS,
    DataError,
    LoadResult,
    RowChecks,
    check_file_size,
    check_month,
    concat_rejects,
    os_error,
    read_csv_raw,
    to_number,
)

GSS = re.compile(r"^[EWSN]\d{8}$")
#: No area-level crime table predates national recording standards (2002): an earlier month is not data.
AREA_COUNTS_FIRST_MONTH = "2000-01"
FAMILY = {"E01": "lsoa", "W01": "lsoa", "E05": "ward", "W05": "ward", "E02": "msoa", "W02": "msoa",
          "E06": "borough", "E07": "borough", "E08": "borough", "E09": "borough", "W06": "borough"}


def _year_hint(text: str) -> str | None:
    m = re.search(r"(?<!\d)(?:20)?(1[1-9]|2[0-9])(?!\d)", text)
    return f"20{m.group(1)}" if m else None


def detect_code_column(frame: pd.DataFrame, source: str) -> str:
    scores = {}
    for col in frame.columns:
        if col == "geometry" or frame[col].dtype.kind in "fiub":
            continue
        vals = frame[col].dropna().astype(str)
        if len(vals) and vals.str.match(GSS).all():
            scores[col] = (("cd" in col.lower()) or ("code" in col.lower()), -list(frame.columns).index(col))
    if not scores:
        raise DataError(source, f"no column of ONS GSS codes (like E01000001) among {list(frame.columns)}")
    # Prefer the most specific geography (LSOA before MSOA before LAD) among code columns.
    order = {"lsoa": 0, "ward": 1, "msoa": 2, "borough": 3}
    def rank(col):
        fam = FAMILY.get(str(frame[col].dropna().iloc[0])[:3], "zzz")
        return (order.get(fam, 9), not scores[col][0], -scores[col][1])
    return min(scores, key=rank)


def read_layer(path: Path, ctx: IngestContext | None = None, layer: str | None = None,
               member: str | None = None) -> gpd.GeoDataFrame:
    """One vector layer (a file OGR reads, or a member of a zip archive such as a zipped shapefile)."""
    if not path.exists():
        raise DataError(path, "file not found")
    check_file_size(path, ctx.limits if ctx is not None else DEFAULT_LIMITS)
    target = f"/vsizip/{path}/{member}" if member else path
    source = f"{path}!{member}" if member else str(path)
    try:
        if layer is None:
            layers = pyogrio.list_layers(target)
            if len(layers) > 1:
                names = ", ".join(str(n) for n, _ in layers)
                raise DataError(source, f"holds {len(layers)} layers ({names}); name the one to read in "
                                "catalogue.toml (layer = \"...\"), one [[source]] per layer")
        return gpd.read_file(target, layer=layer, engine="pyogrio")
    except DataError:
        raise
    except OSError as exc:
        raise os_error(source, exc) from None
    except Exception as exc:  # noqa: BLE001 - pyogrio/GDAL errors of every kind mean "cannot read this layer"
        raise DataError(source, f"cannot read as a vector layer ({type(exc).__name__}: {exc})") from None


def load_boundary(path: Path, ctx: IngestContext, edition: str | None = None, layer: str | None = None,
                  member: str | None = None, crs: str | None = None) -> LoadResult:
    """Read a boundary layer, check its CRS and geometries, and name its edition.

    Without ``edition`` it comes from the year in the code column's name, else from the
    layer's name when the file holds several layers (a file name says nothing about which
    of its layers is which), else from the file name. ``crs`` overrides a wrong label.
    """
    frame = read_layer(path, ctx, layer, member)
    source = str(path) + (f"!{member}" if member else "") + (f" (layer {layer})" if layer else "")
    if frame.empty:
        raise DataError(source, "layer has no features")
    flags: list[dict] = []
    frame = _check_crs(frame, source, crs, flags)
    code_col = detect_code_column(frame, source)
    codes = frame[code_col].astype("string")
    family = FAMILY.get(str(codes.iloc[0])[:3])
    if family is None or family == "msoa":
        raise DataError(source, f"column {code_col!r} holds {str(codes.iloc[0])[:3]} codes; expected LSOA (E01), ward (E05) or borough (E06-E09)")
    if edition is None:
        edition = boundary_edition(family, code_col, layer or Path(member or path.name).stem, source)
    name_col = next((c for c in frame.columns if re.search(r"(nm|name)$", c, re.I) and c != code_col
                     and not re.match(r"^(msoa|lad|ltla|borough|district)", c, re.I)), None)
    frame = frame.reset_index(drop=True)
    frame["_row"] = np.arange(1, len(frame) + 1)
    checks = RowChecks(frame.drop(columns="geometry"), source)
    checks.reject(frame.geometry.isna() | frame.geometry.is_empty, "missing geometry", "feature has no geometry")
    checks.reject(~frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"]) & frame.geometry.notna(),
                  "not a polygon", frame.geometry.geom_type.astype("string"))
    dup = codes.duplicated()
    checks.reject(dup, "duplicate code", "code " + codes + " appears earlier in the layer")
    good, rejects = checks.split()
    out = gpd.GeoDataFrame(
        {"code": codes[good.index], "name": frame[name_col].astype("string")[good.index] if name_col else codes[good.index],
         "edition": edition},
        geometry=frame.geometry[good.index], crs=WORKING_CRS,
    ).reset_index(drop=True)
    result = LoadResult(f"units_{edition}", out, rejects, source, len(frame), files=[source], flags=flags)
    invalid = ~out.geometry.is_valid
    if invalid.any():
        out.loc[invalid, "geometry"] = shapely.make_valid(out.geometry[invalid].to_numpy())
        result.flag("invalid_geometry_repaired", f"{source}: {int(invalid.sum())} invalid polygons repaired with make_valid")
    out["geometry"] = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon(
        [p for p in getattr(g, "geoms", [g]) if p.geom_type == "Polygon"]) for g in out.geometry]
    result.notes.append(f"code column {code_col!r}, edition {edition}")
    return result


def read_polygon(path: Path, layer: str | None = None) -> shapely.Geometry:
    """One area from a polygon file in any OGR format, in EPSG:27700 (all its polygons dissolved).

    The CRS is checked as for boundaries (a missing CRS is accepted only for coordinates
    that are plainly degrees); features that are not polygons are an error naming the row.
    """
    path = Path(path)
    frame = read_layer(path, None, layer)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise DataError(path, "layer has no features with a geometry")
    frame = _check_crs(frame, str(path))
    kinds = frame.geometry.geom_type
    bad = ~kinds.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"feature is a {kinds.iloc[row]}, not a polygon", row=row + 1)
    return shapely.union_all(shapely.make_valid(frame.geometry.to_numpy()))


def boundary_edition(family: str, code_col: str, name: str, source: str) -> str:
    """``lsoa2011``, ``ward2022``, ``borough``...: from the code column's year, else from ``name``."""
    if family == "borough":
        return "borough"
    year = _year_hint(code_col) or _year_hint(name)
    if year is None:
        raise DataError(source, f"cannot tell which {family} edition this is (no year in column {code_col!r} or "
                        f"in {name!r}); name it in catalogue.toml, e.g. edition = \"{family}2021\"")
    return f"{family}{year}"


#: No coordinate of any CRS used for Great Britain (degrees, BNG metres, Web Mercator metres) is this large.
FAR_COORDINATE = 1e8


def _refuse_far_vertices(frame: gpd.GeoDataFrame, source: str) -> None:
    """Refuse a layer with a vertex no CRS explains (infinite, NaN, or beyond ``FAR_COORDINATE``), naming the
    first such feature, instead of blaming the layer's CRS label for one bad vertex."""
    bounds = frame.geometry.bounds.to_numpy()
    present = ~np.isnan(bounds).all(axis=1)  # empty geometries have NaN bounds
    far = present & (~np.isfinite(bounds) | (np.abs(bounds) > FAR_COORDINATE)).any(axis=1)
    if not far.any():
        return
    first = int(np.flatnonzero(far)[0])
    worst = bounds[first][np.argmax(np.where(np.isfinite(bounds[first]), np.abs(bounds[first]), np.inf))]
    raise DataError(source, f"{int(far.sum()):,} feature{'s' if far.sum() > 1 else ''} with coordinates far outside "
                    f"British National Grid and Great Britain in any CRS (feature {first + 1} reaches {worst:.3g}); "
                    "fix or remove the broken geometry", row=first + 1)


def _check_crs(frame: gpd.GeoDataFrame, source: str, declared: str | None = None,
               flags: list[dict] | None = None) -> gpd.GeoDataFrame:
    """Project a layer to EPSG:27700, refusing a CRS label its coordinates contradict."""
    if declared:
        if flags is not None:
            flags.append({"check": "crs_overridden", "severity": "info",
                          "message": f"{source}: CRS {declared} from catalogue.toml used instead of "
                          f"{frame.crs.to_string() if frame.crs else 'none'} declared by the file"})
        frame = frame.set_crs(declared, allow_override=True)
    _refuse_far_vertices(frame, source)
    minx, miny, maxx, maxy = frame.total_bounds
    looks_degrees = -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90
    fits_bng = bool(E_RANGE[0] <= minx and maxx <= E_RANGE[1] and N_RANGE[0] <= miny and maxy <= N_RANGE[1]
                    and max(abs(maxx), abs(maxy)) > 1000)
    fix = (' Fix the label (e.g. ogr2ogr -a_srs EPSG:27700) or set crs = "EPSG:27700" for this source '
           "in catalogue.toml.")
    box = f"({minx:,.0f}..{maxx:,.0f}, {miny:,.0f}..{maxy:,.0f})"
    if frame.crs is None:
        if looks_degrees:
            frame = frame.set_crs("EPSG:4326")
        elif fits_bng:
            raise DataError(source, "layer has no CRS; its coordinates fit British National Grid (EPSG:27700)." + fix)
        else:
            raise DataError(source, "layer has no CRS; expected EPSG:27700 (British National Grid)")
    declared = frame.crs
    declared_crs = declared.to_string()
    if frame.crs.is_geographic and not looks_degrees:
        raise DataError(source, f"layer declares {declared_crs} (degrees) but its coordinates "
                        f"({minx:.0f}, {miny:.0f}) look like metres: the CRS is wrong." + (fix if fits_bng else ""))
    if frame.crs.is_projected and looks_degrees:
        raise DataError(source, f"layer declares {declared_crs} (metres) but its coordinates look like "
                        "degrees: the CRS is wrong")
    if not is_working_crs(frame.crs):
        frame = frame.to_crs(WORKING_CRS)
    bx0, by0, bx1, by1 = frame.total_bounds
    inside = (np.isfinite([bx0, by0, bx1, by1]).all() and E_RANGE[0] <= bx0 and bx1 <= E_RANGE[1]
              and N_RANGE[0] <= by0 and by1 <= N_RANGE[1])
    if not inside:
        hint = (" They fit British National Grid (EPSG:27700): the CRS label is wrong." + fix) if fits_bng and \
            not is_working_crs(declared) else ""
        raise DataError(source, f"layer declares {declared_crs} but its coordinates {box} lie outside Great "
                        "Britain in that CRS." + hint)
    return frame


def _find(columns, *patterns) -> str | None:
    for pat in patterns:
        for c in columns:
            if re.fullmatch(pat, c, re.I):
                return c
    return None


def load_lookup_lsoa11_lsoa21(path: Path, ctx: IngestContext) -> LoadResult:
    raw = read_csv_raw(path, kind="LSOA 2011 to 2021 lookup", limits=ctx.limits)
    f = raw.frame
    c11 = _find(f.columns, r"lsoa11_?c(o)?d(e)?", r"lsoa11_code")
    c21 = _find(f.columns, r"lsoa21_?c(o)?d(e)?", r"lsoa21_code")
    chg = _find(f.columns, r"chgind", r"change_code", r"change")
    if c11 is None or c21 is None:
        raise DataError(raw.source, f"expected LSOA11CD and LSOA21CD columns; found {list(f.columns[:-1])}")
    checks = RowChecks(f, raw.source)
    checks.reject(f[c11].isna() | f[c21].isna(), "missing code", "blank LSOA code")
    checks.reject(~f[c11].fillna("").str.match(GSS) | ~f[c21].fillna("").str.match(GSS), "not a GSS code",
                  f[c11].astype("string") + " -> " + f[c21].astype("string"))
    checks.reject(f.duplicated([c11, c21]), "duplicate pair", f[c11].astype("string") + " -> " + f[c21].astype("string"))
    good, rejects = checks.split()
    out = pd.DataFrame({"lsoa11": good[c11], "lsoa21": good[c21],
                        "change": good[chg] if chg else pd.Series(pd.NA, index=good.index, dtype="string")})
    return raw.result("lookup_lsoa11_lsoa21", out.reset_index(drop=True), rejects)


def load_lookup_lsoa21_ward22(path: Path, ctx: IngestContext) -> LoadResult:
    raw = read_csv_raw(path, required=["LSOA21CD", "WD22CD"], kind="LSOA 2021 to ward 2022 lookup", limits=ctx.limits)
    f = raw.frame
    checks = RowChecks(f, raw.source)
    checks.reject(f["LSOA21CD"].isna() | f["WD22CD"].isna(), "missing code", "blank code")
    checks.reject(f["LSOA21CD"].duplicated(), "duplicate LSOA", "LSOA " + f["LSOA21CD"].astype("string") + " listed twice")
    good, rejects = checks.split()
    out = pd.DataFrame({"lsoa21": good["LSOA21CD"], "ward22": good["WD22CD"],
                        "ward22_name": good.get("WD22NM", pd.Series(pd.NA, index=good.index, dtype="string"))})
    return raw.result("lookup_lsoa21_ward22", out.reset_index(drop=True), rejects)


def _edition_or_reject(ctx: IngestContext, checks: RowChecks, codes: pd.Series, family: str) -> pd.Series:
    checks.reject(codes.isna(), "missing area code", "blank code")
    checks.reject(~codes.fillna("").str.match(GSS), "not a GSS code", codes.astype("string"))
    if not any(e.startswith(family) for e in ctx.codes):
        return pd.Series(pd.NA, index=codes.index, dtype="string")
    ed = ctx.edition_of(codes, family)
    checks.reject(ed.isna(), f"{family} code not in any loaded boundary", codes.astype("string"))
    return ed.str.rstrip("+")


def _edition_of_release(ctx: IngestContext, checks: RowChecks, codes: pd.Series, family: str,
                        release: pd.Series | None) -> pd.Series:
    """One boundary edition per release: the loaded edition holding most of the release's codes.

    Most LSOAs kept their code in 2021, so a code alone often fits 2011 and 2021; a Met
    release is published on one edition, so the edition that holds the most of its codes
    (the newer one on a tie) is the edition of all its rows, and a code not in it is rejected.
    """
    checks.reject(codes.isna(), "missing area code", "blank code")
    checks.reject(~codes.fillna("").str.match(GSS), "not a GSS code", codes.astype("string"))
    editions = sorted((e for e in ctx.codes if e.startswith(family)), key=lambda e: e[len(family):])
    out = pd.Series(pd.NA, index=codes.index, dtype="string")
    if not editions:
        return out
    groups = release.fillna("") if release is not None else pd.Series("", index=codes.index)
    for _, idx in groups.groupby(groups).groups.items():
        these = codes[idx]
        distinct = set(these.dropna())
        best = max(editions, key=lambda e: (len(distinct & ctx.codes[e]), e[len(family):]))
        out[idx] = best
        checks.reject(codes.index.isin(idx) & ~codes.isin(ctx.codes[best]).to_numpy(),
                      f"{family} code not in the {best} boundaries", codes.astype("string") + f" (release on {best})")
    return out


MET_CODE_COLUMNS = (r"ward_?code", r"wardcode", r"ward code", r"wd\d\dcd", r"lsoa_?code", r"lsoa code", r"lsoa\d\dcd")
MET_MAJOR_COLUMNS = (r"major_?category", r"majortext", r"major category", r"group")
MET_MINOR_COLUMNS = (r"minor_?category", r"minortext", r"minor category", r"sub_?group", r"sub group")
"""Column names of the Met's area tables in every layout the London Datastore has published:
``Major/Minor Category`` (LSOA and ward tables), ``MajorText/MinorText`` (ward historical),
``Group/SubGroup`` (older releases), long (``..., month, count``) or wide (``YYYYMM`` columns)."""


def load_met_area_monthly(path: Path, ctx: IngestContext) -> LoadResult:
    """MPS monthly counts by ward or LSOA: long (``ward_code, major_category, minor_category, month,
    count[, release_first_month, release_last_month]``) or the London Datastore wide layout
    (``LSOA Code, LSOA Name, Borough, Major Category, Minor Category, 202308, 202309, ...``).

    Every row carries the release it came from (a wide file is one release: its first to
    last month column). Overlapping releases, in one file or across files, are resolved
    to the latest release per month by :func:`resolve_releases` once every file is loaded.
    """
    raw = read_csv_raw(path, kind="MPS monthly crime by area", limits=ctx.limits)
    f = raw.frame
    cols = list(f.columns)
    code_col = _find(cols, *MET_CODE_COLUMNS)
    major = _find(cols, *MET_MAJOR_COLUMNS)
    minor = _find(cols, *MET_MINOR_COLUMNS)
    if code_col is None or major is None:
        raise DataError(raw.source, f"expected a ward or LSOA code column and a major category column; found {cols[:-1]}")
    family = "lsoa" if "lsoa" in code_col.lower() else "ward"
    month_cols = [c for c in cols if re.fullmatch(r"\d{6}", c)]
    if month_cols:  # wide: one release, months as columns
        first, last = min(month_cols), max(month_cols)
        long = f.melt(id_vars=[c for c in cols if c not in month_cols], value_vars=month_cols,
                      var_name="month", value_name="count")
        long["release_first_month"] = f"{first[:4]}-{first[4:]}"
        long["release_last_month"] = f"{last[:4]}-{last[4:]}"
        long["_row"] = long["_row"].astype("int64")
        f = long
        note = f"wide layout melted ({len(month_cols)} month columns): source_row is the row of the area/category line"
    else:
        note = None
        for need in ("month", "count"):
            if need not in cols:
                raise DataError(raw.source, f"missing column {need!r} (long layout) and no YYYYMM columns (wide layout)")
    checks = RowChecks(f, raw.source)
    month = check_month(checks, f["month"], today=ctx.today, first=AREA_COUNTS_FIRST_MONTH,
                        source_name="area-level crime counts")
    count = to_number(f["count"])
    checks.reject(count.isna(), "count not numeric", f["count"].astype("string"))
    checks.reject(count < 0, "negative count", f["count"].astype("string"))
    release_of = f["release_last_month"].astype("string") if "release_last_month" in f else None
    edition = _edition_of_release(ctx, checks, f[code_col], family, release_of)
    cls = ctx.taxonomy.classify("met", f[major], f[minor] if minor else None)
    checks.reject(cls["group"] == "unmapped", "category not in the taxonomy", f[major].astype("string"))
    release = (f["release_first_month"].astype("string") + ".." + f["release_last_month"].astype("string")
               if "release_last_month" in f else pd.Series("single", index=f.index, dtype="string"))
    good, rejects = checks.split()
    out = pd.DataFrame({
        "unit_code": good[code_col], "edition": edition[good.index], "period_start": month[good.index],
        "period": "month", "category": good[major].str.title(),
        "subcategory": good[minor].str.title() if minor else pd.Series(pd.NA, index=good.index, dtype="string"),
        "group": cls["group"][good.index], "count": count[good.index].astype("float64"),
        "harm": cls["harm"][good.index], "serious_violence": cls["serious_violence"][good.index],
        "release": release[good.index], "source_file": raw.source,
        "source_row": good["_row"].astype("int64"),
    }).reset_index(drop=True)
    result = LoadResult("area_counts", out, concat_rejects([raw.malformed, rejects]), raw.source,
                        len(f) + len(raw.malformed), files=[raw.source], flags=list(raw.flags))
    if note:
        result.notes.append(note)
    cats = f[major][checks.ok]
    if cats.str.isupper().any() and (~cats.str.isupper()).any():
        result.flag("category_names_vary", f"{raw.source}: category names come in different styles between "
                    "releases (upper case vs title case); matched case-insensitively", severity="info")
    return result


def _release_key(release: pd.Series) -> pd.Series:
    """``"2023-08..2025-07"`` -> ``"2025-07|2023-08"``: later last month first, then later first month."""
    parts = release.astype("string").str.split("..", n=1, regex=False)
    return parts.str[1].fillna(parts.str[0]) + "|" + parts.str[0]


def resolve_releases(results: list[LoadResult]) -> list[dict]:
    """Keep one release per area family (ward, LSOA) and month: the latest release that covers it.

    The Met republishes its ward and LSOA tables every month as a rolling window, and
    revises earlier months a little; a folder holding several releases (in one file or in
    many) would count every overlapping month once per release. The rows of every other
    release for that month move to their file's rejects as ``superseded by a later
    release``, so every file still reconciles. Returns the report's flags: the naive and
    kept totals, the cells revised between releases, and each change of category scheme
    among the kept releases (a minor category that exists only in part of the span).
    """
    monthly = [r for r in results if r.table == "area_counts" and len(r.frame)
               and "release" in r.frame and (r.frame["period"] == "month").any()]
    if not monthly:
        return []
    parts = []
    for i, r in enumerate(monthly):
        fr = r.frame
        on = (fr["period"] == "month").to_numpy() & fr["release"].notna().to_numpy()
        parts.append(pd.DataFrame({
            "result": i, "pos": np.flatnonzero(on),
            "family": fr["unit_code"][on].astype("string").str[:3].map(FAMILY).fillna("other").to_numpy(),
            "month": fr["period_start"][on].to_numpy(), "release": fr["release"][on].astype("string").to_numpy(),
            "unit": fr["unit_code"][on].astype("string").str.upper().to_numpy(),
            "category": fr["category"][on].astype("string").str.upper().to_numpy(),
            "subcategory": fr["subcategory"][on].astype("string").str.upper().fillna("").to_numpy(),
            "count": fr["count"][on].to_numpy(dtype=float), "file": r.source,
        }))
    rows = pd.concat(parts, ignore_index=True)
    rows["key"] = _release_key(rows["release"]).to_numpy()
    best = rows.groupby(["family", "month"])["key"].transform("max")
    superseded = (rows["key"] != best).to_numpy()
    flags: list[dict] = []
    overlapping = rows.groupby(["family", "month"])["key"].nunique()
    if (overlapping > 1).any():
        naive, kept = float(rows["count"].sum()), float(rows.loc[~superseded, "count"].sum())
        by_family = {}
        for fam, grp in rows.groupby("family"):
            if grp["release"].nunique() < 2:
                continue  # one release of this family: nothing overlapped
            sup = superseded[grp.index]
            by_family[fam] = {"releases": int(grp["release"].nunique()), "files": int(grp["file"].nunique()),
                              "naive_total": float(grp["count"].sum()),
                              "kept_total": float(grp.loc[~sup, "count"].sum())}
        shown = "; ".join(f"{fam}: {v['releases']} releases in {v['files']} file(s), {v['naive_total']:,.0f} "
                          f"offences naively, {v['kept_total']:,.0f} kept" for fam, v in by_family.items())
        flags.append({"table": "area_counts", "check": "overlapping_releases", "severity": "warning",
                      "message": f"Met area tables: releases overlap; kept the latest release for each month "
                      f"({shown}). A naive union would count {naive:,.0f} offences instead of {kept:,.0f} "
                      f"(+{(naive / kept - 1) * 100:.0f}%)" if kept else "Met area tables: releases overlap",
                      "releases": int(rows["release"].nunique()), "naive_total": naive, "kept_total": kept,
                      "superseded_rows": int(superseded.sum()), "by_family": by_family})
        spread = rows.groupby(["family", "unit", "category", "subcategory", "month"])["count"].agg(["min", "max", "size"])
        multi = spread[spread["size"] > 1]
        diff = multi["max"] - multi["min"]
        revisions = {"cells_compared": int(len(multi)), "cells_revised": int((diff > 0).sum()),
                     "abs_revision": float(diff.sum()), "max_revision": float(diff.max()) if len(diff) else 0.0}
        flags.append({"table": "area_counts", "check": "release_revisions", "severity": "info",
                      "message": f"Met area tables: counts for the same area, category and month differ between "
                      f"releases in {revisions['cells_revised']:,} of {revisions['cells_compared']:,} cells (sum of "
                      f"absolute revisions {revisions['abs_revision']:,.0f}, largest {revisions['max_revision']:,.0f}); "
                      "the latest release is kept", **revisions})
    flags += _scheme_changes(rows[~superseded])
    for i, r in enumerate(monthly):
        mine = rows[(rows["result"] == i) & superseded]
        if mine.empty:
            continue
        mask = np.zeros(len(r.frame), dtype=bool)
        mask[mine["pos"].to_numpy()] = True
        kept_release = best[mine.index].str.split("|").str[0]
        detail = pd.Series("", index=r.frame.index, dtype="string")
        detail[mine["pos"].to_numpy()] = ("month " + pd.to_datetime(mine["month"]).dt.strftime("%Y-%m")
                                          + " kept from the release ending " + kept_release).to_numpy()
        r.move_to_rejects(mask, "superseded by a later release", detail[mask].tolist())
    return flags


MIN_SCHEME_COUNT = 5.0
"""Offences a month (area total) below which a minor category appearing or vanishing is chance, not a scheme."""


def _scheme_changes(kept: pd.DataFrame) -> list[dict]:
    """Minor categories that exist in only part of a family's kept span: a change of category scheme."""
    flags = []
    for fam, grp in kept.groupby("family"):
        months = pd.DatetimeIndex(sorted(grp["month"].unique()))
        first, last = months[0], months[-1]
        monthly = grp[grp["count"] > 0].groupby(["category", "subcategory", "month"])["count"].sum()
        present = monthly.reset_index().groupby(["category", "subcategory"]).agg(
            min=("month", "min"), max=("month", "max"), per_month=("count", "mean"))
        # rare offences (homicide) come and go by chance; a category of 5+ a month that stops or starts is the scheme
        partial = present[(present["per_month"] >= MIN_SCHEME_COUNT)
                          & ((present["min"] > first + pd.DateOffset(months=2))
                             | (present["max"] < last - pd.DateOffset(months=2)))]
        if partial.empty:
            continue
        spans = {f"{c.title()} / {s.title()}".rstrip(" /"): f"{pd.Timestamp(a):%Y-%m}..{pd.Timestamp(b):%Y-%m}"
                 for (c, s), (a, b) in partial[["min", "max"]].iterrows()}
        shown = "; ".join(f"{k} only {v}" for k, v in list(spans.items())[:8])
        flags.append({"table": "area_counts", "check": "category_scheme_change", "severity": "info",
                      "message": f"Met {fam} tables ({first:%Y-%m}..{last:%Y-%m}): the minor-category scheme changes "
                      f"between releases ({shown}{'; ...' if len(spans) > 8 else ''}). Each month is counted from "
                      "one release only, so nothing is double counted, and offence groups (violence, robbery, ...) "
                      "are comparable across the change; minor categories are not", "family": fam, "spans": spans})
    return flags


def load_met_lsoa_annual(path: Path, ctx: IngestContext) -> LoadResult:
    """Annual (or monthly) counts by LSOA and category: ``LSOA11CD, category, year|month, count``."""
    raw = read_csv_raw(path, kind="LSOA crime counts", limits=ctx.limits)
    f = raw.frame
    code_col = _find(list(f.columns), r"lsoa\d\dcd", r"lsoa_?code", r"lsoa code")
    if code_col is None or "category" not in f or "count" not in f or not ({"year", "month"} & set(f.columns)):
        raise DataError(raw.source, f"expected LSOA code, category, year or month, count; found {list(f.columns[:-1])}")
    checks = RowChecks(f, raw.source)
    period = "year" if "year" in f else "month"
    if period == "year":
        yr = to_number(f["year"])
        checks.reject(yr.isna() | (yr < int(AREA_COUNTS_FIRST_MONTH[:4])) | (yr > ctx.today.year), "bad year",
                      f["year"].astype("string") + f" (expected {AREA_COUNTS_FIRST_MONTH[:4]}..{ctx.today.year})")
        start = pd.to_datetime(yr.astype("Int64").astype("string") + "-01-01", errors="coerce")
    else:
        start = check_month(checks, f["month"], today=ctx.today, first=AREA_COUNTS_FIRST_MONTH,
                            source_name="area-level crime counts")
    count = to_number(f["count"])
    checks.reject(count.isna() | (count < 0), "bad count", f["count"].astype("string"))
    edition = _edition_or_reject(ctx, checks, f[code_col], "lsoa")
    cls = ctx.taxonomy.classify("met_annual", f["category"])
    checks.reject(cls["group"] == "unmapped", "category not in the taxonomy", f["category"].astype("string"))
    good, rejects = checks.split()
    out = pd.DataFrame({
        "unit_code": good[code_col], "edition": edition[good.index].fillna("lsoa2011"),
        "period_start": start[good.index], "period": period, "category": good["category"],
        "subcategory": pd.Series(pd.NA, index=good.index, dtype="string"), "group": cls["group"][good.index],
        "count": count[good.index].astype("float64"), "harm": cls["harm"][good.index],
        "serious_violence": cls["serious_violence"][good.index], "release": pd.NA, "source_file": raw.source,
    }).reset_index(drop=True)
    result = raw.result("area_counts", out, rejects)
    flag_area_count_quality(result, out)
    return result


def flag_area_count_quality(result: LoadResult, out: pd.DataFrame) -> None:
    """Flag what is valid row by row but wrong as a whole: all-zero categories, doubled periods."""
    if out.empty:
        return
    by_cat = out.groupby("category")["count"].sum()
    for cat, total in by_cat.items():
        if total == 0:
            result.flag("category_all_zero", f"{result.source}: category {cat!r} is zero for every area and period; "
                        "do not use it", severity="error", category=str(cat))
    # A period whose counts are all even was very likely added to itself (x + x): in real
    # counts about half of the non-zero cells are odd.
    nonzero = out[out["count"] > 0]
    even = (nonzero["count"] % 2 == 0).groupby(nonzero["period_start"]).agg(["mean", "size"])
    typical = float(even["mean"].median()) if len(even) else 0.0
    for when, row in even.iterrows():
        if row["size"] >= 50 and row["mean"] == 1.0 and typical < 0.8:
            result.flag("period_doubled", f"{result.source}: every count in period {when:%Y-%m} is even "
                        f"(typically {typical:.0%} are); the period looks added to itself (doubled)",
                        severity="error", period=f"{when:%Y-%m}")
    per = out[out["group"] != "theft_detail"].groupby("period_start")["count"].sum().sort_index()
    if len(per) >= 4:
        for when, total in per.items():
            others = per.drop(when)
            med = float(np.median(others.to_numpy()))
            if med > 0 and total > 1.6 * med:
                result.flag("period_inflated", f"{result.source}: period {when:%Y-%m} totals {total:,.0f}, "
                            f"{total / med:.1f}x the median of the other periods ({med:,.0f}); likely double-counted",
                            severity="error", period=f"{when:%Y-%m}", ratio=round(total / med, 2))


DASHBOARD_COLUMNS = ("month_year", "area_type", "area_code", "crime_type", "crime_subtype", "measure", "count")
DASHBOARD_AREA_TYPES = {"borough": "borough", "safer neighbourhood teams": "ward", "ward": "ward"}


def load_met_dashboard(path: Path, ctx: IngestContext) -> LoadResult:
    """The Met's Monthly Crime Dashboard (London Datastore), long layout: ``month_year, area_type,
    borough_snt, area_name, area_code, crime_type, crime_subtype, measure, financial_year, fy_fyindex,
    count, refresh_date``, by borough and Safer Neighbourhood Team (= ward) area.

    Series such as knife crime, knife crime with injury, knife injury victims aged 1-24, gun
    crime, domestic abuse and hate crime overlap the recorded-crime categories (a knife
    robbery is also a robbery), so they go to their own table, ``dashboard_counts``, never
    into ``area_counts``. The dashboard lists only months with at least one offence: a month
    absent for a series and area is zero (stated in the report). Several editions of the
    dashboard are resolved to the latest refresh per series, area and month by
    :func:`resolve_dashboard_refreshes`.
    """
    raw = read_csv_raw(path, kind="MPS monthly crime dashboard", limits=ctx.limits)
    f = raw.frame
    missing = [c for c in DASHBOARD_COLUMNS if c not in f.columns]
    if missing:
        raise DataError(raw.source, f"missing dashboard columns {missing}; found {list(f.columns[:-1])}")
    checks = RowChecks(f, raw.source)
    month = check_month(checks, f["month_year"], today=ctx.today, first=AREA_COUNTS_FIRST_MONTH,
                        source_name="the Met crime dashboard")
    kind = f["area_type"].astype("string").str.strip().str.casefold().map(DASHBOARD_AREA_TYPES)
    checks.reject(kind.isna(), "unknown area type", "area_type " + f["area_type"].astype("string")
                  + f" (expected one of {sorted(DASHBOARD_AREA_TYPES)})")
    code = f["area_code"].astype("string").str.strip()
    checks.reject(~code.fillna("").str.match(GSS), "not a GSS code", code)
    count = to_number(f["count"])
    checks.reject(count.isna() | (count < 0), "bad count", f["count"].astype("string"))
    for col in ("crime_type", "crime_subtype", "measure"):
        checks.reject(f[col].isna(), f"missing {col}", f"{col} blank")
    edition = pd.Series(pd.NA, index=f.index, dtype="string")
    wards = (kind == "ward").fillna(False)
    if any(e.startswith("ward") for e in ctx.codes):
        edition[wards] = ctx.edition_of(code[wards], "ward").str.rstrip("+")
        checks.reject(wards & edition.isna() & checks.ok, "ward code not in any loaded boundary", code)
    edition[(kind == "borough").fillna(False)] = "borough"
    good, rejects = checks.split()
    idx = good.index
    subtype = good["crime_subtype"].astype("string").str.strip()
    # one spelling per subtype ("Domestic Abuse violence with injury" / "... Violence with Injury")
    spelling = subtype.groupby(subtype.str.casefold()).agg(lambda s: s.value_counts().index[0])
    out = pd.DataFrame({
        "month": month[idx], "area_type": kind[idx], "area_code": code[idx], "edition": edition[idx],
        "area_name": good["area_name"].astype("string") if "area_name" in good else code[idx],
        "series": good["crime_type"].astype("string").str.strip(),
        "subtype": subtype.str.casefold().map(spelling).astype("string"),
        "measure": good["measure"].astype("string").str.strip(), "count": count[idx].astype("float64"),
        "refresh": good["refresh_date"].astype("string") if "refresh_date" in good else pd.NA,
        "source_file": raw.source, "source_row": good["_row"].astype("int64"),
    }).reset_index(drop=True)
    result = raw.result("dashboard_counts", out, rejects)
    if len(out):
        result.flag("absent_months_are_zero", f"{raw.source}: the dashboard lists only months with at least one "
                    f"offence; a month absent for a series and area ({out['month'].min():%Y-%m}.."
                    f"{out['month'].max():%Y-%m}) is counted as zero", severity="info")
    return result


def resolve_dashboard_refreshes(results: list[LoadResult]) -> list[dict]:
    """One value per dashboard series, subtype, measure, area and month: the latest refresh's.

    Rows of older refreshes move to their file's rejects (``superseded by a later refresh``).
    """
    dash = [r for r in results if r.table == "dashboard_counts" and len(r.frame)]
    if len(dash) < 2:
        return []
    keys = ["series", "subtype", "measure", "area_code", "month"]
    rows = pd.concat([pd.DataFrame({**{k: r.frame[k].astype("string").str.casefold() if k != "month"
                                       else r.frame[k] for k in keys},
                                    "refresh": r.frame["refresh"].astype("string").fillna(""), "result": i,
                                    "pos": np.arange(len(r.frame)), "count": r.frame["count"]})
                      for i, r in enumerate(dash)], ignore_index=True)
    rank = rows["refresh"] + "|" + rows["result"].astype(str).str.zfill(6)
    best = rank.groupby([rows[k] for k in keys]).transform("max")
    superseded = (rank != best).to_numpy()
    if not superseded.any():
        return []
    for i, r in enumerate(dash):
        mine = rows[(rows["result"] == i) & superseded]
        if len(mine):
            mask = np.zeros(len(r.frame), dtype=bool)
            mask[mine["pos"].to_numpy()] = True
            r.move_to_rejects(mask, "superseded by a later refresh",
                              ("kept refresh " + best[mine.index].str.split("|").str[0]).tolist())
    return [{"table": "dashboard_counts", "check": "overlapping_refreshes", "severity": "info",
             "message": f"Met crime dashboard: {int(superseded.sum()):,} rows repeat a series, area and month of a "
             "later refresh; the latest refresh is kept", "superseded_rows": int(superseded.sum())}]
