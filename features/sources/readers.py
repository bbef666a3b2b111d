"""Reading raw files safely: encodings, malformed rows, and the reject ledger.

A user error in the input (missing file, empty file, undecodable text, a missing
column) raises :class:`DataError` with the file and what was expected; the CLI
prints it as one line. A row-level problem never raises: the row goes to the
rejects table with its file, 1-based data-row number and a reason, so that
``rows_read == accepted + rejected`` always holds.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

REJECT_COLUMNS = ["source_file", "source_row", "reason", "detail", "raw"]


class DataError(ValueError):
    """An input the user must fix; the message names the file and what was expected."""

    def __init__(self, source: str | Path, message: str, row: int | None = None):
        self.source = str(source)
        self.row = row
        where = f"{source}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: {message}")


@dataclass
class LoadResult:
    """What one loader made of one input (a file, or a folder/archive of monthly files)."""

    table: str
    frame: pd.DataFrame
    rejects: pd.DataFrame
    source: str
    rows_read: int
    files: list[str] = field(default_factory=list)
    flags: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    accepted_rows: int | None = None  # source rows accepted, when the table is reshaped (e.g. wide -> long)

    def __post_init__(self) -> None:
        if self.accepted_rows is None:
            self.accepted_rows = len(self.frame)
        accepted, rejected = self.accepted_rows, len(self.rejects)
        if accepted + rejected != self.rows_read:
            raise RuntimeError(
                f"{self.source}: counts do not reconcile: read {self.rows_read}, "
                f"accepted {accepted}, rejected {rejected}"
            )

    def flag(self, check: str, message: str, severity: str = "warning", **details) -> None:
        self.flags.append({"check": check, "severity": severity, "message": message, **details})


def empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "source_row" else "string") for c in REJECT_COLUMNS})


def read_bytes(path: Path, member: str | None = None) -> bytes:
    """Raw bytes of a file, a gzip file, or a member of a zip archive."""
    source = f"{path}!{member}" if member else str(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        if member is not None:
            with zipfile.ZipFile(path) as zf:
                return zf.read(member)
        data = path.read_bytes()
        if path.suffix == ".gz" or data[:2] == b"\x1f\x8b":
            try:
                return gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise DataError(path, f"gzip data is truncated or corrupt ({exc})") from None
        return data
    except zipfile.BadZipFile as exc:
        raise DataError(source, f"zip archive is truncated or corrupt ({exc})") from None


def decode_text(data: bytes, source: str) -> tuple[str, str]:
    """Decode as UTF-8 (with or without BOM), falling back to Windows-1252; return (text, encoding)."""
    if not data.strip():
        raise DataError(source, "file is empty; expected a CSV with a header row")
    if b"\x00" in data[:65536]:
        raise DataError(source, "file holds NUL bytes: it is binary, not a CSV text file")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise DataError(
            source,
            f"text is neither UTF-8 (first bad byte at offset {first_bad}) nor Windows-1252 "
            f"(bad byte at offset {exc.start}); re-save the file as UTF-8",
        ) from None


@dataclass
class RawTable:
    """A CSV read as strings, with rows that could not even be split kept aside."""

    frame: pd.DataFrame  # all well-formed rows, strings, with column `_row` (1-based data row)
    malformed: pd.DataFrame  # rejects for rows with the wrong number of fields
    encoding: str
    source: str

    @property
    def rows_read(self) -> int:
        return len(self.frame) + len(self.malformed)


def read_csv_raw(
    path: Path, member: str | None = None, required: Iterable[str] = (), kind: str = "CSV"
) -> RawTable:
    """Read a CSV into strings, keeping malformed rows as rejects.

    Raises
    ------
    DataError
        Missing/empty/undecodable file, or a required column missing from the header.
    """
    source = f"{path}!{member}" if member else str(path)
    text, encoding = decode_text(read_bytes(path, member), source)
    first_line = text.split("\n", 1)[0]
    try:
        header = [h.strip() for h in next(csv.reader([first_line]))]
    except (StopIteration, csv.Error) as exc:
        raise DataError(source, f"cannot parse the header row as CSV ({exc})") from None
    if not any(header):
        raise DataError(source, "the first line is blank; expected a CSV header row")
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(source, f"missing column(s) {missing} for a {kind} file; found columns {header}")
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise DataError(source, f"duplicate column names {dupes}")
    width = len(header)
    bad: list[dict] = []

    def invalid(row) -> str:
        # pyarrow numbers rows from the header (= 1), skipping blank lines.
        bad.append({"source_file": source, "source_row": int(row.number) - 1, "reason": "malformed row",
                    "detail": f"{row.actual_columns} fields where the header has {row.expected_columns}",
                    "raw": json.dumps(row.text)})
        return "skip"

    names = [f"c{i}" for i in range(width)]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=invalid, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                null_values=[""], quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(source, f"cannot parse as CSV ({exc})") from None
    frame = table.to_pandas(types_mapper=lambda _t: pd.StringDtype())
    frame.columns = header
    for col in header:
        frame[col] = frame[col].str.strip().replace("", pd.NA)
    total = len(frame) + len(bad)
    numbers = np.setdiff1d(np.arange(1, total + 1), [b["source_row"] for b in bad])
    frame["_row"] = numbers.astype("int64")
    malformed = pd.DataFrame(bad, columns=REJECT_COLUMNS) if bad else empty_rejects()
    return RawTable(frame, malformed, encoding, source)


class RowChecks:
    """Accumulate row-level rejections over a raw table; the first reason found wins.

    Example
    -------
    >>> checks = RowChecks(raw.frame, source="crimes.csv")
    >>> checks.reject(raw.frame["Month"].isna(), "missing month")
    >>> accepted, rejects = checks.split()
    """

    def __init__(self, frame: pd.DataFrame, source: str | pd.Series):
        self.frame = frame
        self.source = source
        self.reason = pd.Series(pd.NA, index=frame.index, dtype="string")
        self.detail = pd.Series(pd.NA, index=frame.index, dtype="string")

    @property
    def ok(self) -> pd.Series:
        return self.reason.isna()

    def reject(self, mask: pd.Series | np.ndarray, reason: str, detail: pd.Series | str | None = None) -> int:
        mask = pd.Series(np.asarray(mask, dtype=bool), index=self.frame.index) & self.ok
        if not mask.any():
            return 0
        self.reason[mask] = reason
        if detail is not None:
            self.detail[mask] = detail[mask].astype("string") if isinstance(detail, pd.Series) else detail
        return int(mask.sum())

    def split(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        good = self.frame[self.ok]
        badf = self.frame[~self.ok]
        if badf.empty:
            return good, empty_rejects()
        raw_cols = [c for c in badf.columns if not c.startswith("_")]
        raw = badf[raw_cols].astype(object).where(badf[raw_cols].notna(), None)
        source = self.source[~self.ok] if isinstance(self.source, pd.Series) else self.source
        rejects = pd.DataFrame(
            {
                "source_file": source,
                "source_row": badf["_row"].astype("int64"),
                "reason": self.reason[~self.ok],
                "detail": self.detail[~self.ok],
                "raw": [json.dumps(r, default=str) for r in raw.to_dict("records")],
            }
        )
        return good, rejects.astype({"source_file": "string", "raw": "string"})


def concat_rejects(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_rejects()
    return pd.concat(parts, ignore_index=True)[REJECT_COLUMNS]


def parse_month(values: pd.Series) -> pd.Series:
    """'2017-03', '2017-03-01', '201703' or 'Mar-17'-free strict parsing; NaT where not a month."""
    s = values.astype("string").str.strip()
    s = s.str.replace(r"^(\d{4})(\d{2})$", r"\1-\2", regex=True)
    s = s.str.extract(r"^(\d{4}-\d{2})(?:-01)?(?:[T ].*)?$", expand=False)
    return pd.to_datetime(s, format="%Y-%m", errors="coerce")


def to_number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.astype("string").str.replace(",", "", regex=False), errors="coerce")
