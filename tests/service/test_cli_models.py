"""train -> rank -> backtest through the CLI on the demo borough."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from service.cli import app
from sources.demo.borough import generate_demo

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-models")
    data = generate_demo(root / "data", seed=3)
    return {"SVRISK_OUT_DIR": str(root / "out"), "SVRISK_DATA_DIR": str(data)}, root


def test_train_saves_a_version_with_a_model_card(env):
    variables, root = env
    result = runner.invoke(app, ["train", "--units", "lsoa2011", "--cutoff", "2018-07"], env=variables)
    assert result.exit_code == 0, result.output
    folder = root / "out" / "models" / "v0001"
    assert (folder / "card.html").is_file() and (folder / "card.md").is_file()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["cutoff"] == "2018-07" and meta["units"] == "lsoa2011"
    assert meta["data_hashes"] and all(len(h) == 64 for h in meta["data_hashes"].values())


def test_rank_with_the_saved_model_writes_a_run(env):
    variables, root = env
    result = runner.invoke(app, ["rank", "--model", "v0001", "--units", "lsoa2011", "--cutoff", "2018-07"], env=variables)
    assert result.exit_code == 0, result.output
    runs = [p for p in (root / "out" / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1 and json.loads((runs[0] / "run.json").read_text())["model_version"] == "v0001"
    # written whole (no hidden folder left) and, being the first run, published
    meta = json.loads((runs[0] / "run.json").read_text())
    published = json.loads((root / "out" / "runs" / ".published.json").read_text())
    assert published["run_id"] == runs[0].name == meta["run_id"]
    assert meta["demo"] is True and published["demo"] is True  # a generated borough, wherever it is


def test_rank_refuses_a_model_of_other_units(env):
    variables, _ = env
    result = runner.invoke(app, ["rank", "--model", "v0001", "--units", "ward2022"], env=variables)
    assert result.exit_code == 2 and "trained on lsoa2011 units" in result.output


def test_backtest_prints_paired_differences_and_writes_per_origin_rows(env, tmp_path):
    variables, _ = env
    out = tmp_path / "bt.json"
    result = runner.invoke(app, ["backtest", "--units", "lsoa2011", "--horizon", "3", "--origins", "2018-01:2018-03",
                                 "--method", "long_mean", "--method", "nested", "--json", str(out)], env=variables)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["horizon"] == 3 and doc["default_method"] == "nested" and doc["origins"] == ["2018-01", "2018-03", 3]
    # count_12m is always there: every method is compared with it
    assert {r["method"] for r in doc["records"]} == {"count_12m", "long_mean", "nested"}
    per = [r for r in doc["records"] if "origin" in r]
    summary = [r for r in doc["records"] if "origin" not in r]
    assert {r["origin"] for r in per} == {"2018-01", "2018-02", "2018-03"}
    assert all(r["default"] == (r["method"] == "nested") for r in doc["records"])
    five = [r for r in summary if r["slice"] == "5% area"]
    assert len(five) == 3 and all(0 <= r["pei"] <= 1 and r["horizon"] == 3 and r["ceiling_pei"] for r in five)
    assert {(p["method"], p["slice"]) for p in doc["paired"]} >= {("nested", "5% area"), ("long_mean", "5% area")}
    assert doc["ceiling"]["horizon"] == 3 and len(doc["ceiling"]["rows"]) == 5
    assert "nested      *  5% area:" in result.output and "expected PEI* of a long-run-rate oracle (95% simulation interval): 1% area" in result.output
    assert "verdict: " in result.output and "(lsoa2011, next quarter)" in result.output


def test_backtest_rejects_an_unknown_method(env):
    variables, _ = env
    result = runner.invoke(app, ["backtest", "--method", "magic"], env=variables)
    assert result.exit_code == 2 and "unknown method(s) ['magic']" in result.output


def test_the_run_prints_the_workers_and_threads_it_chose(env):
    variables, _ = env
    result = runner.invoke(app, ["train", "--units", "lsoa2011", "--cutoff", "2018-07", "--method", "xgb"],
                           env={**variables, "SVRISK_WORKERS": "2"})
    assert result.exit_code == 0, result.output
    assert "summing events per unit and month on Engine('local', workers=2 (at most, as set; " in result.output
    # the tiny borough's events are under the pool's threshold: summed here, and the run says so
    assert re.search(r"events summed on this process alone, \d+ item\(s\)", result.output), result.output
    assert re.search(r"fitting on at most [12] thread\(s\) of \d+ usable core\(s\)", result.output), result.output


def test_a_second_backtest_reads_its_predictions_from_the_store_cache(env):
    variables, root = env
    args = ["backtest", "--units", "lsoa2011", "--origins", "2018-05:2018-06", "--method", "glm_own"]
    first = runner.invoke(app, [*args, "--fresh"], env=variables)  # training in this module fills the cache too
    assert first.exit_code == 0, first.output
    made = re.search(r"predictions: 0 read from the cache, ([1-9]\d*) computed", first.output)
    assert made, first.output
    entries = list((root / "out" / "stores").glob("*/cache/predictions/*.npz"))
    assert len(entries) >= int(made[1]) and not list(root.glob("data/**/*.npz"))  # in the store, not the data
    second = runner.invoke(app, args, env=variables)
    assert second.exit_code == 0, second.output
    assert f"predictions: {made[1]} read from the cache, 0 computed" in second.output, second.output
    assert _table(first.output) and _table(second.output) == _table(first.output)
    fresh = runner.invoke(app, [*args, "--fresh"], env=variables)
    assert fresh.exit_code == 0 and "predictions: 0 read from the cache" in fresh.output, fresh.output


def _table(output: str) -> list[str]:
    """The printed backtest table's lines (what a person reads), without the progress lines."""
    return [line for line in output.splitlines() if "% area" in line or line.startswith("top ")]


def test_a_second_training_reads_the_nested_choices_predictions_from_the_store_cache(env):
    variables, root = env
    args = ["train", "--units", "lsoa2011", "--cutoff", "2018-07"]
    for cache in (root / "out" / "stores").glob("*/cache/predictions"):
        shutil.rmtree(cache)  # other tests of this module trained and backtested on the same store
    first = runner.invoke(app, args, env=variables)
    assert first.exit_code == 0, first.output
    # the nested choice's candidates at earlier origins, computed; the card's backtest reads those back
    made = re.search(r"predictions: (\d+) read from the cache, ([1-9]\d*) computed", first.output)
    assert made, first.output
    second = runner.invoke(app, args, env=variables)
    assert second.exit_code == 0, second.output
    assert f"predictions: {int(made[1]) + int(made[2])} read from the cache, 0 computed" in second.output, second.output
    cards = sorted((root / "out" / "models").glob("*/meta.json"))[-2:]
    metas = [json.loads(p.read_text()) for p in cards]
    assert metas[0]["chosen"] == metas[1]["chosen"] and metas[0]["backtest"] == metas[1]["backtest"]
