"""Ingest a data folder into a store: load every source, validate, reconcile, account, report.

``ingest(data_dir, out_dir)`` loads boundaries first (they define the study area
and the known area codes), then lookups, then everything else; resolves what spans
inputs (one event per police.uk crime reference; one station from several lists);
combines the results per canonical table; runs whole-table quality checks; and writes
the tables, ``rejects.parquet`` and ``ingest_report.json``. For every input,
``rows_read == accepted + rejected``, and every file found under ``data_dir`` is in the
report's ``files``: ingested, unrecognised (why) or damaged (why, rows recovered, rows lost).

A damaged recognised file (truncated, corrupt bytes, unreadable, over a size limit)
stops the ingest with one error naming every such file, unless
``IngestOptions.keep_going``: then its readable rows are loaded and the report says
what was lost. The output folder is checked for writing before any work; the store
is written into a hidden temporary folder swapped in at the end, and temporary
folders left by interrupted ingests are removed on the next start.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.editions import LSOA_EDITIONS, WARD_EDITIONS
from sources.catalogue import Catalogue, Source, load_catalogue
from sources.fingerprint import fingerprint, moved, sha256
from sources.loaders import areas, crime, partner, places
from sources.loaders.context import IngestContext, IngestOptions
from sources.loaders.points import StudyArea
from sources.readers import (
    DAMAGE_REASONS,
    REJECT_COLUMNS,
    TRUNCATED,
    DataError,
    LoadResult,
    concat_rejects,
)
from sources.store import PARTITIONED, REPORT_NAME, STORE_VERSION, write_partitioned
from sources.taxonomy import load_taxonomy

Loader = Callable[[Path, IngestContext], LoadResult]

LOADERS: dict[str, Loader] = {
    "lookup_lsoa11_lsoa21": areas.load_lookup_lsoa11_lsoa21,
    "lookup_lsoa21_ward22": areas.load_lookup_lsoa21_ward22,
    "policeuk_street": crime.load_policeuk_street,
    "policeuk_api": crime.load_policeuk_api,
    "policeuk_stop_search": crime.load_stop_search,
    "crime_records_by_lsoa": crime.load_incident_records,
    "met_ward_monthly": areas.load_met_area_monthly,
    "met_lsoa_monthly": areas.load_met_area_monthly,
    "met_lsoa_counts": areas.load_met_lsoa_annual,
    "met_dashboard": areas.load_met_dashboard,
    "imd": places.load_imd,
    "imd_indicators": lambda p, c: places.load_generic_lsoa_table(p, c, "imd_indicators", (r"LSOA code \(2011\)", r"lsoa11cd")),
    "imd_ward_summary": lambda p, c: places.load_generic_lsoa_table(p, c, "imd_ward", (r"Ward Code", r"ward_?code")),
    "population_mye": places.load_population_mye,
    "population_census_ts007a": places.load_population_census,
    "ethnicity_census": places.load_ethnicity_census,
    "stations": places.load_stations,
    "station_footfall": places.load_station_footfall,
    "bus_stops": places.load_bus_stops,
    "schools": places.load_schools,
    "schools_gias": places.load_schools,
    "schools_atlas": places.load_schools,
    "school_exclusions": places.load_school_exclusions,
    "parks": places.load_parks,
    "street_lighting": places.load_street_lighting,
    **{kind: (lambda p, c, k=kind: partner.load_partner(p, c, k)) for kind in partner.ROUTES},
}
# Keys that identify one thing across sources: a later source's repeat is rejected.
# (Stations are merged across lists instead: places.merge_stations.)
TABLE_KEYS = {"schools": "urn", "bus_stops": "stop_code"}
ORDER = list(LOADERS)
OWNER_FILE = ".svrisk-ingest-owner"


class DamagedInputs(DataError):
    """Recognised input files that are damaged; nothing was written."""

    def __init__(self, data_dir: Path, damaged: list[dict]):
        self.damaged = damaged
        parts = []
        for d in damaged:
            readable = f" ({d['rows_recovered']:,} rows readable)" if d.get("rows_recovered") else ""
            where = d["path"] + (f"!{d['member']}" if d.get("member") else "")
            parts.append(f"{where}: {d['why']}{readable}")
        super().__init__(data_dir, f"{len(damaged)} damaged input file{'s' if len(damaged) > 1 else ''}: "
                         + "; ".join(parts) + ". Nothing was written; fix or remove the file"
                         + ("s" if len(damaged) > 1 else "") + ", or rerun with --keep-going to load the "
                         "readable rows and report what was lost")


class StoreWriteError(DataError):
    """The store cannot be written (read-only folder, permissions, full disk)."""

    def __init__(self, out: Path, exc: OSError):
        code = exc.errno
        if code == errno.ENOSPC:
            why = "no space left on the device"
        elif code == errno.EDQUOT:
            why = "disk quota exceeded"
        elif code == errno.EROFS:
            why = "the folder is on a read-only file system"
        elif code in (errno.EACCES, errno.EPERM):
            why = f"permission denied writing in {Path(exc.filename).parent if exc.filename else out.parent}"
        else:
            why = exc.strerror or str(exc)
        super().__init__(out, f"cannot write the store: {why}; nothing was written (any partial copy was "
                         "removed). Free space, fix the permissions or choose another --out")


def _load(source: Source, ctx: IngestContext) -> LoadResult:
    if source.kind.startswith("boundary"):
        edition = source.options.get("edition") or (source.kind.split("_", 1)[1] if "_" in source.kind else None)
        return areas.load_boundary(source.path, ctx, edition=edition, layer=source.options.get("layer"),
                                   member=source.options.get("member"), crs=source.options.get("crs"))
    loader = LOADERS[source.kind]
    if source.kind.startswith("population") and source.options.get("year"):
        return loader(source.path, ctx, year=int(source.options["year"]))
    return loader(source.path, ctx)


def load_source(source: Source, ctx: IngestContext) -> LoadResult:
    """Load one catalogue source with the loader its kind maps to (``svrisk update`` checks downloads so)."""
    return _load(source, ctx)


def _study_area(units: dict[str, gpd.GeoDataFrame]) -> shapely.Geometry | None:
    for edition in ("borough", *LSOA_EDITIONS, *reversed(WARD_EDITIONS)):
        if edition in units:
            return shapely.union_all(units[edition].geometry.to_numpy())
    return None


def _drop_known(result: LoadResult, key: str, seen: dict[str, str]) -> None:
    """Move rows whose key an earlier source already gave into this result's rejects."""
    frame = result.frame
    if frame.empty or key not in frame:
        return
    dup = (frame[key].isin(seen.keys()) & frame[key].notna()).to_numpy()
    result.move_to_rejects(dup, "duplicate of an earlier source",
                           ("already loaded from " + frame[key][dup].map(seen).astype("string")).tolist())
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
        The data folder or its catalogue cannot be read, or the output cannot be used.
        Nothing is written in that case.
    DamagedInputs
        Recognised files are damaged and ``options.keep_going`` is off (nothing written).
    StoreWriteError
        The store cannot be written (read-only, permissions, full disk); nothing is left behind.
    """
    say = progress or (lambda _msg: None)
    options = options or IngestOptions()
    data_dir, out = Path(data_dir), Path(out_dir)
    _check_out(out, data_dir)
    for name in sweep_debris(out):
        say(f"removed {name} left by an interrupted ingest")
    staging = _staging(out)
    try:
        report = _ingest(data_dir, staging, out, options, taxonomy_path, say, map_files)
        try:
            _swap(staging, out)
        except OSError as exc:
            raise StoreWriteError(out, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _ingest(data_dir: Path, staging: Path, out: Path, options: IngestOptions, taxonomy_path, say, map_files) -> dict:
    catalogue = load_catalogue(data_dir, options.limits, tuple(Path(p) for p in options.allow_outside))
    if catalogue.damaged and not options.keep_going:  # cheap to know: stop before loading anything
        raise DamagedInputs(data_dir, [dict(d, rows_recovered=0) for d in catalogue.damaged])
    # Size, time and hash of every file before anything is loaded; checked again after (see below).
    folder = fingerprint(data_dir.resolve(), [Path(p) for p in options.allow_outside])
    ctx = IngestContext(taxonomy=load_taxonomy(taxonomy_path), options=options, map_files=map_files)
    results: list[tuple[Source, LoadResult]] = []
    failures: list[dict] = []  # sources that could not be loaded at all
    units: dict[str, gpd.GeoDataFrame] = {}
    for source in (s for s in catalogue.sources if s.kind.startswith("boundary")):
        say(f"boundary  {source.name}")
        res = _try(source, ctx, failures)
        if res is None:
            continue
        edition = res.table.removeprefix("units_")
        if edition in units:
            failures.append(_failure(source, f"a second boundary layer for edition {edition}; name editions in "
                                     "catalogue.toml"))
            continue
        units[edition] = res.frame
        ctx.codes[edition] = set(res.frame["code"])
        results.append((source, res))
    ctx.area = StudyArea(_study_area(units))
    if ctx.area.polygon is None:
        say("no boundaries: points are checked against Great Britain only")
    rest = sorted((s for s in catalogue.sources if not s.kind.startswith("boundary")), key=lambda s: ORDER.index(s.kind))
    for source in rest:
        say(f"{source.kind:<24} {source.name}")
        res = _try(source, ctx, failures)
        if res is not None:
            results.append((source, res))
    linked = crime.resolve_police_records([r for _, r in results if r.table == "events"])
    places.merge_stations([r for _, r in results if r.table == "stations"])
    release_flags = areas.resolve_releases([r for _, r in results])
    release_flags += areas.resolve_dashboard_refreshes([r for _, r in results])
    seen_keys: dict[str, dict[str, str]] = {t: {} for t in TABLE_KEYS}
    for _, res in results:
        if res.table in TABLE_KEYS:
            _drop_known(res, TABLE_KEYS[res.table], seen_keys[res.table])
    changed = moved(data_dir.resolve(), folder)
    if changed:  # rows read from other bytes than those hashed: nothing recorded is trustworthy
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise DataError(data_dir, f"{len(changed)} file{'s' if len(changed) > 1 else ''} changed while ingest read "
                        f"{'them' if len(changed) > 1 else 'it'} (size or modification time differ before and "
                        f"after): {shown}. Nothing was written; run again once the data folder is not being written")
    damaged = _damaged(catalogue, results, failures)
    if damaged and not options.keep_going:
        raise DamagedInputs(data_dir, damaged)
    tables = _combine(results)
    quality = release_flags + _quality(tables, ctx)
    report = _report(catalogue, results, tables, quality, data_dir, damaged, linked, options, folder)
    say(f"writing the store ({sum(len(t) for t in tables.values()):,} rows in {len(tables)} tables)")
    try:
        _write(staging, tables, results, report)
    except OSError as exc:
        raise StoreWriteError(out, exc) from None
    return report


def _try(source: Source, ctx: IngestContext, failures: list[dict]) -> LoadResult | None:
    try:
        return _load(source, ctx)
    except DataError as exc:
        failures.append(_failure(source, exc.reason if exc.source == str(source.path) else str(exc)))
        return None


def _failure(source: Source, why: str) -> dict:
    return {"path": str(source.path), "source": source.name, "why": why, "rows_recovered": 0}


def _rel(path: str, root: Path) -> str:
    """A file of the report (absolute, maybe ``file!member``) relative to the data folder."""
    file, _, member = path.partition("!")
    try:
        rel = str(Path(file).resolve().relative_to(root.resolve()))
    except ValueError:
        rel = os.path.relpath(file, root)
    return rel


def _damaged(catalogue: Catalogue, results: list[tuple[Source, LoadResult]], failures: list[dict]) -> list[dict]:
    """Every damaged file: unreadable when recognised or loaded, or with damaged rows (truncation,
    NUL or undecodable bytes); with the rows recovered from it and the rows lost."""
    root = catalogue.root
    out = [dict(d, rows_recovered=0, rows_lost="all") for d in catalogue.damaged]
    for f in failures:
        out.append(dict(f, path=_rel(f["path"], root), rows_lost="all"))
    for source, res in results:
        for f in res.failed:
            out.append({"path": _rel(f["path"], root), "member": f["path"].partition("!")[2] or None,
                        "source": source.name, "why": f["why"], "rows_recovered": 0, "rows_lost": "all"})
        rej = res.rejects
        bad = rej[rej["reason"].isin(DAMAGE_REASONS)]
        for file, rows in bad.groupby("source_file", sort=True):
            counts = rows["reason"].value_counts()
            why = "; ".join(f"{n:,} row{'s' if n > 1 else ''} rejected for {r}" if r != TRUNCATED
                            else rows.loc[rows["reason"] == TRUNCATED, "detail"].iloc[0] for r, n in counts.items())
            if "source_file" in res.frame:
                accepted = int((res.frame["source_file"] == file).sum())
            else:
                accepted = int(res.accepted_rows)
            rejected = int(((rej["source_file"] == file) & ~rej["reason"].isin(DAMAGE_REASONS)).sum())
            lost = int((rows["reason"] != TRUNCATED).sum())
            if TRUNCATED in counts:
                lost = "every row after the break" if not lost else f"{lost:,} rows and every row after the break"
            out.append({"path": _rel(file, root), "member": file.partition("!")[2] or None, "source": source.name,
                        "why": why, "rows_recovered": accepted + rejected, "rows_accepted": accepted,
                        "rows_lost": lost})
    return out


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
    counts = unit_month_counts(ev["lsoa_code"], ev["month"])
    if counts.empty:
        return []
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


def unit_month_counts(unit: pd.Series, month: pd.Series) -> pd.DataFrame:
    """Events of each unit (rows, sorted) in each month (columns, sorted), rows with no unit or
    month left out: ``pd.crosstab(unit, month)``, counted as integer codes (0.1 s for London's
    2M events, where the crosstab took 2 s)."""
    known = (unit.notna() & month.notna()).to_numpy()
    u, units = pd.factorize(unit[known], sort=True)
    m, months = pd.factorize(month[known], sort=True)
    cells = np.bincount(u * len(months) + m, minlength=len(units) * len(months))
    return pd.DataFrame(cells.reshape(len(units), len(months)), index=pd.Index(units, name=unit.name),
                        columns=pd.Index(months, name=month.name))


def _files(catalogue: Catalogue, damaged: list[dict]) -> list[dict]:
    """Every file found, with what became of it."""
    broken = {}
    for d in damaged:
        broken.setdefault(d["path"], d)
    out = []
    for path, entry in sorted(catalogue.files.items()):
        status = entry["status"]
        if path in broken:
            d = broken[path]
            out.append({"path": path, "status": "damaged", "why": d["why"], "rows_recovered": d["rows_recovered"],
                        "rows_lost": d["rows_lost"], **({"source": d["source"]} if d.get("source") else {})})
        elif status in ("source", "part", "catalogue"):
            item = {"path": path, "status": "ingested"}
            item.update({k: v for k, v in entry.items() if k in ("source", "part_of")})
            if status == "catalogue":
                item["as"] = "catalogue"
            out.append(item)
        else:
            out.append({"path": path, "status": status, "why": entry.get("why", "")})
    return out


def _report(catalogue: Catalogue, results, tables, quality, data_dir, damaged, linked, options, folder) -> dict:
    """The ingest report; ``folder`` is the data folder's :func:`fingerprint` taken before loading."""
    root = Path(data_dir).resolve()
    inputs = []
    for source, res in results:
        files = []
        for f in res.files or [res.source]:
            path = Path(f.split("!", 1)[0])
            real = path.resolve()
            rel = real.relative_to(root).as_posix() if real.is_relative_to(root) else None
            known = folder.get(rel, {}).get("sha256") if rel else None
            files.append({"path": f, "sha256": known or (sha256(path) if path.is_file() else None)})
        inputs.append({
            "source": source.name, "kind": source.kind, "table": res.table, "path": str(source.path),
            "files": files, "rows_read": res.rows_read, "accepted": res.accepted_rows, "rejected": len(res.rejects),
            "rejected_by_reason": res.rejects["reason"].value_counts().to_dict() if len(res.rejects) else {},
            "flags": res.flags, "notes": res.notes,
        })
    totals = {k: int(sum(i[k] for i in inputs)) for k in ("rows_read", "accepted", "rejected")}
    files = _files(catalogue, damaged)
    accounted = {"found": len(files), **{s: sum(f["status"] == s for f in files)
                                         for s in ("ingested", "unrecognised", "damaged")}}
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "store_version": STORE_VERSION,
        "data_dir": str(Path(data_dir)),
        "data_dir_resolved": str(root),
        "data_files": folder,
        "catalogue": {"name": catalogue.name, "origin": catalogue.origin},
        "inputs": inputs,
        "files": files,
        "accounted": accounted,
        "unrecognised": catalogue.unrecognised,
        "damaged": damaged,
        "keep_going": options.keep_going,
        "linked_records": linked,
        "limits": {"max_file_mb": options.max_file_mb, "max_table_mb": options.max_table_mb,
                   "max_field_chars": options.max_field_chars},
        "tables": {name: int(len(t)) for name, t in sorted(tables.items())},
        "quality_flags": quality + [dict(f, source=i["source"]) for i in inputs for f in i["flags"]],
        "totals": totals,
        "reconciled": all(i["rows_read"] == i["accepted"] + i["rejected"] for i in inputs),
    }


# ---------------------------------------------------------------------------- the store folder


def _check_out(out: Path, data_dir: Path) -> None:
    """Refuse an output that is not ours to replace, before any work."""
    if out.exists() and not out.is_dir():
        raise DataError(out, "exists and is not a folder; choose another store folder (--out)")
    if out.is_dir() and not (out / REPORT_NAME).is_file():
        try:
            occupied = any(out.iterdir())
        except OSError as exc:
            raise StoreWriteError(out, exc) from None
        if occupied:
            raise DataError(out, f"exists, is not empty and is not an svrisk store (no {REPORT_NAME}); it would be "
                            "replaced, so nothing was done: choose another store folder (--out)")
    if data_dir.exists():
        data_r, out_r = data_dir.resolve(), out.resolve()
        if data_r == out_r or data_r.is_relative_to(out_r):
            raise DataError(out, f"the store folder would replace the data folder {data_dir}; choose a store "
                            "folder outside it (--out)")


def _staging(out: Path) -> Path:
    """The hidden folder the store is written into, made now: an unwritable output fails before any work."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        (staging / OWNER_FILE).write_text(f"{os.getpid()} {socket.gethostname()}\n")
    except OSError as exc:
        raise StoreWriteError(out, exc) from None
    return staging


def _owner_alive(folder: Path) -> bool:
    try:
        pid, host = (folder / OWNER_FILE).read_text().split()[:2]
        age = time.time() - folder.stat().st_mtime
    except (OSError, ValueError):
        try:
            return time.time() - folder.stat().st_mtime < 600  # no owner written: older folders are debris
        except OSError:
            return False
    if host != socket.gethostname():
        return age < 86_400  # another machine's ingest on a shared disk: give it a day
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def sweep_debris(out: Path) -> list[str]:
    """Remove temporary folders that interrupted ingests into ``out`` left behind; return their names.

    A folder whose owning process is still running is left alone. If a previous ingest
    died between moving the old store aside and moving the new one in, the old store is
    put back.
    """
    parent = out.parent
    if not parent.is_dir():
        return []
    removed = []
    old = parent / f".{out.name}.old"
    if old.is_dir() and not out.exists() and (old / REPORT_NAME).is_file():
        os.replace(old, out)
        removed.append(f"{old.name} (restored as {out.name})")
    for p in sorted(parent.glob(f".{out.name}.*")):
        if p.is_dir() and (p == old or not _owner_alive(p)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    return removed


def _swap(staging: Path, out: Path) -> None:
    (staging / OWNER_FILE).unlink(missing_ok=True)
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old)
    else:
        os.replace(staging, out)


def _write(folder: Path, tables, results, report) -> None:
    """Write the tables, the rejects and the report into ``folder`` (the staging folder)."""
    for name, frame in tables.items():
        text = {col: "string" for col in frame.columns if col != "geometry" and frame[col].dtype == object}
        if text:  # a new frame; the tables themselves are left as they are (and not copied when all typed)
            frame = frame.astype(text)
        if name in PARTITIONED and isinstance(frame, gpd.GeoDataFrame):
            report.setdefault("layout", {})[name] = write_partitioned(frame, folder / f"{name}.parquet")
        elif isinstance(frame, gpd.GeoDataFrame):
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            pd.DataFrame(frame).to_parquet(folder / f"{name}.parquet", index=False)
    rejects = concat_rejects([r.rejects for _, r in results])
    rejects = rejects.astype({c: "string" for c in REJECT_COLUMNS if c != "source_row"})
    rejects["source_row"] = rejects["source_row"].astype("int64")
    rejects.to_parquet(folder / "rejects.parquet", index=False)
    (folder / REPORT_NAME).write_text(json.dumps(report, indent=2, default=_json_default))


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return str(value)
