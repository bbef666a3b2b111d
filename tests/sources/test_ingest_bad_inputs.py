"""A corpus of bad inputs: each gives a clear error or a reasoned reject, never a silent drop or a crash."""

from __future__ import annotations

import json
import zipfile

import pandas as pd
import pytest
from ingest_fixtures import STREET_HEADER, lonlat, street_row, write_boundaries, write_csv

from sources.ingest import DamagedInputs, ingest
from sources.readers import DataError


def run(tmp_path, rows=None, header=STREET_HEADER, name="2017-01-fixture-street.csv", **kw):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    if rows is not None:
        write_csv(data / "crime" / "2017-01" / name, header, rows, **kw)
    report = ingest(data, tmp_path / "store")
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet")
    return report, rejects


def crime_input(report):
    return next(i for i in report["inputs"] if i["kind"] == "policeuk_street")


def test_good_rows_are_accepted_and_counts_reconcile(tmp_path):
    report, rejects = run(tmp_path, [street_row("a" * 64, "2017-01", 530500, 180500),
                                     street_row("b" * 64, "2017-01", 531500, 180500, "Robbery", "E01900002")])
    item = crime_input(report)
    assert (item["rows_read"], item["accepted"], item["rejected"]) == (2, 2, 0)
    events = pd.read_parquet(tmp_path / "store" / "events.parquet")
    assert sorted(events["group"]) == ["robbery", "violence"]
    assert report["reconciled"] is True


def test_malformed_row_is_rejected_with_its_row_number(tmp_path):
    rows = [street_row("a" * 64, "2017-01", 530500, 180500), ["only", "three", "fields"],
            street_row("c" * 64, "2017-01", 530600, 180500)]
    report, rejects = run(tmp_path, rows)
    item = crime_input(report)
    assert (item["rows_read"], item["accepted"], item["rejected"]) == (3, 2, 1)
    bad = rejects[rejects["reason"] == "malformed row"]
    assert bad["source_row"].tolist() == [2]
    assert "3 fields where the header has 12" in bad["detail"].iloc[0]


def test_blank_zero_and_out_of_area_coordinates_are_rejected(tmp_path):
    blank = street_row("a" * 64, "2017-01", 530500, 180500)
    blank[4] = blank[5] = ""
    zero = street_row("b" * 64, "2017-01", 530500, 180500)
    zero[4] = zero[5] = "0"
    far = street_row("c" * 64, "2017-01", 540000, 190000)  # ~13 km away
    near = street_row("d" * 64, "2017-01", 532100, 180500)  # 100 m outside: inside the 250 m tolerance
    report, rejects = run(tmp_path, [blank, zero, far, near])
    reasons = dict(zip(rejects["source_row"], rejects["reason"], strict=True))
    assert reasons == {1: "missing coordinates", 2: "coordinates at 0,0", 3: "outside the study area"}
    assert crime_input(report)["accepted"] == 1


def test_swapped_latitude_longitude_in_one_row_is_rejected(tmp_path):
    good = [street_row(f"{i:064x}", "2017-01", 530100 + 50 * i, 180500) for i in range(5)]
    swapped = street_row("f" * 64, "2017-01", 530500, 180500)
    swapped[4], swapped[5] = swapped[5], swapped[4]
    report, rejects = run(tmp_path, good + [swapped])
    assert rejects["reason"].tolist() == ["latitude/longitude swapped"]
    assert rejects["source_row"].tolist() == [6]


def test_whole_file_with_swapped_columns_is_corrected_and_flagged(tmp_path):
    rows = [street_row(f"{i:064x}", "2017-01", 530100 + 50 * i, 180500) for i in range(6)]
    for r in rows:
        r[4], r[5] = r[5], r[4]
    report, rejects = run(tmp_path, rows)
    item = crime_input(report)
    assert item["accepted"] == 6
    assert any(f["check"] == "swapped_coordinate_columns" for f in item["flags"])


def test_a_repeated_record_is_a_duplicate_naming_the_first(tmp_path):
    rows = [street_row("a" * 64, "2017-01", 530500, 180500), street_row("a" * 64, "2017-01", 530500, 180500),
            street_row("", "2017-01", 530500, 180500, "Anti-social behaviour"),
            street_row("", "2017-01", 530500, 180500, "Anti-social behaviour")]
    report, rejects = run(tmp_path, rows)
    assert rejects["reason"].tolist() == ["duplicate record"]
    assert rejects["detail"].iloc[0].endswith("2017-01-fixture-street.csv row 1")
    assert crime_input(report)["accepted"] == 3  # ASB rows carry no id: two alike are two incidents


def test_unknown_crime_type_and_bad_month_are_rejected(tmp_path):
    rows = [street_row("a" * 64, "2017-01", 530500, 180500, "Jaywalking"),
            street_row("b" * 64, "Jan 2017", 530500, 180500)]
    report, rejects = run(tmp_path, rows)
    assert sorted(rejects["reason"]) == ["crime type not in the taxonomy", "unparseable month"]


def test_mixed_lsoa_editions_are_flagged(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "b11")
    import geopandas as gpd
    from shapely.geometry import box

    (data / "b21").mkdir()
    gpd.GeoDataFrame({"LSOA21CD": ["E01950001", "E01900002"], "LSOA21NM": ["x", "y"]},
                     geometry=[box(530000, 180000, 531000, 181000), box(531000, 180000, 532000, 181000)],
                     crs="EPSG:27700").to_file(data / "b21" / "lsoa2021.gpkg", driver="GPKG")
    rows = [street_row("a" * 64, "2017-01", 530500, 180500, lsoa="E01900001"),
            street_row("b" * 64, "2017-01", 530600, 180500, lsoa="E01950001")]
    write_csv(data / "crime" / "2017-01" / "2017-01-fixture-street.csv", STREET_HEADER, rows)
    report = ingest(data, tmp_path / "store")
    flags = crime_input(report)["flags"]
    assert any(f["check"] == "mixed_lsoa_editions" for f in flags)


def test_latin1_file_is_decoded_and_flagged_not_garbled(tmp_path):
    row = street_row("a" * 64, "2017-01", 530500, 180500)
    row[6] = "On or near Café Row"
    report, _ = run(tmp_path, [row], encoding="latin-1")
    events = pd.read_parquet(tmp_path / "store" / "events.parquet")
    assert events["location"].iloc[0] == "On or near Café Row"


def test_empty_file_stops_with_a_clear_message(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    target = data / "crime" / "2017-01" / "2017-01-fixture-street.csv"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    with pytest.raises(DamagedInputs, match=r"2017-01-fixture-street\.csv: file is empty"):
        ingest(data, tmp_path / "store")
    assert not (tmp_path / "store").exists()  # nothing half-written
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # and no temporary folder left


def test_missing_column_names_the_file_and_the_column(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    header = [h for h in STREET_HEADER if h != "Crime type"]
    write_csv(data / "crime" / "2017-01" / "2017-01-fixture-street.csv", header, [["x"] * len(header)])
    with pytest.raises(DataError, match=r"missing column\(s\) \['Crime type'\]"):
        ingest(data, tmp_path / "store")


def test_a_zip_member_that_is_not_a_street_file_names_the_member(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    good = tmp_path / "archive.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("2017-01/2017-01-fixture-street.csv", "a,b\n" * 2000)
    raw = good.read_bytes()
    (data / "archive.zip").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"damaged input file: archive\.zip!2017-01/2017-01-fixture-street\.csv: missing col"):
        ingest(data, tmp_path / "store")


def test_boundary_with_wrong_crs_label_is_refused(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries", crs="EPSG:4326")
    with pytest.raises(DataError, match="look like metres: the CRS is wrong"):
        ingest(data, tmp_path / "store")


def test_points_in_the_wrong_crs_are_rejected(tmp_path):
    row = street_row("a" * 64, "2017-01", 530500, 180500)
    row[4], row[5] = "530500", "180500"  # BNG metres in the longitude/latitude columns
    report, rejects = run(tmp_path, [row])
    assert rejects["reason"].tolist() == ["coordinates in the wrong CRS"]


def test_rejects_keep_the_raw_row(tmp_path):
    rows = [street_row("a" * 64, "2017-01", 540000, 190000)]
    _, rejects = run(tmp_path, rows)
    raw = json.loads(rejects["raw"].iloc[0])
    assert raw["Crime ID"] == "a" * 64 and raw["Month"] == "2017-01"


def test_monthly_folder_and_archive_give_the_same_events(tmp_path):
    rows = [street_row(f"{i:064x}", "2017-01", 530100 + 50 * i, 180500) for i in range(4)]
    run(tmp_path / "folder", rows)
    data = tmp_path / "zipped" / "data"
    write_boundaries(data / "boundaries")
    src = write_csv(tmp_path / "tmp.csv", STREET_HEADER, rows)
    with zipfile.ZipFile(data / "police.zip", "w") as zf:
        zf.write(src, "2017-01/2017-01-fixture-street.csv")
    ingest(data, tmp_path / "zipped" / "store")
    a = pd.read_parquet(tmp_path / "folder" / "store" / "events.parquet")
    b = pd.read_parquet(tmp_path / "zipped" / "store" / "events.parquet")
    assert a["event_id"].tolist() == b["event_id"].tolist()
    assert lonlat(530100, 180500)  # fixture helper round-trips
