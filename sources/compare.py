"""A comparison folder: offence counts, residents, deprivation and boundaries for many boroughs.

The needs assessment compares the borough with its region and with similar boroughs. Those
figures sit in a folder of their own (``--compare DIR``), apart from the borough's data
folder, so that the data folder stays one borough's. Nothing here knows any borough or file
name: each file is recognised by its columns.

* **borough monthly counts**: a column of local-authority GSS codes (E06-E09, W06), a month
  column, an offence category column (a harmonised one preferred, then a major category, with
  a minor category when present) and a count column. An optional boolean column such as
  ``is_borough`` marks rows that belong to no borough (e.g. a police unit); they are left out
  of ranks and reported. Categories are mapped to offence groups with the offence taxonomy.
* **residents**: authority code, ``year``, a population column, and optionally residents aged
  10-24 (a column named like ``age_10_24``) and a ``source``.
* **deprivation**: authority code and an IMD score column (a population-weighted mean preferred).
* **boundaries**: any vector file with authority codes; areas are computed in EPSG:27700.
* **most similar groups** (optional): the Home Office's most similar groups of Community Safety
  Partnerships, one row per partnership: ``area_code`` (the authority's GSS code) and
  ``similar_codes`` (its group's authority codes separated by ``;``), optionally ``source`` (the
  edition, e.g. "Home Office MSG 2023"). When the borough has a row, its group is the comparison's
  similar set; else svrisk's own similarity rule chooses (``models.needs.compare``) and the pack
  says so. Layout in ``docs/most_similar_groups.md``.

Ward-level tables in the folder are recognised and listed but not read (the borough totals
carry what the comparison needs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from geo.crs import WORKING_CRS
from sources.readers import DataError, parse_month, read_csv_raw, to_number
from sources.taxonomy import UNMAPPED_GROUP, load_taxonomy

AUTHORITY = re.compile(r"^(E0[6-9]|W06)\d{6}$")
WARD = re.compile(r"^[EW]05\d{6}$")
TABLE_SUFFIXES = (".csv", ".csv.gz", ".txt")
VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb")
SAMPLE_ROWS = 200


@dataclass
class CompareData:
    """What a comparison folder holds, in tidy tables.

    Attributes
    ----------
    monthly : DataFrame
        ``area_code``, ``month``, ``group``, ``serious_violence``, ``police_generated``, ``count``
        (and ``scheme`` when the file names its category scheme), borough rows only.
    names : Series
        Area name by code.
    population : DataFrame
        ``area_code``, ``year``, ``population``, ``age_10_24`` (NA where absent), ``source``.
    imd : Series or None
        IMD score by code; ``imd_column`` names the column used.
    area_km2 : Series or None
        Land area (km², from the polygons) by code.
    dashboard : DataFrame or None
        The Met crime dashboard's borough rows (``month``, ``area_type``, ``area_code``, ``series``,
        ``subtype``, ``measure``, ``count``), e.g. knife crime for every borough.
    """

    root: Path
    monthly: pd.DataFrame
    names: pd.Series
    population: pd.DataFrame | None = None
    imd: pd.Series | None = None
    imd_column: str | None = None
    area_km2: pd.Series | None = None
    dashboard: pd.DataFrame | None = None  # the Met crime dashboard by borough (month, area_code, series, ...)
    msg: dict[str, list[str]] | None = None  # Home Office most similar group: authority code -> its group's codes
    msg_source: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    @property
    def months(self) -> list[pd.Timestamp]:
        return sorted(self.monthly["month"].unique())


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and (p.name.lower().endswith(TABLE_SUFFIXES) or p.suffix.lower() in VECTOR_SUFFIXES))


def _code_column(frame: pd.DataFrame, pattern: re.Pattern) -> str | None:
    for col in frame.columns:
        vals = frame[col].dropna().astype(str)
        if col != "geometry" and len(vals) and vals.str.match(pattern).all():
            return col
    return None


def _find(columns, *patterns) -> str | None:
    for pat in patterns:
        for c in columns:
            if re.search(pat, str(c), re.I):
                return c
    return None


def _name_column(columns, code_col) -> str | None:
    return next((c for c in columns if c != code_col and re.search(r"(^|_)(name|nm)$|^name", str(c), re.I)
                 and not re.search(r"ward|lsoa|msoa", str(c), re.I)), None)


def _sample(path: Path) -> pd.DataFrame:
    """The first rows of a table, as strings (enough to recognise it without reading it all)."""
    try:
        return pd.read_csv(path, nrows=SAMPLE_ROWS, dtype=str, encoding_errors="replace")
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as exc:
        raise DataError(path, f"cannot read as a CSV table ({exc})") from None


def _kind(sample: pd.DataFrame) -> str | None:
    cols = list(sample.columns)
    if _code_column(sample, WARD) is not None:
        return "ward table"
    code = _code_column(sample, AUTHORITY)
    if code is None:
        return None
    if _find(cols, r"^similar_codes$"):
        return "most similar groups"
    if _find(cols, r"^crime_type$") and _find(cols, r"^crime_subtype$"):
        return "crime dashboard"
    if _find(cols, r"^month$", r"month") and _find(cols, r"^count$", r"^value$", r"offences|crimes"):
        return "monthly counts"
    if _find(cols, r"^year$") and _find(cols, r"^population$", r"usual_?residents|all_?ages|^residents$"):
        return "population"
    if _find(cols, r"imd.*score"):
        return "deprivation"
    return None


def read_compare_folder(root: str | Path) -> CompareData:
    """Read and recognise a comparison folder (see the module notes).

    Raises
    ------
    DataError
        The folder is missing, or it has no table of monthly counts by authority.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "comparison folder not found")
    found: dict[str, tuple[Path, pd.DataFrame]] = {}
    unused: list[str] = []
    vectors: list[Path] = []
    for path in _files(root):
        if path.suffix.lower() in VECTOR_SUFFIXES:
            vectors.append(path)
            continue
        kind = _kind(_sample(path))
        if kind is None or kind == "ward table" or kind in found:
            why = ("ward-level table: the borough totals are used" if kind == "ward table"
                   else f"a second {kind} table" if kind else "not recognised")
            unused.append(f"{path.name} ({why})")
            continue
        found[kind] = (path, read_csv_raw(path, kind=kind).frame.drop(columns="_row"))
    if "monthly counts" not in found:
        raise DataError(root, "no table of monthly offence counts by local authority (columns: an authority "
                        "GSS code like E09000001, month, category, count) in the comparison folder")
    path, frame = found["monthly counts"]
    data = _monthly(path, frame)
    data.root, data.unused = root, unused
    if "population" in found:
        data.population = _population(*found["population"])
        data.files["population"] = str(found["population"][0])
        data.names = data.names.combine_first(_names(found["population"][1]))
    else:
        data.notes.append("no residents table in the comparison folder: rates cannot be compared")
    if "deprivation" in found:
        p, f = found["deprivation"]
        col = _find(f.columns, r"imd.*score.*pop.*weight", r"imd.*average.?score", r"imd.*score.*mean", r"imd.*score")
        code = _code_column(f.head(SAMPLE_ROWS), AUTHORITY)
        data.imd = to_number(f[col]).set_axis(f[code].astype(str)).dropna()
        data.imd_column = col
        data.files["deprivation"] = str(p)
    if "crime dashboard" in found:
        p, f = found["crime dashboard"]
        kind = f["area_type"].astype("string").str.strip().str.casefold()
        f = f[kind == "borough"]
        data.dashboard = pd.DataFrame({
            "month": pd.to_datetime(f["month_year"], format="%Y-%m", errors="coerce"), "area_type": "borough",
            "area_code": f["area_code"].astype("string").str.strip(), "series": f["crime_type"].astype("string").str.strip(),
            "subtype": f["crime_subtype"].astype("string").str.strip(), "measure": f["measure"].astype("string").str.strip(),
            "count": to_number(f["count"]).astype(float), "area_name": f.get("area_name", f["area_code"]).astype("string")})
        bad = data.dashboard["month"].isna() | data.dashboard["count"].isna()
        if bad.any():
            data.notes.append(f"{p.name}: {int(bad.sum())} dashboard rows without a month or count left out")
            data.dashboard = data.dashboard[~bad]
        data.files["crime dashboard"] = str(p)
    if "most similar groups" in found:
        p, f = found["most similar groups"]
        data.msg, data.msg_source = _msg(p, f)
        data.files["most similar groups"] = str(p)
    for vp in vectors:
        area = _areas(vp)
        if area is not None and data.area_km2 is None:
            data.area_km2 = area
            data.files["boundaries"] = str(vp)
        else:
            unused.append(f"{vp.name} ({'a second boundary layer' if area is not None else 'no authority codes'})")
    return data


def _msg(path: Path, frame: pd.DataFrame) -> tuple[dict[str, list[str]], str | None]:
    """Most similar groups: ``area_code`` -> the group's authority codes (``similar_codes``, ``;``-separated).

    Raises
    ------
    DataError
        A code that is not an authority GSS code, a group naming its own authority, or an
        authority given twice: the value, column and row are named.
    """
    code = _find(frame.columns, r"^area_code$", r"^csp_code$", r"code")
    groups: dict[str, list[str]] = {}
    for row, (own, similar) in enumerate(zip(frame[code], frame["similar_codes"], strict=True), start=1):
        own = str(own).strip()
        if not AUTHORITY.match(own):
            raise DataError(path, f"{code} {own!r} is not an authority GSS code (E06-E09 or W06)", row=row)
        if own in groups:
            raise DataError(path, f"{code} {own!r} is given twice", row=row)
        members = [c.strip() for c in str(similar if pd.notna(similar) else "").split(";") if c.strip()]
        bad = [c for c in members if not AUTHORITY.match(c)]
        if bad or not members:
            raise DataError(path, f"similar_codes {similar!r}: {'not authority GSS codes: ' + ', '.join(bad) if bad else 'empty'}"
                            " (expected codes like E09000001 separated by ';')", row=row)
        if own in members:
            raise DataError(path, f"similar_codes of {own} include {own} itself", row=row)
        groups[own] = members
    src = frame["source"].dropna().astype(str).iloc[0] if "source" in frame and frame["source"].notna().any() else None
    return groups, src


def _names(frame: pd.DataFrame) -> pd.Series:
    code = _code_column(frame.head(SAMPLE_ROWS), AUTHORITY)
    name = _name_column(frame.columns, code)
    if name is None:
        return pd.Series(dtype="string")
    return frame.drop_duplicates(code).set_index(code)[name].astype("string")


def _monthly(path: Path, frame: pd.DataFrame) -> CompareData:
    source = str(path)
    cols = list(frame.columns)
    code = _code_column(frame.head(SAMPLE_ROWS), AUTHORITY)
    month_col = _find(cols, r"^month$", r"month")
    count_col = _find(cols, r"^count$", r"^value$", r"offences|crimes")
    cat = _find(cols, r"harmoni[sz]ed", r"major", r"category")
    minor = _find(cols, r"minor", r"sub_?category")
    if cat is None:
        raise DataError(source, f"no offence category column among {cols}")
    notes: list[str] = []
    month = parse_month(frame[month_col])
    count = to_number(frame[count_col])
    bad = month.isna() | count.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(source, f"month {frame[month_col].iloc[row - 1]!r} / count {frame[count_col].iloc[row - 1]!r} "
                        "is not a month and a number", row=row)
    flag_col = _find(cols, r"^is_borough$", r"^is_(authority|district|la)$")
    keep = pd.Series(True, index=frame.index)
    if flag_col is not None:
        keep = frame[flag_col].astype("string").str.lower().isin(["true", "1", "yes", "y"])
        if (~keep).any():
            notes.append(f"{int(count[~keep].sum()):,} offences on rows not attributed to an authority "
                         f"({flag_col} false: {', '.join(sorted(frame.loc[~keep, _name_column(cols, code) or code].astype(str).unique()))}) "
                         "are left out of ranks and of the regional total")
    taxonomy = load_taxonomy()
    sub = frame[minor] if minor else None
    scheme, cls = taxonomy.best_scheme(frame[cat], sub)
    unmapped = cls["group"] == UNMAPPED_GROUP
    if (unmapped & keep).any():
        lost = count[unmapped & keep].groupby(frame.loc[unmapped & keep, cat]).sum()
        notes.append("categories not in the offence taxonomy, left out: "
                     + ", ".join(f"{k} ({v:,.0f})" for k, v in lost.items()))
    ok = keep & ~unmapped
    out = pd.DataFrame({
        "area_code": frame.loc[ok, code].astype("string"), "month": month[ok],
        "group": cls.loc[ok, "group"], "serious_violence": cls.loc[ok, "serious_violence"],
        "police_generated": cls.loc[ok, "police_generated"], "count": count[ok].astype(float),
    })
    scheme_col = _find(cols, r"category_scheme", r"^scheme$")
    if scheme_col is not None:
        out["scheme"] = frame.loc[ok, scheme_col].astype("string")
    out = out.groupby([c for c in out.columns if c != "count"], as_index=False, observed=True)["count"].sum()
    notes.append(f"{path.name}: categories classified with the taxonomy's {scheme!r} scheme ({cat}"
                 + (f" / {minor})" if minor else ")"))
    return CompareData(root=path.parent, monthly=out, names=_names(frame), files={"monthly counts": source},
                       notes=notes)


def _population(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    cols = list(frame.columns)
    code = _code_column(frame.head(SAMPLE_ROWS), AUTHORITY)
    pop = _find(cols, r"^population$", r"usual_?residents", r"all_?ages", r"^residents$")
    youth = _find(cols, r"10.?(to.?)?24")
    src = _find(cols, r"^source$")
    out = pd.DataFrame({
        "area_code": frame[code].astype("string"), "year": to_number(frame["year"]).astype("Int64"),
        "population": to_number(frame[pop]),
        "age_10_24": to_number(frame[youth]) if youth else np.nan,
        "source": frame[src].astype("string") if src else pd.NA,
    })
    bad = out["year"].isna() | out["population"].isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise DataError(path, "year or population is not a number", row=row)
    return out


def _areas(path: Path) -> pd.Series | None:
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise DataError(path, f"cannot read as a vector layer ({exc})") from None
    code = _code_column(frame.drop(columns="geometry").head(SAMPLE_ROWS), AUTHORITY)
    if code is None or frame.crs is None:
        return None
    frame = frame.to_crs(WORKING_CRS)
    return pd.Series(frame.geometry.area.to_numpy() / 1e6, index=frame[code].astype(str).to_numpy())
