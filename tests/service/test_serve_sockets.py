"""``svrisk serve --workers 2`` gives each worker its own listening socket (``SO_REUSEPORT``).

Connections are dealt out by the kernel, about evenly; a worker that dies is replaced on its
own socket (no connection waits in an orphaned backlog); a port another server holds is an
error, never a share of that server's clients.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from live_server import cli_server, connections_by_worker, free_port


@pytest.fixture(scope="module")
def served(api_settings, tmp_path_factory):
    log = tmp_path_factory.mktemp("sockets") / "serve.log"
    port = free_port()
    with cli_server(api_settings.out_dir, api_settings.service.keys_file, port, log, ("--workers", "2")) as (
            base, proc):
        deadline = time.monotonic() + 180
        while log.read_text().count("Application startup complete") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert log.read_text().count("Application startup complete") == 2, log.read_text()[-2000:]
        yield base, port, proc, log


def health_on(conns: list[socket.socket]) -> list[bytes]:
    for c in conns:
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    return [c.recv(200) for c in conns]


def test_connections_are_dealt_out_about_evenly_between_the_workers(served):
    _, port, proc, _ = served
    conns = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(200)]
    try:
        assert all(a.startswith(b"HTTP/1.1 200") for a in health_on(conns))
        split = connections_by_worker(proc.pid, port)
    finally:
        for c in conns:
            c.close()
    # a hash of 200 addresses over 2 sockets: 100 +- 7; one shared socket gave one worker 60-100%
    assert len(split) == 2 and sum(split) == 200 and min(split) >= 50, split


def test_a_worker_that_dies_is_replaced_on_its_own_socket(served):
    base, port, proc, log = served
    children = [int(c) for t in os.listdir(f"/proc/{proc.pid}/task")
                for c in open(f"/proc/{proc.pid}/task/{t}/children").read().split()]
    workers = [c for c in children if b"resource_tracker" not in open(f"/proc/{c}/cmdline", "rb").read()]
    assert len(workers) == 2
    started = log.read_text().count("Application startup complete")
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 180
    while log.read_text().count("Application startup complete") <= started and time.monotonic() < deadline:
        time.sleep(0.5)
    assert log.read_text().count("Application startup complete") == started + 1, log.read_text()[-2000:]
    conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(40)]
    try:  # about half reach the new worker's socket: none is left unanswered
        assert all(a.startswith(b"HTTP/1.1 200") for a in health_on(conns))
    finally:
        for c in conns:
            c.close()
    assert httpx.get(f"{base}/health").status_code == 200


def test_a_port_another_server_holds_is_refused(served, api_settings):
    _, port, _, _ = served
    env = {**os.environ, "SVRISK_OUT_DIR": str(api_settings.out_dir),
           "SVRISK_SERVICE__KEYS_FILE": str(api_settings.service.keys_file)}
    second = subprocess.run([sys.executable, "-c", "from service.cli import main; main()", "serve", "--port",
                             str(port), "--workers", "2"], env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode != 0
    assert "in use" in second.stdout + second.stderr
