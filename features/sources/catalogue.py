"""Describe a data folder: a ``catalogue.toml`` if it has one, else recognise files by their columns.

Catalogue format (paths relative to the catalogue's folder)::

    [catalogue]
    name = "Demoborough (synthetic)"

    [[source]]
    name = "street crime"
    kind = "policeuk_street"        # one of KINDS
    path = "crime"                  # a file, a folder of monthly files, or a zip archive
    # edition = "lsoa2021"          # boundaries: which edition (else read from column/file names)
    # year = 2019                   # population estimates: which year (else from a date column/file name)
    # layer = "name"                # multi-layer vector files

Nothing here knows about any one borough: recognition uses the public formats'
column names (police.uk, ONS, MHCLG, TfL, DfE) and file-name patterns of police.uk
downloads (``YYYY-MM-<force>-street.csv``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pyogrio

from features.sources.loaders.crime import MONTHLY_STOP, MONTHLY_STREET
from features.sources.readers import DataError, decode_text, read_bytes

CATALOGUE_NAME = "catalogue.toml"
VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".gml", ".kml")
TABLE_SUFFIXES = (".csv", ".csv.gz", ".txt")

KINDS = (
    "boundary", "boundary_lsoa2011", "boundary_lsoa2021", "boundary_ward2018", "boundary_ward2022",
    "boundary_borough", "lookup_lsoa11_lsoa21", "lookup_lsoa21_ward22",
    "policeuk_street", "policeuk_api", "policeuk_stop_search", "crime_records_by_lsoa",
    "met_ward_monthly", "met_lsoa_counts",
    "imd", "imd_indicators", "imd_ward_summary", "population_mye", "population_census_ts007a",
    "stations", "station_footfall", "bus_stops", "schools", "schools_gias", "schools_atlas",
    "school_exclusions", "parks", "street_lighting",
)


@dataclass
class Source:
    name: str
    kind: str
    path: Path
    options: dict = field(default_factory=dict)


@dataclass
class Catalogue:
    root: Path
    name: str
    sources: list[Source]
    origin: str  # "catalogue.toml" or "recognised by columns"
    unrecognised: list[dict] = field(default_factory=list)


def load_catalogue(root: Path) -> Catalogue:
    """Read ``root/catalogue.toml``, or recognise the files under ``root``."""
    root = Path(root)
    if not root.exists():
        raise DataError(root, "data folder not found")
    if not root.is_dir():
        raise DataError(root, "expected a data folder")
    path = root / CATALOGUE_NAME
    if path.is_file():
        return _read_toml(path)
    return discover(root)


def _read_toml(path: Path) -> Catalogue:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a valid TOML catalogue ({exc})") from None
    sources = []
    for i, entry in enumerate(doc.get("source", []), start=1):
        for need in ("kind", "path"):
            if need not in entry:
                raise DataError(path, f"[[source]] number {i} has no {need!r}")
        if entry["kind"] not in KINDS:
            raise DataError(path, f"[[source]] number {i}: unknown kind {entry['kind']!r}; expected one of {list(KINDS)}")
        opts = {k: v for k, v in entry.items() if k not in ("name", "kind", "path", "format")}
        sources.append(Source(entry.get("name", entry["path"]), entry["kind"], path.parent / entry["path"], opts))
    if not sources:
        raise DataError(path, "catalogue lists no [[source]] entries")
    name = doc.get("catalogue", {}).get("name", path.parent.name)
    return Catalogue(path.parent, name, sources, CATALOGUE_NAME)


def _header(path: Path) -> list[str]:
    data = read_bytes(path)[:65536]
    text, _ = decode_text(data, str(path))
    first = text.splitlines()[0] if text.splitlines() else ""
    import csv

    return [h.strip() for h in next(csv.reader([first]))]


def recognise_columns(cols: list[str]) -> str | None:
    """Which public table a CSV header belongs to, or None."""
    s = set(cols)
    low = {c.lower() for c in cols}
    if {"Crime ID", "Month", "Longitude", "Latitude", "Crime type"} <= s:
        return "policeuk_street"
    if {"Crime ID", "Month", "LSOA code", "Crime type"} <= s:
        return "crime_records_by_lsoa"
    if {"id", "month", "category", "latitude", "longitude"} <= s:
        return "policeuk_api"
    if {"Type", "Date", "Latitude", "Longitude", "Object of search"} <= s:
        return "policeuk_stop_search"
    if ({"ward_code", "wardcode", "ward code"} & low) and ({"major_category", "majortext", "major category"} & low):
        return "met_ward_monthly"
    if "category" in low and "count" in low and ({"year", "month"} & low) and any(re.match(r"lsoa", c) for c in low):
        return "met_lsoa_counts"
    if "Index of Multiple Deprivation (IMD) Score" in s:
        return "imd"
    if "LSOA code (2011)" in s and any(c.endswith("numerator") for c in cols):
        return "imd_indicators"
    if "Ward Code" in s and "IMD average score" in s:
        return "imd_ward_summary"
    if "Persons_All-Ages" in s:
        return "population_mye"
    if any(c.startswith("Aged ") for c in cols) and any(re.match(r"lsoa\d\dcd", c) for c in low):
        return "population_census_ts007a"
    if {"year", "station"} <= low and any("entries" in c for c in low):
        return "station_footfall"
    if "station" in low:
        return "stations"
    if {"stop_code_lbsl", "naptan_atco"} & low or ({"atcocode", "commonname"} <= low):
        return "bus_stops"
    if "time_period" in low and "school_urn" in low:
        return "school_exclusions"
    if "URN" in s and ({"easting", "northing"} <= low or {"latitude", "longitude"} <= low):
        return "schools"
    if "record name" in low:
        return "parks"
    if {"asset_xcords", "asset_ycords"} <= low:
        return "street_lighting"
    codes11 = [c for c in low if re.search(r"lsoa_?11", c) and ("cd" in c or "code" in c)]
    codes21 = [c for c in low if re.search(r"lsoa_?21", c) and ("cd" in c or "code" in c)]
    if codes11 and codes21:
        return "lookup_lsoa11_lsoa21"
    if {"lsoa21cd", "wd22cd"} <= low:
        return "lookup_lsoa21_ward22"
    return None


def discover(root: Path) -> Catalogue:
    """Recognise every file under ``root`` by its columns (CSV) or its code column (vector layers)."""
    sources: list[Source] = []
    unrecognised: list[dict] = []
    monthly_roots: dict[Path, set[str]] = {}
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    for p in files:
        name = p.name.lower()
        rel = p.relative_to(root)
        if MONTHLY_STREET.search(p.name) or MONTHLY_STOP.search(p.name):
            base = p.parent.parent if re.fullmatch(r"\d{4}-\d{2}", p.parent.name) else p.parent
            monthly_roots.setdefault(base, set()).add("street" if MONTHLY_STREET.search(p.name) else "stop")
            continue
        if name.endswith(".zip"):
            sources.append(Source(str(rel), "policeuk_street", p))
            sources.append(Source(str(rel) + " (stop and search)", "policeuk_stop_search", p, {"optional": True}))
            continue
        if name.endswith(TABLE_SUFFIXES):
            try:
                kind = recognise_columns(_header(p))
            except DataError as exc:
                unrecognised.append({"path": str(rel), "why": str(exc)})
                continue
            if kind is None:
                unrecognised.append({"path": str(rel), "why": "columns match no known public format"})
            else:
                sources.append(Source(str(rel), kind, p))
        elif name.endswith(VECTOR_SUFFIXES) or name.endswith(".shp"):
            try:
                info = pyogrio.read_info(p)
            except Exception as exc:  # noqa: BLE001 - any OGR failure means "not a layer we can read"
                unrecognised.append({"path": str(rel), "why": f"not readable as a vector layer ({exc})"})
                continue
            geom = str(info.get("geometry_type") or "")
            if "Polygon" in geom:
                sources.append(Source(str(rel), "boundary", p))
            else:
                unrecognised.append({"path": str(rel), "why": f"vector layer of {geom or 'no'} geometry"})
        elif name.endswith((".dbf", ".shx", ".prj", ".cpg", ".qmd", ".md", ".txt", ".toml", ".json")):
            continue
        else:
            unrecognised.append({"path": str(rel), "why": "not a CSV, vector layer or zip archive"})
    for base, kinds in sorted(monthly_roots.items()):
        rel = base.relative_to(root) if base != root else Path(".")
        if "street" in kinds:
            sources.append(Source(f"{rel} (police.uk street)", "policeuk_street", base))
        if "stop" in kinds:
            sources.append(Source(f"{rel} (police.uk stop and search)", "policeuk_stop_search", base))
    return Catalogue(root, root.resolve().name, sources, "recognised by columns", unrecognised)
