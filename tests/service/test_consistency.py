"""One run, one story: the map, briefing (HTML and PDF), figures.json, GeoPackage, CSV, API, OGC API
and the evidence pack agree with each other (``tests/_support/consistency.py`` reads each through
its own format).

The checks run on the hand-made run (fast), on a pipeline run of the demo borough and on one of the
real data folder (slow), and each is shown to fail on a doctored copy of an output.
"""

from __future__ import annotations

import json
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from consistency import (
    BESIDE,
    LEAD,
    check_all,
    check_classes,
    check_ogc_metadata,
    check_records,
    check_tops,
    check_totals,
)

BASE = "https://testserver"


@contextmanager
def api_over(out_dir: Path):
    """A TestClient over an ``out`` folder and a viewer key's headers."""
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.keys import KeyStore
    from service.settings import get_settings

    settings = get_settings(out_dir=out_dir, service={"keys_file": out_dir / "consistency_keys.json",
                                                      "max_page_size": 10000, "public_url": BASE})
    key = KeyStore(settings.service.keys_file).create("consistency test", "viewer")
    with TestClient(create_app(settings), base_url=BASE) as client:
        yield client, {"X-API-Key": key}


@pytest.fixture
def copy_of(api_runs_dir, tmp_path):
    """A copy of the hand-made run with its outputs, to doctor."""
    run = tmp_path / "run-2024-01"
    shutil.copytree(api_runs_dir / "run-2024-01", run)
    return run


def test_the_hand_made_run_agrees_with_itself_everywhere(api_runs_dir, client, api_keys):
    run = api_runs_dir / "run-2024-01"
    problems = check_all(run, client=client, headers={"X-API-Key": api_keys["viewer"]}, published=True)
    assert problems == []


def test_a_total_changed_in_one_output_is_caught(copy_of, tmp_path):
    assert check_totals(copy_of) == []
    figures = json.loads((copy_of / "figures.json").read_text())
    figures["rows"][-1]["count_12m"] = 661  # the briefing still says 660
    (copy_of / "figures.json").write_text(json.dumps(figures))
    assert any("briefing.html shows" in p and "660" not in p.split("figures.json")[1] for p in check_totals(copy_of))
    head = pd.DataFrame({"measure": ["serious violence"], "count": [650.0], "period_end": ["2023-12"]})
    (tmp_path / "pack" / "tables").mkdir(parents=True)
    head.to_csv(tmp_path / "pack" / "tables" / "headline_rolling_12m.csv", index=False)
    assert any("pack headline_rolling_12m" in p and "[650]" in p
               for p in check_totals(copy_of, pack_dir=tmp_path / "pack"))


def test_rank_one_outside_the_top_class_is_caught_in_the_csv_and_the_geopackage(copy_of):
    assert check_classes(copy_of) == []
    csv = pd.read_csv(copy_of / "csv" / "ranked_units.csv")
    csv.loc[csv["rank"] == 1, "risk_class"] = "Rest"
    csv.to_csv(copy_of / "csv" / "ranked_units.csv", index=False)
    layers = {n: pyogrio.read_dataframe(copy_of / "layers.gpkg", layer=n) for n, _ in
              pyogrio.list_layers(copy_of / "layers.gpkg") if n != "layer_styles"}
    ranked = layers["ranked_units"]
    # rank 5 swaps class with the last place: a better-ranked place in a lighter class
    last = ranked["rank"].idxmax()
    five = ranked.index[ranked["rank"] == 5][0]
    ranked.loc[[five, last], "risk_class"] = ranked.loc[[last, five], "risk_class"].to_numpy()
    (copy_of / "layers.gpkg").unlink()
    for name, gdf in layers.items():
        pyogrio.write_dataframe(gdf, copy_of / "layers.gpkg", layer=name, append=(copy_of / "layers.gpkg").exists())
    problems = check_classes(copy_of)
    assert any(p.startswith("csv/ranked_units.csv: rank 1 is in 'Rest'") for p in problems), problems
    assert any(p.startswith("layers.gpkg ranked_units: rank 5 is in") for p in problems), problems


def test_a_map_number_or_briefing_row_on_another_place_is_caught(copy_of):
    assert check_tops(copy_of) == []
    html = (copy_of / "map.html").read_text(encoding="utf-8")
    # the map's number 2 now names the place ranked 3rd
    ranked = pyogrio.read_dataframe(copy_of / "layers.gpkg", layer="ranked_units", read_geometry=False)
    second, third = (str(ranked.loc[ranked["rank"] == r, "unit_id"].iloc[0]) for r in (2, 3))
    doctored = html.replace(f'data-unit=\\"{second}\\"', f'data-unit=\\"{third}\\"')
    assert doctored != html
    (copy_of / "map.html").write_text(doctored, encoding="utf-8")
    briefing = (copy_of / "briefing.html").read_text(encoding="utf-8")
    (copy_of / "briefing.html").write_text(briefing.replace(f'<tr data-unit="{second}">', '<tr data-unit="X">', 1),
                                           encoding="utf-8")
    problems = check_tops(copy_of)
    assert any(p.startswith("map.html numbers of ranked_units") for p in problems), problems
    assert any(p.startswith("map.html number 2 of ranked_units is not inside") for p in problems), problems
    assert any(p.startswith("briefing top list of ranked_units") for p in problems), problems


def test_a_model_version_or_period_other_than_run_json_is_caught(copy_of):
    assert check_records(copy_of) == []
    meta = json.loads((copy_of / "run.json").read_text())
    meta["model_version"] = "v9999"
    (copy_of / "run.json").write_text(json.dumps(meta))
    briefing = (copy_of / "briefing.html").read_text(encoding="utf-8")
    (copy_of / "briefing.html").write_text(
        briefing.replace("Data period 2021-01 to 2023-12", "Data period 2016-01 to 2018-06"), encoding="utf-8")
    problems = check_records(copy_of)
    assert any("layers.gpkg ranked_units.model_version" in p and "v9999" in p for p in problems), problems
    assert any("csv/ranked_units.csv model_version" in p for p in problems), problems
    assert any(p.startswith("briefing header") and "model v9999" in p for p in problems), problems
    assert any("map.html title lacks 'model v9999'" in p for p in problems), problems
    assert any("briefing caveat says data period 2016-01 to 2018-06" in p for p in problems), problems


def test_ogc_metadata_that_disagrees_with_its_features_is_caught(api_runs_dir, tmp_path, monkeypatch):
    from service.api import ogc

    out = tmp_path / "out"
    shutil.copytree(api_runs_dir / "run-2024-01", out / "runs" / "run-2024-01")
    with api_over(out) as (client, headers):
        assert check_ogc_metadata(client, headers, layers=("ranked_units",), run_id="run-2024-01") == []
    # the old bugs: the raw id as title, another run's period and model in the collection's metadata
    monkeypatch.setattr(ogc, "layer_title", lambda meta, name: name)
    monkeypatch.setattr(ogc, "_period", lambda meta: (pd.Timestamp("2016-01-01", tz="UTC"),
                                                      pd.Timestamp("2018-06-30", tz="UTC")))
    monkeypatch.setattr(ogc, "layer_meta", lambda meta, name: {**meta, "model_version": "v0003"})
    with api_over(out) as (client, headers):
        problems = check_ogc_metadata(client, headers, layers=("ranked_units",), run_id="run-2024-01")
    assert any("title is 'ranked_units', the raw id" in p for p in problems), problems
    assert any("temporal extent 2016-01-01" in p for p in problems), problems
    assert any(re.search(r"description .*model v0003.* vs features' model \['svrisk-0.1.0\+test'\]", p)
               for p in problems), problems


def _whole_run_problems(run: Path, pack: Path | None) -> list[str]:
    with api_over(run.parent.parent) as (client, headers):
        return check_all(run, client=client, headers=headers, pack_dir=pack)


@pytest.mark.slow
def test_a_demo_run_agrees_with_itself_everywhere(demo_runs, demo_pack):
    first, _, _ = demo_runs
    figures = json.loads((first / "figures.json").read_text())
    pack_end = pd.read_csv(demo_pack[0] / "tables" / "headline_rolling_12m.csv")["period_end"].astype(str)
    # the pack is compared where it covers the run's 12 months (the demo's default periods agree)
    pack = demo_pack[0] if figures["period_end"] in set(pack_end) else None
    assert pack is not None, (figures["period_end"], sorted(set(pack_end)))
    assert _whole_run_problems(first, pack) == []


@pytest.mark.slow
@pytest.mark.realdata
def test_a_real_data_run_agrees_with_itself_everywhere(real_run, real_pack):
    meta = json.loads((real_run / "run.json").read_text())
    names = [n for n, _ in pyogrio.list_layers(real_run / "layers.gpkg")]
    # the real folder's fresher ward tables give a forecast beside the lead: both are checked
    assert LEAD in names and (BESIDE in names) == bool(meta.get("current"))
    assert _whole_run_problems(real_run, real_pack[0]) == []
