"""Run the app under uvicorn with the limits a public service needs (``svrisk serve``).

uvicorn waits for a request head for ever (its keep-alive timer starts only after a
response, and any byte cancels it), so one client sending a header byte every few seconds
holds a connection indefinitely (slowloris). :func:`protocol_class` adds a deadline for
the head of every request, counted from its first byte (or from the connection for the
first request). The other limits are uvicorn's own settings: the largest head
(``h11_max_incomplete_event_size``: larger is 400), connections beyond ``max_connections``
answer 503, idle keep-alive connections close after ``keep_alive_s``.

Access logs name method, path and status; keys are never in a URL (the guard refuses
them), and :class:`RedactKeys` blanks anything that looks like one all the same.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket

import h11
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from service.api.state import fresh_state_file
from service.settings import Settings

KEY_PATTERN = re.compile(r"svk_[A-Za-z0-9]+_[A-Za-z0-9_\-]+")


class RedactKeys(logging.Filter):
    """Replace API keys in log records with ``svk_<redacted>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(KEY_PATTERN.sub("svk_<redacted>", a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str):
            record.msg = KEY_PATTERN.sub("svk_<redacted>", record.msg)
        return True


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head.

    The deadline is ``config.svrisk_header_timeout_s`` (set by :func:`uvicorn_config`): a
    module-level class, so uvicorn's worker processes can import it by name.
    """

    header_timeout: float | None = None  # a subclass made by protocol_class() fixes it

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.header_timeout is None:
            self.header_timeout = float(getattr(self.config, "svrisk_header_timeout_s", 10.0))
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def data_received(self, data: bytes) -> None:
        if getattr(self, "_head_timer", None) is None and self.conn.their_state is h11.IDLE:
            # the first byte of the next request on a kept-alive connection
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self._head_timer is not None:
            self._head_timer.cancel()  # the head is complete
            self._head_timer = None

    def connection_lost(self, exc) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol_class(header_timeout_s: float) -> type[H11Protocol]:
    """:class:`HeaderTimeoutProtocol` with a fixed deadline (one process only)."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": float(header_timeout_s)})


def _redact_logs() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "svrisk.api"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())


def uvicorn_config(app, settings: Settings, *, host: str | None = None, port: int | None = None,
                   log_level: str = "info", workers: int = 1) -> uvicorn.Config:
    """The uvicorn configuration ``svrisk serve`` uses (tests and benchmarks use it too).

    ``app`` is the app, or for ``workers`` > 1 an import string of an app factory (each
    worker process builds its own app).
    """
    s = settings.service
    _redact_logs()
    config = uvicorn.Config(
        app, host=host or s.host, port=port or s.port, log_level=log_level,
        http=HeaderTimeoutProtocol, factory=workers > 1, workers=workers,
        h11_max_incomplete_event_size=s.max_header_bytes,
        limit_concurrency=s.max_connections, backlog=max(2048, s.max_connections),
        timeout_keep_alive=s.keep_alive_s, server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=5,
        # a worker imports the whole app (pandas, geopandas) before it answers the parent's
        # health check; on a busy 2-core machine that takes longer than uvicorn's 5 s default
        timeout_worker_healthcheck=120,
    )
    config.svrisk_header_timeout_s = float(s.header_timeout_s)
    return config


SETTINGS_ENV = "SVRISK_SERVE_SETTINGS"


def app_from_env():
    """The app of one worker process: settings from :data:`SETTINGS_ENV` (JSON), jobs wired."""
    from service.api.app import create_app  # import here: each worker process builds its own app
    from service.jobs import job_runners  # import here: only a worker process wires the jobs

    _redact_logs()
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    return create_app(settings, jobs=job_runners(settings))


class SocketPerWorker(Multiprocess):
    """uvicorn's supervisor (start, watch, restart the workers) with a listening socket per worker.

    Workers that share one listening socket race to accept each connection; under a burst of
    keep-alive clients the one that wakes first takes most of them and keeps them (1,000
    connections split about 60:40 between two workers, measured), so its clients wait while
    the other worker idles. With a socket per worker bound with ``SO_REUSEPORT`` the kernel
    deals new connections out by a hash of their addresses, about evenly. A worker that dies
    is replaced on its own socket (connections waiting in its backlog are then answered).
    ``init_processes``, ``keep_subprocess_alive`` and ``restart_all`` are uvicorn 0.55's with
    ``Process(config, [this worker's socket])`` for ``Process(config, sockets)``.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]):
        super().__init__(config, sockets=[])
        self.worker_sockets = sockets
        self.processes_num = len(sockets)

    def _process(self, idx: int) -> Process:
        return Process(self.config, [self.worker_sockets[idx]])

    def init_processes(self) -> None:
        for idx in range(self.processes_num):
            process = self._process(idx)
            process.start()
            self.processes.append(process)

    def restart_all(self) -> None:
        for idx, old_process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new_process = self._process(idx)
            new_process.start()
            if not new_process.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new_process.kill()
                new_process.join()
                return
            old_process.terminate()
            old_process.join()
            self.processes[idx] = new_process

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logging.getLogger("uvicorn.error").error(
                    f"Child process [{process.pid}] failed to start, stopping the parent process.")
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            process = self._process(idx)
            process.start()
            self.processes[idx] = process


def worker_sockets(config: uvicorn.Config, workers: int) -> list[socket.socket]:
    """One listening socket per worker on the configured address, bound with ``SO_REUSEPORT``.

    The address is first bound without the option, so a port another server holds is an error
    here ("address already in use") instead of a share of its connections.
    """
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((config.host, config.port))
        port = probe.getsockname()[1]  # port 0: the one the system chose, for every worker
    out = []
    try:
        for _ in range(workers):
            sock = socket.socket(family, socket.SOCK_STREAM)
            out.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((config.host, port))
            sock.listen(config.backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in out:
            sock.close()
        raise
    return out


def serve(app, settings: Settings, **kwargs) -> None:
    """Serve ``app`` in this process, or, with ``settings.service.workers`` > 1, in that many
    uvicorn worker processes (``app`` is then not used: each
    worker builds its own with :func:`app_from_env`), each on its own socket unless
    ``service.reuse_port`` is off (:class:`SocketPerWorker`). What the workers must agree on
    (sessions, login throttling) is in the SQLite file ``service.state_file``, made here
    when unset so every worker opens the same one."""
    workers = settings.service.workers
    if workers <= 1:
        uvicorn.Server(uvicorn_config(app, settings, **kwargs)).run()
        return
    made = None
    if settings.service.state_file is None:
        made = fresh_state_file()
        service = settings.service.model_copy(update={"state_file": made})
        settings = settings.model_copy(update={"service": service})
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    config = uvicorn_config("service.api.server:app_from_env", settings, workers=workers, **kwargs)
    try:
        if settings.service.reuse_port and hasattr(socket, "SO_REUSEPORT"):
            SocketPerWorker(config, worker_sockets(config, workers)).run()
        else:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if made is not None:  # this start's sessions end with it
            shutil.rmtree(made.parent, ignore_errors=True)


__all__ = ["HeaderTimeoutProtocol", "RedactKeys", "SocketPerWorker", "app_from_env", "protocol_class", "serve",
           "uvicorn_config", "worker_sockets"]
