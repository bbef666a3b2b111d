"""`svrisk evaluate --plan`: before an intervention starts, could an effect be detected at all?"""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from features.build import FeatureBuilder
from features.units import build_units
from models.interventions import plan_intervention
from service.cli import app
from sources.store import Store

runner = CliRunner()


def plan(planted_demo, tmp_path, *args):
    env = {"SVRISK_OUT_DIR": str(tmp_path / "out")}
    return runner.invoke(app, ["evaluate", "--plan", "--store", str(planted_demo["store"]), "--out",
                               str(tmp_path / "plan"), *args], env=env)


def test_plan_prints_the_detectable_effect_and_writes_a_page(planted_demo, tmp_path):
    truth = planted_demo["truth"]
    area = ",".join(truth["area_lsoa11"])
    result = plan(planted_demo, tmp_path, "--area", area, "--start", truth["start_month"], "--months", "12",
                  "--pre-months", "20", "--buffer", "300")
    assert result.exit_code == 0, result.output
    shown = re.search(r"minimum detectable effect over 12 months: (\d+)%", result.output)
    assert shown, result.output
    doc = json.loads((tmp_path / "plan" / "plan.json").read_text())
    # the same figure as the model's, from the months before the start only
    store = Store(planted_demo["store"])
    units = build_units(store, "lsoa2011")
    fb = FeatureBuilder(store, units)
    direct = plan_intervention(fb.panel(), units, truth["area_lsoa11"], 12, complete_months=fb.complete_months,
                               pre_months=20, buffer_m=300.0, before=truth["start_month"])
    assert int(shown.group(1)) == round(100 * direct["mde"]) == round(100 * doc["mde"])
    assert doc["months_before"][-1] < truth["start_month"] and len(doc["months_before"]) == 20
    assert set(doc["power"]) == {"20%", "30%", "40%"}
    html = (tmp_path / "plan" / "plan.html").read_text()
    assert "What to record from the start" in html and f"{round(100 * doc['mde'])}%" in html
    # a shorter intervention can detect less
    short = plan(planted_demo, tmp_path, "--area", area, "--start", truth["start_month"], "--months", "4",
                 "--pre-months", "20", "--buffer", "300")
    assert short.exit_code == 0, short.output
    assert json.loads((tmp_path / "plan" / "plan.json").read_text())["mde"] > doc["mde"]


def test_evaluate_without_start_or_plan_is_refused(planted_demo, tmp_path):
    env = {"SVRISK_OUT_DIR": str(tmp_path / "out")}
    result = runner.invoke(app, ["evaluate", "--store", str(planted_demo["store"]), "--area", "E01000001"], env=env)
    assert result.exit_code != 0 and "--start" in result.output
