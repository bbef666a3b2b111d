"""Jobs the API runs for analysts (ingest, train, rank): checked, queued, run apart from requests.

- :func:`check_job` applies the CLI's own checks (:mod:`service.inputs`) to a job's options
  before it is queued: only the options a kind takes, units by name within the grid limits,
  months exactly ``YYYY-MM``, saved model versions only. Ingest takes no options: the server
  reads the one data folder it was started with (``svrisk serve --data``) into that folder's
  own store (:func:`service.stores.default_store_dir`), so a job never replaces the data
  another folder's runs were made from.
- :class:`JobQueue` holds at most ``settings.service.job_queue_size`` waiting jobs and runs
  them on its own worker threads (``job_workers``), never on the threads that answer
  requests, so a queue of jobs cannot hold up ``/health`` or the rankings. A full queue
  raises :class:`QueueFull` (the API answers 429 with ``Retry-After``).
- :func:`job_runners` are the CLI's steps, each job run in its own spawned process
  (:func:`run_apart`): its memory goes back to the system when it ends and its Python code
  does not hold the interpreter lock the request threads need. What a job reports back
  names no server path.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import multiprocessing as mp
import queue
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from service.inputs import check_options, shown
from service.pipeline import evaluate_step, train_step
from service.run import make_run
from service.settings import Settings
from service.stores import ingest_step
from service.update import update_step

log = logging.getLogger("svrisk.jobs")

KINDS = ("ingest", "train", "rank")
OPTIONS = {"ingest": (), "train": ("units", "cutoff", "method"), "rank": ("units", "cutoff", "model")}


class QueueFull(RuntimeError):
    """No room for another job; ``retry_after`` is a guess in seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def check_job(kind: str, params: Mapping | None, settings: Settings) -> dict:
    """The options of a ``kind`` job, checked like the CLI's (:func:`service.inputs.check_options`)."""
    if kind not in OPTIONS:
        raise ValueError(f"no job kind {shown(kind)}; choose one of {list(KINDS)}")
    return check_options(params, settings, OPTIONS[kind], what=f"{kind} job")


def ingest_job(settings: Settings, params: dict) -> dict:
    """The server's one data folder into that folder's own store: no job can swap the data."""
    report, _ = ingest_step(settings)
    return {"totals": report["totals"], "reconciled": report["reconciled"]}


def train_job(settings: Settings, params: dict) -> dict:
    version, _ = train_step(settings, params.get("units") or settings.units.default,
                            params.get("cutoff"), params.get("method"))
    return {"model_version": version}


def rank_job(settings: Settings, params: dict) -> dict:
    """As ``svrisk rank``: the named model, else the latest of these units and this data folder."""
    run_dir = make_run(settings, units=params.get("units"), cutoff=params.get("cutoff"),
                       model_version=params.get("model") or "latest")
    return {"run_id": run_dir.name}


def evaluate_job(settings: Settings, params: dict) -> dict:
    """As ``svrisk evaluate``: the options of ``POST /evaluations`` (see service.api.evaluations)."""
    ev, written = evaluate_step(settings, **params)
    return {"evaluation_id": written.folder.name, "verdict": ev.estimates["verdict"]}


def update_job(settings: Settings, params: dict) -> dict:
    """As ``svrisk update --run`` on the server's data folder (the scheduled job)."""
    report = update_step(settings, run=True)
    return {"placed": [e["file"] for e in report["placed"]],
            "unchanged": [u["source"] for u in report["unchanged"]],
            "run_id": Path(report["run"]).name if report.get("run") else None}


class JobFailed(RuntimeError):
    """A job that raised in its own process; the text is ``<error type>: <message>``."""


_children: set = set()
_children_lock = threading.Lock()


def _child(conn, target, args) -> None:
    try:
        conn.send(("ok", target(*args)))
    except BaseException as err:  # sent to the parent, which reports it in the job's state
        conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def run_apart(target: Callable, *args):
    """``target(*args)`` in a fresh process (spawned), its result or :class:`JobFailed`.

    A job's memory (gigabytes for a national grid) is returned to the system when it ends,
    and its Python code never competes with the request threads for the interpreter lock.
    ``target`` and ``args`` must be picklable (a module-level function, settings, dicts).
    """
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, target, args), name="svrisk-job")
    proc.start()
    sender.close()
    with _children_lock:
        _children.add(proc)
    try:
        status, value = receiver.recv()
    except EOFError:
        proc.join()
        raise JobFailed(f"the job's process ended without a result (exit code {proc.exitcode})") from None
    finally:
        receiver.close()
        with _children_lock:
            _children.discard(proc)
    proc.join()
    if status == "error":
        raise JobFailed(value)
    return value


def stop_children() -> None:
    """End the processes of running jobs (the server is stopping)."""
    with _children_lock:
        running = list(_children)
    for proc in running:
        if proc.is_alive():
            proc.terminate()


def job_runners(settings: Settings) -> dict[str, Callable[[dict], Any]]:
    """What the API's analyst-only ``POST /jobs/{kind}`` runs: the CLI's steps, each job in its
    own process (:func:`run_apart`)."""
    return {kind: functools.partial(run_apart, step, settings)
            for kind, step in (("ingest", ingest_job), ("train", train_job), ("rank", rank_job),
                               ("evaluate", evaluate_job), ("update", update_job))}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def redactor(*folders) -> Callable[[str], str]:
    """A function that replaces each folder's absolute path in a text by ``<folder name>``.

    Only whole paths are replaced: a folder ``/srv/out`` is redacted in ``/srv/out`` and
    ``/srv/out/runs/x`` but not in ``/srv/outside``, and words such as "without" are left
    alone (a relative folder such as ``out`` is matched only by its absolute form).
    """
    pairs = {}
    for f in folders:
        if f is None:
            continue
        for form in {str(Path(f).absolute()), str(Path(f).resolve())}:
            if form != "/":
                pairs[form] = f"<{Path(f).name or 'folder'}>"
    if not pairs:
        return lambda text: text
    forms = sorted(pairs, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(map(re.escape, forms)) + r")(?![\w.-])")

    def redact(text: str) -> str:
        return pattern.sub(lambda m: pairs[m.group(1)], text)

    return redact


class JobQueue:
    """A bounded queue of jobs and the worker threads that run them one at a time each.

    Parameters
    ----------
    runners : mapping of kind to callable
        Each is called with the job's checked options and returns something JSON-able.
    max_queued : int
        Jobs waiting (not running) beyond this are refused with :class:`QueueFull`.
    workers : int
        Threads that run jobs.
    keep : int
        Finished jobs remembered (oldest forgotten first).
    redact : callable, optional
        Applied to error messages before they are shown (server paths out).
    shared : service.api.state.SharedState, optional
        Where every change of a job's record is also written, so the other worker processes
        of ``svrisk serve --workers N`` can answer for it (each process still runs its own
        jobs, at most ``max_queued`` waiting each).
    """

    def __init__(self, runners: Mapping[str, Callable[[dict], Any]], *, max_queued: int = 8,
                 workers: int = 1, keep: int = 500, redact: Callable[[str], str] | None = None,
                 shared=None):
        self.shared = shared
        self.runners = dict(runners)
        self.max_queued = int(max_queued)
        self.workers = int(workers)
        self.keep = int(keep)
        self.redact = redact or (lambda s: s)
        self._queue: queue.Queue = queue.Queue(maxsize=self.max_queued)
        self._jobs: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._durations: list[float] = []

    # -- workers
    def _start(self) -> None:
        if self._threads:
            return
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"svrisk-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop: waiting jobs are dropped, running jobs' processes ended, workers told to exit."""
        with self._lock:
            threads, self._threads = self._threads, []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._set(job, status="cancelled", finished=_now(), error="the server stopped")
        for _ in threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        if threads:
            stop_children()
        for t in threads:
            t.join(timeout)

    def _set(self, job: dict, **changes) -> None:
        job.update(changes)
        if self.shared is not None:
            try:
                self.shared.put_job(job, self.keep)
            except Exception:  # the job's own state is still right in this process
                log.exception("job %s: its state could not be shared with the other workers", job["job_id"])

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run(job)

    def _run(self, job: dict) -> None:
        func = self.runners[job["kind"]]
        started = time.monotonic()
        self._set(job, status="running", started=_now())
        try:
            result = func(dict(job["params"]))
        except Exception as err:  # reported in the job's state and the log, not swallowed
            log.exception("job %s (%s) failed", job["job_id"], job["kind"])
            text = str(err) if isinstance(err, JobFailed) else f"{type(err).__name__}: {err}"
            self._set(job, status="failed", finished=_now(), error=self.redact(text))
        else:
            self._set(job, status="done", finished=_now(),
                      result=result if isinstance(result, dict | list | str | int | float | None)
                      else str(result))
        with self._lock:
            self._durations = (self._durations + [time.monotonic() - started])[-20:]

    # -- API
    def submit(self, kind: str, params: dict, requested_by: str) -> dict:
        """Queue a job and return its record; :class:`QueueFull` when there is no room."""
        if kind not in self.runners:
            raise KeyError(kind)
        job = {"job_id": secrets.token_hex(8), "kind": kind, "status": "queued", "params": params,
               "requested_by": requested_by, "created": _now()}
        with self._lock:
            self._start()
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise QueueFull(f"{self.max_queued} jobs are already waiting; try again later",
                                self.retry_after()) from None
            self._jobs[job["job_id"]] = job
            if self.shared is not None:
                self.shared.put_job(job, self.keep)
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest]["status"] in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
        return job

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the recent mean job time, 30 s if unknown."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 30.0
        return max(1, min(3600, round(mean)))

    def get(self, job_id: str, ref: str | None = None) -> dict | None:
        """A job's record by id (or, with ``ref``, the job that makes that evaluation id)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return dict(job)
        return self.shared.job(job_id, ref) if self.shared is not None else None

    def recent(self, n: int = 20) -> list[dict]:
        if self.shared is not None:
            return self.shared.recent_jobs(n)
        with self._lock:
            return [dict(j) for j in list(self._jobs.values())[-n:]][::-1]

    def waiting(self) -> int:
        return self._queue.qsize()


__all__ = ["KINDS", "JobFailed", "JobQueue", "QueueFull", "check_job", "job_runners", "run_apart"]
