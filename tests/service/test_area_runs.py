"""Runs chosen on purpose: a run's area (``--area A1``) is the published run's unless the
analyst names another, and the command says which run it used."""

from __future__ import annotations

from typer.testing import CliRunner

from service.cli import app
from service.pipeline import area_spec
from service.publish import publish, run_for_areas
from service.settings import get_settings


def test_the_published_run_is_the_default_and_the_latest_only_on_request(runs_dir):
    settings = get_settings(out_dir=runs_dir.parent)
    # nothing published: the latest, and the sentence says so
    spec, said = area_spec(settings, "A1")
    assert spec.run["run_id"] == "run-2024-01"
    assert said == "area A1 of run run-2024-01 (the latest; no run is published)"
    # the older run is published: A1 is its A1, though a newer run exists
    publish(runs_dir, "run-2023-12")
    spec, said = area_spec(settings, "A1")
    assert spec.run["run_id"] == "run-2023-12" and said == "area A1 of run run-2023-12 (published)"
    assert area_spec(settings, "A1", "latest")[1] == "area A1 of run run-2024-01 (the latest)"
    assert area_spec(settings, "A2", "run-2024-01")[1] == "area A2 of run run-2024-01 (chosen)"
    assert area_spec(settings, "run-2024-01/A2")[1] == "area A2 of run run-2024-01 (named in --area)"
    units, said = area_spec(settings, "G00, G01")
    assert units.kind == "units" and said is None


def test_a_published_run_whose_folder_is_gone_falls_back_to_the_latest(runs_dir):
    publish(runs_dir, "run-2023-12")
    assert run_for_areas(runs_dir) == ("run-2023-12", "published")
    (runs_dir / "run-2023-12" / "run.json").unlink()
    assert run_for_areas(runs_dir) == ("latest", "the latest; no run is published")


def test_evaluate_says_which_run_before_any_work(runs_dir, tmp_path):
    publish(runs_dir, "run-2023-12")
    env = {"SVRISK_OUT_DIR": str(runs_dir.parent)}
    result = CliRunner().invoke(app, ["evaluate", "--area", "A1", "--start", "2024-02",
                                      "--store", str(tmp_path / "no-store")], env=env)
    lines = result.output.strip().splitlines()
    assert lines[0].strip() == "area A1 of run run-2023-12 (published)", result.output
    assert result.exit_code == 2 and lines[-1].startswith("error: ")  # the missing store, after the line
