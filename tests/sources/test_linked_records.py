"""Linked police.uk records (several records of one crime reference) and station lists merged by key.

The rule (see ``sources.taxonomy``): a crime reference (bulk ``Crime ID`` / API
``persistent_id``) is one crime, counted once as its most serious record; a repeated
record (the same API ``id``, or an identical bulk row) is a duplicate.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from ingest_fixtures import (
    API_HEADER,
    STREET_HEADER,
    api_row,
    fixture_folder,
    street_row,
    write_csv,
)

from sources.ingest import ingest

REF = "c" * 64


def load(tmp_path):
    report = ingest(tmp_path / "data", tmp_path / "store")
    path = tmp_path / "store" / "events.parquet"
    events = pd.read_parquet(path) if path.exists() else None  # a dataset folder of partition files
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet")
    return report, events, rejects


def test_a_reference_with_a_public_order_and_a_violent_record_keeps_the_violence(tmp_path):
    data = fixture_folder(tmp_path)
    rows = [street_row(REF, "2017-01", 530500, 180500, "Public order"),  # first in the file, as police.uk sorts
            street_row(REF, "2017-01", 530500, 180500, "Violence and sexual offences"),
            street_row("d" * 64, "2017-01", 530600, 180500, "Burglary")]
    write_csv(data / "crime" / "2017-01" / "2017-01-fixture-street.csv", STREET_HEADER, rows)
    report, events, rejects = load(tmp_path)
    kept = events.loc[events["crime_id"] == REF]
    assert kept["group"].tolist() == ["violence"] and kept["source_row"].tolist() == [2]
    assert rejects[["source_row", "reason"]].values.tolist() == [[1, "linked record of one crime"]]
    assert "counted once, as Violence and sexual offences from" in rejects["detail"].iloc[0]
    assert json.loads(rejects["raw"].iloc[0])["category"] == "Public order"  # the linked row is kept, reported
    item = next(i for i in report["inputs"] if i["kind"] == "policeuk_street")
    assert (item["rows_read"], item["accepted"], item["rejected"]) == (3, 2, 1) and report["reconciled"]
    assert report["linked_records"]["serious_violence_references_whose_first_record_is_not"] == 1
    assert report["linked_records"]["events_by_group"] == {
        "most_serious_record": {"burglary": 1, "violence": 1}, "first_record": {"burglary": 1, "public_order": 1}}


def test_the_api_loader_applies_the_same_rule_and_a_repeated_id_is_a_duplicate(tmp_path):
    data = fixture_folder(tmp_path)
    rows = [api_row("1", REF, "2017-02", "criminal-damage-arson", 530500, 180500),
            api_row("2", REF, "2017-02", "robbery", 530500, 180500),
            api_row("3", REF, "2017-02", "violent-crime", 530500, 180500),
            api_row("3", REF, "2017-02", "violent-crime", 530500, 180500),  # the same record twice
            api_row("4", "None", "2017-02", "anti-social-behaviour", 530500, 180500)]
    write_csv(data / "crime" / "api.csv", API_HEADER, rows)
    report, events, rejects = load(tmp_path)
    # robbery (harm 290) and violence (150) are both serious violence: the higher harm is counted
    assert events.loc[events["crime_id"] == REF, "category"].tolist() == ["robbery"]
    assert sorted(rejects["reason"]) == ["duplicate record", "linked record of one crime", "linked record of one crime"]
    assert len(events) == 2 and report["reconciled"]


def test_the_rule_holds_across_files_whatever_their_order(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / "crime" / "2017-01" / "2017-01-fixture-street.csv", STREET_HEADER,
              [street_row(REF, "2017-01", 530500, 180500, "Public order")])
    write_csv(data / "crime" / "2017-02" / "2017-02-fixture-street.csv", STREET_HEADER,
              [street_row(REF, "2017-01", 530500, 180500, "Robbery")])
    write_csv(data / "crime" / "api.csv", API_HEADER, [api_row("9", REF, "2017-01", "other-theft", 530500, 180500)])
    report, events, rejects = load(tmp_path)
    assert events.loc[events["crime_id"] == REF, "group"].tolist() == ["robbery"]
    assert (rejects["reason"] == "linked record of one crime").sum() == 2
    assert all(i["rows_read"] == i["accepted"] + i["rejected"] for i in report["inputs"])


def test_a_second_station_list_fills_in_network_and_lines(tmp_path):
    data = fixture_folder(tmp_path)
    write_csv(data / "transport" / "a_list.csv", ["Station", "Latitude", "Longitude"],
              [["Alpha", "51.5100", "-0.1000"], ["Beta", "51.5110", "-0.0990"]])
    from ingest_fixtures import TO_WGS

    x, y = TO_WGS.transform(-0.1000, 51.5100, direction="INVERSE")
    write_csv(data / "transport" / "b_tfl.csv", ["Station", "EASTING", "NORTHING", "NETWORK", "LINES"],
              [["Alpha Station", f"{x:.0f}", f"{y:.0f}", "London Underground", "Northern"],
               ["Gamma", f"{x + 300:.0f}", f"{y:.0f}", "Overground", "Mildmay"]])
    report, _, rejects = load(tmp_path)
    stations = pd.read_parquet(tmp_path / "store" / "stations.parquet").set_index("station_key")
    assert sorted(stations.index) == ["alpha", "beta", "gamma"]
    assert stations.loc["alpha", "network"] == "London Underground" and stations.loc["alpha", "lines"] == "Northern"
    assert pd.isna(stations.loc["beta", "network"])
    lists = [i for i in report["inputs"] if i["table"] == "stations"]
    assert [(i["accepted"], i["rejected"]) for i in lists] == [(2, 0), (2, 0)] and rejects.empty
    assert any(f["check"] == "stations_merged" for f in lists[1]["flags"])


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string[python]", "object"])
def test_record_codes_are_pandas_factorize_codes_whatever_the_string_storage(dtype):
    from sources.loaders.crime import _codes

    values = ["b", None, "a", "b", "c", None, "a", "c"]
    series = pd.Series(values, dtype=dtype)
    assert _codes(series).tolist() == pd.factorize(pd.Series(values, dtype=object))[0].tolist()
    chunked = pd.concat([series.iloc[:3], series.iloc[3:]], ignore_index=True)  # several Arrow chunks
    assert _codes(chunked).tolist() == [0, -1, 1, 0, 2, -1, 1, 2]
    assert _codes(series.iloc[:0]).tolist() == []
