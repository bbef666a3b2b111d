"""The HTTP service over the hand-made two-run folder (see conftest.py for its numbers)."""

import csv
import io
import re
import time

import pytest


def h(keys, role="viewer"):
    return {"X-API-Key": keys[role]}


def wait_for_job(client, job_id, headers, seconds=10.0):
    """Jobs run on the queue's own worker thread: poll until this one has finished."""
    deadline = time.monotonic() + seconds
    while True:
        status = client.get(f"/jobs/{job_id}", headers=headers).json()
        if status["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def test_health_needs_no_key_and_names_the_published_run(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["published_run"] == "run-2024-01"
    assert "runs_dir" not in r.text


@pytest.mark.parametrize("path", ["/runs", "/runs/latest", "/runs/run-2024-01/ranking",
                                  "/runs/run-2024-01/layers/hubs", "/ogc", "/runs/run-2024-01/map"])
def test_no_key_is_401_with_a_detail(client, path):
    r = client.get(path)
    assert r.status_code == 401
    assert "X-API-Key" in r.json()["detail"] and "Basic" in r.json()["detail"]
    # QGIS and GDAL answer a Basic challenge with the credentials of their auth config
    assert r.headers["www-authenticate"].startswith("Basic realm=")


def test_wrong_and_revoked_keys_are_401(client, api_keys):
    assert client.get("/runs", headers={"X-API-Key": "svk_nope_nope"}).status_code == 401
    assert client.get("/runs", headers={"X-API-Key": "garbage"}).status_code == 401
    r = client.get("/runs", headers=h(api_keys, "revoked"))
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]


def test_runs_newest_first_and_metadata(client, api_keys):
    r = client.get("/runs", headers=h(api_keys))
    assert [x["run_id"] for x in r.json()["runs"]] == ["run-2024-01", "run-2023-12"]
    meta = client.get("/runs/latest", headers=h(api_keys)).json()
    assert meta["run_id"] == "run-2024-01"
    assert meta["data_period"] == {"start": "2021-01", "end": "2023-12"}
    assert meta["layers"] == ["ranked_units", "hotspots", "emerging", "areas", "hubs", "youth_places"]
    assert "layers.gpkg" in meta["files"] and "map.html" in meta["files"]
    # the earlier run has no outputs written
    assert client.get("/runs/run-2023-12", headers=h(api_keys)).json()["files"] == []


def test_unknown_and_malicious_run_ids_are_404(client, api_keys):
    r = client.get("/runs/nope", headers=h(api_keys))
    assert r.status_code == 404
    assert "nope" in r.json()["detail"]
    assert "/" not in r.json()["detail"]  # no server path
    assert client.get("/runs/..%2F..%2Fetc/ranking", headers=h(api_keys)).status_code == 404
    assert client.get("/runs/.hidden", headers=h(api_keys)).status_code == 404


def test_ranking_json_pages_in_rank_order(client, api_keys):
    r = client.get("/runs/run-2024-01/ranking?limit=3&offset=1", headers=h(api_keys))
    body = r.json()
    assert body["numberMatched"] == 36 and body["numberReturned"] == 3
    # G11 = 12.0 is first; G00, G01, G02 (6.0 each, tie broken by unit_id) follow
    assert [i["unit_id"] for i in body["items"]] == ["G00", "G01", "G02"]
    assert [i["rank"] for i in body["items"]] == [2, 3, 4]
    assert body["items"][0]["expected"] == 6.0
    # the name people use: ward and nearest station (G02 is 200 m from Colindale station)
    assert body["items"][2]["place"] == "Colindale North, 200 m from Colindale station"
    assert "geometry" not in body["items"][0]
    assert {ln["rel"] for ln in body["links"]} == {"self", "next", "prev"}


def test_ranking_default_page_is_the_max_page_size(client, api_keys):
    body = client.get("/runs/latest/ranking", headers=h(api_keys)).json()
    assert body["numberReturned"] == 20  # max_page_size in the fixture
    assert any(ln["rel"] == "next" and "offset=20" in ln["href"] for ln in body["links"])


def test_ranking_rank_change_na_is_null(client, api_keys):
    items = client.get("/runs/run-2024-01/ranking?limit=20", headers=h(api_keys)).json()["items"]
    # conftest: rank_change is NA for every 5th row (i % 5 == 0), so row 0 (G11) is null
    assert items[0]["rank_change"] is None
    assert items[1]["rank_change"] == -1


def test_ranking_limit_over_max_is_400_with_detail(client, api_keys):
    r = client.get("/runs/latest/ranking?limit=21", headers=h(api_keys))
    assert r.status_code == 400
    assert "21" in r.json()["detail"] and "20" in r.json()["detail"]
    assert client.get("/runs/latest/ranking?limit=0", headers=h(api_keys)).status_code == 422


@pytest.mark.parametrize("how", ["query", "accept"])
def test_ranking_csv(client, api_keys, how):
    if how == "query":
        r = client.get("/runs/run-2024-01/ranking?format=csv", headers=h(api_keys))
    else:
        r = client.get("/runs/run-2024-01/ranking", headers={**h(api_keys), "Accept": "text/csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 36
    assert rows[0]["unit_id"] == "G11" and float(rows[0]["expected"]) == 12.0


def test_layer_geojson_is_lon_lat(client, api_keys):
    r = client.get("/runs/latest/layers/hubs", headers=h(api_keys))
    assert r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 4
    lon, lat = fc["features"][0]["geometry"]["coordinates"]
    assert -0.3 < lon < -0.2 and 51.5 < lat < 51.7  # Colindale, not metres
    assert fc["features"][0]["properties"]["run_id"] == "run-2024-01"


def test_layer_larger_than_page_is_400(client, api_keys):
    r = client.get("/runs/latest/layers/ranked_units", headers=h(api_keys))
    assert r.status_code == 400
    assert "/ogc/collections/ranked_units/items" in r.json()["detail"]


def test_unknown_layer_is_404(client, api_keys):
    r = client.get("/runs/latest/layers/roads", headers=h(api_keys))
    assert r.status_code == 404 and "roads" in r.json()["detail"]


def test_pages_and_downloads(client, api_keys):
    m = client.get("/runs/latest/map", headers=h(api_keys))
    assert m.status_code == 200 and "text/html" in m.headers["content-type"]
    assert "Clear Hold Build areas" in m.text
    b = client.get("/runs/run-2024-01/briefing", headers=h(api_keys))
    assert "places, never people" in b.text
    assert client.get("/runs/run-2024-01/map.html", headers=h(api_keys)).text == m.text
    g = client.get("/runs/latest/download/gpkg", headers=h(api_keys))
    assert g.status_code == 200 and g.content[:16] == b"SQLite format 3\x00"
    r = client.get("/runs/run-2023-12/map", headers=h(api_keys))
    assert r.status_code == 404 and "map.html" in r.json()["detail"]


def test_jobs_need_analyst_and_call_the_injected_function(client, api_keys, job_calls):
    before = len(job_calls)
    assert client.post("/jobs/rank", json={"cutoff": "2024-03"}).status_code == 401
    r = client.post("/jobs/rank", json={"cutoff": "2024-03"}, headers=h(api_keys, "viewer"))
    assert r.status_code == 403 and "'rank' scope" in r.json()["detail"]
    r = client.post("/jobs/rank", json={"cutoff": "2024-03"}, headers=h(api_keys, "analyst"))
    assert r.status_code == 202
    assert r.json()["links"][0]["href"] == f"https://testserver/jobs/{r.json()['job_id']}"
    status = wait_for_job(client, r.json()["job_id"], h(api_keys))
    assert status["status"] == "done" and status["result"] == {"ranked": True}
    assert job_calls[before:] == [("rank", {"cutoff": "2024-03"})]


def test_failing_job_reports_its_error(client, api_keys):
    r = client.post("/jobs/train", headers=h(api_keys, "analyst"))
    status = wait_for_job(client, r.json()["job_id"], h(api_keys))
    assert status["status"] == "failed"
    assert status["error"] == "RuntimeError: no training data"


def test_unwired_and_unknown_jobs(client, api_keys):
    r = client.post("/jobs/ingest", headers=h(api_keys, "analyst"))
    assert r.status_code == 501 and "ingest" in r.json()["detail"]
    assert client.post("/jobs/delete", headers=h(api_keys, "analyst")).status_code == 422


def test_large_body_is_413(client, api_keys):
    r = client.post("/jobs/rank", content=b"{" + b" " * 70_000 + b"}",
                    headers={**h(api_keys, "analyst"), "Content-Type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["detail"]


def test_whoami_and_openapi(client, api_keys):
    me = client.get("/auth/whoami", headers=h(api_keys, "analyst")).json()
    assert me["role"] == "analyst" and "publish" in me["scopes"] and me["expires"] > "2026"
    spec = client.get("/openapi.json").json()
    assert "/ogc/collections/{cid}/items" in spec["paths"]
    assert "/ogc/runs/{run_id}/collections/{cid}/items" in spec["paths"]
    assert {"APIKeyHeader", "HTTPBasic"} <= set(spec["components"]["securitySchemes"])


@pytest.mark.parametrize("page,asset", [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_docs_load_their_scripts_from_this_service(client, page, asset):
    html = client.get(page).text
    scripts = re.findall(r'src="([^"]+)"', html) + re.findall(r'href="([^"]+\.css)"', html)
    assert scripts and all(s.startswith("https://testserver/docs/assets/") for s in scripts)
    assert "fonts.googleapis" not in html and "cdn" not in html
    js = client.get(f"/docs/assets/{asset}")
    assert js.status_code == 200 and len(js.content) > 500_000
