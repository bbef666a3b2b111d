"""Analysts trigger ingest, train or rank; the callables are injected by ``create_app``.

A job runs after the response (one at a time: the machine is small) and its state is
kept in memory: ``queued`` -> ``running`` -> ``done`` or ``failed`` (with the error).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Body, Depends, HTTPException, Request

from service.api.auth import analyst, viewer
from service.keys import KeyRecord

KINDS = ("ingest", "train", "rank")
router = APIRouter(tags=["jobs"])
_run_lock = threading.Lock()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _execute(state: dict, job: dict, func, params: dict) -> None:
    with _run_lock:
        job.update(status="running", started=_now())
        try:
            result = func(params)
        except Exception as err:  # reported in the job's state, not swallowed
            job.update(status="failed", finished=_now(), error=f"{type(err).__name__}: {err}")
            return
        job.update(status="done", finished=_now(),
                   result=result if isinstance(result, dict | list | str | int | float | None)
                   else str(result))


@router.post("/jobs/{kind}", status_code=202, summary="Start ingest, train or rank (analysts)")
def start_job(
    kind: Literal["ingest", "train", "rank"],
    request: Request,
    background: BackgroundTasks,
    record: Annotated[KeyRecord, Depends(analyst)],
    params: Annotated[dict[str, Any] | None, Body(description="Options passed to the job.")] = None,
) -> dict:
    func = request.app.state.jobs.get(kind)
    if func is None:
        raise HTTPException(501, f"job {kind!r} is not wired in this service")
    job = {"job_id": secrets.token_hex(8), "kind": kind, "status": "queued", "params": params or {},
           "requested_by": record.key_id, "created": _now()}
    request.app.state.job_log[job["job_id"]] = job
    background.add_task(_execute, request.app.state, job, func, params or {})
    base = str(request.base_url).rstrip("/")
    return {**job, "links": [{"rel": "status", "href": f"{base}/jobs/{job['job_id']}"}]}


@router.get("/jobs/{job_id}", summary="State of a job", dependencies=[Depends(viewer)])
def job_status(job_id: str, request: Request) -> dict:
    job = request.app.state.job_log.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} (jobs are kept in memory until restart)")
    return job
