"""Second hardening round of the service (issue 32): sessions, bodies, redirects, framing, throttling.

What is about the wire (framing, duplicate headers, HEAD, redirects, state shared by worker
processes) runs against a real ``svrisk serve --workers 2`` on 127.0.0.1; the rest uses the
TestClient.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from live_server import cli_server, free_port

from service.api.auth import Sessions
from service.api.guard import json_body_problem
from service.api.state import SharedState
from service.jobs import redactor
from service.keys import KeyRecord


def raw(port: int, request: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``request`` on a fresh socket; (everything answered, whether the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer, closed = b"", False
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    closed = True
                    break
                answer += data
        except TimeoutError:
            pass
    return answer, closed


@pytest.fixture(scope="module")
def served(api_settings, api_keys, tmp_path_factory):
    """``svrisk serve --workers 2`` over the API test runs."""
    log = tmp_path_factory.mktemp("serve32") / "serve.log"
    port = free_port()
    with cli_server(api_settings.out_dir, api_settings.service.keys_file, port, log, ("--workers", "2"),
                    cookie_secure="false", keep_alive_s=2) as (base, proc):
        for _ in range(20):  # both workers up
            assert httpx.get(f"{base}/health", timeout=120).status_code == 200
        assert log.read_text().count("Started server process") == 2
        yield base, port, log


def test_conflicting_framing_is_400_and_the_connection_closed(served, api_keys):
    _, port, _ = served
    answer, closed = raw(port, (f"POST /jobs/rank HTTP/1.1\r\nHost: x\r\nX-API-Key: {api_keys['analyst']}\r\n"
                                "Content-Type: application/json\r\nContent-Length: 4\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Content-Length and Transfer-Encoding" in answer and closed


def test_two_api_key_headers_are_400_whatever_their_order(served, api_keys):
    _, port, _ = served
    for first, second in ((api_keys["viewer"], "svk_nope_nope"), ("svk_nope_nope", api_keys["viewer"])):
        answer, _ = raw(port, (f"GET /runs HTTP/1.1\r\nHost: x\r\nX-API-Key: {first}\r\n"
                               f"X-API-Key: {second}\r\nConnection: close\r\n\r\n").encode())
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert api_keys["viewer"].encode() not in answer


def test_head_answers_like_get_without_a_body(served, api_keys):
    base, _, _ = served
    h = {"X-API-Key": api_keys["viewer"], "Accept-Encoding": "identity"}
    for path in ("/health", "/runs/published", "/ogc/collections", "/runs/published/ranking?limit=3"):
        get = httpx.get(base + path, headers=h)
        head = httpx.head(base + path, headers=h)
        assert get.status_code == head.status_code == 200, (path, head.status_code)
        assert head.content == b"" and head.headers["content-length"] == str(len(get.content))


def test_trailing_slash_redirect_comes_from_the_public_url_not_the_host_header(served, api_keys):
    base, port, _ = served
    answer, _ = raw(port, (f"GET /runs/?limit=1 HTTP/1.1\r\nHost: evil.example\r\nX-API-Key: {api_keys['viewer']}"
                           "\r\nConnection: close\r\n\r\n").encode())
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 307")
    location = re.search(r"(?im)^location: (.*)$", head).group(1).strip()
    assert location == f"{base}/runs?limit=1" and "evil" not in location


def test_a_key_in_the_path_is_refused_and_never_echoed(served, api_keys):
    base, _, _ = served
    key = api_keys["viewer"]
    for path in (f"/runs/{key}", f"/{key}", f"/ogc/runs/{key}/collections"):
        r = httpx.get(base + path, headers={"X-API-Key": key})
        assert r.status_code in (400, 404) and key not in r.text and key.split("_")[2] not in r.text
    r = httpx.get(f"{base}/jobs/{'x' * 30}secret", headers={"X-API-Key": key})
    assert r.status_code == 404 and "secret" not in r.text


def test_logout_holds_on_every_worker_and_login_is_throttled_across_workers(served, api_keys):
    base, _, _ = served
    r = httpx.post(f"{base}/login", data={"key": api_keys["analyst"], "next": "/runs"})
    assert r.status_code == 303, r.text
    cookie = {"Cookie": r.headers["set-cookie"].split(";")[0]}
    # many requests on new connections: both worker processes see the session
    assert all(httpx.get(f"{base}/runs", headers=cookie).status_code == 200 for _ in range(12))
    page = httpx.get(f"{base}/jobs", headers={**cookie, "Accept": "text/html"}).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert httpx.post(f"{base}/logout", data={"csrf_token": token}, headers=cookie).status_code == 303
    after = [httpx.get(f"{base}/runs", headers=cookie).status_code for _ in range(12)]
    assert after == [401] * 12
    # wrong keys for the viewer's id: login_attempts (10) are answered, then 429 from any worker
    key_id = api_keys["viewer"].split("_")[1]
    codes = [httpx.post(f"{base}/login", data={"key": f"svk_{key_id}_wrong{i}"}).status_code for i in range(14)]
    assert codes == [401] * 10 + [429] * 4, codes
    r = httpx.post(f"{base}/login", data={"key": api_keys["viewer"]})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_cached_answers_carry_an_etag_and_gzip(served, api_keys):
    base, _, _ = served
    h = {"X-API-Key": api_keys["viewer"], "Accept-Encoding": "gzip"}
    with httpx.Client(headers=h) as c:
        first = c.get(f"{base}/runs/published/ranking?limit=20")
        assert first.status_code == 200 and first.headers["content-encoding"] == "gzip"
        etag = first.headers["etag"]
        again = c.get(f"{base}/runs/published/ranking?limit=20", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
    plain = httpx.get(f"{base}/runs/published/ranking?limit=20",
                      headers={"X-API-Key": api_keys["viewer"], "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["etag"] == etag
    assert plain.json() == first.json() and len(gzip.compress(plain.content)) > 0


def test_a_logged_out_session_never_comes_back_however_many_follow(tmp_path):
    sessions = Sessions(hours=1, state=SharedState(tmp_path / "state.sqlite", max_sessions=5))
    record = KeyRecord(key_id="k1", name="n", role="viewer", salt="", hash="", created="", expires=None)
    first, _ = sessions.make(record)
    assert sessions.key_id(first) == "k1"
    sessions.log_out(first)
    made = [sessions.make(record)[0] for _ in range(200)]
    assert sessions.key_id(first) is None
    # the store stays bounded; the oldest are ended, the newest work
    assert sessions.state.session_count() == 5
    assert sessions.key_id(made[0]) is None and all(sessions.key_id(v) == "k1" for v in made[-5:])
    # a second process opening the same file agrees, and shares the signing secret
    other = Sessions(hours=1, state=SharedState(tmp_path / "state.sqlite", max_sessions=5))
    assert other.key_id(made[-1]) == "k1" and other.key_id(first) is None
    other.log_out(made[-1])
    assert sessions.key_id(made[-1]) is None


def test_failed_logins_are_counted_per_client_and_per_key_id(tmp_path):
    state = SharedState(tmp_path / "s.sqlite")
    for _ in range(3):
        assert state.blocked(["client:a", "key:k"], 3, 60) == 0
        state.failed(["client:a", "key:k"], 60)
    assert state.blocked(["client:a", "key:other"], 3, 60) > 0  # the client is throttled
    assert 1 <= state.blocked(["client:b", "key:k"], 3, 60) <= 60  # so is the key id, from anywhere
    assert state.blocked(["client:b", "key:k2"], 3, 60) == 0
    time.sleep(0.05)
    assert state.blocked(["client:a"], 3, 0.02) == 0  # the window passes


def test_json_bodies_too_deep_or_with_huge_numbers_are_422(client, api_keys, job_calls):
    h = {"X-API-Key": api_keys["analyst"], "Content-Type": "application/json"}
    calls = len(job_calls)
    deep = b'{"cutoff": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    r = client.post("/jobs/rank", content=deep, headers=h)
    assert r.status_code == 422 and "nested" in r.json()["detail"]
    huge = b'{"cutoff": ' + b"9" * 5001 + b"}"
    r = client.post("/jobs/rank", content=huge, headers=h)
    assert r.status_code == 422 and "5001 characters" in r.json()["detail"]
    assert "9" * 50 not in r.text
    assert len(job_calls) == calls
    # strings hold brackets and digits freely
    assert json_body_problem(json.dumps({"area": "[" * 100 + "9" * 100}).encode(), 32, 32) is None


@pytest.fixture
def evaluating(api_settings, api_keys):
    from service.api import create_app

    queued = []
    app = create_app(api_settings, jobs={"evaluate": queued.append, "rank": queued.append})
    with TestClient(app, base_url="https://testserver") as c:
        yield c, queued


@pytest.mark.parametrize("path,body,named", [
    ("/evaluations", {"area": "E01000001", "start": "2018-01", "units": "grid1"}, "'grid1'"),
    ("/evaluations", {"area": "E01000001", "start": "2018-01", "units": "../../x"}, "'../../x'"),
    ("/evaluations", {"area": "E01000001", "start": "9999-12"}, "'9999-12'"),
    ("/jobs/rank", {"cutoff": "9999-12"}, "'9999-12'"),
    ("/jobs/rank", {"units": "grid1"}, "'grid1'"),
    ("/jobs/rank", {"cutoff": "2" * 5001}, "not a month"),
])
def test_jobs_and_evaluations_share_the_clis_checks_before_queuing(evaluating, api_keys, path, body, named):
    c, queued = evaluating
    r = c.post(path, json=body, headers={"X-API-Key": api_keys["analyst"]})
    assert r.status_code == 422, r.text
    assert named in r.json()["detail"] and len(r.text) < 400
    assert queued == []


def test_validation_errors_name_the_field_not_the_value(evaluating, api_keys):
    c, _ = evaluating
    secret = "svk-looking-secret-" + "x" * 20
    r = c.post("/evaluations", json={"area": secret, "start": secret}, headers={"X-API-Key": api_keys["analyst"]})
    assert r.status_code == 422 and secret not in r.text
    assert any(e["loc"][-1] == "start" for e in r.json()["detail"])


def test_redaction_replaces_whole_paths_only(tmp_path):
    out = tmp_path / "out"
    redact = redactor(out, os.path.relpath(out))
    text = f"the job ended without a result, about 86,799,132 cells: {out}/runs/x and {out}side"
    assert redact(text) == f"the job ended without a result, about 86,799,132 cells: <out>/runs/x and {out}side"


def test_a_job_queued_on_one_worker_is_known_to_the_others(api_settings, api_keys, tmp_path):
    from service.api import create_app

    svc = api_settings.service.model_copy(update={"state_file": tmp_path / "state.sqlite"})
    settings = api_settings.model_copy(update={"service": svc})
    h = {"X-API-Key": api_keys["analyst"]}
    with TestClient(create_app(settings, jobs={"rank": lambda p: {"ranked": p}}), base_url="https://testserver") as a, \
            TestClient(create_app(settings, jobs={"rank": lambda p: {}}), base_url="https://testserver") as b:
        job = a.post("/jobs/rank", json={"cutoff": "2018-07"}, headers=h).json()
        for _ in range(100):
            seen = b.get(f"/jobs/{job['job_id']}", headers=h)
            if seen.status_code == 200 and seen.json()["status"] == "done":
                break
            time.sleep(0.05)
        assert seen.json()["result"] == {"ranked": {"cutoff": "2018-07"}}
        assert [j["job_id"] for j in b.get("/jobs", headers=h).json()["jobs"]] == [job["job_id"]]


def test_a_new_publication_is_served_at_once_despite_the_cache(tmp_path):
    from run_folder import make_run_dir

    from service.api import create_app
    from service.keys import KeyStore
    from service.publish import publish
    from service.settings import get_settings

    runs = tmp_path / "out" / "runs"
    make_run_dir(runs, "run-a", created="2023-12-05T09:00:00+00:00", previous=False)
    make_run_dir(runs, "run-b", created="2024-01-05T09:00:00+00:00")
    publish(runs, "run-a")
    settings = get_settings(out_dir=tmp_path / "out", service={"keys_file": tmp_path / "keys.json",
                                                               "public_url": "https://testserver"})
    h = {"X-API-Key": KeyStore(settings.service.keys_file).create("t", "viewer")}
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        first = c.get("/runs/published", headers=h)
        assert first.json()["run_id"] == "run-a"
        assert c.get("/runs/published", headers={**h, "If-None-Match": first.headers["etag"]}).status_code == 304
        publish(runs, "run-b")
        again = c.get("/runs/published", headers={**h, "If-None-Match": first.headers["etag"]})
        assert again.status_code == 200 and again.json()["run_id"] == "run-b"
        assert again.headers["etag"] != first.headers["etag"]


def test_long_query_values_are_not_echoed_whole(client, api_keys):
    junk = "<script>" + "x" * 5000
    for query in (f"bbox={junk}", f"limit={junk}", f"{junk}=1", f"crs={junk}"):
        r = client.get(f"/ogc/collections/ranked_units/items?{query}", headers={"X-API-Key": api_keys["viewer"]})
        assert r.status_code == 400 and "x" * 100 not in r.text and len(r.text) < 1000, (query, r.text[:200])
