"""On the real Barnet extract: every file loads, counts reconcile, and the known defects are flagged."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def report(real_store):
    return json.loads((real_store / "ingest_report.json").read_text())


def flags(report, check):
    return [f for f in report["quality_flags"] if f["check"] == check]


def test_every_manifest_file_is_loaded(report, real_data):
    manifest = (real_data / "MANIFEST.md").read_text()
    listed = {line.split("`")[1] for line in manifest.splitlines() if line.startswith("## `")}
    loaded = {f["path"].split(str(real_data) + "/", 1)[-1] for i in report["inputs"] for f in i["files"]}
    assert listed and listed <= loaded, sorted(listed - loaded)
    # Every file in the folder is accounted for; the only one not ingested is the manifest itself.
    on_disk = {str(p.relative_to(real_data)) for p in real_data.rglob("*") if p.is_file()}
    assert {f["path"] for f in report["files"]} == on_disk
    assert [(f["path"], f["status"]) for f in report["files"] if f["status"] != "ingested"] == \
        [("MANIFEST.md", "unrecognised")]
    assert report["damaged"] == []


def test_counts_reconcile_per_input_and_with_the_rejects_table(report, real_store):
    for item in report["inputs"]:
        assert item["rows_read"] == item["accepted"] + item["rejected"], item["source"]
        assert sum(item["rejected_by_reason"].values()) == item["rejected"]
    rejects = pd.read_parquet(real_store / "rejects.parquet")
    assert len(rejects) == report["totals"]["rejected"]
    assert report["reconciled"] is True


def test_overlapping_met_releases_keep_one_release_per_month(report, real_store):
    (overlap,) = flags(report, "overlapping_releases")
    assert overlap["naive_total"] > 1.2 * overlap["kept_total"]
    counts = pd.read_parquet(real_store / "area_counts.parquet")
    ward = counts[counts["edition"].str.startswith("ward")]
    per_month = ward.groupby("period_start")["release"].nunique()
    assert (per_month == 1).all()
    # The manifest's table: 2023-07 total offences, latest release, all wards = 2476.
    assert ward.loc[ward["period_start"] == "2023-07-01", "count"].sum() == 2476
    assert flags(report, "release_revisions")[0]["cells_revised"] > 0


def test_annual_lsoa_table_defects_are_flagged(report):
    assert [f["period"] for f in flags(report, "period_doubled")] == ["2020-01"]
    assert [f["category"] for f in flags(report, "category_all_zero")] == ["major-sexual"]


def test_stop_and_search_gaps_and_swapped_station_labels_are_flagged(report):
    thin = next(f for f in flags(report, "thin_months") if f["table"] == "stop_search")
    assert set(thin["months"]) == {"2018-02", "2018-03"}
    missing = next(f for f in flags(report, "months_missing") if f["table"] == "stop_search")
    assert "2019-03" in missing["months"]
    assert len(flags(report, "swapped_coordinate_labels")) == 1


def test_the_month_missing_for_one_ward_is_flagged(report):
    (holes,) = flags(report, "unit_month_missing")
    assert len(holes["holes"]["2016-04"]) >= 5  # Brunswick Park's LSOAs have no 2016-04 records


def test_linked_police_records_count_each_crime_once_as_its_most_serious_record(report, real_store):
    linked = report["linked_records"]
    by_rule = linked["events_by_group"]
    # Barnet's API extract sorts by category, so "first record wins" loses violence to public order.
    assert by_rule["most_serious_record"]["violence"] > by_rule["first_record"]["violence"]
    assert linked["serious_violence_references_whose_first_record_is_not"] > 100
    events = pd.read_parquet(real_store / "events.parquet", columns=["crime_id", "serious_violence"])
    assert not events["crime_id"].dropna().duplicated().any()
    rejects = pd.read_parquet(real_store / "rejects.parquet")
    linked_rows = rejects[rejects["reason"] == "linked record of one crime"]
    assert len(linked_rows) == linked["linked_rows"] and linked_rows["detail"].str.contains("counted once").all()
    # No reference whose records include serious violence is counted as anything else.
    raw = rejects.loc[rejects["reason"] == "linked record of one crime", "raw"].map(json.loads)
    sv_refs = {r["crime_id"] for r in raw if r["serious_violence"] == "True"}
    kept = events.dropna(subset=["crime_id"]).set_index("crime_id")["serious_violence"]
    assert kept.reindex(sorted(sv_refs)).all()


def test_the_station_list_with_network_and_lines_is_merged_not_rejected(report, real_store):
    lists = [i for i in report["inputs"] if i["table"] == "stations"]
    assert len(lists) == 2 and all(i["rejected"] == 0 for i in lists)
    stations = pd.read_parquet(real_store / "stations.parquet")
    assert not stations["station_key"].duplicated().any()
    assert stations["network"].notna().sum() >= lists[1]["accepted"] - 5
    assert stations["lines"].notna().any()
