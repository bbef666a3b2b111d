"""Keep a data folder current: fetch each updatable source's new public releases, validate them, place them.

A source is updatable when its ``[[source]]`` entry in the folder's ``catalogue.toml``
says where its releases come from, and its ``path`` is the folder they are placed in::

    [[source]]                      # the Met's LSOA table, via the London Datastore's CKAN API
    name = "Met LSOA crime"
    kind = "met_ward_monthly"       # the kind every release must be recognised as
    path = "crime/met-lsoa"         # a folder: every release in it is read, the latest kept per month
    update = "london-datastore"
    dataset = "recorded_crime_summary"          # the CKAN dataset (package) id or name
    resource_pattern = "LSOA.*most recent"      # regular expression on the resource's name or file name

    [[source]]                      # police.uk street-level crime through the API, for an area
    name = "police.uk API crime"
    kind = "policeuk_api"
    path = "crime/policeuk-api"
    update = "police-uk-api"
    polygon = "boundaries/borough.gpkg"   # any OGR polygon file; the request area is a simplified cover of it
    # since = "2024-01"                   # first month wanted (default: the newest month only)

    [[source]]                      # police.uk stop and search: by polygon (stops-street) or by force (stops-force)
    name = "police.uk stop and search"
    kind = "policeuk_stop_search"
    path = "crime/stop-search"
    update = "police-uk-api"
    force = "metropolitan"

London Datastore: ``package_show`` lists the dataset's resources; the newest matching one
(by ``last_modified``, then ``created``) is fetched unless the manifest already records that
release; a download identical to a file the folder holds is not placed again. A zip whose
one table is of the source's kind is unpacked to that table. police.uk: ``crimes-street-dates``
says which months are published; months after the newest the folder holds (per the manifest)
are fetched month by month, a polygon the API refuses as too large (503) split in quadrants.

Every download is checked the way ingest will read it (recognised by its columns, loaded
by the loader its kind maps to; at least one row accepted, no damaged rows) before anything is
placed. Files are placed under the publisher's file name with the release date, beside the
files already there, never over one, and recorded in ``svrisk-manifest.json`` (source URL,
retrieved time, sha256, licence). All sources are fetched and checked before the first file
is placed: any failure leaves the folder as it was and names the source that failed and why.

Nothing here reads settings: ``service.update`` passes them as arguments.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import tomllib
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import shapely

from sources.catalogue import (
    CATALOGUE_NAME,
    KINDS,
    MANIFEST_NAME,
    TABLE_SUFFIXES,
    Source,
    discover,
    recognise_columns,
)
from sources.fetch import Client, FetchError, FetchOptions, RateLimiter
from sources.fingerprint import sha256
from sources.ingest import load_source
from sources.loaders.areas import read_polygon
from sources.loaders.context import IngestContext, IngestOptions
from sources.readers import DAMAGE_REASONS, DataError, read_blob, sniff_header, zip_names
from sources.taxonomy import load_taxonomy

UPDATERS = ("london-datastore", "police-uk-api")
OGL = "Open Government Licence v3.0"
PART_SUFFIX = ".svrisk-part"
"""Hidden files a placement copies into before renaming; any left by a killed update are removed."""
POLY_MAX_SPLITS = 4
"""Quadrant splits of a polygon police.uk refuses as too large before giving up (4**4 = 256 pieces)."""
POLY_MAX_VERTICES = 100
"""police.uk takes the polygon in the URL: a boundary is simplified (outwards) to this many vertices."""
API_CRIME_COLUMNS = ["id", "persistent_id", "month", "category", "location_type", "location_subtype", "context",
                     "latitude", "longitude", "street_id", "street_name", "outcome_category", "outcome_month"]
STOP_COLUMNS = {  # police.uk bulk stop-and-search column: the API's field
    "Type": "type", "Date": "datetime", "Part of a policing operation": "operation",
    "Policing operation": "operation_name", "Latitude": None, "Longitude": None, "Gender": "gender",
    "Age range": "age_range", "Self-defined ethnicity": "self_defined_ethnicity",
    "Officer-defined ethnicity": "officer_defined_ethnicity", "Legislation": "legislation",
    "Object of search": "object_of_search", "Outcome": "outcome",
    "Outcome linked to object of search": "outcome_linked_to_object_of_search",
    "Removal of more than just outer clothing": "removal_of_more_than_outer_clothing",
}

Progress = Callable[[str], None]


class UpdateError(DataError):
    """A source could not be brought up to date; nothing was placed. ``source`` names it."""


@dataclass(frozen=True)
class Endpoints:
    """Where the publishers' APIs are (tests point them at a local server)."""

    london_datastore: str = "https://data.london.gov.uk/api/3/action"
    police_uk: str = "https://data.police.uk/api"


@dataclass(frozen=True)
class PoliceRate:
    """police.uk's published limit: 15 requests a second on average, bursts of up to 30."""

    per_second: float = 15.0
    burst: int = 30


@dataclass
class Staged:
    """A checked download waiting to be placed."""

    source: Source
    name: str
    path: Path
    entry: dict


@dataclass
class Plan:
    staged: list[Staged] = field(default_factory=list)
    unchanged: list[dict] = field(default_factory=list)
    would: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------------- the folder


def updatable_sources(data_dir: Path) -> list[Source]:
    """The ``[[source]]`` entries of ``data_dir/catalogue.toml`` that carry an ``update`` key, checked."""
    path = Path(data_dir) / CATALOGUE_NAME
    if not path.is_file():
        raise DataError(data_dir, f"no {CATALOGUE_NAME}, so no source is marked updatable: add one whose "
                        '[[source]] entries say update = "london-datastore" or "police-uk-api" (see the README, '
                        '"Keeping a folder current")')
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a valid TOML catalogue ({exc})") from None
    out = []
    for i, entry in enumerate(doc.get("source", []), start=1):
        if "update" not in entry:
            continue
        name = entry.get("name", entry.get("path", f"source {i}"))
        where = f"[[source]] {name!r}"
        for need in ("kind", "path"):
            if need not in entry:
                raise DataError(path, f"{where} has no {need!r}")
        kind, how = entry["kind"], entry["update"]
        if kind not in KINDS:
            raise DataError(path, f"{where}: unknown kind {kind!r}")
        if how not in UPDATERS:
            raise DataError(path, f"{where}: update = {how!r}; expected one of {list(UPDATERS)}")
        folder = path.parent / entry["path"]
        if folder.exists() and not folder.is_dir():
            raise DataError(path, f"{where}: path {entry['path']!r} is a file; an updatable source's path is the "
                            "folder its releases are placed in")
        if how == "london-datastore" and not entry.get("dataset"):
            raise DataError(path, f"{where}: update = \"london-datastore\" needs dataset = \"<CKAN dataset id>\"")
        try:
            re.compile(str(entry.get("resource_pattern", ".")))
        except re.error as exc:
            raise DataError(path, f"{where}: resource_pattern {entry['resource_pattern']!r} is not a regular "
                            f"expression ({exc})") from None
        if how == "police-uk-api":
            if kind not in ("policeuk_api", "policeuk_stop_search"):
                raise DataError(path, f"{where}: police.uk's API gives kind policeuk_api (crimes-street) or "
                                f"policeuk_stop_search (stops-street, stops-force), not {kind}")
            if not entry.get("polygon") and not (kind == "policeuk_stop_search" and entry.get("force")):
                raise DataError(path, f"{where}: police.uk needs polygon = \"<boundary file>\""
                                + (" or force = \"<force id>\"" if kind == "policeuk_stop_search" else
                                   " (crimes-street has no force-wide query)"))
            if entry.get("since") and not re.fullmatch(r"\d{4}-\d{2}", str(entry["since"])):
                raise DataError(path, f"{where}: since = {entry['since']!r}; expected YYYY-MM")
        opts = {k: v for k, v in entry.items() if k not in ("name", "kind", "path")}
        if entry.get("polygon"):
            opts["polygon_path"] = path.parent / entry["polygon"]
        out.append(Source(name, kind, folder, opts))
    if not out:
        raise DataError(path, 'no [[source]] entry has an update key (update = "london-datastore" or '
                        '"police-uk-api"); nothing to update')
    return out


def read_manifest(data_dir: Path) -> dict:
    """The folder's ``svrisk-manifest.json`` (``{"files": [...]}``), empty when there is none."""
    path = Path(data_dir) / MANIFEST_NAME
    if not path.is_file():
        return {"version": 1, "files": []}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a valid manifest ({exc}); it was not changed") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise DataError(path, 'not a valid manifest (expected {"files": [...]}); it was not changed')
    return doc


def sweep_parts(data_dir: Path) -> list[str]:
    """Remove the hidden copies a killed update left while placing; return their paths."""
    removed = []
    for p in Path(data_dir).rglob(f".*{PART_SUFFIX}"):
        p.unlink(missing_ok=True)
        removed.append(str(p.relative_to(data_dir)))
    manifest_tmp = Path(data_dir) / f".{MANIFEST_NAME}{PART_SUFFIX}"
    manifest_tmp.unlink(missing_ok=True)
    return removed


# ----------------------------------------------------------------------------- the update


def update_folder(
    data_dir: str | Path,
    cache_dir: str | Path,
    *,
    endpoints: Endpoints = Endpoints(),
    fetch: FetchOptions | None = None,
    police_rate: PoliceRate = PoliceRate(),
    ingest_options: IngestOptions | None = None,
    offline: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Fetch what is new for every updatable source of ``data_dir``, check it, and place it.

    ``cache_dir`` holds the downloads (outside the data folder; a download cut short resumes
    from there). Returns ``{"placed": [manifest entries], "unchanged": [{"source", "why"}],
    "would_fetch": [...] (offline), "offline": bool}``.

    Raises
    ------
    UpdateError
        A source failed (its publisher did not answer, answered something malformed, or its
        download is not a table of its kind); names the source and why. Nothing was placed.
    DataError
        The folder's catalogue or manifest cannot be used.
    """
    say = progress or (lambda _m: None)
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    sources = updatable_sources(data_dir)
    manifest = read_manifest(data_dir)
    plan = Plan()
    options = ingest_options or IngestOptions()
    fetch = fetch or FetchOptions()
    if offline:  # touches nothing
        for source in sources:
            plan.would.append(_would(source, manifest, endpoints))
        return {"offline": True, "placed": [], "unchanged": [], "would_fetch": plan.would}
    for name in sweep_parts(data_dir):
        say(f"removed {name} left by an interrupted update")
    cache_dir.mkdir(parents=True, exist_ok=True)
    ckan = Client(fetch)
    police = Client(fetch, RateLimiter(police_rate.per_second, police_rate.burst, fetch.clock, fetch.sleep))
    try:
        with tempfile.TemporaryDirectory(prefix="staged-", dir=cache_dir) as tmp:
            staging = Path(tmp)
            for source in sources:
                say(f"{source.options['update']:<17} {source.name}")
                try:
                    if source.options["update"] == "london-datastore":
                        _london_datastore(source, ckan, endpoints, manifest, cache_dir, staging, options, plan)
                    else:
                        _police_uk(source, police, endpoints, manifest, staging, options, plan)
                except FetchError as exc:
                    raise UpdateError(source.name, f"{exc.url}: {exc.why}; nothing was placed") from None
                except UpdateError:
                    raise
                except DataError as exc:
                    raise UpdateError(source.name, f"{exc}; nothing was placed") from None
            placed = _place(data_dir, plan.staged, manifest)
    finally:
        ckan.close()
        police.close()
    for entry in placed:
        say(f"placed {entry['file']} ({entry['bytes']:,} bytes, {entry['rows_accepted']:,} rows)")
    return {"offline": False, "placed": placed, "unchanged": plan.unchanged, "would_fetch": [],
            "requests": {"london-datastore": ckan.requests, "police-uk-api": police.requests}}


def _entries(manifest: dict, source: Source) -> list[dict]:
    return [e for e in manifest["files"] if e.get("source") == source.name]


def _would(source: Source, manifest: dict, endpoints: Endpoints) -> dict:
    held = _entries(manifest, source)
    if source.options["update"] == "london-datastore":
        url = f"{endpoints.london_datastore}/package_show?id={source.options['dataset']}"
        last = max((e.get("release", {}).get("modified") or "" for e in held), default=None)
        what = (f"ask {url} for the newest resource matching {source.options.get('resource_pattern', '.*')!r} "
                f"and fetch it unless it is the release held ({last or 'none recorded'})")
    else:
        months = sorted(e.get("release", {}).get("month", "") for e in held)
        endpoint = _police_endpoint(source)
        after = (f"after {months[-1]}" if months else
                 f"from {source.options['since']}" if source.options.get("since") else "the newest month only")
        what = (f"ask {endpoints.police_uk}/crimes-street-dates for the published months and fetch "
                f"{endpoint} for each month {after}")
    return {"source": source.name, "update": source.options["update"], "folder": str(source.path), "would": what}


def _check(path: Path, source: Source, options: IngestOptions, staging: Path) -> dict:
    """Read a download as ingest will (recognised by its columns, then its kind's loader); refuse what fails."""
    probe = Path(tempfile.mkdtemp(prefix="probe-", dir=staging))
    try:
        os.link(path, probe / path.name)
    except OSError:
        shutil.copyfile(path, probe / path.name)
    try:
        cat = discover(probe, options.limits)
        if cat.damaged:
            raise UpdateError(source.name, f"{path.name} is damaged: {cat.damaged[0]['why']}; nothing was placed")
        if not cat.sources:
            why = cat.unrecognised[0]["why"] if cat.unrecognised else "nothing readable"
            raise UpdateError(source.name, f"{path.name}: no loader recognises it ({why}); refused, nothing was placed")
        kinds = sorted({s.kind for s in cat.sources})
        if kinds != [source.kind]:
            raise UpdateError(source.name, f"{path.name} is {', '.join(kinds)}, not {source.kind} as the catalogue "
                              "says; refused, nothing was placed")
        ctx = IngestContext(taxonomy=load_taxonomy(), options=options)
        read = accepted = rejected = 0
        for s in cat.sources:
            res = load_source(s, ctx)
            bad = res.rejects["reason"].isin(DAMAGE_REASONS).sum() if len(res.rejects) else 0
            if res.failed or bad:
                why = res.failed[0]["why"] if res.failed else f"{bad:,} damaged rows"
                raise UpdateError(source.name, f"{path.name} is damaged ({why}); nothing was placed")
            read, accepted, rejected = read + res.rows_read, accepted + res.accepted_rows, rejected + len(res.rejects)
        if accepted == 0:
            raise UpdateError(source.name, f"{path.name}: none of its {read:,} rows passed validation; refused, "
                              "nothing was placed")
        return {"kind": source.kind, "rows_read": int(read), "rows_accepted": int(accepted),
                "rows_rejected": int(rejected)}
    except DataError as exc:
        if isinstance(exc, UpdateError):
            raise
        raise UpdateError(source.name, f"{path.name} cannot be read as {source.kind} ({exc.reason}); nothing was "
                          "placed") from None
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _held_sha(source: Source, manifest: dict) -> dict[str, str]:
    """{sha256: file} of the source's folder and its manifest entries: what the folder already holds."""
    held = {e["sha256"]: e["file"] for e in _entries(manifest, source) if e.get("sha256")}
    if source.path.is_dir():
        for p in sorted(source.path.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                held.setdefault(sha256(p), p.name)
    return held


# ----------------------------------------------------------------------------- London Datastore (CKAN)


def _london_datastore(source, client: Client, endpoints: Endpoints, manifest, cache_dir: Path, staging: Path,
                      options: IngestOptions, plan: Plan) -> None:
    dataset = str(source.options["dataset"])
    url = f"{endpoints.london_datastore.rstrip('/')}/package_show"
    doc = client.get_json(url, {"id": dataset})
    result = doc.get("result") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not doc.get("success") or not isinstance(result, dict) \
            or not isinstance(result.get("resources"), list):
        raise UpdateError(source.name, f"{url}?id={dataset} answered JSON that is not a CKAN package_show result "
                          "(no result.resources list); nothing was placed")
    pattern = re.compile(str(source.options.get("resource_pattern", r".")), re.IGNORECASE)
    matching = [r for r in result["resources"] if isinstance(r, dict) and r.get("url")
                and (pattern.search(str(r.get("name") or "")) or pattern.search(_file_name(r["url"])))]
    if not matching:
        names = ", ".join(repr(r.get("name")) for r in result["resources"] if isinstance(r, dict))[:300]
        raise UpdateError(source.name, f"dataset {dataset!r} has no resource matching "
                          f"{source.options.get('resource_pattern')!r} (resources: {names or 'none'})")
    newest = max(matching, key=lambda r: (_stamp(r), str(r.get("name") or "")))
    stamp = _stamp(newest)
    for entry in _entries(manifest, source):
        rel = entry.get("release", {})
        if entry.get("url") == newest["url"] and rel.get("modified") == stamp:
            plan.unchanged.append({"source": source.name, "why": f"the newest release ({stamp or 'undated'}) is "
                                   f"held as {entry['file']}"})
            return
    part = cache_dir / (_key(newest["url"] + "|" + stamp) + ".part")
    got, digest, size = client.download(newest["url"], part)
    expected = str(newest.get("hash") or "").removeprefix("sha256:")
    if re.fullmatch(r"[0-9a-f]{64}", expected) and expected != digest:
        got.unlink(missing_ok=True)
        raise UpdateError(source.name, f"{newest['url']}: sha256 {digest} differs from the {expected} the "
                          "publisher lists; nothing was placed")
    held = _held_sha(source, manifest)
    if digest in held:
        got.unlink(missing_ok=True)
        plan.unchanged.append({"source": source.name, "why": f"the newest release ({stamp or 'undated'}) is "
                               f"identical to {held[digest]}, already in the folder"})
        return
    name = _release_name(_file_name(newest["url"]), stamp)
    staged = staging / name
    member = None
    if name.lower().endswith(".zip"):
        member, staged = _unzip_table(got, source, staging, options)
    else:
        shutil.move(got, staged)
    checked = _check(staged, source, options, staging)
    org = result.get("organization") if isinstance(result.get("organization"), dict) else {}
    entry = {
        "source": source.name, "update": "london-datastore", "url": newest["url"], "dataset": dataset,
        "publisher": str(org.get("title") or source.options.get("publisher") or "London Datastore"),
        "licence": str(result.get("license_title") or result.get("license_id") or source.options.get("licence")
                       or OGL),
        "release": {"resource_id": newest.get("id"), "resource_name": newest.get("name"), "modified": stamp},
        "sha256": sha256(staged), "download_sha256": digest, "bytes": staged.stat().st_size, **checked,
    }
    if member:
        entry["member"] = member
    got.unlink(missing_ok=True)
    plan.staged.append(Staged(source, staged.name, staged, entry))


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _stamp(resource: dict) -> str:
    return str(resource.get("last_modified") or resource.get("metadata_modified") or resource.get("created") or "")


def _file_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlparse(url).path.rsplit("/", 1)[-1]) or "download"


def _safe(name: str) -> str:
    return re.sub(r"[^\w .()+-]+", "_", name).strip(" .") or "download"


def _release_name(file_name: str, stamp: str) -> str:
    """The publisher's file name with the release date before the suffix: ``name 2026-03-18.csv``."""
    name = _safe(file_name)
    low = name.lower()
    suffix = next((s for s in (".csv.gz", ".tsv.gz", ".zip") + TABLE_SUFFIXES if low.endswith(s)), Path(name).suffix)
    stem = name[: len(name) - len(suffix)] if suffix else name
    day = stamp[:10] if re.match(r"\d{4}-\d{2}-\d{2}", stamp) else ""
    return f"{stem} {day}{suffix}" if day else name


def _unzip_table(path: Path, source: Source, staging: Path, options: IngestOptions) -> tuple[str | None, Path]:
    """A zip: kept whole if ingest reads it as it is (police.uk archives, boundaries), else its one table
    of the source's kind is taken out."""
    cat = discover_one(path, staging, options)
    if cat:
        target = staging / path.name
        shutil.copyfile(path, target)
        return None, target
    names, _whole = zip_names(path, options.limits)
    tables = []
    for member in names:
        if not member.lower().endswith(TABLE_SUFFIXES) or member.endswith("/"):
            continue
        blob = read_blob(path, member, options.limits)
        if recognise_columns(sniff_header(blob.data[:65536], blob.source)) == source.kind:
            tables.append((member, blob.data))
    if len(tables) != 1:
        found = "no table" if not tables else f"{len(tables)} tables ({', '.join(m for m, _ in tables)})"
        raise UpdateError(source.name, f"{path.name}: the zip holds {found} of kind {source.kind}; refused, "
                          "nothing was placed")
    member, data = tables[0]
    target = staging / _safe(member.rsplit("/", 1)[-1])
    target.write_bytes(data)
    return member, target


def discover_one(path: Path, staging: Path, options: IngestOptions) -> bool:
    """Whether ingest recognises ``path`` on its own (as a zip of police.uk files or vector layers)."""
    probe = Path(tempfile.mkdtemp(prefix="zip-", dir=staging))
    try:
        shutil.copyfile(path, probe / path.name)
        return bool(discover(probe, options.limits).sources)
    finally:
        shutil.rmtree(probe, ignore_errors=True)


# ----------------------------------------------------------------------------- police.uk API


def _police_endpoint(source: Source) -> str:
    if source.kind == "policeuk_api":
        return "crimes-street/all-crime"
    return "stops-street" if source.options.get("polygon") else "stops-force"


def _police_uk(source, client: Client, endpoints: Endpoints, manifest, staging: Path, options: IngestOptions,
               plan: Plan) -> None:
    base = endpoints.police_uk.rstrip("/")
    endpoint = _police_endpoint(source)
    force = source.options.get("force")
    dates = client.get_json(f"{base}/crimes-street-dates")
    if not isinstance(dates, list) or not all(isinstance(d, dict) and re.fullmatch(r"\d{4}-\d{2}", str(d.get("date")))
                                              for d in dates):
        raise UpdateError(source.name, f"{base}/crimes-street-dates answered JSON that is not a list of "
                          '{"date": "YYYY-MM", ...}; nothing was placed')
    available = sorted(str(d["date"]) for d in dates if endpoint != "stops-force"
                       or force in (d.get("stop-and-search") or []))
    held = sorted(str(e.get("release", {}).get("month")) for e in _entries(manifest, source))
    if held:
        wanted = [m for m in available if m > held[-1]]
    elif source.options.get("since"):
        wanted = [m for m in available if m >= str(source.options["since"])]
    else:
        wanted = available[-1:]
    if not wanted:
        plan.unchanged.append({"source": source.name, "why": f"no month after {held[-1] if held else 'none'} is "
                               f"published (newest: {available[-1] if available else 'none'})"})
        return
    pieces = _request_areas(source) if source.options.get("polygon") else None
    for month in wanted:
        url = f"{base}/{endpoint}"
        if pieces is None:
            records = _records(client, url, {"force": force, "date": month})
        else:
            records = []
            for piece in pieces:
                records += _polygon_records(client, url, month, piece, 0)
        if source.kind == "policeuk_api":
            text, rows = _crime_csv(records)
            name = f"police-uk-api-crimes-street_{month}.csv"
        else:
            text, rows = _stop_csv(records)
            name = f"{month}-{_safe(force or 'area')}-stop-and-search.csv"
        if not rows:
            plan.unchanged.append({"source": source.name, "why": f"{month}: police.uk returned no records; "
                                   "nothing placed for it"})
            continue
        staged = staging / name
        staged.write_text(text, encoding="utf-8")
        checked = _check(staged, source, options, staging)
        query = {"date": month, **({"force": force} if pieces is None else {"poly": f"{len(pieces)} area(s) from "
                                                                             f"{source.options['polygon']}"})}
        entry = {"source": source.name, "update": "police-uk-api", "url": f"{url}?{urllib.parse.urlencode(query)}",
                 "publisher": "police.uk (Home Office)", "licence": str(source.options.get("licence") or OGL),
                 "release": {"month": month, "records": rows}, "sha256": sha256(staged),
                 "bytes": staged.stat().st_size, **checked}
        plan.staged.append(Staged(source, name, staged, entry))


def _records(client: Client, url: str, params: dict) -> list[dict]:
    records = client.get_json(url, params)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise FetchError(f"{url}?{urllib.parse.urlencode(params)}", "answered JSON that is not a list of records")
    return records


def _polygon_records(client: Client, url: str, month: str, area: shapely.Polygon, depth: int) -> list[dict]:
    """Records in ``area`` (lon/lat); police.uk answers 503 for an area of more than 10,000 crimes:
    then the area is split in quadrants, each asked for in turn."""
    params = {"poly": poly_param(area), "date": month}
    response = client.get(url, params, passthrough=(503,))
    if response.status_code == 503:
        if depth >= POLY_MAX_SPLITS:
            raise FetchError(url, f"{month}: police.uk still refuses the area as too large (503) after "
                             f"{POLY_MAX_SPLITS} quadrant splits", 503)
        out = []
        for quarter in quadrants(area):
            out += _polygon_records(client, url, month, quarter, depth + 1)
        return out
    try:
        records = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FetchError(url, f"{month}: answered malformed JSON ({exc})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise FetchError(url, f"{month}: answered JSON that is not a list of records")
    return records


def quadrants(area: shapely.Polygon) -> list[shapely.Polygon]:
    """The parts of ``area`` in each quarter of its bounding box (each part a single polygon)."""
    x0, y0, x1, y1 = area.bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    out = []
    for box in (shapely.box(x0, y0, xm, ym), shapely.box(xm, y0, x1, ym), shapely.box(x0, ym, xm, y1),
                shapely.box(xm, ym, x1, y1)):
        part = area.intersection(box)
        out += [p for p in getattr(part, "geoms", [part]) if isinstance(p, shapely.Polygon) and not p.is_empty]
    return out


def poly_param(area: shapely.Polygon) -> str:
    """police.uk's ``poly``: ``lat,lng:lat,lng:...`` of the outer ring (5 decimals, about 1 m)."""
    return ":".join(f"{y:.5f},{x:.5f}" for x, y in area.exterior.coords[:-1])


def _request_areas(source: Source) -> list[shapely.Polygon]:
    """The source's boundary file as a few simple lon/lat polygons that cover it (buffered outwards
    before simplifying, so no point near the edge is lost; ingest clips to the study area)."""
    area = read_polygon(source.options["polygon_path"])
    tolerance = 25.0
    while True:
        cover = area.buffer(tolerance).simplify(tolerance)
        parts = [p for p in getattr(cover, "geoms", [cover]) if isinstance(p, shapely.Polygon)]
        if all(len(p.exterior.coords) - 1 <= POLY_MAX_VERTICES for p in parts):
            break
        tolerance *= 2
    lonlat = gpd.GeoSeries([shapely.Polygon(p.exterior) for p in parts], crs="EPSG:27700").to_crs("EPSG:4326")
    return list(lonlat)


def _dedupe(records: list[dict], key: Callable[[dict], str]) -> list[dict]:
    seen, out = set(), []
    for r in records:
        k = key(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def _crime_csv(records: list[dict]) -> tuple[str, int]:
    """crimes-street JSON flattened to the API CSV layout ingest reads (pieces overlapping at their
    edges give a crime twice: one row per ``id``)."""
    records = _dedupe(records, lambda r: str(r.get("id")))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(API_CRIME_COLUMNS)
    for r in records:
        loc = r.get("location") if isinstance(r.get("location"), dict) else {}
        street = loc.get("street") if isinstance(loc.get("street"), dict) else {}
        outcome = r.get("outcome_status") if isinstance(r.get("outcome_status"), dict) else {}
        writer.writerow(["" if v is None else v for v in (
            r.get("id"), r.get("persistent_id"), r.get("month"), r.get("category"), r.get("location_type"),
            r.get("location_subtype"), r.get("context"), loc.get("latitude"), loc.get("longitude"),
            street.get("id"), street.get("name"), outcome.get("category"), outcome.get("date"))])
    return buf.getvalue(), len(records)


def _stop_csv(records: list[dict]) -> tuple[str, int]:
    """stops-street / stops-force JSON in police.uk's bulk stop-and-search layout (a stop has no id:
    one row per distinct record)."""
    records = _dedupe(records, lambda r: json.dumps(r, sort_keys=True))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(STOP_COLUMNS))
    for r in records:
        loc = r.get("location") if isinstance(r.get("location"), dict) else {}
        row = []
        for column, key in STOP_COLUMNS.items():
            value = loc.get(column.lower()) if key is None else r.get(key)
            row.append("" if value is None else value)
        writer.writerow(row)
    return buf.getvalue(), len(records)


# ----------------------------------------------------------------------------- placing


def _place(data_dir: Path, staged: list[Staged], manifest: dict) -> list[dict]:
    """Move every staged file into its folder under a name not yet taken, then write the manifest.

    Each file is copied into a hidden ``.<name>.svrisk-part`` and renamed, so no partial file ever
    carries a data file's name; a failure removes what this update placed and leaves the folder
    as it was.
    """
    placed: list[Path] = []
    made: list[Path] = []
    entries = []
    now = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        for item in staged:
            folder = item.source.path
            for parent in reversed([folder, *folder.parents]):
                if not parent.exists():
                    parent.mkdir()
                    made.append(parent)
            target = _free_name(folder / item.name)
            part = folder / f".{target.name}{PART_SUFFIX}"
            shutil.copyfile(item.path, part)
            os.replace(part, target)
            placed.append(target)
            entries.append({"file": target.relative_to(data_dir).as_posix(), **item.entry, "retrieved": now})
        if entries:
            doc = {**manifest, "version": 1, "files": manifest["files"] + entries}
            tmp = data_dir / f".{MANIFEST_NAME}{PART_SUFFIX}"
            tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, data_dir / MANIFEST_NAME)
    except BaseException:
        for p in placed:
            p.unlink(missing_ok=True)
        sweep_parts(data_dir)
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    return entries


def _free_name(target: Path) -> Path:
    """``target``, or ``name (2).csv``, ``name (3).csv``, ... : never a name already taken."""
    if not target.exists():
        return target
    low = target.name.lower()
    suffix = next((s for s in (".csv.gz", ".tsv.gz") if low.endswith(s)), target.suffix)
    stem = target.name[: len(target.name) - len(suffix)]
    n = 2
    while (target.parent / f"{stem} ({n}){suffix}").exists():
        n += 1
    return target.parent / f"{stem} ({n}){suffix}"
