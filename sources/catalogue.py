"""Describe a data folder: a ``catalogue.toml`` if it has one, else recognise files by their columns.

Catalogue format (paths relative to the catalogue's folder)::

    [catalogue]
    name = "Demoborough (synthetic)"

    [[source]]
    name = "street crime"
    kind = "policeuk_street"        # one of KINDS
    path = "crime"                  # a file, a folder of monthly files, or a zip archive
    # edition = "lsoa2021"          # boundaries: which edition (else read from column/layer/file names)
    # year = 2019                   # population estimates: which year (else from a date column/file name)
    # layer = "name"                # multi-layer vector files
    # member = "x/lsoa.shp"         # a vector layer inside a zip archive
    # crs = "EPSG:27700"            # boundaries whose CRS label is wrong

A source of a single-table kind (the Met's ward or LSOA tables, an API extract, ...)
whose ``path`` is a folder reads every file in it recognised as that kind, one
release per file: the folder ``svrisk update`` places new releases in (its keys,
``update = ...``, are described in ``sources.update``).

Every file found under the folder is accounted for in :attr:`Catalogue.files`: it is
read by a source (or is part of one, like a shapefile's ``.dbf``), or it is listed as
unrecognised with the reason, or as damaged (found but unreadable) with the reason.
Recognising a file reads only its first 64 KB (vector files: their layer list and a
few features), so a huge or hostile file costs nothing until it is loaded.

Nothing here knows about any one borough: recognition uses the public formats'
column names (police.uk, ONS, MHCLG, TfL, DfE) and file-name patterns of police.uk
downloads (``YYYY-MM-<force>-street.csv``).
"""

from __future__ import annotations

import datetime
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyogrio

from geo.editions import BOUNDARY_EDITIONS
from sources.confine import is_inside, walk
from sources.loaders.areas import FAMILY, GSS, boundary_edition
from sources.loaders.crime import MONTHLY_STOP, MONTHLY_STREET
from sources.loaders.partner import ROUTES as PARTNER_ROUTES
from sources.loaders.partner import recognise as recognise_partner
from sources.readers import (
    DEFAULT_LIMITS,
    MB,
    DataError,
    Limits,
    check_file_size,
    read_head,
    sniff_header,
    zip_names,
)

CATALOGUE_NAME = "catalogue.toml"
CATALOGUE_MAX_BYTES = 16 * MB
MANIFEST_NAME = "svrisk-manifest.json"
"""Where ``svrisk update`` records each file it placed (source URL, retrieved, sha256, licence)."""
MANIFEST_WHY = "svrisk update's record of where each downloaded file came from, not a data file"
FOLDER_KINDS = ("policeuk_street", "policeuk_stop_search")
"""Kinds whose loaders read a folder of monthly files themselves; other kinds' folders are expanded."""
VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".fgb", ".json", ".gml", ".kml")
STRONG_VECTOR = (".gpkg", ".shp", ".geojson", ".fgb")  # a file with this suffix that cannot be opened is damaged
TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
STRONG_TABLE = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
PART_SUFFIXES = (".dbf", ".shx", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".fix", ".qpj", ".qmd", ".xml",
                 ".gpkg-wal", ".gpkg-shm")
DOC_SUFFIXES = (".md", ".pdf", ".html", ".htm", ".doc", ".docx", ".odt", ".rtf", ".png", ".jpg", ".jpeg")
SPREADSHEET_SUFFIXES = (".xlsx", ".xls", ".xlsm", ".ods")

KINDS = (
    "boundary", *(f"boundary_{edition}" for edition in BOUNDARY_EDITIONS),
    "boundary_borough", "lookup_lsoa11_lsoa21", "lookup_lsoa21_ward22",
    "policeuk_street", "policeuk_api", "policeuk_stop_search", "crime_records_by_lsoa",
    "met_ward_monthly", "met_lsoa_monthly", "met_lsoa_counts", "met_dashboard",
    "imd", "imd_indicators", "imd_ward_summary", "population_mye", "population_census_ts007a",
    "ethnicity_census",
    "stations", "station_footfall", "bus_stops", "schools", "schools_gias", "schools_atlas",
    "school_exclusions", "parks", "street_lighting",
    *PARTNER_ROUTES,
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
    unrecognised: list[dict] = field(default_factory=list)  # {"path", "why"}
    damaged: list[dict] = field(default_factory=list)  # found but unreadable: {"path", "why"}
    # every file found, by path relative to root: {"status": source|part|catalogue|unrecognised|damaged, ...}
    files: dict[str, dict] = field(default_factory=dict)

    def unrecognise(self, path: str, why: str) -> None:
        self.unrecognised.append({"path": path, "why": why})
        self.files.setdefault(path.split("!", 1)[0], {"status": "unrecognised", "why": why})

    def damage(self, path: str, why: str) -> None:
        self.damaged.append({"path": path, "why": why})
        self.files[path.split("!", 1)[0]] = {"status": "damaged", "why": why}

    def claim(self, path: str, source: str) -> None:
        self.files[path] = {"status": "source", "source": source}


#: Keys a [[source]] may hold, with the types each may take.
SOURCE_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,), "kind": (str,), "path": (str,), "format": (str,), "edition": (str,), "year": (int, str),
    "layer": (str,), "member": (str,), "crs": (str,),
    # `svrisk update` (sources.update): which publisher keeps this source current, and how
    "update": (str,), "dataset": (str,), "resource_pattern": (str,), "force": (str,), "polygon": (str,),
    "since": (str,), "licence": (str,),
}
_SCALARS = (str, int, float, bool, datetime.datetime, datetime.date, datetime.time)
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "an array",
               dict: "a table"}


def load_catalogue(root: Path, limits: Limits = DEFAULT_LIMITS, allowed: tuple[Path, ...] = ()) -> Catalogue:
    """Read ``root/catalogue.toml``, or recognise the files under ``root``.

    Nothing outside ``root`` is read, save in the folders ``allowed`` (the ``[ingest] allow_outside``
    setting): a catalogue path or a symbolic link leading elsewhere is refused and reported.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(root, "data folder not found")
    if not root.is_dir():
        raise DataError(root, "expected a data folder")
    path = root / CATALOGUE_NAME
    if path.is_file() and is_inside(path, [root]):
        return _read_toml(path, limits, tuple(allowed))
    return discover(root, limits, tuple(allowed))


def _type_name(value) -> str:
    return next((n for t, n in _TYPE_NAMES.items() if type(value) is t), type(value).__name__)


def _deepest_key(text: str) -> str | None:
    """The key whose value opens the most arrays or inline tables on its line (for a catalogue nested too deep)."""
    best, depth = None, 0
    for m in re.finditer(r"^[ \t]*([^\s=#\[][^=\n]*?)[ \t]*=[ \t]*([\[{][\[{\s]*)", text, re.M):
        n = m.group(2).count("[") + m.group(2).count("{")
        if n > depth:
            best, depth = m.group(1).strip(), n
    return best


def _parse_toml(path: Path) -> dict:
    try:
        if path.stat().st_size > CATALOGUE_MAX_BYTES:
            raise DataError(path, f"is over {CATALOGUE_MAX_BYTES // MB} MB; a catalogue is a few KB: not read")
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a valid TOML catalogue ({exc})") from None
    except RecursionError:
        key = _deepest_key(text)
        where = f"the value of {key!r}" if key else "a value"
        raise DataError(path, f"{where} nests arrays or tables too deeply to read (a catalogue "
                        "holds strings and numbers)") from None
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc.strerror})") from None


def _check_value(path: Path, where: str, key: str, value, types: tuple[type, ...]) -> None:
    if type(value) not in types:
        expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        shown = f" ({value!r})" if isinstance(value, _SCALARS) and len(repr(value)) < 80 else ""
        raise DataError(path, f"{where}: {key!r} is {_type_name(value)}{shown}; expected {expected}")


def _check_schema(path: Path, doc: dict) -> list[dict]:
    """The [[source]] entries of a parsed catalogue, every key's type checked; DataError naming the key."""
    meta = doc.get("catalogue", {})
    _check_value(path, "the catalogue", "catalogue", meta, (dict,))
    for key, value in meta.items():
        _check_value(path, "[catalogue]", key, value, (str,) if key == "name" else _SCALARS)
    entries = doc.get("source", [])
    _check_value(path, "the catalogue", "source", entries, (list,))
    for i, entry in enumerate(entries, start=1):
        where = f"[[source]] number {i}"
        _check_value(path, "the catalogue", "source", entry, (dict,))
        for need in ("kind", "path"):
            if need not in entry:
                raise DataError(path, f"{where} has no {need!r}")
        for key, value in entry.items():
            if key not in SOURCE_KEYS:
                raise DataError(path, f"{where}: unknown key {key!r}; expected some of {list(SOURCE_KEYS)}")
            _check_value(path, where, key, value, SOURCE_KEYS[key])
        if entry["kind"] not in KINDS:
            raise DataError(path, f"{where}: unknown kind {entry['kind']!r}; expected one of {list(KINDS)}")
        if not entry["path"].strip() or "\x00" in entry["path"]:
            raise DataError(path, f"{where}: 'path' is empty or holds a NUL character")
    return entries


def _read_toml(path: Path, limits: Limits, allowed: tuple[Path, ...] = ()) -> Catalogue:
    doc = _parse_toml(path)
    root = path.parent
    sources = []
    for i, entry in enumerate(_check_schema(path, doc), start=1):
        target = root / entry["path"]
        if not is_inside(target, [root, *allowed]):
            raise DataError(path, f"[[source]] number {i}: 'path' leads outside the data folder; refused (an "
                            "operator may allow a folder with the setting [ingest] allow_outside)")
        opts = {k: v for k, v in entry.items() if k not in ("name", "kind", "path", "format")}
        sources.append(Source(entry.get("name", entry["path"]), entry["kind"], target, opts))
    if not sources:
        raise DataError(path, "catalogue lists no [[source]] entries")
    name = doc.get("catalogue", {}).get("name", path.parent.name)
    cat = Catalogue(root, name, sources, CATALOGUE_NAME)
    files = _walk(root, cat, allowed)
    cat.sources = sources = [part for s in sources for part in _expand_folder(s, files, root, cat, limits)]
    claimed: dict[Path, str] = {}
    for s in sources:
        target = s.path.resolve()
        if s.path.is_dir():
            pattern = MONTHLY_STOP if s.kind == "policeuk_stop_search" else MONTHLY_STREET
            for p in files:
                if p.resolve().is_relative_to(target) and (pattern.search(p.name) or p.suffix.lower() == ".zip"):
                    claimed.setdefault(p.resolve(), s.name)
        else:
            claimed.setdefault(target, s.name)
    for p in files:
        rel = _rel(p, root)
        if p.resolve() == path.resolve():
            cat.files[rel] = {"status": "catalogue"}
        elif p.name == MANIFEST_NAME and p.parent == root:
            cat.unrecognise(rel, MANIFEST_WHY)
        elif p.resolve() in claimed:
            cat.claim(rel, claimed[p.resolve()])
    _claim_parts(files, root, cat)
    for p in files:
        rel = _rel(p, root)
        if rel not in cat.files:
            cat.unrecognise(rel, f"not listed in {CATALOGUE_NAME}")
    return cat


def _rel(p: Path, root: Path) -> str:
    return str(p.relative_to(root))


def _expand_folder(source: Source, files: list[Path], root: Path, cat: Catalogue, limits: Limits) -> list[Source]:
    """A single-table source whose path is a folder: one source per file in it of that kind.

    Files of another kind in the folder are accounted for as unrecognised, with the kind
    their columns show; an empty (or not yet created) folder gives no source.
    """
    if source.options.get("update") and not source.path.exists():
        return []  # an updatable source nothing has been fetched for yet
    if source.kind in FOLDER_KINDS or source.kind.startswith("boundary") or not source.path.is_dir():
        return [source]
    target = source.path.resolve()
    out = []
    for p in files:
        if not p.resolve().is_relative_to(target) or not p.name.lower().endswith(TABLE_SUFFIXES):
            continue
        rel = _rel(p, root)
        try:
            kind = recognise_columns(sniff_header(read_head(p, limits=limits), str(p)))
        except DataError as exc:
            cat.damage(rel, exc.reason)
            continue
        if kind != source.kind:
            cat.unrecognise(rel, f"in the folder of {source.name!r} ({source.kind}) but its columns are "
                            f"{kind or 'no known public format'}")
            continue
        out.append(Source(f"{source.name} ({p.relative_to(source.path).as_posix()})", source.kind, p,
                          dict(source.options)))
    return out


def _walk(root: Path, cat: Catalogue, allowed: tuple[Path, ...] = ()) -> list[Path]:
    """Every readable regular file under ``root``; everything else (hidden entries, links leading
    outside the folder, named pipes, sockets, devices, unreadable folders, undecodable or over-long
    names) accounted for in ``cat`` without being opened (:func:`sources.confine.walk`)."""
    files: list[Path] = []
    for entry in walk(root, allowed, hidden=True):
        if entry.problem is None:
            files.append(entry.path)
        elif entry.damaged:
            cat.damage(entry.rel, entry.problem)
        else:
            cat.unrecognise(entry.rel, entry.problem)
    return files


def _claim_parts(files: list[Path], root: Path, cat: Catalogue) -> None:
    """Sidecar files (a shapefile's .dbf/.shx/.prj, a GeoPackage's -wal) belong to their main file."""
    by_path = {str(p): p for p in files}
    for p in files:
        low = p.name.lower()
        suffix = next((s for s in PART_SUFFIXES if low.endswith(s)), None)
        if suffix is None or _rel(p, root) in cat.files:
            continue
        base = str(p)[: -len(suffix)]
        owner = next((by_path[c] for c in (base, base + ".shp", base + ".SHP", base + ".gpkg") if c in by_path
                      and c != str(p)), None)
        if owner is not None:
            owner_entry = cat.files.get(_rel(owner, root), {})
            if owner_entry.get("status") in ("source", "part", "catalogue"):
                cat.files[_rel(p, root)] = {"status": "part", "part_of": _rel(owner, root)}
            else:
                cat.files[_rel(p, root)] = {"status": owner_entry.get("status", "unrecognised"),
                                            "why": f"part of {_rel(owner, root)} ({owner_entry.get('why', '')})"}
        elif suffix in (".dbf", ".shx", ".prj", ".cpg", ".sbn", ".sbx", ".qix"):
            cat.unrecognise(_rel(p, root), "shapefile part without its .shp")


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
    major = {"major_category", "majortext", "major category", "group"} & low
    if ({"ward_code", "wardcode", "ward code"} & low) and major:
        return "met_ward_monthly"
    if ({"lsoa_code", "lsoa code"} & low or any(re.fullmatch(r"lsoa\d\dcd", c) for c in low)) and major \
            and ("month" in low or any(re.fullmatch(r"\d{6}", c) for c in low)):
        return "met_lsoa_monthly"
    if {"month_year", "area_type", "area_code", "crime_type", "crime_subtype", "measure", "count"} <= low:
        return "met_dashboard"
    if "category" in low and "count" in low and ({"year", "month"} & low) and any(re.match(r"lsoa", c) for c in low):
        return "met_lsoa_counts"
    if (partner := recognise_partner(low)) is not None:
        return partner
    if "Index of Multiple Deprivation (IMD) Score" in s:
        return "imd"
    if "LSOA code (2011)" in s and any(c.endswith("numerator") for c in cols):
        return "imd_indicators"
    if "Ward Code" in s and "IMD average score" in s:
        return "imd_ward_summary"
    if any(re.fullmatch(r"lsoa\d\dcd", c) for c in low) and "white" in low and any("asian" in c for c in low):
        return "ethnicity_census"
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


def discover(root: Path, limits: Limits = DEFAULT_LIMITS, allowed: tuple[Path, ...] = ()) -> Catalogue:
    """Recognise every file under ``root`` by its columns (CSV), its layers (vector files) or its
    members (zip archives); account for the rest as unrecognised or damaged."""
    cat = Catalogue(root, root.resolve().name, [], "recognised by columns")
    files = _walk(root, cat, allowed)
    monthly: dict[Path, dict[str, list[str]]] = {}
    for p in files:
        name = p.name.lower()
        rel = _rel(p, root)
        if MONTHLY_STREET.search(p.name) or MONTHLY_STOP.search(p.name):
            base = p.parent.parent if re.fullmatch(r"\d{4}-\d{2}", p.parent.name) else p.parent
            kind = "street" if MONTHLY_STREET.search(p.name) else "stop"
            monthly.setdefault(base, {}).setdefault(kind, []).append(rel)
        elif name.endswith(".zip"):
            _zip_sources(p, rel, cat, limits)
        elif p.name == MANIFEST_NAME and p.parent == root:
            cat.unrecognise(rel, MANIFEST_WHY)
        elif name.endswith(TABLE_SUFFIXES):
            _table_source(p, rel, name.endswith(STRONG_TABLE), cat, limits)
        elif name.endswith(VECTOR_SUFFIXES):
            _vector_sources(p, rel, name.endswith(STRONG_VECTOR), cat, limits)
        elif name.endswith(PART_SUFFIXES):
            continue  # claimed by their main file below
        elif name.endswith(SPREADSHEET_SUFFIXES):
            cat.unrecognise(rel, "a spreadsheet: save the sheet as CSV to ingest it")
        elif name.endswith(DOC_SUFFIXES) or name.endswith(".toml"):
            cat.unrecognise(rel, f"documentation or settings ({p.suffix}), not a data file")
        else:
            cat.unrecognise(rel, "not a CSV, vector layer or zip archive")
    for base, kinds in sorted(monthly.items()):
        where = base.relative_to(root) if base != root else Path(".")
        for kind, label, source_kind in (("street", "police.uk street", "policeuk_street"),
                                         ("stop", "police.uk stop and search", "policeuk_stop_search")):
            if kind in kinds:
                name = f"{where} ({label})"
                cat.sources.append(Source(name, source_kind, base))
                for rel in kinds[kind]:
                    cat.claim(rel, name)
    _claim_parts(files, root, cat)
    return cat


def _table_source(p: Path, rel: str, strong: bool, cat: Catalogue, limits: Limits) -> None:
    try:
        header = sniff_header(read_head(p, limits=limits, first_line=True), str(p))
    except DataError as exc:
        if "empty" in exc.reason or not strong:
            cat.unrecognise(rel, exc.reason)
        else:
            cat.damage(rel, exc.reason)
        return
    kind = recognise_columns(header)
    if kind is None:
        shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "")
        cat.unrecognise(rel, f"columns match no known public format (columns: {shown})")
        return
    cat.sources.append(Source(rel, kind, p))
    cat.claim(rel, rel)


def _zip_sources(p: Path, rel: str, cat: Catalogue, limits: Limits) -> None:
    try:
        names, whole = zip_names(p, limits)
    except DataError as exc:
        cat.damage(rel, exc.reason)
        return
    base = [n.rsplit("/", 1)[-1] for n in names]
    found = False
    if any(MONTHLY_STREET.search(n) for n in base):
        cat.sources.append(Source(rel, "policeuk_street", p))
        found = True
    if any(MONTHLY_STOP.search(n) for n in base):
        cat.sources.append(Source(f"{rel} (stop and search)", "policeuk_stop_search", p))
        found = True
    if not found:
        vectors = [n for n in names if n.lower().endswith(STRONG_VECTOR)]
        for member in vectors:
            if not whole:
                cat.damage(rel, "zip archive is truncated or corrupt; its vector layers cannot be read")
                return
            _vector_sources(p, f"{rel}!{member}", True, cat, limits, member=member)
        found = any(s.path == p for s in cat.sources)
        if not found and not vectors:
            cat.unrecognise(rel, f"zip archive of {len(names)} files, none a police.uk monthly file or a vector layer")
            return
    if found:
        cat.claim(rel, rel)


def _vector_sources(p: Path, rel: str, strong: bool, cat: Catalogue, limits: Limits, member: str | None = None) -> None:
    """One boundary source per polygon layer with ONS codes; every other layer accounted for."""
    target = f"/vsizip/{p}/{member}" if member else str(p)
    try:
        check_file_size(p, limits)
        layers = pyogrio.list_layers(target)
    except Exception as exc:  # noqa: BLE001 - any OGR failure means "cannot open this as a vector file"
        why = getattr(exc, "reason", None) or f"cannot be opened as a vector file ({exc})"
        (cat.damage if strong else cat.unrecognise)(rel, why)
        return
    several = len(layers) > 1
    for layer_name, geom in layers:
        where = f"{rel}!{layer_name}" if several else rel
        if "Polygon" not in str(geom or ""):
            cat.unrecognise(where, f"vector layer of {geom or 'no'} geometry (boundaries are polygons)")
            continue
        try:
            sample = pyogrio.read_dataframe(target, layer=layer_name, read_geometry=False, max_features=50)
        except Exception as exc:  # noqa: BLE001
            (cat.damage if strong else cat.unrecognise)(where, f"cannot read the layer ({exc})")
            continue
        codes = [c for c in sample.columns if pd.api.types.is_string_dtype(sample[c]) and len(sample[c].dropna())
                 and sample[c].dropna().astype(str).str.match(GSS).all()]
        families = {c: FAMILY.get(str(sample[c].dropna().iloc[0])[:3]) for c in codes}
        usable = [c for c in codes if families[c] in ("lsoa", "ward", "borough")]
        if not usable:
            cat.unrecognise(where, "polygon layer with no column of LSOA, ward or borough codes (ONS GSS codes like "
                            'E01000001); to load it as parks, list it in catalogue.toml with kind = "parks"')
            continue
        code = min(usable, key=lambda c: ("lsoa", "ward", "borough").index(families[c]))
        name_hint = layer_name if several else Path(member or p.name).stem
        try:
            edition = boundary_edition(families[code], code, name_hint, where)
        except DataError as exc:
            cat.unrecognise(where, exc.reason)
            continue
        options = {"edition": edition}
        if several:
            options["layer"] = layer_name
        if member:
            options["member"] = member
        cat.sources.append(Source(where, "boundary", p, options))
    if any(s.path == p for s in cat.sources) and not member:
        cat.claim(rel, rel)
