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
    assert report["unrecognised"] == []


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
