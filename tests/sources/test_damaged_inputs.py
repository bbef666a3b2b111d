"""Hostile and damaged inputs through `svrisk ingest`: each kind gives its exit code, one clear line
(or a reasoned reject), and a report that accounts for every file; never a traceback.

Every case is made for real: truncated gzip and zip bytes, NUL and invalid bytes, UTF-16,
two-layer GeoPackages, zipped shapefiles, unreadable files and folders (run as an
unprivileged user when the tests run as root, who ignores permissions), a read-only
output folder, a full disk (the write raising ENOSPC), a decompression bomb.
"""

from __future__ import annotations

import errno
import gzip
import os
import random
import re
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from ingest_fixtures import (
    API_HEADER,
    LSOAS,
    STREET_HEADER,
    api_row,
    assert_accounted,
    csv_text,
    fixture_folder,
    ingest_cli,
    read_report,
    run_cli_without_root_override,
    street_rows,
    write_boundaries,
    write_csv,
)
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()
MONTHLY = "crime/2017-01/2017-01-fixture-street.csv"


def api_rows(n: int, seed: int = 2) -> list[list[str]]:
    rng = random.Random(seed)
    return [api_row(str(1000 + i), f"{rng.getrandbits(256):064x}", "2017-02",
                    rng.choice(["violent-crime", "robbery", "burglary", "public-order"]),
                    530050 + rng.random() * 1900, 180050 + rng.random() * 900) for i in range(n)]


def accepted(report: dict, kind: str) -> int:
    return sum(i["accepted"] for i in report["inputs"] if i["kind"] == kind)


def reasons(store: Path) -> list[str]:
    return pd.read_parquet(store / "rejects.parquet")["reason"].tolist()


# ---------------------------------------------------------------------------- damaged bytes


def test_truncated_gzip_stops_naming_the_file_and_keep_going_loads_the_rows_before_the_break(tmp_path):
    data = fixture_folder(tmp_path)
    whole = gzip.compress(csv_text(API_HEADER, api_rows(3000)).encode())
    (data / "crime").mkdir()
    (data / "crime" / "api.csv.gz").write_bytes(whole[: len(whole) // 2])
    code, error, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and report is None and not (tmp_path / "store").exists()
    assert "crime/api.csv.gz" in error and "breaks off" in error and "rows readable" in error and "--keep-going" in error
    code, _, report, out = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0
    (damaged,) = report["damaged"]
    assert damaged["path"] == "crime/api.csv.gz" and "every row after the break" in damaged["rows_lost"]
    got = accepted(report, "policeuk_api")
    (item,) = [i for i in report["inputs"] if i["kind"] == "policeuk_api"]
    assert 1000 < got < 3000 and damaged["rows_accepted"] == got
    assert damaged["rows_recovered"] == item["rows_read"] - 1  # all but the row cut in two
    assert reasons(tmp_path / "store").count("file truncated") == 1
    assert "DAMAGED (kept going): crime/api.csv.gz" in out
    assert_accounted(report, data, tmp_path / "store")


@pytest.mark.parametrize("row", [10, 1800])  # inside the first 64 KB, and far after it
def test_a_nul_byte_rejects_its_row_wherever_it_is(tmp_path, row):
    data = fixture_folder(tmp_path)
    text = csv_text(STREET_HEADER, street_rows(2000))
    lines = text.split("\n")
    lines[row] = lines[row][:20] + "\x00" + lines[row][20:]
    (data / MONTHLY).parent.mkdir(parents=True)
    (data / MONTHLY).write_text("\n".join(lines))
    assert len("\n".join(lines[:row])) > 65536 or row < 100
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "1 row rejected for NUL bytes in row" in error and "1,999 rows readable" in error
    code, _, report, _ = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0 and accepted(report, "policeuk_street") == 1999
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet")
    assert rejects[["source_row", "reason"]].values.tolist() == [[row, "NUL bytes in row"]]
    assert_accounted(report, data, tmp_path / "store")


def test_an_invalid_byte_rejects_its_row_and_the_rest_stays_utf8(tmp_path):
    data = fixture_folder(tmp_path)
    rows = street_rows(5)
    rows[0][6] = "On or near Café Row"
    raw = csv_text(STREET_HEADER, rows).encode("utf-8").split(b"\n")
    raw[3] = raw[3].replace(b"Fixture Street", b"Fixture \x81Street")
    (data / MONTHLY).parent.mkdir(parents=True)
    (data / MONTHLY).write_bytes(b"\n".join(raw))
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "undecodable bytes in row" in error
    code, _, report, _ = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0 and accepted(report, "policeuk_street") == 4
    events = pd.read_parquet(tmp_path / "store" / "events.parquet")
    assert "On or near Café Row" in events["location"].tolist()  # not mojibake
    assert reasons(tmp_path / "store") == ["undecodable bytes in row"]
    assert_accounted(report, data, tmp_path / "store")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])  # with a BOM, and without one
def test_utf16_files_are_decoded_not_skipped(tmp_path, encoding):
    data = fixture_folder(tmp_path)
    (data / "crime").mkdir()
    (data / "crime" / "export.csv").write_bytes(csv_text(API_HEADER, api_rows(40)).encode(encoding))
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_api") == 40
    flags = [f["message"] for f in report["quality_flags"] if f["check"] == "encoding"]
    assert flags and "utf-16" in flags[0]
    assert_accounted(report, data, tmp_path / "store")


def test_a_binary_file_named_csv_is_damaged_not_ignored(tmp_path):
    data = fixture_folder(tmp_path)
    (data / "crime").mkdir()
    (data / "crime" / "export.csv").write_bytes(b"\x00\x00\x00\x00" * 4000)
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "crime/export.csv" in error and "NUL" in error
    code, _, report, _ = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0 and [f["status"] for f in report["files"] if f["path"] == "crime/export.csv"] == ["damaged"]
    assert_accounted(report, data, tmp_path / "store")


def test_an_empty_monthly_file_is_damaged_with_nothing_recovered(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / "crime" / "2017-02" / "2017-02-fixture-street.csv", STREET_HEADER, street_rows(3, "2017-02"))
    (data / MONTHLY).parent.mkdir(parents=True)
    (data / MONTHLY).write_bytes(b"")
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "2017-01-fixture-street.csv: file is empty" in error
    code, _, report, _ = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0 and accepted(report, "policeuk_street") == 3
    (damaged,) = report["damaged"]
    assert damaged["path"] == MONTHLY and damaged["rows_recovered"] == 0 and damaged["rows_lost"] == "all"
    assert_accounted(report, data, tmp_path / "store")


def test_a_truncated_archive_yields_its_whole_members_and_the_start_of_the_broken_one(tmp_path):
    data = fixture_folder(tmp_path)
    archive = data / "police.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for m in (1, 2, 3):
            zf.writestr(f"2017-0{m}/2017-0{m}-fixture-street.csv", csv_text(STREET_HEADER, street_rows(400, f"2017-0{m}", m)))
    raw = archive.read_bytes()
    with zipfile.ZipFile(archive) as zf:
        third = zf.infolist()[2]
    archive.write_bytes(raw[: third.header_offset + 200 + third.compress_size // 2])
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "police.zip" in error and "breaks off" in error
    code, _, report, _ = ingest_cli(data, tmp_path / "store", "--keep-going")
    assert code == 0
    got = accepted(report, "policeuk_street")
    assert 800 < got < 1200
    (damaged,) = report["damaged"]
    assert damaged["path"] == "police.zip" and damaged["member"].endswith("2017-03-fixture-street.csv")
    assert damaged["rows_accepted"] == damaged["rows_recovered"] == got - 800
    assert_accounted(report, data, tmp_path / "store")


def test_a_decompression_bomb_is_refused_with_the_figure(tmp_path):
    data = fixture_folder(tmp_path)
    (data / "crime").mkdir()
    (data / "crime" / "api.csv.gz").write_bytes(gzip.compress(csv_text(API_HEADER, api_rows(30_000)).encode()))
    env = {"SVRISK_INGEST__MAX_TABLE_MB": "1"}
    code, error, _, _ = ingest_cli(data, tmp_path / "store", env=env)
    assert code == 2 and "decompresses to more than 1.0 MB, over the ingest limit max_table_mb = 1" in error
    code, _, report, _ = ingest_cli(data, tmp_path / "store", "--keep-going", env=env)
    assert code == 0 and accepted(report, "policeuk_api") == 0
    assert report["damaged"][0]["path"] == "crime/api.csv.gz" and report["limits"]["max_table_mb"] == 1
    assert_accounted(report, data, tmp_path / "store")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(2500))  # ~0.4 MB; the boundary file is ~0.1 MB
    code, error, _, _ = ingest_cli(data, tmp_path / "store", env={"SVRISK_INGEST__MAX_FILE_MB": "0.25"})
    assert code == 2 and MONTHLY in error and re.search(r"the file is \d+\.\d KB", error)
    assert "over the ingest limit max_file_mb = 0.25" in error


# ---------------------------------------------------------------------------- layout of a file


@pytest.mark.parametrize("how", ["every row", "some rows"])
def test_trailing_separators_are_ignored(tmp_path, how):
    data = fixture_folder(tmp_path)
    lines = csv_text(STREET_HEADER, street_rows(20)).splitlines()
    lines = [lines[0]] + [ln + "," if how == "every row" or i % 2 else ln for i, ln in enumerate(lines[1:])]
    (data / MONTHLY).parent.mkdir(parents=True)
    (data / MONTHLY).write_text("\n".join(lines) + "\n")
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 20
    assert any(f["check"] == "trailing_separators" for f in report["quality_flags"])
    assert_accounted(report, data, tmp_path / "store")


def test_cr_only_line_endings_are_read(tmp_path):
    data = fixture_folder(tmp_path)
    (data / MONTHLY).parent.mkdir(parents=True)
    (data / MONTHLY).write_text(csv_text(STREET_HEADER, street_rows(15), newline="\r"), newline="")
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 15
    assert_accounted(report, data, tmp_path / "store")


def test_a_semicolon_file_with_decimal_commas_is_crime_not_a_lookup(tmp_path):
    data = fixture_folder(tmp_path)
    rows = street_rows(12)
    for r in rows:
        r[4], r[5] = r[4].replace(".", ","), r[5].replace(".", ",")
    (data / "crime").mkdir()
    (data / "crime" / "export.csv").write_text(csv_text(STREET_HEADER, rows, delimiter=";"))
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0
    (item,) = [i for i in report["inputs"] if i["source"] == "crime/export.csv"]
    assert item["kind"] == "policeuk_street" and item["accepted"] == 12
    checks = {f["check"] for f in item["flags"]}
    assert {"delimiter", "decimal_commas"} <= checks
    assert_accounted(report, data, tmp_path / "store")


def test_a_lone_decimal_comma_is_called_a_comma_decimal(tmp_path):
    data = fixture_folder(tmp_path)
    rows = street_rows(6)
    rows[2][4] = rows[2][4].replace(".", ",")
    write_csv(data / MONTHLY, STREET_HEADER, rows)
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and reasons(tmp_path / "store") == ["comma decimal"]
    assert_accounted(report, data, tmp_path / "store")


def test_a_huge_field_rejects_its_row_not_the_file(tmp_path):
    data = fixture_folder(tmp_path)
    rows = street_rows(5)
    rows[1][11] = "x" * 2_500_000  # longer than the reader's block and than max_field_chars
    write_csv(data / MONTHLY, STREET_HEADER, rows)
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 4
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet")
    assert rejects["reason"].tolist() == ["field too long"] and "1,000,000" in rejects["detail"].iloc[0]
    assert_accounted(report, data, tmp_path / "store")


# ---------------------------------------------------------------------------- plausibility


def test_months_before_police_uk_began_or_in_the_future_are_rejects_with_a_reason(tmp_path):
    data = fixture_folder(tmp_path)
    rows = street_rows(6)
    for r, m in zip(rows, ["0000-01", "1000-01", "1900-01", "2010-11", "2999-01"], strict=False):
        r[1] = m
    write_csv(data / MONTHLY, STREET_HEADER, rows)
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 1
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet").sort_values("source_row")
    assert rejects["reason"].tolist() == ["month before the source began"] * 4 + ["month in the future"]
    assert "police.uk begins in 2010-12; got 1900-01" in rejects["detail"].tolist()
    events = pd.read_parquet(tmp_path / "store" / "events.parquet")
    assert events["month"].min() == pd.Timestamp("2017-01-01")
    assert_accounted(report, data, tmp_path / "store")


def test_none_and_null_ids_are_missing_not_duplicates(tmp_path):
    data = fixture_folder(tmp_path)
    rows = [api_row(str(i), pid, "2017-02", "anti-social-behaviour", 530500 + 10 * i, 180500)
            for i, pid in enumerate(["None", "None", "null", "NULL", "", " none "])]
    write_csv(data / "crime" / "api.csv", API_HEADER, rows)
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_api") == 6
    events = pd.read_parquet(tmp_path / "store" / "events.parquet")
    assert events["crime_id"].isna().all()
    assert_accounted(report, data, tmp_path / "store")


def test_boundaries_labelled_web_mercator_but_in_bng_are_refused_naming_both(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries", crs="EPSG:3857")
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(5))
    code, error, _, _ = ingest_cli(data, tmp_path / "store")
    assert code == 2 and "declares EPSG:3857" in error and "fit British National Grid (EPSG:27700)" in error
    assert 'crs = "EPSG:27700"' in error
    (data / "catalogue.toml").write_text(
        '[[source]]\nkind = "boundary_lsoa2011"\npath = "boundaries/lsoa2011.gpkg"\ncrs = "EPSG:27700"\n\n'
        '[[source]]\nkind = "policeuk_street"\npath = "crime"\n')
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and accepted(report, "policeuk_street") == 5
    assert any(f["check"] == "crs_overridden" for f in report["quality_flags"])
    assert_accounted(report, data, tmp_path / "store")


# ---------------------------------------------------------------------------- what a folder holds


def two_layer_gpkg(path: Path) -> None:
    codes = list(LSOAS)
    gpd.GeoDataFrame({"code": codes, "label": ["a", "b"]}, geometry=list(LSOAS.values()), crs="EPSG:27700") \
        .to_file(path, layer="lsoa_2011", driver="GPKG")
    gpd.GeoDataFrame({"code": ["E05900001"], "label": ["ward"]}, geometry=[LSOAS[codes[0]].union(LSOAS[codes[1]])],
                     crs="EPSG:27700").to_file(path, layer="wards_2022", driver="GPKG")


def test_a_two_layer_geopackage_is_read_layer_by_layer_with_editions_from_layer_names(tmp_path):
    data = tmp_path / "data"
    (data / "boundaries").mkdir(parents=True)
    two_layer_gpkg(data / "boundaries" / "boundaries_2021.gpkg")  # the file name's year is not an edition
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(4))
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0
    layers = {i["source"]: i["table"] for i in report["inputs"] if i["kind"] == "boundary"}
    assert layers == {"boundaries/boundaries_2021.gpkg!lsoa_2011": "units_lsoa2011",
                      "boundaries/boundaries_2021.gpkg!wards_2022": "units_ward2022"}
    assert report["tables"]["units_lsoa2011"] == 2 and report["tables"]["units_ward2022"] == 1
    assert_accounted(report, data, tmp_path / "store")
    # Listed in a catalogue without naming a layer: refused, never "the first layer, silently".
    (data / "catalogue.toml").write_text('[[source]]\nkind = "boundary_lsoa2011"\npath = '
                                         '"boundaries/boundaries_2021.gpkg"\n')
    code, error, _, _ = ingest_cli(data, tmp_path / "store2")
    assert code == 2 and "holds 2 layers (lsoa_2011, wards_2022); name the one to read" in error


def test_a_point_layer_is_unrecognised_with_its_geometry(tmp_path):
    data = fixture_folder(tmp_path)
    gpd.GeoDataFrame({"name": ["x"]}, geometry=gpd.points_from_xy([530500], [180500]), crs="EPSG:27700") \
        .to_file(data / "points.gpkg", driver="GPKG")
    code, _, report, out = ingest_cli(data, tmp_path / "store")
    assert code == 0
    assert {"path": "points.gpkg", "why": "vector layer of Point geometry (boundaries are polygons)"} in report["unrecognised"]
    assert "not used: points.gpkg" in out
    assert_accounted(report, data, tmp_path / "store")


def test_a_zipped_shapefile_in_boundaries_is_a_boundary_not_a_police_archive(tmp_path):
    shp = tmp_path / "shp"
    shp.mkdir()
    gpd.GeoDataFrame({"LSOA11CD": list(LSOAS)}, geometry=list(LSOAS.values()), crs="EPSG:27700") \
        .to_file(shp / "lsoa.shp")
    data = tmp_path / "data"
    (data / "boundaries").mkdir(parents=True)
    with zipfile.ZipFile(data / "boundaries" / "lsoa_shapefile.zip", "w") as zf:
        for p in shp.iterdir():
            zf.write(p, f"lsoa/{p.name}")
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(4))
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0 and report["tables"]["units_lsoa2011"] == 2 and accepted(report, "policeuk_street") == 4
    assert_accounted(report, data, tmp_path / "store")


def test_a_zip_of_nothing_usable_is_unrecognised(tmp_path):
    data = fixture_folder(tmp_path)
    with zipfile.ZipFile(data / "photos.zip", "w") as zf:
        zf.writestr("readme.txt", "holiday")
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0
    assert report["unrecognised"] == [{"path": "photos.zip", "why": "zip archive of 1 files, none a police.uk "
                                       "monthly file or a vector layer"}]
    assert_accounted(report, data, tmp_path / "store")


def test_documents_spreadsheets_hidden_files_and_loops_are_accounted_for(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(3))
    (data / "README.md").write_text("# notes")
    (data / "counts.xlsx").write_bytes(b"PK\x03\x04")
    (data / ".DS_Store").write_bytes(b"\x00")
    (data / "crime" / "again").symlink_to(data / "crime")
    code, _, report, _ = ingest_cli(data, tmp_path / "store")
    assert code == 0
    why = {u["path"]: u["why"] for u in report["unrecognised"]}
    assert why["README.md"].startswith("documentation") and why["counts.xlsx"].startswith("a spreadsheet")
    assert why[".DS_Store"] == "hidden file, not read" and why["crime/again/"].startswith("link to a folder already read")
    assert report["accounted"] == {"found": 6, "ingested": 2, "unrecognised": 4, "damaged": 0}
    assert_accounted(report, data, tmp_path / "store")


# ---------------------------------------------------------------------------- the machine says no


def _ingest_with_permissions(data: Path, store: Path, cwd: Path):
    """`svrisk ingest` in a process that file permissions apply to (even when the tests run as root)."""
    proc = run_cli_without_root_override(["ingest", "--data", str(data), "--out", str(store)], cwd)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == (1 if proc.returncode else 0), proc.stderr
    return proc.returncode, errors[0] if errors else "", read_report(store), proc.stderr


def test_an_unreadable_file_and_folder_stop_before_loading_with_one_line(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(3))
    write_csv(data / "crime" / "api.csv", API_HEADER, api_rows(3))
    (data / "secret").mkdir()
    (data / "secret" / "x.csv").write_text("a,b\n1,2\n")
    os.chmod(data / "crime" / "api.csv", 0)
    os.chmod(data / "secret", 0)
    try:
        code, error, report, err = _ingest_with_permissions(data, tmp_path / "out" / "store", tmp_path)
    finally:
        os.chmod(data / "secret", 0o755)
        os.chmod(data / "crime" / "api.csv", 0o644)
    assert code == 2 and report is None and not (tmp_path / "out" / "store").exists()
    assert "crime/api.csv: cannot be read: permission denied" in error
    assert "secret/: folder cannot be read" in error
    assert "  boundary" not in err  # found while recognising files: nothing was loaded


def test_a_read_only_output_folder_fails_before_any_work(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(3))
    (tmp_path / "out").mkdir()
    os.chmod(tmp_path / "out", 0o555)
    try:
        code, error, report, err = _ingest_with_permissions(data, tmp_path / "out" / "store", tmp_path)
    finally:
        os.chmod(tmp_path / "out", 0o755)
    assert code == 2 and report is None
    assert "cannot write the store: permission denied" in error and str(tmp_path / "out") in error
    assert "  boundary" not in err  # checked before any file was loaded


def test_a_full_disk_is_one_line_and_leaves_the_old_store_and_no_debris(tmp_path, monkeypatch):
    data = fixture_folder(tmp_path)
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(3))
    store = tmp_path / "out" / "store"
    assert ingest_cli(data, store)[0] == 0
    def events_bytes():  # the events dataset: one file per month and zone
        return {f.name: f.read_bytes() for f in sorted((store / "events.parquet").iterdir())}

    before = events_bytes()
    assert before
    write_csv(data / "crime" / "2017-02" / "2017-02-fixture-street.csv", STREET_HEADER, street_rows(3, "2017-02"))

    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1")  # a few bytes land, then the device is full
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", full)
    code, error, report, _ = ingest_cli(data, store)
    assert code == 2 and "cannot write the store: no space left on the device" in error
    assert events_bytes() == before  # the old store is intact
    assert sorted(p.name for p in store.parent.iterdir()) == ["store"]  # no temporary folder left


def test_interrupted_ingests_leave_no_debris_on_the_next_start(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(3))
    out = tmp_path / "out"
    dead, live = out / ".store.dead1234", out / ".store.live5678"
    for folder, pid in ((dead, 4_194_303), (live, os.getpid())):
        folder.mkdir(parents=True)
        (folder / "events.parquet").write_bytes(b"partial")
        (folder / ".svrisk-ingest-owner").write_text(f"{pid} {os.uname().nodename}\n")
    code, _, report, out_text = ingest_cli(data, out / "store")
    assert code == 0 and "removed .store.dead1234 left by an interrupted ingest" in out_text
    assert sorted(p.name for p in out.iterdir()) == [".store.live5678", "store"]
    assert_accounted(report, data, out / "store")


def test_an_output_folder_that_is_not_a_store_is_never_replaced(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / MONTHLY, STREET_HEADER, street_rows(3))
    docs = tmp_path / "Documents"
    docs.mkdir()
    (docs / "thesis.txt").write_text("years of work")
    code, error, _, _ = ingest_cli(data, docs)
    assert code == 2 and "is not an svrisk store" in error
    assert (docs / "thesis.txt").read_text() == "years of work"


def test_revoking_an_unknown_key_is_one_line(tmp_path):
    result = runner.invoke(app, ["keys", "revoke", "nope"], env={"SVRISK_SERVICE__KEYS_FILE": str(tmp_path / "k.json")})
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        f"error: no API key with key_id='nope' in {tmp_path / 'k.json'} (known ids: none yet; `svrisk keys list` "
        "shows them)"]
