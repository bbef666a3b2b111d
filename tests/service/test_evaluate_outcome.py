"""`svrisk evaluate --groups/--weight`: the outcome is any taxonomy group, counted or harm-weighted."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from features.build import FeatureBuilder
from features.units import build_units
from service.cli import app
from sources.store import Store

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


def test_areas_with_different_starts_are_also_judged_together(planted_demo, tmp_path):
    truth = planted_demo["truth"]
    store = Store(planted_demo["store"])
    units = build_units(store, "lsoa2011")
    fb = FeatureBuilder(store, units)
    panel = fb.panel()
    # a second, untreated area starting 4 months later: the two LSOAs with most events far from the first
    from models import interventions as mi

    free = mi.eligible_units(units, truth["area_lsoa11"], mi.buffer_units(units, truth["area_lsoa11"], 300.0))
    other = panel.loc[free].sum(axis=1).sort_values(ascending=False).index[:2].tolist()
    later = planted_demo["months"][24]
    result = evaluate(planted_demo, tmp_path, "--also", ",".join(other) + "@" + later)
    assert result.exit_code == 0, result.output
    assert "All 2 areas together (staggered starts, Callaway & Sant'Anna)" in result.output
    doc = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    st = doc["staggered"]
    assert st["n_cohorts"] == 2 and [a["start"] for a in st["areas"]] == [truth["start_month"], later]
    # the same figures as the model's own, on the same panel
    direct = mi.staggered_areas(panel, units, [(truth["area_lsoa11"], truth["start_month"]), (other, later)],
                                complete_months=fb.complete_months, pre_months=20, buffer_m=300.0, seed=0)
    assert st["overall"] == pytest.approx(direct["overall"]) and st["overall"] < 0  # the first area's cut shows
    first = [r for r in st["group_time"] if r["cohort"] == truth["start_month"]]
    assert sum(r["att"] for r in first) / len(first) < 0
    bad = evaluate(planted_demo, tmp_path / "b", "--also", ",".join(other))
    assert bad.exit_code != 0 and "AREA@YYYY-MM" in bad.output
