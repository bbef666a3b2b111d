"""`svrisk serve` against a hostile client: huge bodies, slow heads, huge heads, keys in URLs.

One server process for the module (memory is measured on it, so it is not the test's own).
"""

from __future__ import annotations

import select
import socket
import time

import httpx
import pytest
from live_server import cli_server, free_port, rss_mb, send_chunked


@pytest.fixture(scope="module")
def served(api_settings, api_keys, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with cli_server(api_settings.out_dir, api_settings.service.keys_file, free_port(), log,
                    header_timeout_s=1, body_timeout_s=2) as (base, proc):
        # warm up: the first requests of a process allocate caches and buffers
        for _ in range(3):
            httpx.get(f"{base}/health")
            httpx.post(f"{base}/jobs/rank", content=b"{}")
            httpx.get(f"{base}/ogc/collections", headers={"X-API-Key": api_keys["viewer"]})
        yield base, proc, log


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


@pytest.mark.parametrize("who,code", [("no key", 401), ("analyst key", 413)])
def test_50_mb_chunked_body_is_refused_without_growing_the_server(served, api_keys, who, code):
    base, proc, log = served
    extra = "" if who == "no key" else f"X-API-Key: {api_keys['analyst']}\r\n"
    line = f'"POST /jobs/rank HTTP/1.1" {code}'
    logged = log.read_text().count(line)
    before = rss_mb(proc.pid)
    sent, answer = send_chunked(_port(base), "/jobs/rank", 50 * 2**20, extra)
    time.sleep(0.3)
    grown = rss_mb(proc.pid) - before
    # the answer is in the access log; the client may not read it: closing a connection with
    # unread upload data resets it, and a reset can drop the answer in the client's buffer
    assert log.read_text().count(line) == logged + 1
    assert answer == b"" or answer.split(b"\r\n", 1)[0].startswith(f"HTTP/1.1 {code}".encode())
    assert sent < 20 * 2**20  # the server closed the connection long before 50 MB
    assert grown < 10, f"server grew by {grown:.1f} MB"
    assert httpx.get(f"{base}/health").status_code == 200


def test_a_huge_content_length_is_413_before_any_body(served, api_keys):
    base, _, _ = served
    with socket.create_connection(("127.0.0.1", _port(base))) as sock:
        sock.sendall(f"POST /jobs/rank HTTP/1.1\r\nHost: x\r\nX-API-Key: {api_keys['analyst']}\r\n"
                     "Content-Length: 1000000000\r\n\r\n".encode())
        assert sock.recv(200).startswith(b"HTTP/1.1 413")


def test_a_slow_request_head_is_cut_off(served):
    base, _, _ = served
    sock = socket.create_connection(("127.0.0.1", _port(base)))
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    closed_after = None
    try:
        while time.monotonic() - t0 < 8:
            time.sleep(0.2)
            sock.sendall(b"X-Slow: 1\r\n")  # a header line now and then, never the blank line
            readable, _, _ = select.select([sock], [], [], 0)
            if readable and sock.recv(100) == b"":
                closed_after = time.monotonic() - t0
                break
    except (BrokenPipeError, ConnectionResetError):
        closed_after = time.monotonic() - t0
    finally:
        sock.close()
    assert closed_after is not None and closed_after < 4  # header_timeout_s=1 in the fixture


def test_a_huge_head_is_refused(served):
    base, _, _ = served
    with socket.create_connection(("127.0.0.1", _port(base))) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 431") or answer.startswith(b"HTTP/1.1 400")


def test_a_key_in_the_url_is_refused_and_never_logged(served, api_keys):
    base, _, log = served
    secret = api_keys["viewer"].split("_", 2)[2]
    r = httpx.get(f"{base}/runs", params={"api_key": api_keys["viewer"]})
    assert r.status_code == 400 and "X-API-Key" in r.json()["detail"]
    assert secret not in r.text
    time.sleep(0.2)
    text = log.read_text()
    assert "/runs?api_key=svk_<redacted>" in text and secret not in text


def test_links_come_from_the_public_url_not_the_host_header(served, api_keys):
    base, _, _ = served
    r = httpx.get(f"{base}/ogc", headers={"X-API-Key": api_keys["viewer"], "Host": "evil.example"})
    hrefs = [ln["href"] for ln in r.json()["links"]]
    assert hrefs and all(h.startswith(base) for h in hrefs)
