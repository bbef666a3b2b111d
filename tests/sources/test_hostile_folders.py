"""Hostile data folders through `svrisk ingest` (issue 32, ingest half): reads stay inside the data
folder, every input gives one clear line, and resources stay bounded.

Each folder is built in the test: links leading out of the folder to a place holding a
"secret" crime file, named pipes, names that are not UTF-8 or too long, catalogues that are
deep or mistyped, zip archives with two members of one name, a file changed while it is read,
a boundary with one vertex at 1e308, a header longer than the sniffed head, a line too long to hold.
"""

from __future__ import annotations

import json
import os
import re
import signal
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from ingest_fixtures import (
    LSOAS,
    STREET_HEADER,
    assert_accounted,
    csv_text,
    fixture_folder,
    ingest_cli,
    street_row,
    street_rows,
    write_csv,
)
from shapely.geometry import Polygon

from sources import ingest as ingest_module
from sources.ingest import ingest
from sources.loaders.context import IngestOptions
from sources.readers import DataError

MONTHLY = "crime/2017-01/2017-01-fixture-street.csv"
SECRET = "On or near Secret Street"  # what the file outside the data folder holds


@pytest.fixture
def no_hang():
    """Fail the test, instead of hanging the suite, if anything blocks (a named pipe opened for reading)."""
    def alarm(*_):
        raise TimeoutError("ingest blocked")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def outside(tmp_path: Path) -> Path:
    """A folder beside the data folder with a police.uk file that would be ingested if it were reached."""
    rows = street_rows(4, seed=9)
    for r in rows:
        r[6] = SECRET
    return write_csv(tmp_path / "elsewhere" / "2017-01-elsewhere-street.csv", STREET_HEADER, rows).parent


def inside_folder(tmp_path: Path) -> Path:
    data = fixture_folder(tmp_path)
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(3))
    return data


def never_reached(tmp_path: Path, output: str, report: dict | None) -> None:
    store = tmp_path / "store"
    text = output + (str(report) if report else "")
    for table in ("rejects", "events"):
        if (store / f"{table}.parquet").exists():
            frame = pd.read_parquet(store / f"{table}.parquet")
            text += frame.drop(columns=["geometry"], errors="ignore").astype(str).to_csv()
    assert SECRET not in text and "elsewhere" not in text, text[:2000]


def accepted(report: dict, kind: str) -> int:
    return sum(i["accepted"] for i in report["inputs"] if i["kind"] == kind)


# ---------------------------------------------------------------------------- routes out of the folder


@pytest.mark.parametrize("catalogue", [False, True], ids=["recognised", "catalogue"])
def test_a_link_to_a_folder_outside_is_reported_and_not_followed(tmp_path, catalogue):
    data = inside_folder(tmp_path)
    (data / "crime" / "more").symlink_to(outside(tmp_path), target_is_directory=True)
    if catalogue:
        (data / "catalogue.toml").write_text('[[source]]\nkind = "boundary_lsoa2011"\npath = "boundaries/lsoa2011.gpkg"'
                                             '\n\n[[source]]\nkind = "policeuk_street"\npath = "crime"\n')
    code, _, report, out = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 3
    why = {u["path"]: u["why"] for u in report["unrecognised"]}
    assert why["crime/more"] == "symbolic link leading outside the data folder; not followed"
    never_reached(tmp_path, out, report)
    assert_accounted(report, data, tmp_path / "store")


@pytest.mark.parametrize("catalogue", [False, True], ids=["recognised", "catalogue"])
def test_a_link_to_a_file_outside_is_reported_and_not_opened(tmp_path, catalogue):
    data = inside_folder(tmp_path)
    link = data / "crime" / "2017-02" / "2017-02-fixture-street.csv"
    link.parent.mkdir()
    link.symlink_to(outside(tmp_path) / "2017-01-elsewhere-street.csv")
    if catalogue:
        (data / "catalogue.toml").write_text('[[source]]\nkind = "boundary_lsoa2011"\npath = "boundaries/lsoa2011.gpkg"'
                                             '\n\n[[source]]\nkind = "policeuk_street"\npath = "crime"\n')
    code, _, report, out = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 3
    why = {u["path"]: u["why"] for u in report["unrecognised"]}
    assert why["crime/2017-02/2017-02-fixture-street.csv"].startswith("symbolic link leading outside")
    assert "crime/2017-02/2017-02-fixture-street.csv" not in report["data_files"]  # not hashed either
    never_reached(tmp_path, out, report)


@pytest.mark.parametrize("how", ["absolute", "dot-dot"])
def test_a_catalogue_path_outside_the_folder_is_refused_without_naming_it(tmp_path, how):
    data = inside_folder(tmp_path)
    target = outside(tmp_path) / "2017-01-elsewhere-street.csv"
    path = str(target) if how == "absolute" else "../elsewhere/2017-01-elsewhere-street.csv"
    (data / "catalogue.toml").write_text('[[source]]\nkind = "policeuk_street"\npath = "crime"\n\n'
                                         f'[[source]]\nkind = "policeuk_street"\npath = "{path}"\n')
    code, error, report, out = ingest_cli(data, tmp_path / "store")
    assert code == 2 and report is None
    assert "[[source]] number 2: 'path' leads outside the data folder; refused" in error
    assert "allow_outside" in error
    never_reached(tmp_path, out, report)


def test_an_operator_may_allow_a_named_outside_folder(tmp_path):
    data = inside_folder(tmp_path)
    elsewhere = outside(tmp_path)
    (data / "catalogue.toml").write_text('[[source]]\nkind = "boundary_lsoa2011"\npath = "boundaries/lsoa2011.gpkg"'
                                         '\n\n[[source]]\nkind = "policeuk_street"\npath = "crime"\n\n'
                                         '[[source]]\nkind = "policeuk_street"\npath = "../elsewhere"\n')
    with pytest.raises(DataError, match="leads outside the data folder"):
        ingest(data, tmp_path / "store")
    report = ingest(data, tmp_path / "store", IngestOptions(allow_outside=(str(elsewhere),)))
    assert accepted(report, "policeuk_street") == 3 + 4
    # the same through the setting ([ingest] allow_outside in svrisk.toml, here from the environment)
    code, _, report, _ = ingest_cli(data, tmp_path / "store2",
                                    env={"SVRISK_INGEST__ALLOW_OUTSIDE": json.dumps([str(elsewhere)])})
    assert code == 0 and accepted(report, "policeuk_street") == 3 + 4


def test_a_named_pipe_is_reported_without_being_opened(tmp_path, no_hang):
    data = inside_folder(tmp_path)
    os.mkfifo(data / "crime" / "api.csv")
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 3
    why = {u["path"]: u["why"] for u in report["unrecognised"]}
    assert why["crime/api.csv"] == "a named pipe (FIFO), not a regular file; not opened"
    (data / "catalogue.toml").write_text('[[source]]\nkind = "boundary_lsoa2011"\npath = "boundaries/lsoa2011.gpkg"'
                                         '\n\n[[source]]\nkind = "policeuk_api"\npath = "crime/api.csv"\n')
    code, error, report, _ = ingest_cli(data, tmp_path / "store2")
    assert code == 2 and "crime/api.csv: is a named pipe (FIFO), not a regular file; not opened" in error


# ---------------------------------------------------------------------------- every input a clear line


def catalogue_with(tmp_path: Path, line: str) -> Path:
    data = inside_folder(tmp_path)
    (data / "catalogue.toml").write_text(f'[[source]]\nkind = "policeuk_street"\npath = "crime"\n{line}\n')
    return data


def test_a_catalogue_nested_100000_deep_is_one_line_naming_the_key(tmp_path):
    data = catalogue_with(tmp_path, "layer = " + "[" * 100_000 + "]" * 100_000)
    code, error, _, out = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "Recursion" not in out
    assert "catalogue.toml: the value of 'layer' nests arrays or tables too deeply to read" in error


@pytest.mark.parametrize(("line", "expected"), [
    ("path = 42", "'path' is an integer (42); expected a string"),
    ("layer = [[[1]]]", "'layer' is an array; expected a string"),
    ("year = 2019.5", "'year' is a number (2019.5); expected an integer or a string"),
    ("lyer = \"x\"", "unknown key 'lyer'"),
])
def test_a_mistyped_catalogue_value_names_the_key_and_the_type(tmp_path, line, expected):
    data = inside_folder(tmp_path)
    (data / "catalogue.toml").write_text(f'[[source]]\nkind = "policeuk_street"\n{line}\n'
                                         + ('path = "crime"\n' if not line.startswith("path") else ""))
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "[[source]] number 1" in error and expected in error


def bad_names(data: Path) -> None:
    """A file and a folder whose names hold byte 0xff, and a folder nested past the longest path (4,096 bytes)."""
    crime = os.fsencode(data / "crime")
    write_csv(Path(os.fsdecode(crime + b"/2017-03/2017-03-x\xff-street.csv")), STREET_HEADER, street_rows(2))
    os.makedirs(crime + b"/bad\xffname")
    (data / "deep").mkdir()
    fd = os.open(data / "deep", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(22):  # built relative to an open folder: the whole path is too long to name
            os.mkdir("d" * 200, dir_fd=fd)
            inner = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open("2017-04-x-street.csv", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, csv_text(STREET_HEADER, street_rows(2)).encode())
        os.close(out)
    finally:
        os.close(fd)


def test_undecodable_and_over_long_names_are_named_per_file_and_skipped_with_keep_going(tmp_path):
    data = inside_folder(tmp_path)
    bad_names(data)
    code, error, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and report is None and "3 damaged input files" in error
    assert "crime/2017-03/2017-03-x\\xff-street.csv: its name is not valid UTF-8 text" in error
    assert "crime/bad\\xffname/: its name is not valid UTF-8 text" in error
    assert "path is too long for the operating system" in error and len(error) < 1500
    code, _, report, out = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0 and accepted(report, "policeuk_street") == 3
    assert sorted(d["path"][:10] for d in report["damaged"]) == ["crime/2017", "crime/bad\\", "deep/ddddd"]
    assert out.count("DAMAGED (kept going)") == 3


def test_a_zip_with_two_members_of_one_name_is_refused_not_read_twice(tmp_path):
    data = fixture_folder(tmp_path)
    (data / "crime").mkdir()
    with zipfile.ZipFile(data / "crime" / "police.zip", "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("2017-01/2017-01-x-street.csv", csv_text(STREET_HEADER, street_rows(100, seed=1)))
        zf.writestr("2017-01/2017-01-x-street.csv", csv_text(STREET_HEADER, street_rows(100, seed=2)))
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "crime/police.zip: zip archive holds several members of the same name" in error
    assert "'2017-01/2017-01-x-street.csv'" in error
    code, _, report, _ = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0 and accepted(report, "policeuk_street") == 0
    (damaged,) = report["damaged"]
    assert damaged["path"] == "crime/police.zip" and damaged["rows_lost"] == "all"


def test_a_file_changed_while_it_is_read_is_refused_never_recorded(tmp_path, monkeypatch):
    data = inside_folder(tmp_path)
    load = ingest_module.LOADERS["policeuk_street"]

    def load_then_append(path, ctx):
        result = load(path, ctx)
        with (data / MONTHLY).open("a") as fh:  # someone writes to the file while ingest runs
            fh.write(",".join(street_row("f" * 64, "2017-01", 530500, 180500)) + "\n")
        return result

    monkeypatch.setitem(ingest_module.LOADERS, "policeuk_street", load_then_append)
    code, error, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and report is None and not (tmp_path / "store").exists()
    assert f"1 file changed while ingest read it (size or modification time differ before and after): {MONTHLY}" in error
    monkeypatch.setitem(ingest_module.LOADERS, "policeuk_street", load)
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 4  # the rows now there, with their hash


def test_a_vertex_at_1e308_is_named_as_far_outside_the_grid_without_a_400_digit_number(tmp_path):
    data = tmp_path / "data"
    (data / "boundaries").mkdir(parents=True)
    shapes = list(LSOAS.values())
    x0, y0, x1, y1 = shapes[1].bounds
    shapes[1] = Polygon([(x0, y0), (x1, y0), (1e308, y1), (x0, y1)])
    gpd.GeoDataFrame({"LSOA11CD": list(LSOAS)}, geometry=shapes, crs="EPSG:27700").to_file(
        data / "boundaries" / "lsoa2011.gpkg")
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(3))
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "boundaries/lsoa2011.gpkg: 1 feature with coordinates far outside British National Grid" \
        in error
    assert "(feature 2 reaches 1e+308)" in error and not re.search(r"\d{20}", error)
    assert "CRS label is wrong" not in error and "outside Great Britain in that CRS" not in error


def test_a_header_longer_than_the_sniffed_head_is_read_whole(tmp_path):
    data = fixture_folder(tmp_path)
    header = STREET_HEADER + [f"extra_column_number_{i:06d}" for i in range(3_000)]  # 81 KB: past the 64 KB
    rows = [r + ["1"] * 3_000 for r in street_rows(3)]  # first read; a cut header would leave these rows too wide
    write_csv(data / "crime" / "wide.csv", header, rows)
    code, error, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0, error
    assert "duplicate column" not in str(report) and accepted(report, "policeuk_street") == 3


# ---------------------------------------------------------------------------- bounded resources


def test_a_line_too_long_to_hold_is_a_reject_and_the_rows_after_it_load(tmp_path):
    data = fixture_folder(tmp_path)
    rows = street_rows(4)
    text = csv_text(STREET_HEADER, rows[:2]) + "x" * 5_000_000 + "\n" + csv_text(STREET_HEADER, rows[2:]).split(
        "\n", 1)[1] + "y" * 5_000_000  # a 5 MB line, and one more without a final newline
    (data / "crime").mkdir()
    (data / "crime" / "2017-01-fixture-street.csv").write_text(text)
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 4
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet")
    assert rejects["source_row"].tolist() == [3, 6] and set(rejects["reason"]) == {"field too long"}
    assert "a line of 5,000,000 bytes" in rejects["detail"].iloc[0] and len(rejects["raw"].iloc[0]) < 100
    assert_accounted(report, data, tmp_path / "store")
