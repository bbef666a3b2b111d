"""The main job end to end on the demo borough, checked against the demo's planted truth."""

from __future__ import annotations

import json

import pandas as pd
import pyogrio
import pytest

from reports import run_catalogue as rc
from reports.run_folder import load_run

pytestmark = pytest.mark.slow


def test_the_run_folder_holds_every_output(demo_runs):
    first, _, _ = demo_runs
    layers = {name for name, _ in pyogrio.list_layers(first / "layers.gpkg")}
    assert {"ranked_units", "hotspots", "areas", "hubs"} <= layers
    from reports.pdf import find_browser

    if find_browser() is not None:  # the PDF is printed wherever Chromium is installed
        assert (first / "briefing.pdf").read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize("which", [0, 1], ids=["trained", "saved model"])
def test_every_file_of_a_run_is_in_the_catalogue_and_every_listed_file_is_written(demo_runs, which):
    run = demo_runs[which]
    unlisted, missing = rc.check_folder(run)
    assert (unlisted, missing) == ([], [])
    # the demo has wards, a borough outline and a planning horizon: those optional files are there too
    for entry in (rc.WARDS, rc.BOROUGH, rc.PLANNING_RANKING):
        assert (run / entry.name(horizon=3)).is_file(), entry.path


def test_the_catalogue_names_the_key_columns_and_keys_of_what_a_run_writes(demo_runs):
    first, _, _ = demo_runs
    for entry in rc.CATALOGUE:
        path = first / entry.name(horizon=3, layer="ranked_units")
        if not path.is_file() or not entry.holds:
            continue
        if entry.format == "GeoParquet":
            have = set(pd.read_parquet(path).columns)
        elif entry.format == "JSON":
            have = set(json.loads(path.read_text()))
        elif entry.path.endswith(".gpkg"):
            have = {name for name, _ in pyogrio.list_layers(path)}
        else:
            continue
        # the layers a run has: the optional current forecast's is absent from a run on points
        expected = set(entry.holds) - {"current_ranked_units"}
        assert expected <= have, (entry.path, sorted(expected - have))


def test_the_next_run_reads_the_planning_ranking_and_so_does_load_run(demo_runs):
    first, second, _ = demo_runs
    quarter = load_run(first).tables[rc.PLANNING_RANKING.key]
    assert len(quarter) and quarter["unit_id"].is_unique
    # the second run's quarterly ranks are compared with the first run's ranking_h3.parquet
    later = pd.read_parquet(second / rc.PLANNING_RANKING.name(horizon=3))
    assert later["rank_change"].notna().all() and (later["rank_change"] == 0).all()


def test_every_place_carries_its_ward_and_nearest_station(demo_runs):
    first, _, _ = demo_runs
    ranking = pd.read_parquet(first / "ranking.parquet")
    wards = set(pd.read_parquet(first / "wards.parquet")["name"])
    ward_of = ranking["place"].str.split(", ").str[0]
    assert ward_of.isin(wards).all(), ranking.loc[~ward_of.isin(wards), "place"].head().tolist()
    assert ranking["place"].str.contains(r"station$").mean() > 0.9  # stations within 2 km of most places


def test_planted_hot_spots_are_top_ranked_and_never_cold(demo_runs):
    first, _, truth = demo_runs
    hot = set(truth["hot_lsoa11"])
    table = pd.read_parquet(first / "hotspots.parquet").set_index("unit_id")
    assert not table.loc[sorted(hot), "gi_class"].str.startswith("Cold Spot").any()
    ranking = pd.read_parquet(first / "ranking.parquet")
    top10 = set(ranking.nsmallest(10, "rank")["unit_id"])
    assert len(hot & top10) >= len(hot) - 1, sorted(hot - top10)


def test_planted_hot_spots_come_out_hot_on_the_grid(demo_runs):
    """Gi* finds clusters: on 250 m cells most planted spots (200 m radius) have a hot cell close by."""
    import numpy as np

    from features.build import FeatureBuilder
    from features.units import build_units
    from models.hotspots.analysis import analyse_hotspots
    from sources.store import Store

    first, _, truth = demo_runs
    store = Store(json.loads((first / "run.json").read_text())["data"]["store"])
    fb = FeatureBuilder(store, build_units(store, "grid250"))
    result = analyse_hotspots(fb, json.loads((first / "run.json").read_text())["cutoff"], permutations=9999,
                              seed=1, areas=False)
    hot = result.table[result.table["gi_class"].str.startswith("Hot Spot")].geometry.centroid
    planted = [h for h in truth["hotspots"] if h["kind"] == "persistent"]
    near = [bool((np.hypot(hot.x - h["x"], hot.y - h["y"]) <= 250).any()) for h in planted]
    assert sum(near) >= len(planted) / 2, near
    cold = result.table[result.table["gi_class"].str.startswith("Cold Spot")].geometry.centroid
    assert not any((np.hypot(cold.x - h["x"], cold.y - h["y"]) <= 250).any() for h in planted)


def test_second_run_reports_rank_change_against_the_first(demo_runs):
    first, second, _ = demo_runs
    meta = json.loads((second / "run.json").read_text())
    assert meta["previous_run"] == first.name and meta["model_version"] == "v0001"
    ranking = pd.read_parquet(second / "ranking.parquet")
    assert ranking["rank_change"].notna().all()
    assert (ranking["rank_change"] == 0).all()  # same data, same model: nothing moved


def test_figures_and_fairness_are_reported(demo_runs):
    first, _, _ = demo_runs
    figures = json.loads((first / "figures.json").read_text())
    rows = {r["group"]: r for r in figures["rows"]}
    sv = rows["serious violence"]
    assert sv["count_12m"] > 0 and sv["rate_per_1000"] == pytest.approx(1000 * sv["count_12m"] / figures["population"], abs=0.01)
    assert sv["change_pct"] is not None
    fairness = json.loads((first / "fairness.json").read_text())
    assert any("imd" in r["measure"].lower() or "depriv" in r["measure"].lower() for r in fairness["rows"])
    meta = json.loads((first / "run.json").read_text())
    assert meta["police_generated_used"] is False


def test_the_run_forecasts_next_month_and_next_quarter_with_their_skill(demo_runs):
    first, second, _ = demo_runs
    meta = json.loads((first / "run.json").read_text())
    main, plan = meta["horizons"]
    assert (main["role"], main["horizon"], main["ranking"]) == ("main", 1, "ranking.parquet")
    assert (plan["role"], plan["horizon"], plan["ranking"]) == ("planning", 3, "ranking_h3.parquet")
    assert plan["use"] == "Clear Hold Build planning" and meta["areas_horizon"] == 3
    for h in (main, plan):
        skill = h["skill"]
        assert 0 < skill["pei"] <= 1 and 0 < skill["ceiling_pei"] <= 1 and skill["lo"] <= skill["hi"]
        assert skill["verdict"].split(" last year's counts")[0] in ("Better than", "No better than", "Worse than")
    quarter = pd.read_parquet(first / "ranking_h3.parquet")
    month_ = pd.read_parquet(first / "ranking.parquet")
    # three months of events are expected where one month's were: about three times as many
    assert 2.0 < quarter["expected"].sum() / month_["expected"].sum() < 4.0
    # the areas are the quarter's: their expected counts add up from its ranking
    areas = pd.read_parquet(first / "areas.parquet")
    ids = [u for a in areas["unit_ids"] for u in a.split("; ")]
    assert areas["expected"].sum() == pytest.approx(quarter.set_index("unit_id").loc[ids, "expected"].sum())
    html = (first / "briefing.html").read_text()
    assert "How good are these forecasts?" in html and "next quarter" in html and 'id="skill"' in html
    # ranking again with the saved month model finds the saved quarter model
    again = json.loads((second / "run.json").read_text())
    assert [h["model_version"] for h in again["horizons"]] == [main["model_version"], plan["model_version"]]
