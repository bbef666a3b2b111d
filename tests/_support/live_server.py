"""Real HTTP servers for the tests that need sockets: in a thread, or `svrisk serve` in a child process.

Both use :func:`service.api.server.uvicorn_config`, so they carry the same limits as
``svrisk serve`` (header timeout, head size, connection limit). ``send_chunked`` and
``rss_mb``, ``connections_by_worker`` are shared with ``benchmarks/api_load.py``.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_public_url(settings, port: int, **service):
    """A copy of ``settings`` whose service listens on ``port`` and links to it."""
    update = {"port": port, "public_url": f"http://127.0.0.1:{port}", **service}
    svc = type(settings.service).model_validate({**settings.service.model_dump(), **update})
    return settings.model_copy(update={"service": svc})


@contextlib.contextmanager
def thread_server(app, settings, port: int):
    """Serve ``app`` on ``port`` in a daemon thread; yields the base URL."""
    import uvicorn

    from service.api.server import uvicorn_config

    server = uvicorn.Server(uvicorn_config(app, settings, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def send_chunked(port: int, path: str, total: int, headers: str = "") -> tuple[int, bytes]:
    """POST ``total`` bytes as a chunked body while reading whatever the server answers.

    Returns (bytes sent before the server closed, the response received).
    """
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Transfer-Encoding: chunked\r\n{headers}\r\n".encode())
    chunk = b"%x\r\n" % 65536 + b"[" * 65536 + b"\r\n"
    sent, answer = 0, b""
    sock.setblocking(False)
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 2)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            elif writable:
                sent += sock.send(chunk)
            else:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return sent, answer


def connections_by_worker(pid: int, port: int) -> list[int]:
    """Established connections to ``port`` held by each process of the server (largest first):
    how evenly the worker processes share the clients."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:  # ESTABLISHED, local port
                inodes.add(f[9])
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            todo.extend(int(c) for c in task.read_text().split())
    counts = []
    for p in pids:
        held = 0
        for fd in Path(f"/proc/{p}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        if held:
            counts.append(held)
    return sorted(counts, reverse=True)


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextlib.contextmanager
def cli_server(out_dir: Path, keys_file: Path, port: int, log_file: Path, args: tuple[str, ...] = (),
               **service):
    """``svrisk serve`` in a child process over ``out_dir``; yields ``(base_url, process)``.

    ``args`` are more command-line options (e.g. ``("--workers", "2")``); ``service``
    options become ``SVRISK_SERVICE__*`` variables (e.g. header_timeout_s=1).
    """
    env = {**os.environ, "SVRISK_OUT_DIR": str(out_dir), "SVRISK_SERVICE__KEYS_FILE": str(keys_file),
           **{f"SVRISK_SERVICE__{k.upper()}": str(v) for k, v in service.items()}}
    base = f"http://127.0.0.1:{port}"
    with open(log_file, "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", "from service.cli import main; main()", "serve",
                                 "--port", str(port), "--public-url", base, *args],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError):
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"svrisk serve did not start: {Path(log_file).read_text()[-2000:]}")
                time.sleep(0.1)
            yield base, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
