"""The run catalogue against hand-made run folders: what it lists, and that its check fails when it should."""

from __future__ import annotations

import pytest

from reports import run_catalogue as rc
from reports.outputs import write_outputs


@pytest.fixture
def full_run(tmp_path, make_run):
    run = make_run(tmp_path / "runs", "run-2024-01")
    write_outputs(run, pdf=False)
    return run


def test_names_fill_their_placeholders_and_paths_find_their_entry():
    assert rc.PLANNING_RANKING.name(horizon=3) == "ranking_h3.parquet"
    assert rc.catalogued("ranking_h12.parquet") is rc.PLANNING_RANKING
    assert rc.catalogued("csv/hubs.csv") is rc.CSV
    assert rc.catalogued("geojson/current_ranked_units.geojson") is rc.GEOJSON
    assert rc.catalogued("csv/notes.csv") is None  # not a layer
    assert rc.catalogued("ranking_hx.parquet") is None
    assert rc.catalogued("backtest.json") is None  # never written, no longer read


def test_every_entry_has_a_distinct_key_and_path():
    keys = [f.key for f in rc.CATALOGUE]
    paths = [f.path for f in rc.CATALOGUE]
    assert len(set(keys)) == len(keys) and len(set(paths)) == len(paths)


def test_a_complete_hand_made_run_passes_the_check(full_run):
    assert rc.check_folder(full_run) == ([], [])


def test_the_check_names_a_file_the_catalogue_does_not_list(full_run):
    (full_run / "notes.txt").write_text("scribbled by hand")
    (full_run / "csv" / "extra.csv").write_text("a\n1\n")
    unlisted, missing = rc.check_folder(full_run)
    assert unlisted == ["csv/extra.csv", "notes.txt"] and missing == []


def test_the_check_names_a_listed_file_that_was_not_written(full_run):
    (full_run / "hubs.parquet").unlink()
    (full_run / "csv" / "ranked_units.csv").unlink()
    (full_run / "wards.parquet").unlink()  # optional: only when the store holds wards
    unlisted, missing = rc.check_folder(full_run)
    assert unlisted == [] and missing == ["hubs.parquet", "csv/ranked_units.csv"]
