"""Access as real clients make it: browser login and session, HTTP Basic for GIS, key scopes and expiry."""

from __future__ import annotations

import base64
import json
import re

import pytest
from fastapi.testclient import TestClient


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def parts(key: str) -> tuple[str, str]:
    _, key_id, secret = key.split("_", 2)
    return key_id, secret


@pytest.fixture
def browser(client):
    """A fresh cookie jar over the module's app (each test logs in itself)."""
    with TestClient(client.app, base_url="https://testserver") as c:
        yield c


def log_in(c, key: str, next_: str = "/map"):
    return c.post("/login", data={"key": key, "next": next_}, follow_redirects=False)


def test_a_browser_without_a_session_is_sent_to_the_login_page(browser):
    r = browser.get("/runs/latest/map", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "https://testserver/login?next=%2Fruns%2Flatest%2Fmap"
    page = browser.get(r.headers["location"])
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert 'name="next" value="/runs/latest/map"' in page.text


def test_login_sets_a_secure_httponly_samesite_cookie_without_the_key(browser, api_keys):
    r = log_in(browser, api_keys["viewer"], "/briefing")
    assert r.status_code == 303 and r.headers["location"] == "https://testserver/briefing"
    cookie = r.headers["set-cookie"]
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path", "max-age"} <= attrs
    assert "samesite=strict" in cookie.lower()
    assert parts(api_keys["viewer"])[1] not in cookie
    # the session opens the pages, the published run's included
    assert "places, never people" in browser.get("/briefing").text
    assert browser.get("/runs").status_code == 200


def test_a_wrong_key_gets_the_form_again_and_no_cookie(browser, api_keys):
    r = log_in(browser, api_keys["viewer"][:-2] + "xx")
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert "not recognised" in r.text
    r = log_in(browser, api_keys["revoked"])
    assert r.status_code == 401 and "revoked" in r.text


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_to_another_site(browser, api_keys, target):
    r = log_in(browser, api_keys["viewer"], target)
    assert r.headers["location"] == "https://testserver/map"


def test_job_forms_need_the_sessions_csrf_token(browser, api_keys):
    log_in(browser, api_keys["analyst"])
    page = browser.get("/jobs", headers={"Accept": "text/html"}).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    forged = browser.post("/jobs/rank", data={"cutoff": "2024-02"}, follow_redirects=False)
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    wrong = browser.post("/jobs/rank", data={"cutoff": "2024-02", "csrf_token": "x" * 32},
                         follow_redirects=False)
    assert wrong.status_code == 403
    cross = browser.post("/jobs/rank", data={"cutoff": "2024-02", "csrf_token": token},
                         headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert cross.status_code == 403
    ok = browser.post("/jobs/rank", data={"cutoff": "2024-02", "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "https://testserver/jobs"
    queued = browser.get("/jobs").json()["jobs"][0]
    assert queued["params"] == {"cutoff": "2024-02"} and queued["requested_by"] == parts(api_keys["analyst"])[0]
    bad = browser.post("/jobs/rank", data={"cutoff": "2018-07\n", "csrf_token": token},
                       follow_redirects=False)
    assert bad.status_code == 422


def test_logout_ends_the_session(browser, api_keys):
    log_in(browser, api_keys["viewer"])
    page = browser.get("/jobs", headers={"Accept": "text/html"}).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    old = browser.cookies.get("svrisk_session")
    r = browser.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    with TestClient(browser.app, base_url="https://testserver") as other:
        other.cookies.set("svrisk_session", old)
        r = other.get("/runs")
        assert r.status_code == 401 and "session has ended" in r.json()["detail"]


def test_http_basic_reads_like_qgis_does(client, api_keys):
    key_id, secret = parts(api_keys["viewer"])
    assert client.get("/ogc/collections", headers=basic(key_id, secret)).status_code == 200
    # the whole key as password, any user name: what people paste
    assert client.get("/ogc/collections", headers=basic("qgis", api_keys["viewer"])).status_code == 200
    r = client.get("/ogc/collections", headers=basic(key_id, secret[:-1] + "x"))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert secret not in r.text


def test_http_basic_never_starts_a_job(client, api_keys):
    key_id, secret = parts(api_keys["analyst"])
    r = client.post("/jobs/rank", json={}, headers=basic(key_id, secret))
    assert r.status_code == 401 and "reading only" in r.json()["detail"]


def test_scopes_limit_a_key(client, api_keys):
    ranker = {"X-API-Key": api_keys["ranker"]}
    assert client.get("/runs", headers=ranker).status_code == 200
    r = client.post("/jobs/ingest", headers=ranker)
    assert r.status_code == 403 and "'ingest' scope" in r.json()["detail"]
    assert client.post("/runs/run-2023-12/publish", headers=ranker).status_code == 403


def test_an_expired_key_is_refused(client, api_settings):
    from service.keys import KeyStore

    store = KeyStore(api_settings.service.keys_file)
    key = store.create("temp", "viewer", days=1)
    key_id = parts(key)[0]
    path = api_settings.service.keys_file
    raw = json.loads(path.read_text())
    for rec in raw["keys"]:
        if rec["key_id"] == key_id:
            rec["expires"] = "2020-01-01T00:00:00+00:00"
    path.write_text(json.dumps(raw))
    r = client.get("/runs", headers={"X-API-Key": key})
    assert r.status_code == 401 and "expired on 2020-01-01" in r.json()["detail"]


def test_a_key_in_the_query_string_is_refused(client, api_keys):
    r = client.get("/runs", params={"key": api_keys["viewer"]})
    assert r.status_code == 400 and "never accepted in URLs" in r.json()["detail"]


def test_the_redaction_filter_blanks_keys_in_log_records():
    import logging

    from service.api.server import RedactKeys

    rec = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"', (
        "127.0.0.1", "GET", "/runs?k=svk_abc123_S3cr3t-_x"), None)
    RedactKeys().filter(rec)
    assert "S3cr3t" not in rec.getMessage() and "svk_<redacted>" in rec.getMessage()
