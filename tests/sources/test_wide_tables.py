"""A header of more columns than any public table is refused from its header, naming the file and the count;
the values of a wide table are stripped column by column in pyarrow, as ``str.strip`` strips them."""

from __future__ import annotations

from ingest_fixtures import STREET_HEADER, fixture_folder, ingest_cli, street_rows, write_csv

from sources.readers import MAX_COLUMNS, WHITESPACE, open_csv, parse_rows

MONTHLY = "crime/2017-01/2017-01-fixture-street.csv"


def test_a_header_of_too_many_columns_is_refused_naming_the_file_and_the_count(tmp_path):
    data = fixture_folder(tmp_path)
    extra = MAX_COLUMNS  # with the 12 police.uk columns: 12 over
    write_csv(data / MONTHLY, [*STREET_HEADER, *(f"x{i}" for i in range(extra))],
              [r + ["1"] * extra for r in street_rows(2)])
    code, error, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and report is None
    assert f"{MONTHLY}: the header row has {MAX_COLUMNS + 12:,} columns, more than the {MAX_COLUMNS:,}" in error
    code, _, report, _ = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0
    assert [(d["path"], d["rows_lost"]) for d in report["damaged"]] == [(MONTHLY, "all")]


def test_a_wide_csv_of_no_known_kind_is_refused_from_its_header_too(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / "notes.csv", [f"c{i}" for i in range(MAX_COLUMNS + 1)], [["1"] * (MAX_COLUMNS + 1)])
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(2))
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and f"notes.csv: the header row has {MAX_COLUMNS + 1:,} columns" in error


def test_trailing_separators_do_not_count_as_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b" + "," * (MAX_COLUMNS + 5) + "\n1,2\n")
    assert open_csv(path).header == ["a", "b"]


def test_values_are_stripped_of_what_str_strip_strips(tmp_path):
    assert WHITESPACE == "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    path = tmp_path / "s.csv"
    path.write_text("a,b,c\n  x ,\u3000,\x1cy\u00a0z\x1f\n1,2,3,\n", encoding="utf-8")
    f = open_csv(path)
    frame = parse_rows(f, f.text).frame
    assert frame["a"].tolist() == ["x", "1"]
    assert frame["b"].isna().tolist() == [True, False]
    assert frame["c"].tolist() == ["y\u00a0z", "3"]  # the last row was refitted (a trailing separator)
