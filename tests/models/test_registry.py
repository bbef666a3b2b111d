"""Saving and loading versioned models: atomic saves, model cards, training a version."""

import json
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from models.baselines import ColumnRanker
from models.lifecycle import train
from models.registry import list_versions, load_model, save_model, version_meta
from reports.model_card import card_documents, model_card

X = pd.DataFrame({"cnt_sv_12m": [12.0, 0.0, 24.0]})
Y = np.array([1.0, 0.0, 2.0])


def test_save_then_load_round_trip(tmp_path):
    model = ColumnRanker("cnt_sv_12m").fit(X, Y)
    meta = {"method": "count_12m", "units": "grid250", "cutoff": "2018-01", "horizon": 1, "seed": 7,
            "data_hashes": {"crime.csv": "ab12"},
            "backtest": [{"units": "grid250", "method": "count_12m", "slice": "5% area", "pai": 6.5,
                          "pei": 0.69}]}
    assert save_model(model, meta, tmp_path, documents=card_documents) == "v0001"
    assert save_model(model, meta, tmp_path, documents=card_documents) == "v0002"
    loaded, saved = load_model(tmp_path, "v0001")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert saved["version"] == "v0001" and saved["seed"] == 7
    assert saved["features"] == ["cnt_sv_12m"] and saved["params"] == {"column": "cnt_sv_12m"}
    assert load_model(tmp_path)[1]["version"] == "v0002"  # latest
    card = (tmp_path / "v0001" / "card.md").read_text()
    for heading in ("## Data", "## Method", "## Backtest", "## Calibration", "## Fairness profile",
                    "## Caveats"):
        assert heading in card
    assert "| grid250 | count_12m | 5% area | 6.5 | 0.69 |" in card
    assert "<h2>Backtest</h2>" in (tmp_path / "v0001" / "card.html").read_text()


def test_a_version_s_metadata_is_read_without_its_model(tmp_path):
    model = ColumnRanker("cnt_sv_12m").fit(X, Y)
    save_model(model, {"method": "count_12m", "units": "grid250", "horizon": 3}, tmp_path)
    meta = version_meta(tmp_path, "v0001")
    assert (meta["version"], meta["units"], meta["horizon"]) == ("v0001", "grid250", 3)
    assert meta == load_model(tmp_path, "v0001")[1]
    with pytest.raises(FileNotFoundError, match="v0002"):
        version_meta(tmp_path, "v0002")
    (tmp_path / "v0001" / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="meta.json is not valid JSON"):
        version_meta(tmp_path, "v0001")


def test_crash_mid_save_leaves_no_version(tmp_path, monkeypatch):
    model = ColumnRanker("cnt_sv_12m").fit(X, Y)
    save_model(model, {"method": "count_12m"}, tmp_path)

    def boom(meta):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_model(model, {"method": "count_12m"}, tmp_path, documents=boom)
    assert list_versions(tmp_path) == ["v0001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v0001"]  # temp folder removed


def test_hard_crash_leftovers_are_ignored(tmp_path):
    model = ColumnRanker("cnt_sv_12m").fit(X, Y)
    save_model(model, {"method": "count_12m"}, tmp_path)
    (tmp_path / ".tmp-deadbeef").mkdir()  # a process killed before its rename
    (tmp_path / ".tmp-deadbeef" / "model.joblib").write_bytes(b"partial")
    (tmp_path / "v0009").mkdir()  # a folder without meta.json is not a version
    assert list_versions(tmp_path) == ["v0001"]
    assert load_model(tmp_path)[1]["version"] == "v0001"
    with pytest.raises(FileNotFoundError, match="v0009"):
        load_model(tmp_path, "v0009")


def test_model_card_escapes_html():
    md, page = model_card({"method": "<glm>", "caveats": ["a & b"]})
    assert "&lt;glm&gt;" in page and "a &amp; b" in page and "<glm>" in md


class FakeBuilder:
    """Four 100 m cells; cell a always has 3 events a month, b 1, c and d none."""

    def __init__(self):
        months = pd.date_range("2016-01-01", periods=18, freq="MS")
        self.counts = pd.DataFrame(0.0, index=list("abcd"), columns=months)
        self.counts.loc["a"], self.counts.loc["b"] = 3.0, 1.0
        self.months = list(months)
        frame = gpd.GeoDataFrame({"unit_id": list("abcd"), "name": list("ABCD"), "area_m2": 1e4},
                                 geometry=[box(100 * i, 0, 100 * (i + 1), 100) for i in range(4)],
                                 crs="EPSG:27700")
        self.units = SimpleNamespace(edition="fake", frame=frame)
        self.target_groups = ["violence", "robbery", "sexual"]

    def matrix(self, cutoff):
        c = pd.Timestamp(cutoff)
        cols = self.counts.columns
        win = {w: self.counts.loc[:, (cols < c) & (cols >= c - pd.DateOffset(months=w))].sum(axis=1)
               for w in (1, 3, 12)}
        X = pd.DataFrame({f"cnt_sv_{w}m": v for w, v in win.items()})
        X["harm_sv_12m"] = 150.0 * X["cnt_sv_12m"]
        X["lag_cnt_sv_12m"] = X["cnt_sv_12m"].mean()
        X["imd_score"] = [40.0, 20.0, 10.0, 10.0]
        X["imd_decile"] = [1.0, 4.0, 8.0, 9.0]
        X["pop_total"] = 100.0
        return X

    def panel(self, groups=None, weight="count"):
        return self.counts * (1.0 if weight == "count" else 150.0)


def test_train_saves_a_checked_version(tmp_path):
    version = train(FakeBuilder(), "2017-05", tmp_path, method="count_12m",
                    backtest_origins=["2017-03", "2017-04"], data_hashes={"events.csv": "00ff"}, top_n=1)
    model, meta = load_model(tmp_path, version)
    assert meta["cutoff"] == "2017-05" and meta["units"] == "fake"
    assert meta["data_period"] == {"start": "2016-01", "end": "2017-04"}
    # the count ranks cell a first; its residents are the most deprived
    assert meta["fairness"]["rows"][0]["top_places"] == 40.0
    # calibration pools the forecasts made at the two backtest origins: 4 events in each month
    assert sum(r["observed"] for r in meta["calibration"]) == 8.0
    assert "2 origins 2017-03..2017-04" in meta["calibration_note"]
    bt = {(r["method"], r["slice"]): r for r in meta["backtest"]}
    assert bt[("count_12m", "top 10")]["hit_rate"] == 1.0
    assert bt[("count_12m", "top 10")]["default"] is True and bt[("long_mean", "top 10")]["default"] is False
    # the long mean against the count, per origin, at each area slice
    assert {(r["method"], r["against"]) for r in meta["backtest_paired"]} == {("long_mean", "count_12m")}
    assert [r["slice"] for r in meta["ceiling"]["rows"]][:3] == ["1% area", "5% area", "10% area"]
    assert json.loads((tmp_path / version / "meta.json").read_text())["data_hashes"] == {"events.csv": "00ff"}
    with pytest.raises(ValueError, match="long_mean"):
        train(FakeBuilder(), "2017-05", tmp_path, method="long_mean")
