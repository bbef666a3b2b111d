"""Runs are about the data they name: one store per data folder, re-ingested when it changes,
never the demo in place of a folder given, and cutoffs checked before anything is written."""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest
from ingest_fixtures import STREET_HEADER, street_row, write_boundaries, write_csv
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def monthly_data(folder, months, rows_per_month=40, thin: dict | None = None):
    """Two fixture LSOAs with ``rows_per_month`` violence records a month (``thin``: month -> rows)."""
    write_boundaries(folder / "boundaries")
    rows, i = [], 0
    for m in months:
        for k in range((thin or {}).get(m, rows_per_month)):
            rows.append(street_row(f"{i:064x}", m, 530100 + 37 * (k % 20), 180100 + 41 * (k % 19)))
            i += 1
    write_csv(folder / "crime" / "fixture-street.csv", STREET_HEADER, rows)
    return folder


def env(tmp_path, **extra) -> dict:
    return {"SVRISK_OUT_DIR": str(tmp_path / "out"), "SVRISK_MODEL__PERMUTATIONS": "99", **extra}


MONTHS = [f"{m:%Y-%m}" for m in pd.date_range("2016-01-01", "2017-02-01", freq="MS")]


def invoke(tmp_path, *args):
    return runner.invoke(app, list(args), env=env(tmp_path))


def stores(tmp_path) -> list[str]:
    root = tmp_path / "out" / "stores"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_each_data_folder_gets_its_own_store_bound_to_its_files(tmp_path):
    a = monthly_data(tmp_path / "borough_a", MONTHS)
    b = monthly_data(tmp_path / "borough_b", MONTHS, rows_per_month=20)
    for folder in (a, b):
        result = invoke(tmp_path, "features", "--data", str(folder), "--cutoff", "2017-02", "--units", "lsoa2011",
                        "--out", str(tmp_path / "feat" / folder.name))
        assert result.exit_code == 0, result.output
    names = stores(tmp_path)
    assert len(names) == 2 and names[0].startswith("borough_a-") and names[1].startswith("borough_b-")
    report = json.loads((tmp_path / "out" / "stores" / names[1] / "ingest_report.json").read_text())
    assert report["data_dir_resolved"] == str(b.resolve())
    assert set(report["data_files"]) == {"boundaries/lsoa2011.gpkg", "crime/fixture-street.csv"}
    # each folder's features count its own events (40 vs 20 a month over 12 months)
    counts = {f.name: pd.read_parquet(next((tmp_path / "feat" / f.name).glob("*.parquet")))["cnt_sv_12m"].sum()
              for f in (a, b)}
    assert counts == {"borough_a": 480, "borough_b": 240}


def test_a_changed_file_is_ingested_again_and_a_touched_one_is_not(tmp_path):
    data = monthly_data(tmp_path / "data", MONTHS)
    args = ("features", "--data", str(data), "--cutoff", "2017-02", "--out", str(tmp_path / "feat"))
    assert invoke(tmp_path, *args).exit_code == 0
    crime = data / "crime" / "fixture-street.csv"
    future = time.time() + 10
    os.utime(crime, (future, future))  # touched, same bytes
    again = invoke(tmp_path, *args)
    assert again.exit_code == 0 and "ingesting" not in again.output
    with crime.open("a", encoding="utf-8") as fh:
        fh.write(",".join(street_row("e" * 64, "2017-01", 530500, 180500)) + "\n")
    changed = invoke(tmp_path, *args)
    assert changed.exit_code == 0, changed.output
    assert "changed crime/fixture-street.csv" in changed.output
    (data / "crime" / "extra.txt").write_text("notes")
    added = invoke(tmp_path, *args)
    assert "added crime/extra.txt" in added.output
    matrix = pd.read_parquet(next((tmp_path / "feat").glob("*.parquet")))
    assert matrix["cnt_sv_12m"].sum() == 481


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nowhere", "not found"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "is empty: it holds no input files"),
    (lambda p: (p / "file.csv").write_text("a,b\n") and p / "file.csv", "is not a folder"),
])
def test_a_wrong_or_empty_data_folder_is_one_line_never_the_demo(tmp_path, make, message):
    folder = make(tmp_path)
    for command in (["run"], ["train"], ["backtest"], ["ingest"], ["hotspots"]):
        result = invoke(tmp_path, *command, "--data", str(folder))
        assert result.exit_code == 2, (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (command, lines)
    assert not (tmp_path / "out" / "demo-data").exists()


def test_a_thin_month_stops_a_run_before_anything_is_written(tmp_path):
    data = monthly_data(tmp_path / "data", MONTHS, thin={"2016-08": 2})
    result = invoke(tmp_path, "run", "--data", str(data), "--cutoff", "2017-02")
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert "too few events in 2016-08 (2 where about 40 is usual)" in line
    # 2016-01..07 is too short to stand on (a cutoff needs 9 complete months when the data begin in its window)
    assert "no cutoff has even 9 complete months in a row before it" in line
    assert not (tmp_path / "out" / "models").exists() and not (tmp_path / "out" / "runs").exists()


def test_30_months_of_points_with_a_thin_early_month_backtest_run_and_train_with_default_options(tmp_path):
    months = [f"{m:%Y-%m}" for m in pd.date_range("2016-01-01", "2018-06-01", freq="MS")]
    data = monthly_data(tmp_path / "data", months, rows_per_month=12, thin={"2016-03": 1})
    result = invoke(tmp_path, "backtest", "--data", str(data), "--units", "grid250")
    assert result.exit_code == 0, result.output
    # the thin month is named once, with the origins it removed; the rest are the last usable ones
    notes = [line for line in result.output.splitlines() if line.startswith("origins:")]
    assert notes == ["origins: 2016-03 is thin (1 events where about 12 is usual): origins 2017-01..2017-03 left out"]
    assert "15 origins (2017-04..2018-06)" in result.output
    for command in ("run", "train"):
        result = invoke(tmp_path, command, "--data", str(data), "--units", "grid250")
        assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "runs").is_dir() and len(list((tmp_path / "out" / "models").iterdir())) >= 2


def test_12_months_backtest_on_a_shortened_window_said_so_and_6_months_refuse_in_one_line(tmp_path):
    data = monthly_data(tmp_path / "year", MONTHS[:12], rows_per_month=12)
    result = invoke(tmp_path, "backtest", "--data", str(data), "--units", "lsoa2011", "--method", "long_mean")
    assert result.exit_code == 0, result.output
    assert ("origins: window shortened: origins 2016-08..2016-12 have 7..11 months of history, not 12 "
            "(the complete data begin 2016-01)") in result.output
    data = monthly_data(tmp_path / "half", MONTHS[:6], rows_per_month=12)
    result = invoke(tmp_path, "backtest", "--data", str(data), "--units", "lsoa2011", "--method", "long_mean")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()[-1:]
    assert line.startswith("error: no backtest origin has 7 complete months of history and 1 complete month(s) "
                           "after it (at least 8 complete months in a row); the complete months are 2016-01..2016-06")


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("cutoff, message", [
    ("2024-05", "no data for 2023-05..2024-03"),  # across the gap in the points
    ("2030-01", "no data for 2029-01..2029-12"),  # the future
])
def test_a_cutoff_the_data_cannot_serve_exits_2_naming_the_latest_usable(tmp_path, real_data, cutoff, message):
    for command in (["run"], ["train"], ["hotspots"]):
        result = invoke(tmp_path, *command, "--data", str(real_data), "--units", "lsoa2011", "--cutoff", cutoff)
        assert result.exit_code == 2, result.output
        line = result.output.strip().splitlines()[-1]
        assert message in line and "the latest usable cutoff is 2018-07" in line, line
    assert not (tmp_path / "out" / "models").exists() and not (tmp_path / "out" / "runs").exists()


@pytest.fixture(scope="module")
def real_after_demo(tmp_path_factory, real_data):
    """A demo run, then a run on the real folder, in the same out folder."""
    tmp = tmp_path_factory.mktemp("binding")
    demo = runner.invoke(app, ["run"], env=env(tmp))
    assert demo.exit_code == 0, demo.output
    real = runner.invoke(app, ["run", "--data", str(real_data)], env=env(tmp))
    assert real.exit_code == 0, real.output
    run_dir = sorted((tmp / "out" / "runs").iterdir())[-1]
    return tmp, real, run_dir


@pytest.mark.realdata
@pytest.mark.slow
def test_the_real_run_after_a_demo_run_is_about_the_real_data(real_after_demo, real_data):
    tmp, result, run_dir = real_after_demo
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["area_name"] == "Barnet" and meta["data"]["data_dir"] == str(real_data.resolve())
    report = json.loads((tmp / "out" / "stores" / os.path.basename(meta["data"]["store"]) / "ingest_report.json")
                        .read_text())
    assert meta["data"]["inputs"] == {f["path"]: f["sha256"] for i in report["inputs"] for f in i["files"]}
    assert len(stores(tmp)) == 2  # the demo's and the real folder's
    card = json.loads((tmp / "out" / "models" / meta["model_version"] / "meta.json").read_text())
    assert card["data_dir"] == str(real_data.resolve())


@pytest.mark.realdata
@pytest.mark.slow
def test_the_real_run_leads_with_the_finest_current_units_from_the_freshest_tables(real_after_demo):
    """The Met's LSOA tables (to 2026-02) lead at LSOA level; the ward tables (to 2026-03) sit beside;
    the points (to 2018-06) are named, never the lead."""
    _, result, run_dir = real_after_demo
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["units"] == "lsoa2021" and meta["cutoff"] == "2026-03" and "lsoa2021-2026-03" in meta["run_id"]
    assert meta["data_period"]["source"] == "areas" and meta["data_period"]["end"] == "2026-02"
    assert meta["data_period"]["start"] == "2023-08"
    # the LSOA tables withhold sexual offences: the run says so instead of silently counting less
    assert meta["target_coverage"]["missing"] == ["sexual"] and meta["target_coverage"]["share"] > 0.8
    current = meta["current"]
    assert current["units"] == "ward2022" and current["cutoff"] == "2026-04"
    assert current["data_period"]["end"] == "2026-03" and current["data_period"]["source"] == "areas"
    ranking = pd.read_parquet(run_dir / "ranking.parquet")
    assert len(ranking) == 220 and ranking["expected"].gt(0).all()
    assert len(pd.read_parquet(run_dir / "current_ranking.parquet")) == 24
    html = (run_dir / "briefing.html").read_text()
    page1 = html.split('id="page-beside"', 1)[0]
    assert "lsoa2021 forecast for 2026-03 from area tables 2023-08 to 2026-02" in page1
    assert "Beside it (next page): ward2022 forecast for 2026-04 from area tables" in page1
    assert "hold no sexual offences" in page1 and "2016-01..2018-06" in page1
    assert "forecast: lsoa2021 for 2026-03 from area tables 2023-08..2026-02" in result.output
    assert "beside it: ward2022 for 2026-04 from area tables" in result.output
