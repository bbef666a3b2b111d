"""Loaders for police.uk crime and stop-and-search records, and the rule for linked records.

Formats read:

* police.uk bulk street-level CSV (``Crime ID, Month, Reported by, Falls within,
  Longitude, Latitude, Location, LSOA code, LSOA name, Crime type, Last outcome
  category, Context``), as one file, a folder of monthly files
  (``YYYY-MM/YYYY-MM-<force>-street.csv``) or the downloadable archive zip;
* police.uk API ``crimes-street`` output flattened to CSV (``id, persistent_id,
  month, category, latitude, longitude, street_name, outcome_category, ...``;
  categories are slugs such as ``violent-crime``);
* police.uk crime records without coordinates (``Crime ID, Month, LSOA code, Crime type``),
  counted by LSOA;
* police.uk stop-and-search CSV (bulk layout, with or without extra columns).

Each file is loaded by a pure function of (file, context); which records are counted
across files is decided afterwards by :func:`resolve_police_records` (see the
taxonomy module for the rule and why).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import WORKING_CRS
from sources.confine import walk
from sources.loaders.areas import _edition_or_reject
from sources.loaders.context import IngestContext
from sources.loaders.points import file_rules_fire, judge_grid_columns, point_table
from sources.readers import (
    MB,
    CsvFile,
    DataError,
    Limits,
    LoadResult,
    PlainRows,
    RawTable,
    RowChecks,
    check_month,
    concat_rejects,
    empty_rejects,
    finish_csv,
    merge_counted_flags,
    missing_ids,
    open_csv,
    parse_month,
    parse_plain,
    parse_rows,
    per_distinct,
    plain_rows,
    read_csv_raw,
    split_csv,
    zip_names,
)

STREET_COLUMNS = ["Crime ID", "Month", "Longitude", "Latitude", "Crime type"]
API_COLUMNS = ["id", "month", "category", "latitude", "longitude"]
RECORD_COLUMNS = ["Crime ID", "Month", "LSOA code", "Crime type"]
STOP_SEARCH_COLUMNS = ["Type", "Date", "Latitude", "Longitude", "Object of search"]
MONTHLY_STREET = re.compile(r"(\d{4}-\d{2})-[\w.-]+-street\.csv$")
MONTHLY_STOP = re.compile(r"(\d{4}-\d{2})-[\w.-]+-stop-and-search\.csv$")
#: police.uk publishes street-level crime and stop and search from December 2010: an earlier month is not data.
POLICEUK_FIRST_MONTH = "2010-12"
DUPLICATE = "duplicate record"
LINKED = "linked record of one crime"
POLICEUK_COORDS = ("Longitude", "Latitude", "EPSG:4326")
API_COORDS = ("longitude", "latitude", "EPSG:4326")
EVENT_COLUMNS = ["event_id", "crime_id", "month", "category", "group", "serious_violence", "police_generated",
                 "harm", "lsoa_code", "location", "outcome", "source_file", "source_row"]


def list_members(path: Path, pattern: re.Pattern, limits: Limits | None = None) -> list[tuple[Path, str | None]]:
    """The monthly CSVs behind ``path``: itself, the matching files in a folder tree, or zip members."""
    limits = limits or Limits()
    if path.is_dir():
        found = [e.path for e in walk(path) if e.problem is None]  # no link out, no named pipe (confine.walk)
        files = sorted(p for p in found if pattern.search(p.name))
        zips = sorted(p for p in found if p.suffix.lower() == ".zip")
        out: list[tuple[Path, str | None]] = [(p, None) for p in files]
        for z in zips:
            out.extend(list_members(z, pattern, limits))
        return out
    if path.suffix.lower() == ".zip":
        names, _ = zip_names(path, limits)
        return [(path, n) for n in sorted(n for n in names if pattern.search(n.rsplit("/", 1)[-1]))]
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


def _check_month(ctx: IngestContext, checks: RowChecks, month_raw: pd.Series) -> pd.Series:
    return check_month(checks, month_raw, today=ctx.today, first=POLICEUK_FIRST_MONTH, source_name="police.uk")


def _month_text(month: pd.Series) -> pd.Series:
    return month.dt.strftime("%Y-%m")


def _row_hash(frame: pd.DataFrame, missing: pd.Series) -> pd.Series:
    """A 64-bit fingerprint of each row's values (UInt64; NA where ``missing``): two identical rows are
    the same record written twice."""
    cols = [c for c in frame.columns if not c.startswith("_")]
    keys = pd.util.hash_pandas_object(frame[cols], index=False).to_numpy()
    return pd.Series(pd.arrays.IntegerArray(keys, missing.to_numpy(dtype=bool)), index=frame.index)


def text_keys(values: pd.Series) -> pd.Series:
    """A 64-bit key of each text (UInt64; NA where the text is NA): equal texts have equal keys.

    Made where a file is read (on a worker), so that the calling process numbers London's 2M
    crime references by factorizing integers (0.2 s), not the 64-character texts (1.1-1.4 s).
    Two different texts share a key with odds of about 1 in 2^64 a pair; :func:`reference_codes`
    checks the texts, and numbers them from the texts when two do."""
    missing = values.isna().to_numpy()
    keys = pd.util.hash_pandas_object(values.fillna(""), index=False, categorize=False).to_numpy()
    return pd.Series(pd.arrays.IntegerArray(keys, missing), index=values.index)


# ---------------------------------------------------------------------------- linked records


def _repeats(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For integer codes in order (-1 = none): (True where a code appeared earlier, position of each code's first)."""
    valid = codes >= 0
    pos = np.flatnonzero(valid)
    first_of = np.full(int(codes.max(initial=-1)) + 1, -1, dtype=np.int64)
    repeat = valid.copy()
    if len(pos):
        uniq, first = np.unique(codes[pos], return_index=True)
        first_of[uniq] = pos[first]
        repeat[pos[first]] = False
    return repeat, first_of


def _codes(values: pd.Series) -> np.ndarray:
    """The integer code of each value, numbered in order of first appearance, -1 for NA (``pd.factorize``)."""
    return pd.factorize(values, use_na_sentinel=True)[0]


def reference_codes(table: pd.DataFrame) -> np.ndarray:
    """The integer codes of ``table["crime_id"]`` (:func:`_codes`): from ``crime_key``
    (:func:`text_keys`) when the table has it, after checking that every row sharing a key with
    an earlier row has that row's text; from the texts themselves otherwise."""
    if "crime_key" not in table:
        return _codes(table["crime_id"])
    codes = _codes(table["crime_key"])
    if len(codes):
        # codes are numbered in order of first appearance: a code's first row is where the running top rises
        first = codes > np.concatenate(([-1], np.maximum.accumulate(codes)[:-1]))
        later = np.flatnonzero((codes >= 0) & ~first)
        if len(later) and not _same_text(table["crime_id"], later, np.flatnonzero(first)[codes[later]]):
            return _codes(table["crime_id"])  # two references share a 64-bit key
    return codes


def _same_text(text: pd.Series, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``text`` at positions ``a`` equals ``text`` at positions ``b``, pairwise (no NA)."""
    return bool((text.iloc[a].to_numpy() == text.iloc[b].to_numpy()).all())


def rank_records(table: pd.DataFrame, crime_codes: np.ndarray | None = None) -> pd.DataFrame:
    """Which police.uk records are counted: one per record, and one per crime reference.

    ``table`` lists records in load order with ``record`` (an identity of the record: the
    API ``id``, or the row's fingerprint in bulk CSVs; NA when unknown), ``crime_id`` (the
    crime reference: API ``persistent_id`` / bulk ``Crime ID``; NA for ASB),
    ``serious_violence``, ``harm``, ``category``, ``source_file`` and ``source_row``.

    A repeated ``record`` is a duplicate. Records sharing a ``crime_id`` are linked records
    of one crime, counted once, as the most serious of them: serious violence first, then
    the higher harm weight, then the one loaded first. So a lower-harm record never
    displaces a serious-violence record of the same reference, whatever the file order.

    ``crime_codes``: the integer codes of ``table["crime_id"]`` (:func:`reference_codes`), when the
    caller has them.

    Returns a frame indexed like ``table`` with ``reason`` (NA where counted) and ``detail``.
    """
    n = len(table)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    if n:
        sv = table["serious_violence"].to_numpy(dtype=bool)
        harm = table["harm"].to_numpy(dtype="float64")
        order = np.lexsort((np.arange(n), -harm, -sv.astype(np.int8)))  # ranked: most serious first

        def text(column: str, at: np.ndarray) -> list[str]:  # only the rows a detail names: not 2M strings
            return [str(v) for v in table[column].iloc[at].tolist()]

        record = _codes(table["record"])[order]
        dup, first_of = _repeats(record)
        p = np.flatnonzero(dup)
        i, k = order[p], order[first_of[record[p]]]
        reason[i] = DUPLICATE
        detail[i] = [f"same record as {f} row {r}" for f, r in zip(text("source_file", k), text("source_row", k),
                                                                     strict=True)]
        crime = np.where(dup, -1, (crime_codes if crime_codes is not None else reference_codes(table))[order])
        linked, first_of = _repeats(crime)
        p = np.flatnonzero(linked)
        i, k = order[p], order[first_of[crime[p]]]
        reason[i] = LINKED
        detail[i] = [f"crime reference {ref[:12]}… is counted once, as {c} from {f} row {r}" for ref, c, f, r in
                     zip(text("crime_id", i), text("category", k), text("source_file", k), text("source_row", k),
                         strict=True)]
    return pd.DataFrame({"reason": pd.array(reason, dtype="string"), "detail": pd.array(detail, dtype="string")},
                        index=table.index)


def linked_summary(table: pd.DataFrame, decision: pd.DataFrame, crime_codes: np.ndarray | None = None) -> dict:
    """What the rule did: references with several records, and events by group under this rule
    and under "keep the first record of a reference" (the rule before it), for comparison.
    ``crime_codes``: as for :func:`rank_records`."""
    why = decision["reason"].to_numpy(dtype=object, na_value=None)
    live = why != DUPLICATE
    counted = pd.isna(decision["reason"]).to_numpy()
    crime = np.where(live, crime_codes if crime_codes is not None else reference_codes(table), -1)
    later, first_of = _repeats(crime)  # in load order: the first record of each reference, and the rest
    first_rule = live & ~later
    # groups as integer codes: counting them is a bincount, not a sort of 2M strings (4 s for London)
    group, names = pd.factorize(table["group"].astype(str), sort=True)
    sv = table["serious_violence"].to_numpy(dtype=bool)
    kept_refs = counted & (crime >= 0)
    first_row = first_of[crime[kept_refs]]
    sizes = np.bincount(crime[crime >= 0]) if (crime >= 0).any() else np.zeros(0, dtype=int)

    def by_group(mask: np.ndarray) -> dict[str, int]:
        counts = np.bincount(group[mask], minlength=len(names))
        return {str(k): int(v) for k, v in zip(names, counts, strict=True) if v}

    return {
        "rule": "one event per crime reference (persistent_id / Crime ID), counted as its most serious record",
        "references_with_several_records": int((sizes > 1).sum()),
        "linked_rows": int((why == LINKED).sum()),
        "duplicate_rows": int((why == DUPLICATE).sum()),
        "references_counted_as_a_record_other_than_their_first": int((group[kept_refs] != group[first_row]).sum()),
        "serious_violence_references_whose_first_record_is_not": int((sv[kept_refs] & ~sv[first_row]).sum()),
        "events_by_group": {"most_serious_record": by_group(counted), "first_record": by_group(first_rule)},
    }


def resolve_police_records(results: list[LoadResult]) -> dict:
    """Apply :func:`rank_records` across every events input (in load order); move the records
    not counted to each input's rejects, with their reason, and return :func:`linked_summary`."""
    if not results:
        return {}
    cols = ["_record", "_crime_key", "crime_id", "serious_violence", "harm", "category", "group", "source_file",
            "source_row"]
    parts = [r.frame[cols].assign(_input=i).rename(columns={"_record": "record", "_crime_key": "crime_key"})
             for i, r in enumerate(results)]
    table = pd.concat(parts, ignore_index=True)
    crime_codes = reference_codes(table)  # once, for both
    decision = rank_records(table, crime_codes)
    summary = linked_summary(table, decision, crime_codes)
    start = 0
    for i, res in enumerate(results):
        n = len(res.frame)
        dec = decision.iloc[start:start + n].reset_index(drop=True)
        start += n
        for reason in (DUPLICATE, LINKED):
            hit = (dec["reason"] == reason).fillna(False).to_numpy(dtype=bool)
            res.move_to_rejects(hit, reason, dec["detail"].to_numpy()[hit])
            dec = dec[~hit].reset_index(drop=True)
        res.frame = res.frame.drop(columns=["_record", "_crime_key"])
        moved = len(res.rejects[res.rejects["reason"] == LINKED])
        if moved:
            res.flag("linked_records", f"{res.source}: {moved} records share a crime reference with a record "
                     "counted instead (one event per crime, counted as its most serious record)",
                     severity="info", rows=moved)
        if i == 0:
            res.notes.append("police.uk records: " + summary["rule"])
    return summary


# ---------------------------------------------------------------------------- monthly files


BATCH_FILE_BYTES = 1 * MB
"""A monthly file up to this size is checked in one table with its small neighbours (:func:`_load_batch`)."""
BATCH_BYTES = 16 * MB
"""Most bytes of files checked in one table."""


def _failed_file(source: str, exc: DataError) -> tuple:
    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WORKING_CRS), crs=WORKING_CRS)
    return empty, [empty_rejects()], 0, [source], [], [{"path": source, "why": exc.reason}]


def _load_one(member, required, kind, ctx: IngestContext, columns_for, pieces: bool = False) -> tuple:
    """Read and validate one monthly file: (frame, rejects, rows_read, [source], flags, failed).

    Pure: the result depends on the file and ``ctx`` only, so files can be mapped in any
    order or in parallel. A file that cannot be read at all comes back empty, in ``failed``.
    ``pieces``: a long file is checked in pieces on ``ctx``'s mapper (see :func:`_load_file`).
    """
    path, name = member
    try:
        return _load_file(member, required, kind, ctx, columns_for, POLICEUK_COORDS, pieces)
    except DataError as exc:
        return _failed_file(f"{path}!{name}" if name else str(path), exc)


def _load_file(member, required, kind, ctx: IngestContext, columns_for, coords, pieces: bool = False) -> tuple:
    """:func:`_load_one` of a readable file (else :class:`DataError`); with ``pieces`` (and a mapper in
    ``ctx``) a long file is parsed and checked in pieces on the mapper's workers."""
    path, name = member
    f = open_csv(path, name, required=required, kind=kind, limits=ctx.limits)
    split = split_csv(f, int(ctx.options.piece_mb * MB)) if pieces and ctx.map_files is not None else None
    if split is not None:
        done = _load_pieces(f, split, ctx, columns_for, coords)
        if done is not None:
            return done
    return _check_file(f, ctx, columns_for, coords)


def _check_file(f: CsvFile, ctx: IngestContext, columns_for, coords) -> tuple:
    """:func:`_load_file` of the opened file ``f``, parsed and checked whole."""
    rows = parse_rows(f, f.text, ctx.limits)
    raw = finish_csv(f, rows.frame, [rows.bad], [rows.flags], rows.total)
    flags: list[dict] = list(raw.flags)
    checks = RowChecks(raw.frame, raw.source)
    columns = columns_for(raw, checks, flags, ctx)
    gdf, rej = point_table(raw, checks, columns, ctx.area, ctx.options.point_tolerance_m, coords=coords, flags=flags)
    return gdf, [raw.malformed, rej], raw.rows_read, [raw.source], flags, []


def _load_batch(members, required, kind, ctx: IngestContext, columns_for) -> list[tuple]:
    """:func:`_load_one` of each of ``members`` (small files), in order; runs of plain files with one
    header (:func:`sources.readers.parse_plain`) are checked as one table, one tuple for the run.

    The per-file cost of checking a table (a few dozen pandas steps, ~60 ms) is paid once per
    run instead of once per file: 5,000 one-row files took 5 minutes. The result is the same as
    loading the files one by one: every check is of a row, save the rules of a whole file, which
    are counted per file (:func:`_check_run`).
    """
    done: list[tuple[int, tuple]] = []
    run: list[tuple[int, CsvFile, PlainRows]] = []
    for i, (path, name) in enumerate(members):
        try:
            f = open_csv(path, name, required=required, kind=kind, limits=ctx.limits)
        except DataError as exc:
            done.append((i, _failed_file(f"{path}!{name}" if name else str(path), exc)))
            continue
        rows = parse_plain(f, ctx.limits)
        if run and (rows is None or run[-1][0] != i - 1 or run[-1][1].header != f.header):
            done.extend(_check_run(run, ctx, columns_for, POLICEUK_COORDS))
            run = []
        if rows is None:
            done.append((i, _check_file(f, ctx, columns_for, POLICEUK_COORDS)))
        else:
            run.append((i, f, rows))
    if run:
        done.extend(_check_run(run, ctx, columns_for, POLICEUK_COORDS))
    return [result for _, result in sorted(done, key=lambda d: d[0])]


def _check_run(run: list, ctx: IngestContext, columns_for, coords) -> list[tuple[int, tuple]]:
    """Check a run of plain files with one header ((index, file, rows) each) as one table:
    [(index of its first file, result)]; a file a rule of the whole file fires for (most rows
    swapped, decimal commas) is checked alone instead, with the rule, and the rest again."""
    files = [f for _, f, _ in run]
    if len(run) == 1:
        return [(run[0][0], _check_file(files[0], ctx, columns_for, coords))]
    frame = plain_rows(files, [rows for _, _, rows in run])
    sizes = [rows.rows for _, _, rows in run]
    raw = RawTable(frame, empty_rejects(), "utf-8", f"{files[0].source} and {len(files) - 1} more files", [])
    flags: list[dict] = []
    checks = RowChecks(frame, frame["_source"])
    columns = columns_for(raw, checks, flags, ctx)
    votes: dict = {"file": np.repeat(np.arange(len(files)), sizes), "files": len(files)}
    gdf, rej = point_table(raw, checks, columns, ctx.area, ctx.options.point_tolerance_m, coords=coords,
                           flags=flags, votes=votes)
    keys = ("swapped", "candidates", "commas", "present")
    fired = [file_rules_fire({k: int(votes[k][j]) for k in keys if k in votes}) for j in range(len(files))]
    if any(fired):
        out, rest = [], []
        for item, fire in zip(run, fired, strict=True):
            if fire:
                out.append((item[0], _check_file(item[1], ctx, columns_for, coords)))
            else:
                rest.append(item)
        segment: list = []
        for item in rest:  # contiguous runs only: results keep the files' order
            if segment and segment[-1][0] != item[0] - 1:
                out.extend(_check_run(segment, ctx, columns_for, coords))
                segment = []
            segment.append(item)
        if segment:
            out.extend(_check_run(segment, ctx, columns_for, coords))
        return out
    per_file: dict[str, list[dict]] = {f.source: [] for f in files}
    loose = []
    for flag in flags:
        (per_file[flag["file"]] if flag.get("file") in per_file else loose).append(flag)
    grid = votes.get("grid")
    if grid is not None:
        ends = np.cumsum([0, *sizes])
        for j, f in enumerate(files):
            part = (grid[0], *(g[ends[j]:ends[j + 1]] for g in grid[1:]))
            per_file[f.source].extend(judge_grid_columns(part, f.source))
    ordered = [flag for f in files for flag in per_file[f.source]] + loose
    return [(run[0][0], (gdf, [rej], len(frame), [f.source for f in files], ordered, []))]


def _load_pieces(f: CsvFile, split: list, ctx: IngestContext, columns_for, coords) -> tuple | None:
    """:func:`_load_file` of ``f`` from its pieces checked on the mapper's workers, or None where the
    pieces cannot stand for the whole file (a piece parsed to another number of rows than its
    lines; a rule of the whole file fired): it is then checked whole, here."""
    task = functools.partial(_load_piece, columns_for=columns_for, coords=coords)
    parts = ctx.map_files(task, split, (f.without_text(), _without_mapper(ctx)), nbytes=len(f.text))
    if any(p is None for p in parts):
        return None
    votes = {k: sum(p["votes"].get(k, 0) for p in parts) for k in ("swapped", "candidates", "commas", "present")}
    if file_rules_fire(votes):
        return None
    raw = finish_csv(f, pd.DataFrame(), [p["bad"] for p in parts], [p["read_flags"] for p in parts],
                     sum(p["total"] for p in parts))
    flags = raw.flags + merge_counted_flags([p["flags"] for p in parts], _counted_flags(f.source))
    grids = [p["votes"].get("grid") for p in parts]
    if grids[0] is not None:
        labelled = grids[0][0]
        joined = (labelled, *(np.concatenate([g[i] for g in grids]) for i in range(1, 5)))
        flags.extend(judge_grid_columns(joined, f.source))
    kept = [p["frame"] for p in parts if len(p["frame"])] or [parts[0]["frame"]]
    frame = gpd.GeoDataFrame(pd.concat(kept, ignore_index=True), geometry="geometry", crs=WORKING_CRS)
    rows_read = sum(p["rows"] for p in parts) + len(raw.malformed)
    return frame, [raw.malformed, *(p["rejects"] for p in parts)], rows_read, [f.source], flags, []


def _load_piece(piece: tuple[str, int, int], f: CsvFile, ctx: IngestContext, columns_for, coords) -> dict | None:
    """Parse and check one piece of a file (the task a mapper runs); None if it parsed to another
    number of rows than it has lines."""
    text, before, lines = piece
    rows = parse_rows(f, text, ctx.limits, first_row=before)
    if rows.total != lines:
        return None
    raw = RawTable(rows.frame, empty_rejects(), f.encoding, f.source, [])
    flags: list[dict] = []
    votes: dict = {}
    checks = RowChecks(raw.frame, raw.source)
    columns = columns_for(raw, checks, flags, ctx)
    gdf, rej = point_table(raw, checks, columns, ctx.area, ctx.options.point_tolerance_m, coords=coords,
                           flags=flags, votes=votes)
    return {"frame": gdf, "rejects": rej, "bad": rows.bad, "read_flags": rows.flags, "total": rows.total,
            "rows": len(rows.frame), "flags": flags, "votes": votes}


def _load_group(group, ctx: IngestContext, required, kind, columns_for) -> list[tuple]:
    """:func:`_load_batch` of a group of files with the context second: the task a mapper runs (the
    context is sent to each worker once, not with every group)."""
    if len(group) == 1:
        return [_load_one(group[0], required, kind, ctx, columns_for)]
    return _load_batch(group, required, kind, ctx, columns_for)


MAPPED_GROUPS = 8
"""With a mapper, the small files go in at least this many groups (when there are as many files),
so the workers of a machine of up to 8 cores each get some."""


def _groups(members, sizes: list[int], alone: list[bool], parts: int = 1) -> list[list]:
    """``members`` in order, in groups: consecutive files of at most :data:`BATCH_FILE_BYTES` together
    up to :data:`BATCH_BYTES` and to a ``parts``-th of the small files; larger files, and those
    marked ``alone``, each by itself."""
    small = sum(1 for size, single in zip(sizes, alone, strict=True) if not single and size <= BATCH_FILE_BYTES)
    most = max(1, -(-small // parts))  # files in one group
    groups: list[list] = []
    held: int | None = None  # bytes in the open group of small files; None: no group open
    for member, size, single in zip(members, sizes, alone, strict=True):
        if single or size > BATCH_FILE_BYTES:
            groups.append([member])
            held = None
            continue
        if held is None or held + size > BATCH_BYTES or len(groups[-1]) >= most:
            groups.append([])
            held = 0
        groups[-1].append(member)
        held += size
    return groups


def _load_members(members, required, kind, ctx: IngestContext, columns_for) -> tuple[list, list, int, list, list, list]:
    """Read each monthly file, build its columns with ``columns_for(raw, checks, flags, ctx)`` and
    validate its coordinates; return (frames, rejects, rows_read, files, flags, failed).

    Small files are checked together (:func:`_load_batch`). With ``ctx.map_files`` (the
    engine's map: a process pool or a Dask cluster) the groups of files are loaded in
    parallel, and a file longer than two pieces (``piece_mb``) is loaded here in pieces on
    the workers; the results are the same as loading them one after another, because each
    load is pure. ``columns_for`` must then be a module-level function (it travels to the
    workers by name).
    """
    sizes = member_sizes(members)
    mapped = ctx.map_files is not None
    long = [mapped and ctx.options.piece_mb > 0 and s > 2 * ctx.options.piece_mb * MB for s in sizes]
    groups = _groups(members, sizes, long, MAPPED_GROUPS if mapped else 1)
    if not mapped:
        results = [r for g in groups for r in _load_group(g, ctx, required, kind, columns_for)]
    else:
        big = {m for m, b in zip(members, long, strict=True) if b}
        task = functools.partial(_load_group, required=required, kind=kind, columns_for=columns_for)
        rest = [g for g in groups if g[0] not in big]
        loaded = iter(ctx.map_files(task, rest, (_without_mapper(ctx),),
                                    nbytes=sum(s for s, b in zip(sizes, long, strict=True) if not b)))
        results = [r for g in groups for r in ([_load_one(g[0], required, kind, ctx, columns_for, pieces=True)]
                                               if g[0] in big else next(loaded))]
    frames, rejects, flags, files, failed = [], [], [], [], []
    rows_read = 0
    for frame, rej, n, sources, file_flags, file_failed in results:
        frames.append(frame)
        rejects.extend(rej)
        rows_read += n
        files.extend(sources)
        flags.extend(file_flags)
        failed.extend(file_failed)
    return frames, rejects, rows_read, files, flags, failed


def members_bytes(members) -> int:
    """Bytes of the monthly files (uncompressed size of zip members; unreadable ones count 0)."""
    return sum(member_sizes(members))


def member_sizes(members) -> list[int]:
    """Bytes of each monthly file (uncompressed: of a zip member, or from a gzip file's trailer; 0 if unreadable)."""
    import zipfile

    sizes, zips = [], {}
    for path, member in members:
        size = 0
        try:
            if member is None and str(path).lower().endswith(".gz"):
                with open(path, "rb") as fh:  # gzip's trailer: the uncompressed size (mod 4 GB)
                    fh.seek(-4, 2)
                    size = max(int.from_bytes(fh.read(4), "little"), Path(path).stat().st_size)
            elif member is None:
                size = Path(path).stat().st_size
            else:
                if path not in zips:
                    with zipfile.ZipFile(path) as z:
                        zips[path] = {i.filename: i.file_size for i in z.infolist()}
                size = zips[path].get(member, 0)
        except (OSError, zipfile.BadZipFile):
            zips.setdefault(path, {})
        sizes.append(size)
    return sizes


def _without_mapper(ctx: IngestContext) -> IngestContext:
    """What is sent to workers: the context without the mapper (it holds the pool or the cluster client)."""
    import dataclasses

    return dataclasses.replace(ctx, map_files=None)


def row_sources(raw: RawTable) -> pd.Series:
    """The file of each row of ``raw``: its ``_source`` column when it holds several files
    (:func:`_load_batch`), else its one source."""
    f = raw.frame
    return f["_source"] if "_source" in f else pd.Series(raw.source, index=f.index, dtype="string")


def _file_name(sources: pd.Series) -> pd.Series:
    return sources.str.rsplit("/", n=1).str[-1]


def _street_columns(raw: RawTable, checks: RowChecks, flags: list[dict], ctx: IngestContext) -> dict:
    """The events columns of police.uk street-level files (before their points are validated)."""
    f = raw.frame
    month = _check_month(ctx, checks, f["Month"])
    src = row_sources(raw)
    names = per_distinct(_file_name, src)
    expected = per_distinct(lambda n: n.str.extract(MONTHLY_STREET, expand=False), names)
    off = checks.ok & month.notna() & expected.notna() & (per_distinct(_month_text, month) != expected)
    if off.any():
        for source, rows in src[off].groupby(src[off], sort=False).size().items():  # in file order
            file_month = MONTHLY_STREET.search(source.rsplit("/", 1)[-1]).group(1)
            flags.append(_off_month_flag(source, int(rows), file_month))
    cls = _classify(ctx, checks, "policeuk", f["Crime type"])
    crime_id = missing_ids(f["Crime ID"])
    ids = crime_id.fillna(names + "#" + f["_row"].astype("string"))
    blank = pd.Series(pd.NA, index=f.index, dtype="string")
    return {
        "event_id": ids, "crime_id": crime_id, "month": month, "category": f["Crime type"],
        **{k: cls[k] for k in ("group", "serious_violence", "police_generated", "harm")},
        "lsoa_code": f.get("LSOA code", blank), "location": f.get("Location", blank),
        "outcome": f.get("Last outcome category", blank),
        "source_file": src, "source_row": f["_row"],
        "_record": _row_hash(f, crime_id.isna()), "_crime_key": text_keys(crime_id),
    }


def _off_month_flag(source: str, rows: int, month: str) -> dict:
    return {"check": OFF_MONTH, "severity": "warning", "rows": rows, "file": source, "file_month": month,
            "message": f"{source}: {rows} rows have a Month other than the file's {month}"}


OFF_MONTH = "month_not_file_month"


def _counted_flags(source: str) -> dict:
    """How the flags that count rows in a piece of ``source`` are worded for the whole file
    (see ``merge_counted_flags``)."""
    return {OFF_MONTH: lambda flag, rows: _off_month_flag(source, rows, flag["file_month"])}


STOP_SEARCH_PEOPLE = {"gender": "Gender", "age_range": "Age range", "self_defined_ethnicity": "Self-defined ethnicity",
                      "officer_defined_ethnicity": "Officer-defined ethnicity"}
"""Stop and search columns describing the person searched (store column -> police.uk column)."""


def _stop_search_columns(raw: RawTable, checks: RowChecks, flags: list[dict], ctx: IngestContext) -> dict:
    """The stop and search columns of one police.uk file (before its points are validated)."""
    f = raw.frame
    date = pd.to_datetime(f["Date"], errors="coerce", utc=True, format="ISO8601")
    checks.reject(date.isna(), "unparseable date", "expected an ISO date-time, got " + f["Date"].astype("string"))
    month = parse_month(f["month"]) if "month" in f else date.dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()
    month = check_month(checks, f["month"] if "month" in f else f["Date"], today=ctx.today,
                        first=POLICEUK_FIRST_MONTH, source_name="police.uk", month=month)
    return {
        "month": month, "date": date, "type": f["Type"], "object_of_search": f["Object of search"],
        "outcome": f.get("Outcome", pd.Series(pd.NA, index=f.index, dtype="string")),
        # who was searched: the needs assessment's disproportionality (absent in some files: NA, never guessed)
        **{col: f.get(name, pd.Series(pd.NA, index=f.index, dtype="string")).astype("string")
           for col, name in STOP_SEARCH_PEOPLE.items()},
        "source_file": row_sources(raw), "source_row": f["_row"],
    }


def load_policeuk_street(path: Path, ctx: IngestContext) -> LoadResult:
    """police.uk bulk street-level crime: a CSV, a folder of monthly CSVs or an archive zip."""
    members = list_members(path, MONTHLY_STREET, ctx.limits)
    if not members:
        raise DataError(path, "no police.uk street-level files (YYYY-MM-<force>-street.csv) found")

    frames, rejects, rows_read, files, flags, failed = _load_members(
        members, STREET_COLUMNS, "police.uk street-level crime", ctx, _street_columns)
    return _events_result(path, frames, rejects, rows_read, files, flags, ctx, failed)


def load_policeuk_api(path: Path, ctx: IngestContext) -> LoadResult:
    """police.uk API crimes-street output flattened to CSV (category slugs)."""
    frame, rejects, rows_read, files, flags, _ = _load_file(
        (path, None), API_COLUMNS, "police.uk API street crime", ctx, _api_columns, API_COORDS, pieces=True)
    return _events_result(path, [frame], rejects, rows_read, files, flags, ctx)


def _api_columns(raw: RawTable, checks: RowChecks, flags: list[dict], ctx: IngestContext) -> dict:
    """The events columns of a police.uk API file (before its points are validated)."""
    f = raw.frame
    month = _check_month(ctx, checks, f["month"])
    cls = _classify(ctx, checks, "policeuk", f["category"])
    record = "api:" + missing_ids(f["id"])
    event_id = record.fillna(raw.source.rsplit("/", 1)[-1] + "#" + f["_row"].astype("string"))
    pid = missing_ids(f["persistent_id"]) if "persistent_id" in f else pd.Series(pd.NA, index=f.index, dtype="string")
    lsoa = next((f[c] for c in ("lsoa_code", "lsoa11cd_by_point", "lsoa21cd_by_point") if c in f), None)
    return {
        "event_id": event_id, "crime_id": pid, "month": month, "category": f["category"],
        **{k: cls[k] for k in ("group", "serious_violence", "police_generated", "harm")},
        "lsoa_code": lsoa if lsoa is not None else pd.Series(pd.NA, index=f.index, dtype="string"),
        "location": f.get("street_name", pd.Series(pd.NA, index=f.index, dtype="string")),
        "outcome": f.get("outcome_category", pd.Series(pd.NA, index=f.index, dtype="string")),
        "source_file": pd.Series(raw.source, index=f.index, dtype="string"),
        "source_row": f["_row"], "_record": text_keys(record), "_crime_key": text_keys(pid),
    }


def _events_result(path, frames, rejects, rows_read, files, flags, ctx, failed=()) -> LoadResult:
    frames = [f for f in frames if len(f.columns) > 1]
    if frames:
        frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WORKING_CRS)
    else:
        frame = gpd.GeoDataFrame({**{c: pd.Series(dtype="object") for c in EVENT_COLUMNS},
                                  "_record": pd.Series(dtype="UInt64"), "_crime_key": pd.Series(dtype="UInt64")},
                                 geometry=gpd.GeoSeries([], crs=WORKING_CRS), crs=WORKING_CRS)
    result = LoadResult("events", frame, concat_rejects(rejects), str(path), rows_read, files=files, flags=flags,
                        failed=list(failed))
    if len(frame) and frame["lsoa_code"].notna().any():
        ed = ctx.edition_of(frame["lsoa_code"], "lsoa")
        known = ed.dropna()
        kinds = sorted({e.rstrip("+") for e in known.unique() if not e.endswith("+")})
        if len(kinds) > 1:
            counts = known[~known.str.endswith("+")].value_counts().to_dict()
            result.flag("mixed_lsoa_editions", f"{path}: LSOA codes from more than one edition: {counts} "
                        "(codes in both editions not counted); units are assigned by point, not by code")
        unknown = int(ed.isna().sum() - frame["lsoa_code"].isna().sum())
        if unknown and ctx.codes:
            result.flag("unknown_lsoa_codes", f"{path}: {unknown} rows carry an LSOA code of no loaded boundary edition "
                        "(points outside the area's LSOAs, or another edition)", rows=unknown)
    return result


def load_incident_records(path: Path, ctx: IngestContext) -> LoadResult:
    """police.uk crime records without coordinates (``Crime ID, Month, LSOA code, Crime type``): counts by LSOA.

    Linked records of one crime reference are counted once, by the same rule as the point
    records (:func:`rank_records`).
    """
    raw = read_csv_raw(path, required=RECORD_COLUMNS, kind="crime records by LSOA", limits=ctx.limits)
    f = raw.frame
    checks = RowChecks(f, raw.source)
    month = _check_month(ctx, checks, f["Month"])
    edition = _edition_or_reject(ctx, checks, f["LSOA code"], "lsoa")
    cls = _classify(ctx, checks, "policeuk", f["Crime type"])
    crime_id = missing_ids(f["Crime ID"])
    ok = checks.ok.to_numpy()
    table = pd.DataFrame({"record": _row_hash(f, crime_id.isna()), "crime_id": crime_id,
                          "serious_violence": cls["serious_violence"], "harm": cls["harm"],
                          "category": f["Crime type"], "group": cls["group"],
                          "source_file": raw.source, "source_row": f["_row"]})[ok]
    decision = rank_records(table).reindex(f.index)
    for reason in (DUPLICATE, LINKED):
        checks.reject((decision["reason"] == reason).fillna(False), reason, decision["detail"])
    good, rejects = checks.split()
    out = pd.DataFrame({
        "unit_code": good["LSOA code"], "edition": edition[good.index], "period_start": month[good.index],
        "period": "month", "category": good["Crime type"], "subcategory": pd.NA,
        "group": cls["group"][good.index], "count": 1.0, "harm": cls["harm"][good.index],
        "serious_violence": cls["serious_violence"][good.index], "release": pd.NA, "source_file": raw.source,
    }).reset_index(drop=True)
    result = raw.result("area_counts", out, rejects)
    eds = out["edition"].dropna()
    plain = eds[~eds.isna()].value_counts().to_dict()
    if len(plain) > 1:
        result.flag("mixed_lsoa_editions", f"{raw.source}: LSOA codes from several editions {plain}", severity="info")
    return result


def load_stop_search(path: Path, ctx: IngestContext) -> LoadResult:
    """police.uk stop and search: a CSV, or monthly files in a folder/zip. Police-generated."""
    members = list_members(path, MONTHLY_STOP, ctx.limits) if (path.is_dir() or path.suffix == ".zip") else [(path, None)]

    frames, rejects, rows_read, files, flags, failed = _load_members(
        members, STOP_SEARCH_COLUMNS, "police.uk stop and search", ctx, _stop_search_columns)
    frames = [f for f in frames if len(f.columns) > 1] or frames[:1]
    frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WORKING_CRS)
    result = LoadResult("stop_search", frame, concat_rejects(rejects), str(path), rows_read, files=files, flags=flags,
                        failed=failed)
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
    counts = months.dropna().value_counts().sort_index()  # then format the few months, not every row
    counts.index = counts.index.strftime("%Y-%m")
    return {k: int(v) for k, v in thin_counts(counts, ratio).items()}
