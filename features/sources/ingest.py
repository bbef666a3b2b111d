"""Ingest a data folder into a store: load every source, validate, reconcile, report.

``ingest(data_dir, out_dir)`` loads boundaries first (they define the study area
and the known area codes), then lookups, then everything else; combines the
results per canonical table; runs whole-table quality checks; and writes the
tables, ``rejects.parquet`` and ``ingest_report.json``. For every input,
``rows_read == accepted + rejected``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from features.sources.catalogue import Catalogue, Source, load_catalogue
from features.sources.fingerprint import fingerprint, sha256
from features.sources.loaders import areas, crime, places
from features.sources.loaders.context import IngestContext, IngestOptions
from features.sources.loaders.points import StudyArea
from features.sources.readers import REJECT_COLUMNS, DataError, LoadResult, concat_rejects
from features.sources.store import REPORT_NAME, STORE_VERSION
from features.sources.taxonomy import load_taxonomy

Loader = Callable[[Path, IngestContext], LoadResult]

LOADERS: dict[str, Loader] = {
    "lookup_lsoa11_lsoa21": areas.load_lookup_lsoa11_lsoa21,
    "lookup_lsoa21_ward22": areas.load_lookup_lsoa21_ward22,
    "policeuk_street": crime.load_policeuk_street,
    "policeuk_api": crime.load_policeuk_api,
    "policeuk_stop_search": crime.load_stop_search,
    "crime_records_by_lsoa": areas.load_incident_records,
    "met_ward_monthly": areas.load_met_ward_monthly,
    "met_lsoa_counts": areas.load_met_lsoa_annual,
    "imd": places.load_imd,
    "imd_indicators": lambda p, c: places.load_generic_lsoa_table(p, c, "imd_indicators", (r"LSOA code \(2011\)", r"lsoa11cd")),
    "imd_ward_summary": lambda p, c: places.load_generic_lsoa_table(p, c, "imd_ward", (r"Ward Code", r"ward_?code")),
    "population_mye": places.load_population_mye,
    "population_census_ts007a": places.load_population_census,
    "stations": places.load_stations,
    "station_footfall": places.load_station_footfall,
    "bus_stops": places.load_bus_stops,
    "schools": places.load_schools,
    "schools_gias": places.load_schools,
    "schools_atlas": places.load_schools,
    "school_exclusions": places.load_school_exclusions,
    "parks": places.load_parks,
    "street_lighting": places.load_street_lighting,
}
# Keys that identify one thing across sources: a later source's repeat is rejected.
TABLE_KEYS = {"stations": "station_key", "schools": "urn", "bus_stops": "stop_code"}
ORDER = list(LOADERS)


def _load(source: Source, ctx: IngestContext) -> LoadResult | None:
    if source.kind.startswith("boundary"):
        edition = source.options.get("edition") or (source.kind.split("_", 1)[1] if "_" in source.kind else None)
        return areas.load_boundary(source.path, ctx, edition=edition, layer=source.options.get("layer"))
    loader = LOADERS[source.kind]
    if source.kind.startswith("population") and source.options.get("year"):
        return loader(source.path, ctx, year=int(source.options["year"]))
    if source.options.get("optional"):
        members = crime.list_members(source.path, crime.MONTHLY_STOP)
        if not members:
            return None
    return loader(source.path, ctx)


def _study_area(units: dict[str, gpd.GeoDataFrame]) -> shapely.Geometry | None:
    for edition in ("borough", "lsoa2011", "lsoa2021", "ward2022", "ward2018"):
        if edition in units:
            return shapely.union_all(units[edition].geometry.to_numpy())
    return None


def _drop_known(result: LoadResult, key: str, seen: dict[str, str]) -> None:
    """Move rows whose key an earlier source already gave into this result's rejects."""
    frame = result.frame
    if frame.empty or key not in frame:
        return
    dup = frame[key].isin(seen.keys()) & frame[key].notna()
    if dup.any():
        moved = frame[dup]
        rows = moved["source_row"] if "source_row" in moved else pd.Series(-1, index=moved.index)
        extra = pd.DataFrame({
            "source_file": result.source, "source_row": rows.astype("int64") if len(rows) else [],
            "reason": "duplicate of an earlier source",
            "detail": "already loaded from " + moved[key].map(seen).astype("string"),
            "raw": [json.dumps({k: str(v) for k, v in r.items()}) for r in moved.drop(columns="geometry", errors="ignore").to_dict("records")],
        })
        result.frame = frame[~dup].reset_index(drop=True)
        result.rejects = concat_rejects([result.rejects, extra])
        result.accepted_rows -= int(dup.sum())
    for k in result.frame[key].dropna():
        seen.setdefault(k, result.source)


def ingest(
    data_dir: str | Path,
    out_dir: str | Path,
    options: IngestOptions | None = None,
    taxonomy_path: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    map_files: Callable[[Callable, list], list] | None = None,
) -> dict:
    """Load, validate and store every source in ``data_dir``; return the ingest report.

    ``map_files(function, items) -> results`` (in order) loads the monthly files of a
    police.uk folder in parallel, e.g. :meth:`service.engine.Engine.map_files` on Dask.

    Raises
    ------
    DataError
        An input cannot be read at all (missing, empty, wrong format, bad encoding,
        missing column). Nothing is written in that case.
    """
    say = progress or (lambda _msg: None)
    catalogue = load_catalogue(Path(data_dir))
    ctx = IngestContext(taxonomy=load_taxonomy(taxonomy_path), options=options or IngestOptions(),
                        map_files=map_files)
    results: list[tuple[Source, LoadResult]] = []
    boundaries = [s for s in catalogue.sources if s.kind.startswith("boundary")]
    units: dict[str, gpd.GeoDataFrame] = {}
    for source in boundaries:
        say(f"boundary  {source.path.name}")
        res = _load(source, ctx)
        edition = res.table.removeprefix("units_")
        if edition in units:
            raise DataError(source.path, f"a second boundary layer for edition {edition}; name editions in catalogue.toml")
        units[edition] = res.frame
        ctx.codes[edition] = set(res.frame["code"])
        results.append((source, res))
    ctx.area = StudyArea(_study_area(units))
    if ctx.area.polygon is None:
        say("no boundaries: points are checked against Great Britain only")
    rest = sorted((s for s in catalogue.sources if not s.kind.startswith("boundary")), key=lambda s: ORDER.index(s.kind))
    seen_keys: dict[str, dict[str, str]] = {t: {} for t in TABLE_KEYS}
    for source in rest:
        say(f"{source.kind:<24} {source.path.name}")
        res = _load(source, ctx)
        if res is None:
            continue
        if res.table in TABLE_KEYS:
            _drop_known(res, TABLE_KEYS[res.table], seen_keys[res.table])
        results.append((source, res))
    tables = _combine(results)
    quality = _quality(tables, ctx)
    report = _report(catalogue, results, tables, quality, data_dir)
    _write(Path(out_dir), tables, results, report)
    return report


def data_hashes(report: dict) -> dict[str, str]:
    """{input file: sha256} from an ingest report, for model cards and run metadata."""
    return {f["path"]: f["sha256"] for item in report["inputs"] for f in item["files"]}


def _combine(results: list[tuple[Source, LoadResult]]) -> dict[str, pd.DataFrame]:
    grouped: dict[str, list[pd.DataFrame]] = {}
    for _, res in results:
        grouped.setdefault(res.table, []).append(res.frame)
    tables = {}
    for name, frames in grouped.items():
        frames = [f for f in frames if len(f)] or frames[:1]
        combined = pd.concat(frames, ignore_index=True)
        if any(isinstance(f, gpd.GeoDataFrame) for f in frames):
            combined = gpd.GeoDataFrame(combined, geometry="geometry", crs="EPSG:27700")
        tables[name] = combined
    return tables


def _quality(tables: dict[str, pd.DataFrame], ctx: IngestContext) -> list[dict]:
    """Checks on whole tables: gaps, thin months, units missing in months they normally have events."""
    flags = []
    ev = tables.get("events")
    if ev is not None and len(ev):
        gaps = crime.month_gaps(ev["month"])
        if gaps:
            flags.append({"table": "events", "check": "months_missing", "severity": "info",
                          "message": f"events have no rows for {len(gaps)} months inside their span "
                          f"({gaps[0]}..{gaps[-1]}); windows over the gap are not comparable", "months": gaps})
        thin = crime.thin_months(ev["month"])
        if thin:
            flags.append({"table": "events", "check": "thin_months", "severity": "warning",
                          "message": f"months with under 20% of the median month's rows: {thin}", "months": thin})
        flags.extend(_unit_month_holes(ev, ctx))
    ss = tables.get("stop_search")
    if ss is not None and len(ss):
        thin = crime.thin_months(ss["month"])
        gaps = crime.month_gaps(ss["month"])
        if thin:
            flags.append({"table": "stop_search", "check": "thin_months", "severity": "warning",
                          "message": f"stop and search months with under 20% of the median month's placed rows "
                          f"(missing coordinates or partial files): {thin}", "months": thin})
        if gaps:
            flags.append({"table": "stop_search", "check": "months_missing", "severity": "warning",
                          "message": f"no stop and search rows for {len(gaps)} months: {gaps}", "months": gaps})
    return flags


def _unit_month_holes(ev: pd.DataFrame, ctx: IngestContext, min_mean: float = 4.0, min_units: int = 3) -> list[dict]:
    """Months in which several usually busy LSOAs have no events at all: likely missing data.

    A unit averaging ``min_mean`` events a month has a Poisson chance of a zero month of
    about e^-4 (2%), so one such zero is noise; ``min_units`` or more in the same month,
    or a zero where the unit averages 10 or more, is a coverage gap worth a flag.
    """
    codes = ev["lsoa_code"].dropna()
    if codes.empty:
        return []
    counts = pd.crosstab(codes, ev.loc[codes.index, "month"])
    span = counts.columns
    if len(span) < 6:
        return []
    # Only months inside a run of consecutive months (ignore isolated single-month extracts).
    contiguous = [m for m in span if (m - pd.DateOffset(months=1) in span) or (m + pd.DateOffset(months=1) in span)]
    means = counts[contiguous].mean(axis=1)
    busy = counts.loc[means >= min_mean, contiguous]
    holes = busy == 0
    very_busy = (means[busy.index] >= 10).to_numpy()[:, None]
    notable = holes.sum(axis=0) >= min_units
    detail = {f"{m:%Y-%m}": sorted(holes.index[holes[m].to_numpy() & (notable[m] | very_busy[:, 0])].tolist())
              for m in holes.columns}
    detail = {m: v for m, v in detail.items() if v}
    if not detail:
        return []
    return [{"table": "events", "check": "unit_month_missing", "severity": "warning",
             "message": "usually busy areas with no events at all in a month (missing data for part of the area?): "
             + ", ".join(f"{m} ({len(v)} LSOAs)" for m, v in detail.items()), "holes": detail}]


def _report(catalogue: Catalogue, results, tables, quality, data_dir) -> dict:
    root = Path(data_dir).resolve()
    folder = fingerprint(root)
    inputs = []
    for source, res in results:
        files = []
        for f in res.files or [res.source]:
            path = Path(f.split("!", 1)[0])
            rel = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else None
            known = folder.get(rel, {}).get("sha256") if rel else None
            files.append({"path": f, "sha256": known or (sha256(path) if path.is_file() else None)})
        inputs.append({
            "source": source.name, "kind": source.kind, "table": res.table, "path": str(source.path),
            "files": files, "rows_read": res.rows_read, "accepted": res.accepted_rows, "rejected": len(res.rejects),
            "rejected_by_reason": res.rejects["reason"].value_counts().to_dict() if len(res.rejects) else {},
            "flags": res.flags, "notes": res.notes,
        })
    totals = {k: int(sum(i[k] for i in inputs)) for k in ("rows_read", "accepted", "rejected")}
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "store_version": STORE_VERSION,
        "data_dir": str(Path(data_dir)),
        "data_dir_resolved": str(root),
        "data_files": folder,
        "catalogue": {"name": catalogue.name, "origin": catalogue.origin},
        "inputs": inputs,
        "unrecognised": catalogue.unrecognised,
        "tables": {name: int(len(t)) for name, t in sorted(tables.items())},
        "quality_flags": quality + [dict(f, source=i["source"]) for i in inputs for f in i["flags"]],
        "totals": totals,
        "reconciled": all(i["rows_read"] == i["accepted"] + i["rejected"] for i in inputs),
    }


def _write(out: Path, tables, results, report) -> None:
    """Write into a temporary folder and swap it in, so a failed ingest never leaves a half store."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, frame in tables.items():
            frame = frame.copy()
            for col in frame.columns:
                if col != "geometry" and frame[col].dtype == object:
                    frame[col] = frame[col].astype("string")
            if isinstance(frame, gpd.GeoDataFrame):
                frame.to_parquet(tmp / f"{name}.parquet", index=False)
            else:
                pd.DataFrame(frame).to_parquet(tmp / f"{name}.parquet", index=False)
        rejects = concat_rejects([r.rejects for _, r in results])
        rejects = rejects.astype({c: "string" for c in REJECT_COLUMNS if c != "source_row"})
        rejects["source_row"] = rejects["source_row"].astype("int64")
        rejects.to_parquet(tmp / "rejects.parquet", index=False)
        (tmp / REPORT_NAME).write_text(json.dumps(report, indent=2, default=_json_default))
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return str(value)
