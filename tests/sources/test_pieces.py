"""A long police.uk file parsed and checked in pieces on workers gives what the whole file gives.

Each file here is cut into pieces of about 2,000 characters (``piece_mb`` tiny) and the pieces
mapped by a recording mapper (in this process) or a pool of 2 worker processes; the result
(accepted frame, rejects in order, flags, rows read) must equal a load of the whole file.
The files carry what makes cutting hard: blank and whitespace-only lines, CRLF and CR line
ends, malformed rows, trailing separators, NUL bytes, missing crime IDs (their event id is
the row number), off-month rows, rows outside the area, and the rules that look at the whole
file (most rows swapped, decimal commas, swapped easting/northing labels).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from ingest_fixtures import API_HEADER, LSOAS, STREET_HEADER, api_row, csv_text, street_row
from shapely.ops import unary_union

from sources.loaders import crime
from sources.loaders.context import IngestContext, IngestOptions
from sources.loaders.points import StudyArea
from sources.readers import MB, open_csv, parse_rows, split_csv
from sources.taxonomy import load_taxonomy

PIECE_MB = 2000 / MB  # pieces of about 2,000 characters: a long file of a few hundred rows has dozens


class Recorder:
    """A mapper that runs in this process and records what it was given."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def __call__(self, func, items, shared=(), nbytes=None):
        self.calls.append((getattr(func, "func", func).__name__, len(items)))
        return [func(item, *shared) for item in items]


def context(mapper=None, piece_mb: float = PIECE_MB) -> IngestContext:
    ctx = IngestContext(taxonomy=load_taxonomy(None), options=IngestOptions(piece_mb=piece_mb), map_files=mapper,
                        today=pd.Timestamp("2024-01-01"))
    ctx.area = StudyArea(unary_union(list(LSOAS.values())))
    return ctx


def hostile_street(n: int = 400, seed: int = 3, newline: str = "\n") -> str:
    rng = random.Random(seed)
    types = ["Violence and sexual offences", "Robbery", "Burglary", "Public order", "Anti-social behaviour"]
    lines = csv_text(STREET_HEADER, [], newline=newline).rstrip("\r\n").split(newline)
    for i in range(n):
        x, y = 530050 + rng.random() * 1900, 180050 + rng.random() * 900
        cid = "" if i % 17 == 0 else f"{rng.getrandbits(256):064x}"  # no ID: its event id is the row number
        month = "2017-02" if i % 23 == 0 else "2017-01"  # off the file's month
        if i % 29 == 0:
            x, y = 545000, 195000  # outside the area
        row = street_row(cid, month, x, y, rng.choice(types))
        if i % 31 == 0:
            row[4], row[5] = row[5], row[4]  # a few swapped: rejected, not the file corrected
        line = ",".join(row)
        if i % 37 == 0:
            line = ",".join(row[:3])  # too few fields
        elif i % 41 == 0:
            line += ",,"  # trailing separators: read
        elif i % 43 == 0:
            line += ",x,y"  # values past the header: malformed
        elif i % 47 == 0:
            line = line.replace("Fixture Street", "Fixture\x00Street")  # damaged bytes
        lines.append(line)
        if i % 19 == 0:
            lines.append("")  # a blank line: not a row
        if i % 53 == 0:
            lines.append("   ")  # spaces: a row of one field
    return newline.join(lines) + newline


def load_both(path: Path, loader, mapper) -> tuple:
    return loader(path, context()), loader(path, context(mapper))


def assert_same(whole, pieces) -> None:
    assert_geodataframe_equal(whole.frame, pieces.frame)
    pd.testing.assert_frame_equal(whole.rejects, pieces.rejects)
    assert whole.flags == pieces.flags
    assert (whole.rows_read, whole.files, whole.failed) == (pieces.rows_read, pieces.files, pieces.failed)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_a_long_street_file_in_pieces_equals_the_whole_file(tmp_path, newline):
    path = tmp_path / "2017-01-fixture-street.csv"
    path.write_text(hostile_street(newline=newline), encoding="utf-8", newline="")
    mapper = Recorder()
    whole, pieces = load_both(path, crime.load_policeuk_street, mapper)
    assert mapper.calls == [("_load_group", 0), ("_load_piece", len(split_csv(open_csv(path), 2000)))]
    assert mapper.calls[1][1] > 20
    reasons = set(whole.rejects["reason"])
    assert {"malformed row", "outside the study area", "latitude/longitude swapped"} <= reasons
    assert {"month_not_file_month", "trailing_separators"} <= {f["check"] for f in whole.flags}
    assert whole.frame["event_id"].str.contains("#").sum() > 10  # event ids from row numbers
    assert_same(whole, pieces)


def test_pieces_count_the_rows_the_parser_sees(tmp_path):
    path = tmp_path / "a-street.csv"
    path.write_text(hostile_street(newline="\r\n"), encoding="utf-8", newline="")
    f = open_csv(path)
    split = split_csv(f, 2000)
    assert "".join(text.split("\r\n", 1)[1] for text, _, _ in split) == f.text.split("\r\n", 1)[1]
    for text, before, rows in split:
        assert parse_rows(f, text, first_row=before).total == rows
    assert sum(rows for _, _, rows in split) == parse_rows(f, f.text).total


def test_a_file_with_quotes_or_short_is_not_cut(tmp_path):
    quoted = tmp_path / "q-street.csv"
    text = hostile_street()
    quoted.write_text(text.replace("On or near Fixture Street", '"On or near\nFixture Street"', 3))
    assert split_csv(open_csv(quoted), 2000) is None
    short = tmp_path / "s-street.csv"
    short.write_text(text)
    assert split_csv(open_csv(short), 2000) is not None
    assert split_csv(open_csv(short), len(text) // 2) is None  # no longer than two pieces
    mapper = Recorder()
    whole, pieces = load_both(quoted, crime.load_policeuk_street, mapper)
    assert all(name != "_load_piece" for name, _ in mapper.calls)
    assert_same(whole, pieces)


def test_a_file_most_of_whose_rows_are_swapped_is_corrected_whole(tmp_path):
    rows = []
    rng = random.Random(5)
    for i in range(300):
        row = street_row(f"{i:064x}", "2017-01", 530050 + rng.random() * 1900, 180050 + rng.random() * 900)
        if i % 5:
            row[4], row[5] = row[5], row[4]  # four in five swapped: the labels are swapped
        rows.append(row)
    path = tmp_path / "swapped-street.csv"
    path.write_text(csv_text(STREET_HEADER, rows))
    mapper = Recorder()
    whole, pieces = load_both(path, crime.load_policeuk_street, mapper)
    assert ("_load_piece", len(split_csv(open_csv(path), 2000))) in mapper.calls  # tried in pieces, then whole
    assert "swapped_coordinate_columns" in {f["check"] for f in whole.flags}
    assert len(whole.frame) == 300
    assert_same(whole, pieces)


@pytest.mark.parametrize("share", [0.1, 0.9])
def test_decimal_commas_are_judged_over_the_whole_file(tmp_path, share):
    """A semicolon file: decimal commas in a few rows are rejects, in most rows the way the file is written."""
    rng = random.Random(6)
    rows = []
    for i in range(300):
        row = street_row(f"{i:064x}", "2017-01", 530050 + rng.random() * 1900, 180050 + rng.random() * 900)
        if rng.random() < share:
            row[4], row[5] = row[4].replace(".", ","), row[5].replace(".", ",")
        rows.append(row)
    path = tmp_path / "commas-street.csv"
    path.write_text(csv_text(STREET_HEADER, rows, delimiter=";"))
    whole, pieces = load_both(path, crime.load_policeuk_street, Recorder())
    if share > 0.5:
        assert "decimal_commas" in {f["check"] for f in whole.flags} and len(whole.frame) == 300
    else:
        assert (whole.rejects["reason"] == "comma decimal").sum() > 10
    assert_same(whole, pieces)


@pytest.mark.parametrize("swap_labels", [False, True])
def test_an_api_file_in_pieces_cross_checks_its_grid_columns_over_the_whole_file(tmp_path, swap_labels):
    rng = random.Random(7)
    header = [*API_HEADER, "easting", "northing"]
    rows = []
    for i in range(300):
        x, y = 530050 + rng.random() * 1900, 180050 + rng.random() * 900
        e, n = (y, x) if swap_labels else (x, y)
        rows.append([*api_row(str(1000 + i), "" if i % 3 else f"{i:064x}", "2017-02",
                              rng.choice(["violent-crime", "robbery", "burglary"]), x, y), f"{e:.1f}", f"{n:.1f}"])
    path = tmp_path / "api.csv"
    path.write_text(csv_text(header, rows))
    mapper = Recorder()
    whole, pieces = load_both(path, crime.load_policeuk_api, mapper)
    assert mapper.calls and mapper.calls[0][0] == "_load_piece"
    assert ("swapped_coordinate_labels" in {f["check"] for f in whole.flags}) is swap_labels
    assert_same(whole, pieces)


def test_pieces_on_two_worker_processes_equal_the_whole_file(tmp_path):
    from service.workers import ProcessPool

    path = tmp_path / "2017-01-fixture-street.csv"
    path.write_text(hostile_street(), encoding="utf-8")
    pool = ProcessPool(2, min_rows=0, min_bytes=0)
    whole = crime.load_policeuk_street(path, context())
    pieces = crime.load_policeuk_street(path, dataclasses.replace(context(), map_files=pool.map))
    assert_same(whole, pieces)


def test_without_workers_or_with_pieces_off_a_file_is_read_whole(tmp_path):
    path = tmp_path / "2017-01-fixture-street.csv"
    path.write_text(hostile_street())
    mapper = Recorder()
    crime.load_policeuk_street(path, context(mapper, piece_mb=0))
    assert mapper.calls == [("_load_group", 1)]  # 0: never in pieces, the file goes to a worker whole


def test_a_long_gzip_file_is_cut_by_its_uncompressed_size(tmp_path):
    import gzip

    path = tmp_path / "2017-01-fixture-street.csv.gz"
    text = hostile_street()
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    assert crime.member_sizes([(path, None), (tmp_path / "missing.gz", None)]) == [len(text.encode("utf-8")), 0]
    mapper = Recorder()
    whole, pieces = load_both(path, crime.load_policeuk_street, mapper)
    assert mapper.calls[0] == ("_load_group", 0) and mapper.calls[1][0] == "_load_piece"
    assert_same(whole, pieces)
