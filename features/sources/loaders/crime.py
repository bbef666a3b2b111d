"""Loaders for police.uk crime and stop-and-search records.

Formats read:

* police.uk bulk street-level CSV (``Crime ID, Month, Reported by, Falls within,
  Longitude, Latitude, Location, LSOA code, LSOA name, Crime type, Last outcome
  category, Context``), as one file, a folder of monthly files
  (``YYYY-MM/YYYY-MM-<force>-street.csv``) or the downloadable archive zip;
* police.uk API ``crimes-street`` output flattened to CSV (``id, persistent_id,
  month, category, latitude, longitude, street_name, outcome_category, ...``;
  categories are slugs such as ``violent-crime``);
* police.uk stop-and-search CSV (bulk layout, with or without extra columns).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from features.sources.loaders.context import IngestContext
from features.sources.loaders.points import point_table
from features.sources.readers import (
    DataError,
    LoadResult,
    RawTable,
    RowChecks,
    concat_rejects,
    parse_month,
    read_csv_raw,
)

STREET_COLUMNS = ["Crime ID", "Month", "Longitude", "Latitude", "Crime type"]
API_COLUMNS = ["id", "month", "category", "latitude", "longitude"]
STOP_SEARCH_COLUMNS = ["Type", "Date", "Latitude", "Longitude", "Object of search"]
MONTHLY_STREET = re.compile(r"(\d{4}-\d{2})-[\w.-]+-street\.csv$")
MONTHLY_STOP = re.compile(r"(\d{4}-\d{2})-[\w.-]+-stop-and-search\.csv$")


def list_members(path: Path, pattern: re.Pattern) -> list[tuple[Path, str | None]]:
    """The monthly CSVs behind ``path``: itself, the matching files in a folder tree, or zip members."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and pattern.search(p.name))
        zips = sorted(p for p in path.rglob("*.zip") if p.is_file())
        out: list[tuple[Path, str | None]] = [(p, None) for p in files]
        for z in zips:
            out.extend(list_members(z, pattern))
        return out
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = sorted(n for n in zf.namelist() if pattern.search(n.rsplit("/", 1)[-1]))
        except zipfile.BadZipFile as exc:
            raise DataError(path, f"zip archive is truncated or corrupt ({exc})") from None
        return [(path, n) for n in names]
    if not path.exists():
        raise DataError(path, "file not found")
    return [(path, None)]


def _classify(ctx: IngestContext, checks: RowChecks, scheme: str, category: pd.Series) -> pd.DataFrame:
    cls = ctx.taxonomy.classify(scheme, category)
    checks.reject(
        category.isna(), "missing crime type", "blank crime type/category"
    )
    checks.reject(
        cls["group"] == "unmapped", "crime type not in the taxonomy",
        "add a row for " + category.astype("string") + " to the offence taxonomy",
    )
    return cls


def _dedupe_ids(ctx: IngestContext, checks: RowChecks, ids: pd.Series, source: str, rows: pd.Series) -> None:
    """Reject repeated crime ids (within the input and against inputs loaded before).

    ``ctx.seen_ids`` maps id -> (source, row) of its first appearance; membership is tested
    row by row against the dict (O(rows) per file), never by turning the whole dict into a
    Series, which made a many-file ingest quadratic.
    """
    present = (ids.notna() & checks.ok).to_numpy()
    values = ids.to_numpy()
    seen = ctx.seen_ids
    before = np.zeros(len(ids), dtype=bool)
    before[present] = [v in seen for v in values[present]]
    if before.any():
        where = pd.Series(pd.NA, index=ids.index, dtype="string")
        where[before] = [f"{seen[v][0]} row {seen[v][1]}" for v in values[before]]
        checks.reject(before, "duplicate crime id", "first seen in " + where)
    present = present & checks.ok.to_numpy()
    dup_within = present & ids.duplicated(keep="first").to_numpy()
    if dup_within.any():
        first_rows = rows[present & ~dup_within].set_axis(ids[present & ~dup_within].to_numpy())
        detail = f"first seen in {source} row " + ids[dup_within].map(first_rows).astype("string")
        checks.reject(dup_within, "duplicate crime id", detail.reindex(ids.index))
    keep = present & checks.ok.to_numpy()
    seen.update(zip(values[keep], ((source, int(r)) for r in rows.to_numpy()[keep]), strict=True))


def _check_month(ctx: IngestContext, checks: RowChecks, month_raw: pd.Series) -> pd.Series:
    month = parse_month(month_raw)
    checks.reject(month_raw.isna(), "missing month", "Month blank")
    checks.reject(month.isna(), "unparseable month", "expected YYYY-MM, got " + month_raw.astype("string"))
    checks.reject(month > ctx.today, "month in the future", month_raw.astype("string"))
    return month


def _load_one(member, required, kind, ctx: IngestContext, columns_for, own_ids: bool = False) -> tuple:
    """Read and validate one monthly file: (frame, rejects, rows_read, source, flags).

    ``own_ids`` gives the file a duplicate memory of its own, for parallel loads: tasks on
    thread workers share objects, so one shared dict would let files race each other.
    """
    if own_ids:
        ctx = dataclasses.replace(ctx, seen_ids={}, map_files=None)
    path, name = member
    raw = read_csv_raw(path, name, required=required, kind=kind)
    flags: list[dict] = []
    checks = RowChecks(raw.frame, raw.source)
    columns = columns_for(raw, checks, flags, ctx)
    gdf, rej = point_table(raw, checks, columns, ctx.area, ctx.options.point_tolerance_m,
                           coords=("Longitude", "Latitude", "EPSG:4326"), flags=flags)
    return gdf, [raw.malformed, rej], raw.rows_read, raw.source, flags


def _drop_seen(frame, key: str, ctx: IngestContext) -> tuple:
    """Move rows whose ``key`` an earlier file already gave to rejects; remember the rest (file order)."""
    values = frame[key].to_numpy()
    seen = ctx.seen_ids
    present = frame[key].notna().to_numpy()
    hit = np.zeros(len(frame), dtype=bool)
    hit[present] = [v in seen for v in values[present]]
    moved = frame[hit]
    rejects = pd.DataFrame({
        "source_file": moved["source_file"].astype("string"), "source_row": moved["source_row"].astype("int64"),
        "reason": "duplicate crime id",
        "detail": [f"first seen in {seen[v][0]} row {seen[v][1]}" for v in values[hit]],
        "raw": [json.dumps({k: (None if pd.isna(v) else str(v)) for k, v in r.items()})
                for r in moved.drop(columns="geometry").to_dict("records")],
    })
    kept = frame[~hit]
    keep_ids = kept[key].notna().to_numpy()
    for v, f, r in zip(kept[key].to_numpy()[keep_ids], kept["source_file"].to_numpy()[keep_ids],
                       kept["source_row"].to_numpy()[keep_ids], strict=True):
        seen.setdefault(v, (f, int(r)))
    return kept, rejects


def _load_members(members, required, kind, ctx: IngestContext, columns_for,
                  dedupe_key: str | None = None) -> tuple[list, list, int, list, list]:
    """Read each monthly file, build its columns with ``columns_for(raw, checks, flags, ctx)`` and
    validate its coordinates; return (frames, rejects, rows_read, files, flags).

    With ``ctx.map_files`` (the Dask engine's map) the files are loaded in parallel, each
    with its own duplicate memory; repeats across files are then removed in file order
    (``dedupe_key``), so the accepted rows are the same as loading one file after another.
    A row that repeats an earlier file's id and also fails another check is rejected for
    the other reason in parallel, for the repeat when sequential: counts reconcile either way.
    """
    if ctx.map_files is None:
        results = [_load_one(m, required, kind, ctx, columns_for) for m in members]
    else:
        # What is sent to workers: no mapper (it holds the cluster client), no ids seen so far.
        task_ctx = dataclasses.replace(ctx, seen_ids={}, map_files=None)
        results = ctx.map_files(functools.partial(_load_one, required=required, kind=kind, ctx=task_ctx,
                                                  columns_for=columns_for, own_ids=True), members)
    frames, rejects, flags, files = [], [], [], []
    rows_read = 0
    for frame, rej, n, source, file_flags in results:
        if ctx.map_files is not None and dedupe_key is not None:
            frame, moved = _drop_seen(frame, dedupe_key, ctx)
            rej = [*rej, moved]
        frames.append(frame)
        rejects.extend(rej)
        rows_read += n
        files.append(source)
        flags.extend(file_flags)
    return frames, rejects, rows_read, files, flags


def load_policeuk_street(path: Path, ctx: IngestContext) -> LoadResult:
    """police.uk bulk street-level crime: a CSV, a folder of monthly CSVs or an archive zip."""
    members = list_members(path, MONTHLY_STREET)
    if not members:
        raise DataError(path, "no police.uk street-level files (YYYY-MM-<force>-street.csv) found")

    def columns_for(raw: RawTable, checks: RowChecks, flags: list[dict], ctx: IngestContext) -> dict:
        f = raw.frame
        month = _check_month(ctx, checks, f["Month"])
        expected = MONTHLY_STREET.search(raw.source.rsplit("/", 1)[-1])
        if expected is not None:
            off = checks.ok & month.notna() & (month.dt.strftime("%Y-%m") != expected.group(1))
            if off.any():
                flags.append({"check": "month_not_file_month", "severity": "warning",
                              "message": f"{raw.source}: {int(off.sum())} rows have a Month other than the file's {expected.group(1)}"})
        cls = _classify(ctx, checks, "policeuk", f["Crime type"])
        _dedupe_ids(ctx, checks, f["Crime ID"], raw.source, f["_row"])
        ids = f["Crime ID"].fillna(pd.Series(raw.source.rsplit("/", 1)[-1] + "#", index=f.index) + f["_row"].astype("string"))
        blank = pd.Series(pd.NA, index=f.index, dtype="string")
        return {
            "event_id": ids, "crime_id": f["Crime ID"], "month": month, "category": f["Crime type"],
            **{k: cls[k] for k in ("group", "serious_violence", "police_generated", "harm")},
            "lsoa_code": f.get("LSOA code", blank), "location": f.get("Location", blank),
            "outcome": f.get("Last outcome category", blank),
            "source_file": pd.Series(raw.source, index=f.index, dtype="string"), "source_row": f["_row"],
        }

    frames, rejects, rows_read, files, flags = _load_members(
        members, STREET_COLUMNS, "police.uk street-level crime", ctx, columns_for, dedupe_key="crime_id")
    return _events_result(path, frames, rejects, rows_read, files, flags, ctx)


def load_policeuk_api(path: Path, ctx: IngestContext) -> LoadResult:
    """police.uk API crimes-street output flattened to CSV (category slugs)."""
    raw = read_csv_raw(path, required=API_COLUMNS, kind="police.uk API street crime")
    f = raw.frame
    flags: list[dict] = []
    checks = RowChecks(f, raw.source)
    month = _check_month(ctx, checks, f["month"])
    cls = _classify(ctx, checks, "policeuk", f["category"])
    checks.reject(f["id"].isna(), "missing id", "API rows always carry an id")
    api_ids = "api:" + f["id"].astype("string")
    _dedupe_ids(ctx, checks, api_ids.where(f["id"].notna()), raw.source, f["_row"])
    pid = f["persistent_id"] if "persistent_id" in f else pd.Series(pd.NA, index=f.index, dtype="string")
    _dedupe_ids(ctx, checks, pid, raw.source, f["_row"])
    lsoa = next((f[c] for c in ("lsoa_code", "lsoa11cd_by_point", "lsoa21cd_by_point") if c in f), None)
    columns = {
        "event_id": api_ids, "crime_id": pid, "month": month, "category": f["category"],
        **{k: cls[k] for k in ("group", "serious_violence", "police_generated", "harm")},
        "lsoa_code": lsoa if lsoa is not None else pd.Series(pd.NA, index=f.index, dtype="string"),
        "location": f.get("street_name", pd.Series(pd.NA, index=f.index, dtype="string")),
        "outcome": f.get("outcome_category", pd.Series(pd.NA, index=f.index, dtype="string")),
        "source_file": pd.Series(raw.source, index=f.index, dtype="string"),
        "source_row": f["_row"],
    }
    gdf, rej = point_table(raw, checks, columns, ctx.area, ctx.options.point_tolerance_m,
                           coords=("longitude", "latitude", "EPSG:4326"), flags=flags)
    return _events_result(path, [gdf], [raw.malformed, rej], raw.rows_read, [raw.source], flags, ctx)


def _events_result(path, frames, rejects, rows_read, files, flags, ctx) -> LoadResult:
    import geopandas as gpd

    frame = pd.concat(frames, ignore_index=True) if frames else gpd.GeoDataFrame()
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:27700")
    result = LoadResult("events", frame, concat_rejects(rejects), str(path), rows_read, files=files, flags=flags)
    if len(frame) and frame["lsoa_code"].notna().any():
        ed = ctx.edition_of(frame["lsoa_code"], "lsoa")
        known = ed.dropna()
        kinds = sorted({e.rstrip("+") for e in known if not e.endswith("+")})
        if len(kinds) > 1:
            counts = known[~known.str.endswith("+")].value_counts().to_dict()
            result.flag("mixed_lsoa_editions", f"{path}: LSOA codes from more than one edition: {counts} "
                        "(codes in both editions not counted); units are assigned by point, not by code")
        unknown = int(ed.isna().sum() - frame["lsoa_code"].isna().sum())
        if unknown and ctx.codes:
            result.flag("unknown_lsoa_codes", f"{path}: {unknown} rows carry an LSOA code of no loaded boundary edition "
                        "(points outside the area's LSOAs, or another edition)", rows=unknown)
    return result


def load_stop_search(path: Path, ctx: IngestContext) -> LoadResult:
    """police.uk stop and search: a CSV, or monthly files in a folder/zip. Police-generated."""
    import geopandas as gpd

    members = list_members(path, MONTHLY_STOP) if (path.is_dir() or path.suffix == ".zip") else [(path, None)]

    def columns_for(raw: RawTable, checks: RowChecks, flags: list[dict], ctx: IngestContext) -> dict:
        f = raw.frame
        date = pd.to_datetime(f["Date"], errors="coerce", utc=True, format="ISO8601")
        checks.reject(date.isna(), "unparseable date", "expected an ISO date-time, got " + f["Date"].astype("string"))
        month = parse_month(f["month"]) if "month" in f else date.dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()
        return {
            "month": month, "date": date, "type": f["Type"], "object_of_search": f["Object of search"],
            "outcome": f.get("Outcome", pd.Series(pd.NA, index=f.index, dtype="string")),
            "source_file": pd.Series(raw.source, index=f.index, dtype="string"), "source_row": f["_row"],
        }

    frames, rejects, rows_read, files, flags = _load_members(
        members, STOP_SEARCH_COLUMNS, "police.uk stop and search", ctx, columns_for)
    frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:27700")
    result = LoadResult("stop_search", frame, concat_rejects(rejects), str(path), rows_read, files=files, flags=flags)
    result.notes.append("police-generated: never a modelling target; off by default as a feature")
    return result


def month_gaps(months: pd.Series) -> list[str]:
    """Months missing inside the span of ``months``."""
    m = pd.DatetimeIndex(months.dropna().unique()).sort_values()
    if len(m) < 2:
        return []
    full = pd.date_range(m[0], m[-1], freq="MS")
    return [d.strftime("%Y-%m") for d in full.difference(m)]


THIN_RATIO = 0.2
"""A month with fewer rows than this share of the median month is thin: partial or missing data."""


def thin_counts(counts: pd.Series, ratio: float = THIN_RATIO) -> dict:
    """The entries of ``counts`` (rows per month, months with data only) below ``ratio`` x their median.

    With fewer than 4 months there is no usual level to compare with, so nothing is thin.
    """
    if len(counts) < 4:
        return {}
    med = float(np.median(counts.to_numpy(dtype=float)))
    return {k: v for k, v in counts.items() if v < ratio * med}


def thin_months(months: pd.Series, ratio: float = THIN_RATIO) -> dict[str, int]:
    """Months whose row count is below ``ratio`` x the median month (partial or missing data)."""
    counts = months.dropna().dt.strftime("%Y-%m").value_counts().sort_index()
    return {k: int(v) for k, v in thin_counts(counts, ratio).items()}
