"""The Met's area tables in the Datastore's own layouts, overlapping releases across files,
the monthly crime dashboard and Census ethnicity: small hand-made files with numbers to check by hand."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from ingest_fixtures import write_boundaries, write_csv

from sources.catalogue import recognise_columns
from sources.ingest import ingest

LSOA_WIDE = ["LSOA Code", "LSOA Name", "Borough", "Major Category", "Minor Category"]


def wide(months: list[str], rows: list[tuple[str, str, str, list[int]]]) -> tuple[list[str], list[list[str]]]:
    """A London Datastore wide table: one row per LSOA and category, one column per month."""
    header = LSOA_WIDE + [m.replace("-", "") for m in months]
    return header, [[code, "Fixture", "E09000099", major, minor, *map(str, counts)]
                    for code, major, minor, counts in rows]


@pytest.fixture
def two_releases(tmp_path):
    """Release A: 2023-11..2024-03; release B: 2024-02..2024-04 (revises E01900001 violence in 2024-02
    from 5 to 7, and adds Stalking And Harassment, a minor category release A had not got)."""
    data = tmp_path / "data"
    write_boundaries(data / "boundaries", edition_col="LSOA21CD")
    a = wide(["2023-11", "2023-12", "2024-01", "2024-02", "2024-03"], [
        ("E01900001", "VIOLENCE AGAINST THE PERSON", "VIOLENCE WITH INJURY", [2, 3, 4, 5, 6]),
        ("E01900002", "ROBBERY", "ROBBERY OF PERSONAL PROPERTY", [0, 0, 1, 0, 2]),
        ("E01900002", "BURGLARY", "BURGLARY IN A DWELLING", [3, 3, 3, 3, 3]),
    ])
    b = wide(["2024-02", "2024-03", "2024-04"], [
        ("E01900001", "VIOLENCE AGAINST THE PERSON", "VIOLENCE WITH INJURY", [7, 6, 8]),
        ("E01900001", "VIOLENCE AGAINST THE PERSON", "STALKING AND HARASSMENT", [9, 9, 9]),
        ("E01900002", "ROBBERY", "ROBBERY OF PERSONAL PROPERTY", [0, 2, 1]),
        ("E01900002", "BURGLARY", "BURGLARY IN A DWELLING", [3, 3, 3]),
    ])
    write_csv(data / "crime" / "lsoa_release_a.csv", *a)
    write_csv(data / "crime" / "lsoa_release_b.csv", *b)
    return data


def test_the_datastore_layouts_are_recognised_by_their_columns():
    assert recognise_columns(LSOA_WIDE + ["202401", "202402"]) == "met_lsoa_monthly"
    assert recognise_columns(["WardName", "WardCode", "MajorText", "MinorText", "LookUp_BoroughName", "201004"]) \
        == "met_ward_monthly"
    assert recognise_columns(["LSOA Code", "LSOA Name", "Borough", "Group", "SubGroup", "201801"]) == "met_lsoa_monthly"
    assert recognise_columns(["month_year", "area_type", "borough_snt", "area_name", "area_code", "crime_type",
                              "crime_subtype", "measure", "financial_year", "fy_fyindex", "count",
                              "refresh_date"]) == "met_dashboard"
    assert recognise_columns(["date", "LSOA21CD", "Total", "Asian, Asian British or Asian Welsh", "White"]) \
        == "ethnicity_census"


def test_overlapping_releases_in_two_files_count_each_month_once_from_the_latest(two_releases, tmp_path):
    report = ingest(two_releases, tmp_path / "store")
    counts = pd.read_parquet(tmp_path / "store" / "area_counts.parquet")
    per_month = counts.groupby("period_start")["release"].unique()
    assert {m.strftime("%Y-%m"): list(r) for m, r in per_month.items()} == {
        "2023-11": ["2023-11..2024-03"], "2023-12": ["2023-11..2024-03"], "2024-01": ["2023-11..2024-03"], "2024-02": ["2024-02..2024-04"],
        "2024-03": ["2024-02..2024-04"], "2024-04": ["2024-02..2024-04"]}
    violence = counts[counts["group"] == "violence"].groupby("period_start")["count"].sum()
    # 2023-11..2024-01 from A (2, 3, 4); 2024-02..04 from B: injury 7, 6, 8 plus stalking 9 each month
    assert violence.tolist() == [2.0, 3.0, 4.0, 16.0, 15.0, 17.0]
    assert counts.loc[counts["group"] == "robbery", "count"].sum() == 1 + 0 + 2 + 1
    # the six superseded rows of A (3 categories x 2024-02, 2024-03) are rejects that name the kept release
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet")
    sup = rejects[rejects["reason"] == "superseded by a later release"]
    assert len(sup) == 6 and sup["source_file"].str.endswith("lsoa_release_a.csv").all()
    assert sup["detail"].str.contains("kept from the release ending 2024-04").all()
    a = next(i for i in report["inputs"] if i["path"].endswith("lsoa_release_a.csv"))
    assert (a["rows_read"], a["accepted"], a["rejected"]) == (15, 9, 6)
    (overlap,) = [f for f in report["quality_flags"] if f["check"] == "overlapping_releases"]
    release_a, release_b = (20 + 3 + 15), (21 + 27 + 3 + 9)  # violence, robbery, burglary (+ stalking in B)
    assert overlap["naive_total"] == release_a + release_b
    assert overlap["kept_total"] == counts["count"].sum() == (2 + 3 + 4) + 1 + 9 + release_b
    (rev,) = [f for f in report["quality_flags"] if f["check"] == "release_revisions"]
    # compared cells: 3 categories x 2 months; revised: violence 2024-02 (5 -> 7) and robbery 2024-03 (2 = 2: no)
    assert (rev["cells_compared"], rev["cells_revised"], rev["max_revision"]) == (6, 1, 2.0)
    (scheme,) = [f for f in report["quality_flags"] if f["check"] == "category_scheme_change"]
    assert scheme["spans"] == {"Violence Against The Person / Stalking And Harassment": "2024-02..2024-04"}


def test_the_order_of_files_does_not_change_which_release_is_kept(two_releases, tmp_path):
    (two_releases / "crime" / "lsoa_release_a.csv").rename(two_releases / "crime" / "z_release_a.csv")
    ingest(two_releases, tmp_path / "store")
    counts = pd.read_parquet(tmp_path / "store" / "area_counts.parquet")
    assert counts.loc[counts["period_start"] == "2024-02-01", "release"].unique().tolist() == ["2024-02..2024-04"]


DASH = ["month_year", "area_type", "borough_snt", "area_name", "area_code", "crime_type", "crime_subtype",
        "measure", "financial_year", "fy_fyindex", "count", "refresh_date"]


def dash_row(month, area_type, code, subtype, count, refresh="2026-03-18", measure="Offences"):
    return [month, area_type, "Fixture", "Fixture", code, "Knife Crime", subtype, measure, "fy", "x", str(count), refresh]


def test_dashboard_series_load_into_their_own_table_with_the_latest_refresh(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    write_csv(data / "crime" / "dash_old.csv", DASH, [
        dash_row("2024-01", "Borough", "E09000099", "Knife Crime", 5, refresh="2025-08-02"),
        dash_row("2024-02", "Borough", "E09000099", "Knife Crime", 9, refresh="2025-08-02"),
    ])
    write_csv(data / "crime" / "dash_new.csv", DASH, [
        dash_row("2024-02", "Borough", "E09000099", "Knife Crime", 8),  # revised 9 -> 8
        dash_row("2024-03", "Borough", "E09000099", "knife crime", 4),
        dash_row("2024-03", "Borough", "E09000099", "Knife Crime", 1, measure="Positive Outcomes"),
        dash_row("2024-03", "Nowhere", "E09000099", "Knife Crime", 1),
    ])
    report = ingest(data, tmp_path / "store")
    dash = pd.read_parquet(tmp_path / "store" / "dashboard_counts.parquet")
    offences = dash[dash["measure"] == "Offences"]
    assert dict(zip(offences["month"].dt.strftime("%Y-%m"), offences["count"], strict=True)) == {"2024-01": 5.0, "2024-02": 8.0, "2024-03": 4.0}
    assert set(dash["subtype"]) == {"Knife Crime"}  # one spelling per subtype
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet")
    assert sorted(rejects["reason"]) == ["superseded by a later refresh", "unknown area type"]
    assert not (tmp_path / "store" / "area_counts.parquet").exists()  # never mixed into recorded-crime counts
    assert any(f["check"] == "absent_months_are_zero" for f in report["quality_flags"])
    assert report["reconciled"]


def test_census_ethnic_groups_are_tidy_rows_with_bad_rows_rejected(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries", edition_col="LSOA21CD")
    write_csv(data / "population" / "ts021.csv", ["date", "LSOA21CD", "Total", "Asian", "Black", "White"], [
        ["2021", "E01900001", "100", "20", "30", "50"],
        ["2021", "E01900002", "100", "20", "30", "x"],
    ])
    report = ingest(data, tmp_path / "store")
    eth = pd.read_parquet(tmp_path / "store" / "ethnicity.parquet")
    assert eth.set_index("group")["residents"].to_dict() == {"Asian": 20.0, "Black": 30.0, "White": 50.0}
    assert (eth["edition"] == "lsoa2021").all() and (eth["year"] == 2021).all()
    (item,) = [i for i in report["inputs"] if i["table"] == "ethnicity"]
    assert (item["rows_read"], item["accepted"], item["rejected"]) == (2, 1, 1)
    assert json.loads(json.dumps(item["rejected_by_reason"])) == {"group count missing or negative": 1}
