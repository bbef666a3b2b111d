"""Many small police.uk files are checked as one table, with what loading them one by one gives.

A folder of small monthly files is loaded with batching (the default) and with every file
alone (``BATCH_FILE_BYTES`` 0); the accepted frame, the rejects in order, the flags, the rows
read, the files and the failures must be equal. The folder carries what makes joining files
hard: missing crime IDs (their event id is the file name and row number), a row off its
file's month, rows outside the area, a quoted field, CRLF and blank lines, a header of another
column order, a header-only file, an empty file, a file with a malformed row, a file most of whose rows are
swapped and a file written with decimal commas (rules of a whole file), and an unreadable file.
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from ingest_fixtures import LSOAS, STREET_HEADER, csv_text, street_row
from shapely.ops import unary_union

from sources.loaders import crime
from sources.loaders.context import IngestContext
from sources.loaders.points import StudyArea
from sources.readers import open_csv, parse_plain
from sources.taxonomy import load_taxonomy


def context(mapper=None) -> IngestContext:
    ctx = IngestContext(taxonomy=load_taxonomy(None), map_files=mapper, today=pd.Timestamp("2024-01-01"))
    ctx.area = StudyArea(unary_union(list(LSOAS.values())))
    return ctx


def _rows(rng: random.Random, month: str, n: int, start: int) -> list[list[str]]:
    out = []
    for i in range(start, start + n):
        cid = "" if i % 7 == 0 else f"{rng.getrandbits(256):064x}"
        out.append(street_row(cid, month, 530050 + rng.random() * 1900, 180050 + rng.random() * 900,
                              rng.choice(["Robbery", "Burglary", "Violence and sexual offences"])))
    return out


def write(folder: Path, name: str, text: str) -> None:
    month = name[:7]
    path = folder / month / f"{name}-street.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def hostile_folder(root: Path) -> tuple[Path, set[str]]:
    """The folder, and the files that must be checked alone (not plain, or a rule of the whole file fires)."""
    rng = random.Random(11)
    folder = root / "crime"
    write(folder, "2014-12-zero", "")  # first, and 0 bytes: unreadable
    for i in range(40):
        month = f"{2015 + i // 12}-{i % 12 + 1:02d}"
        write(folder, f"{month}-f{i:02d}", csv_text(STREET_HEADER, _rows(rng, month, 1 + i % 3, i)))
    off = _rows(rng, "2017-05", 3, 0)
    off[1][1] = "2017-06"  # a row of another month than its file's
    off[2][4], off[2][5] = "-0.5", "51.7"  # outside the area
    write(folder, "2017-05-off", csv_text(STREET_HEADER, off))
    quoted = _rows(rng, "2017-06", 2, 0)
    quoted[0][6] = "On or near Fixture Street, North"  # quoted by the csv module: parsed, still plain
    write(folder, "2017-06-quoted", csv_text(STREET_HEADER, quoted, newline="\r\n"))
    write(folder, "2017-07-blank", csv_text(STREET_HEADER, _rows(rng, "2017-07", 2, 0)).replace("\n", "\n\n", 1))
    order = [*STREET_HEADER[1:], STREET_HEADER[0]]
    write(folder, "2017-08-order", csv_text(order, [r[1:] + r[:1] for r in _rows(rng, "2017-08", 2, 0)]))
    write(folder, "2017-09-empty", csv_text(STREET_HEADER, []))
    bad = csv_text(STREET_HEADER, _rows(rng, "2017-10", 3, 0)) + "x,2017-10,too few\n"
    write(folder, "2017-10-malformed", bad)
    swapped = _rows(rng, "2017-11", 5, 1)
    for row in swapped[:4]:
        row[4], row[5] = row[5], row[4]
    write(folder, "2017-11-swapped", csv_text(STREET_HEADER, swapped))
    commas = _rows(rng, "2017-12", 4, 1)
    for row in commas:
        row[4], row[5] = row[4].replace(".", ","), row[5].replace(".", ",")
    write(folder, "2017-12-commas", csv_text(STREET_HEADER, commas))
    write(folder, "2018-01-unreadable", csv_text(["Crime ID", "Month"], [["a", "2018-01"]]))
    for i in range(5):
        month = f"2018-{i + 2:02d}"
        write(folder, f"{month}-g{i}", csv_text(STREET_HEADER, _rows(rng, month, 2, i)))
    # alone: not plain, a rule of the whole file fires, the one file of its header, a run of one file
    # (between the malformed and the swapped file)
    alone = {"2017-10-malformed", "2017-11-swapped", "2017-12-commas", "2017-08-order", "2017-11-f34"}
    return folder, alone


def assert_same(one, other) -> None:
    assert_geodataframe_equal(one.frame, other.frame)
    pd.testing.assert_frame_equal(one.rejects, other.rejects)
    assert one.flags == other.flags
    assert (one.rows_read, one.files, one.failed) == (other.rows_read, other.files, other.failed)


def test_small_files_checked_together_give_what_each_file_alone_gives(tmp_path, monkeypatch):
    folder, alone = hostile_folder(tmp_path)
    checked = []
    whole_file = crime._check_file
    monkeypatch.setattr(crime, "_check_file", lambda f, *a: checked.append(Path(f.source).name) or whole_file(f, *a))
    batched = crime.load_policeuk_street(folder, context())
    assert sorted(checked) == sorted(f"{name}-street.csv" for name in alone)  # the rest in one table
    checked.clear()
    monkeypatch.setattr(crime, "BATCH_FILE_BYTES", 0)
    one_by_one = crime.load_policeuk_street(folder, context())
    assert len(checked) == len(one_by_one.files) - 2  # every file alone (but the two unreadable ones)
    assert_same(batched, one_by_one)
    reasons = set(batched.rejects["reason"])
    assert {"malformed row", "outside the study area"} <= reasons
    checks = {f["check"] for f in batched.flags}
    assert {"month_not_file_month", "swapped_coordinate_columns", "decimal_commas"} <= checks
    assert [f["file"] for f in batched.flags if f["check"] == "month_not_file_month"] == [
        str(folder / "2017-05" / "2017-05-off-street.csv")]
    assert [Path(f["path"]).name for f in batched.failed] == ["2014-12-zero-street.csv", "2018-01-unreadable-street.csv"]
    assert "missing column" in batched.failed[1]["why"]
    assert batched.frame["event_id"].str.contains("#").sum() > 5  # event ids from file name and row number
    assert batched.rows_read == len(batched.frame) + len(batched.rejects)


def test_on_a_mapper_groups_of_files_give_the_same(tmp_path):
    folder, _ = hostile_folder(tmp_path)
    calls = []

    def mapper(func, items, shared=(), nbytes=None):
        calls.append((func.func.__name__, len(items)))
        return [func(item, *shared) for item in items]

    assert_same(crime.load_policeuk_street(folder, context()), crime.load_policeuk_street(folder, context(mapper)))
    assert calls == [("_load_group", 8)]  # 54 small files in 8 groups (crime.MAPPED_GROUPS), for the workers


@pytest.mark.parametrize(("text", "plain"), [
    ("a,b\n1,2\n\n3,4\r\n", True),
    ('a,b\n"1,5",2\n3,"x\ny"\n', True),  # quoted: a comma and a line break in a field
    ("a,b\n1,2\n   \n", False),  # spaces: a row of one field
    ("a,b\n1,2,\n", False),  # a row wider than the header
    ("a;b\n1;2\n", False),  # another delimiter: flagged by the whole-file read
    ("a,b\n1,\x002\n", False),
])
def test_which_files_are_plain(tmp_path, text, plain):
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode("utf-8"))
    rows = parse_plain(open_csv(path))
    assert (rows is not None) is plain
    if plain:
        assert rows.rows == 2
