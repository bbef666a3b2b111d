"""`svrisk evaluate --groups/--weight`: the outcome is any taxonomy group, counted or harm-weighted."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from features.build import FeatureBuilder
from features.sources.store import Store
from features.units import build_units
from service.cli import app

runner = CliRunner()


def evaluate(planted_demo, tmp_path, *args):
    truth = planted_demo["truth"]
    env = {"SVRISK_OUT_DIR": str(tmp_path / "out")}
    return runner.invoke(app, ["evaluate", "--store", str(planted_demo["store"]), "--out", str(tmp_path / "ev"),
                               "--placebos", "0", "--area", ",".join(truth["area_lsoa11"]), "--start",
                               truth["start_month"], "--pre-months", "20", "--buffer", "300", *args], env=env)


def test_a_chosen_group_is_counted_and_named(planted_demo, tmp_path):
    truth = planted_demo["truth"]
    result = evaluate(planted_demo, tmp_path, "--groups", "robbery")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert doc["outcome_label"] == "robbery" and doc["meta"]["offences"] == "robbery (robbery)"
    assert "robbery in the area" in doc["verdict"].lower()
    fb = FeatureBuilder(Store(planted_demo["store"]), build_units(Store(planted_demo["store"]), "lsoa2011"))
    robbery = fb.panel(["robbery"]).loc[truth["area_lsoa11"]].sum(axis=0)
    before = robbery[[m for m in robbery.index if f"{m:%Y-%m}" in doc["months_before"]]].sum()
    assert doc["did"]["treated_before"] == pytest.approx(before)


def test_harm_weighting_and_unknown_groups(planted_demo, tmp_path):
    result = evaluate(planted_demo, tmp_path, "--weight", "harm")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert doc["outcome_label"] == "harm-weighted serious violence"
    counted = evaluate(planted_demo, tmp_path / "c")
    assert counted.exit_code == 0, counted.output
    plain = json.loads((tmp_path / "c" / "ev" / "evaluation.json").read_text())
    assert plain["did"]["treated_before"] < doc["did"]["treated_before"]  # harm weights exceed one an event
    bad = evaluate(planted_demo, tmp_path, "--groups", "knives")
    assert bad.exit_code != 0 and "unknown offence group(s) ['knives']" in bad.output and "robbery" in bad.output
