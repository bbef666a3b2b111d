"""`svrisk evaluate` and the evaluations API on the planted demo (tests/_support/intervention_demo.py)."""

from __future__ import annotations

import json
import re
import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from reports.pdf import find_browser
from service.cli import app

runner = CliRunner()


def evaluate(planted_demo, tmp_path, *args):
    env = {"SVRISK_OUT_DIR": str(tmp_path / "out")}
    return runner.invoke(app, ["evaluate", "--store", str(planted_demo["store"]), "--out", str(tmp_path / "ev"),
                               "--placebos", "9", *args], env=env)


def test_unit_ids_give_a_summary_series_and_every_estimate(planted_demo, tmp_path):
    truth = planted_demo["truth"]
    result = evaluate(planted_demo, tmp_path, "--area", ",".join(truth["area_lsoa11"]), "--start",
                      truth["start_month"], "--pre-months", "20", "--buffer", "300")
    assert result.exit_code == 0, result.output
    assert "Serious violence in the area fell by about" in result.output
    assert "only 20 months before the start" in result.output  # warned, not refused
    doc = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert doc["did"]["lo"] < truth["rate_ratio"] < doc["did"]["hi"]
    assert doc["area"]["unit_ids"] == truth["area_lsoa11"] and doc["buffer"]["buffer_m"] == 300
    assert {"did", "pre_trend", "synthetic_control", "displacement", "rest_of_borough",
            "minimum_detectable_effect", "rules", "parameters", "verdict", "warnings"} <= set(doc)
    series = pd.read_csv(tmp_path / "ev" / "series.csv")
    assert len(series) == 20 + (36 - 20) and (series["period"] == "after").sum() == 16
    html = (tmp_path / "ev" / "summary.html").read_text()
    assert doc["verdict"].split(" (")[0] in html and "data:image/png;base64," in html
    if find_browser() is not None:
        pdf = (tmp_path / "ev" / "summary.pdf").read_bytes()
        assert re.findall(rb"/Count\s+(\d+)", pdf) == [b"1"]  # one page for the board


def test_a_polygon_in_degrees_is_evaluated_on_grid_cells(planted_demo, tmp_path):
    truth = planted_demo["truth"]
    lsoa = gpd.read_file(planted_demo["data"] / "boundaries" / "lsoa2011.gpkg")
    area = lsoa[lsoa["LSOA11CD"].isin(truth["area_lsoa11"])].dissolve()
    area.to_crs("EPSG:4326").to_file(tmp_path / "area.geojson", driver="GeoJSON")
    result = evaluate(planted_demo, tmp_path, "--area", str(tmp_path / "area.geojson"), "--units", "grid200",
                      "--start", truth["start_month"], "--pre-months", "20", "--buffer", "300")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert doc["area"]["edition"] == "grid200" and doc["area_kind"] == "polygon"
    # cells at least half inside: the area in cells is within a ring of 200 m cells of the polygon's area
    polygon_km2 = shapely.union_all(area.geometry.to_numpy()).area / 1e6
    assert abs(doc["area"]["area_km2"] - polygon_km2) < 0.35 * polygon_km2
    assert doc["displacement"]["buffer_did"]["lo"] > 1


@pytest.mark.parametrize(("args", "message"), [
    (["--area", "E01900001", "--start", "2017/09"], "not a month: '2017/09'"),
    (["--area", "E01999999", "--start", "2017-09"], "E01999999"),
    (["--area", "E01900001", "--start", "2016-06"], "only 5 complete month(s) before the start 2016-06"),
    (["--area", "A1", "--start", "2017-09"], "no runs in"),
])
def test_user_errors_are_one_line_and_exit_2(planted_demo, tmp_path, args, message):
    result = evaluate(planted_demo, tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------------------- the API


def finished(client, url, headers, seconds=300.0):
    """Poll a job's state until it is neither queued nor running (jobs run on the job queue)."""
    deadline = time.monotonic() + seconds
    while True:
        doc = client.get(url, headers=headers).json()
        if doc.get("status") not in ("queued", "running") or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(planted_demo, tmp_path_factory):
    from fastapi.testclient import TestClient

    from service.api import create_app
    from service.jobs import job_runners
    from service.keys import KeyStore
    from service.settings import get_settings
    from service.stores import default_store_dir

    out = tmp_path_factory.mktemp("eval-api") / "out"
    settings = get_settings(out_dir=out, data_dir=planted_demo["data"], service={"keys_file": out / "keys.json"})
    store = default_store_dir(settings, planted_demo["data"])  # the data folder's store: already ingested
    store.parent.mkdir(parents=True)
    store.symlink_to(planted_demo["store"], target_is_directory=True)
    keys = KeyStore(settings.service.keys_file)
    headers = {role: {"X-API-Key": keys.create(f"test {role}", role)} for role in ("viewer", "analyst")}
    runners = job_runners(settings)
    with TestClient(create_app(settings, jobs={"evaluate": runners["evaluate"]})) as client:
        yield client, headers
    with TestClient(create_app(settings)) as client:  # no evaluate job wired
        assert client.post("/evaluations", json={"area": "x", "start": "2017-09"},
                           headers=headers["analyst"]).status_code == 501


def test_analysts_start_an_evaluation_and_anyone_with_a_key_reads_it(api, planted_demo):
    client, headers = api
    truth = planted_demo["truth"]
    body = {"area": ",".join(truth["area_lsoa11"]), "start": truth["start_month"], "pre_months": 20,
            "buffer_m": 300, "placebos": 9}
    assert client.post("/evaluations", json=body).status_code == 401
    assert client.post("/evaluations", json=body, headers=headers["viewer"]).status_code == 403
    r = client.post("/evaluations", json=body, headers=headers["analyst"])
    assert r.status_code == 202, r.text
    eid = r.json()["evaluation_id"]
    doc = finished(client, f"/evaluations/{eid}", headers["viewer"])  # queued, run in its own process
    assert doc["status"] == "done", doc
    assert doc["did"]["lo"] < truth["rate_ratio"] < doc["did"]["hi"]
    page = client.get(f"/evaluations/{eid}/summary", headers=headers["viewer"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csv = client.get(f"/evaluations/{eid}/series.csv", headers=headers["viewer"])
    assert csv.text.startswith("month,period,area,buffer")
    listed = client.get("/evaluations", headers=headers["viewer"]).json()
    assert [e["evaluation_id"] for e in listed["evaluations"]] == [eid]


def test_the_api_refuses_paths_and_reports_failures(api):
    client, headers = api
    r = client.post("/evaluations", json={"area": "/etc/passwd", "start": "2017-09"}, headers=headers["analyst"])
    assert r.status_code == 400 and "run's area" in r.json()["detail"]
    r = client.post("/evaluations", json={"area": "E01900001", "start": "2016-06"}, headers=headers["analyst"])
    state = finished(client, f"/evaluations/{r.json()['evaluation_id']}", headers["viewer"])
    assert state["status"] == "failed" and "only 5 complete month(s)" in state["error"]
    assert client.get("/evaluations/no-such", headers=headers["viewer"]).status_code == 404
    assert client.get("/evaluations/..%2F..", headers=headers["viewer"]).status_code == 404
