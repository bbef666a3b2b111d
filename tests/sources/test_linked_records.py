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


def test_text_keys_are_equal_for_equal_texts_and_na_for_na():
    from sources.loaders.crime import text_keys

    values = pd.Series(["a" * 64, None, "b" * 64, "a" * 64, ""], dtype="string")
    keys = text_keys(values)
    assert str(keys.dtype) == "UInt64" and keys.index.equals(values.index)
    assert keys.isna().tolist() == [False, True, False, False, False]
    assert keys[0] == keys[3] and keys[0] != keys[2] and keys[4] != keys[0]
    # the same text in another file (another Series, other storage) has the same key: files are keyed apart
    assert text_keys(pd.Series(["b" * 64], dtype=object))[0] == keys[2]


def test_reference_codes_come_from_keys_and_from_the_texts_when_two_references_share_a_key():
    from sources.loaders.crime import _codes, reference_codes, text_keys

    refs = pd.Series(["x", "y", None, "x", "z", "y"], dtype="string")
    expected = _codes(refs).tolist()
    assert expected == [0, 1, -1, 0, 2, 1]
    keyed = pd.DataFrame({"crime_id": refs, "crime_key": text_keys(refs)})
    assert reference_codes(keyed).tolist() == expected
    assert reference_codes(keyed[["crime_id"]]).tolist() == expected  # no keys: from the texts
    # "z" given the key of "x" (a 64-bit collision): the codes must still tell them apart
    clash = keyed.copy()
    clash.loc[4, "crime_key"] = clash.loc[0, "crime_key"]
    assert reference_codes(clash).tolist() == expected
    assert reference_codes(clash.iloc[:0]).tolist() == []


def test_two_references_sharing_a_key_are_not_linked(tmp_path, monkeypatch):
    import sources.loaders.crime as crime

    real = crime.text_keys

    def clashing(values):  # every reference gets one key, as if all collided
        keys = real(values)
        return keys.where(keys.isna(), 7)

    monkeypatch.setattr(crime, "text_keys", clashing)
    data = fixture_folder(tmp_path)
    rows = [street_row(REF, "2017-01", 530500, 180500, "Public order"),
            street_row("d" * 64, "2017-01", 530600, 180500, "Burglary")]
    write_csv(data / "crime" / "2017-01" / "2017-01-fixture-street.csv", STREET_HEADER, rows)
    report, events, rejects = load(tmp_path)
    assert len(events) == 2 and rejects.empty and report["linked_records"]["linked_rows"] == 0
