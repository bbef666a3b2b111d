"""What --area names, and the evaluation summary's page, series and JSON."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.units import UnitSet
from models.interventions import evaluate_intervention
from reports.evaluation import (
    AreaSpec,
    evaluation_id,
    parse_area,
    summary_context,
    write_evaluation,
)
from sources.readers import DataError


def test_a_run_area_is_read_from_the_latest_run_or_a_named_one(runs_dir):
    spec = parse_area("A1", runs_dir)
    assert spec.kind == "run_area" and spec.run["run_id"] == "run-2024-01"
    assert spec.unit_ids == ["G00", "G01", "G10", "G11"] and spec.edition == "grid250"
    assert spec.wards == "Colindale North" and spec.label == "Area A1"
    older = parse_area("run-2023-12/A2", runs_dir)
    assert older.run["run_id"] == "run-2023-12" and older.unit_ids == ["G44", "G45", "G54", "G55"]
    with pytest.raises(ValueError, match=r"has no area 'A9'.*\['A1', 'A2'\]"):
        parse_area("A9", runs_dir)
    with pytest.raises(ValueError, match="cannot be evaluated on --units lsoa2011"):
        spec.units_edition("lsoa2011", "lsoa2011")
    # the run chose its areas from data before 2024-01: evaluating from 2023-06 is warned about
    assert any("after the start 2023-06" in w for w in spec.warnings("2023-06"))
    assert spec.warnings("2024-02") == []


def test_a_polygon_file_is_reprojected_and_unit_ids_are_split(tmp_path):
    square = shapely.box(522000, 190000, 522500, 190500)
    wgs = gpd.GeoDataFrame({"name": ["patch"]}, geometry=[square], crs="EPSG:27700").to_crs("EPSG:4326")
    wgs.to_file(tmp_path / "patch.geojson", driver="GeoJSON")
    spec = parse_area(str(tmp_path / "patch.geojson"), tmp_path / "runs")
    assert spec.kind == "polygon" and spec.label == "patch"
    assert spec.polygon.symmetric_difference(square).area < 1e-5 * square.area  # back in metres
    gpd.GeoDataFrame(geometry=[shapely.Point(522000, 190000)], crs="EPSG:27700").to_file(tmp_path / "pt.gpkg")
    with pytest.raises(DataError, match="not a polygon"):
        parse_area(str(tmp_path / "pt.gpkg"), tmp_path / "runs")
    ids = parse_area("E01000001, E01000002", tmp_path / "runs")
    assert ids.kind == "units" and ids.unit_ids == ["E01000001", "E01000002"]
    assert ids.units_edition(None, "lsoa2011") == "lsoa2011"
    assert re.fullmatch(r"\d{8}T\d{6}-E01000001-and-1-more-2018-01",
                        evaluation_id(ids, "2018-01", pd.Timestamp("2024-05-01T10:00:00", tz="UTC")))


def _grid(n: int = 8) -> UnitSet:
    rows = [{"unit_id": f"c{r}{c}", "name": f"cell {r}-{c}", "area_m2": 1e4,
             "geometry": shapely.box(c * 100, r * 100, (c + 1) * 100, (r + 1) * 100)}
            for r in range(n) for c in range(n)]
    return UnitSet(gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:27700"), "grid100")


@pytest.fixture(scope="module")
def toy():
    """An 8 x 8 grid, 30 months of Poisson(6) counts; the area c00+c01 halves from 2017-07."""
    units = _grid()
    rng = np.random.default_rng(4)
    cols = pd.date_range("2016-01-01", periods=30, freq="MS")
    panel = pd.DataFrame(rng.poisson(6.0, (len(units), 30)).astype(float), index=units.ids.astype(str), columns=cols)
    after = cols >= "2017-07-01"
    panel.loc[["c00", "c01"], after] = rng.poisson(3.0, (2, after.sum()))
    ev = evaluate_intervention(panel, units, ["c00", "c01"], "2017-07", complete_months=list(cols), pre_months=18,
                               buffer_m=50.0, n_placebos=9)
    return units, panel, ev, AreaSpec("units", "c00 and 1 more", "c00,c01", unit_ids=["c00", "c01"])


def test_the_page_shows_the_numbers_of_the_series(toy):
    units, panel, ev, spec = toy
    ctx = summary_context(ev, spec, {"evaluation_id": "e1", "created": "now"}, units)
    area = next(r for r in ctx["rows"] if r["name"] == "The area")
    before = panel.loc[["c00", "c01"], panel.columns < "2017-07-01"].sum(axis=0).mean()
    after = panel.loc[["c00", "c01"], panel.columns >= "2017-07-01"].sum(axis=0).mean()
    assert area["before"] == f"{before:,.1f}" and area["after"] == f"{after:,.1f}"
    assert area["change"] == f"{100 * (after / before - 1):+.0f}%"
    headline = ctx["figures"][0]
    assert headline["value"] == f"{ev.estimates['did']['change_pct']:+.0f}%"
    assert ctx["verdict"].startswith("Reduced. Serious violence in the area fell")


def test_write_evaluation_writes_the_four_files(toy, tmp_path):
    units, panel, ev, spec = toy
    written = write_evaluation(ev, tmp_path / "e1", spec, units, meta={"evaluation_id": "e1", "created": "now"},
                               pdf=False)
    assert sorted(p.name for p in written.paths.values()) == ["evaluation.json", "series.csv", "summary.html"]
    doc = json.loads(written.paths["json"].read_text())
    assert doc["did"]["rate_ratio"] == pytest.approx(ev.estimates["did"]["rate_ratio"])
    assert doc["area_source"] == "c00,c01" and doc["meta"]["evaluation_id"] == "e1"
    series = pd.read_csv(written.paths["csv"])
    assert list(series.columns[:4]) == ["month", "period", "area", "buffer"]
    assert series["area"].sum() == panel.loc[["c00", "c01"]].sum().sum()
    html = written.paths["html"].read_text()
    assert 'id="event-study"' in html and series["effect_pct"].notna().sum() == 30 - 9  # all but the reference half
    assert "Did it work? c00 and 1 more" in html and ev.estimates["verdict"].split(" (")[0] in html
