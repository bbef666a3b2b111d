"""Analysts start ingest, train or rank; jobs wait in a bounded queue (see :mod:`service.jobs`).

``POST /jobs/{kind}`` takes JSON options (or the HTML form of ``GET /jobs``), checks them
as the CLI does (422 naming the bad option), and queues the job: 202 with its status link,
or 429 with ``Retry-After`` when the queue is full. A job's state is kept in memory:
``queued`` -> ``running`` -> ``done`` or ``failed`` (with the error, without server paths).
"""

from __future__ import annotations

import json
from typing import Annotated, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from service.api import schemas
from service.api.auth import CSRF_FIELD, reader, require
from service.api.deps import AppSettings, BaseUrl, Jobs
from service.api.html import page
from service.jobs import KINDS, OPTIONS, QueueFull, check_job
from service.keys import KeyRecord

router = APIRouter(tags=["jobs"])


async def _options(request: Request) -> tuple[dict, bool]:
    """(options, came from a form): JSON object or url-encoded form fields."""
    body = await request.body()
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8", "replace"))
        return {k: v[-1] for k, v in fields.items() if k != CSRF_FIELD and v and v[-1] != ""}, True
    if not body.strip():
        return {}, False
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HTTPException(422, "the body is not valid JSON") from None
    if value is None:
        return {}, False
    if not isinstance(value, dict):
        raise HTTPException(422, "the body must be a JSON object of options")
    return value, False


@router.post("/jobs/{kind}", status_code=202, summary="Start ingest, train or rank (analysts)",
             response_model=schemas.JobStarted,
             responses={422: {"description": "An option the CLI would refuse"},
                        429: {"description": "The queue is full; see Retry-After"}},
             openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                 "type": "object", "description": "Options: train takes units, cutoff, method; "
                 "rank takes units, cutoff, model; ingest takes none."}}}}})
async def start_job(kind: Literal["ingest", "train", "rank"], request: Request, queue: Jobs, settings: AppSettings,
                    base: BaseUrl):
    # scope per kind: a key made only for ranking cannot ingest
    record: KeyRecord = require(kind)(request)
    if kind not in queue.runners:
        raise HTTPException(501, f"job {kind!r} is not wired in this service")
    params, from_form = await _options(request)
    try:
        checked = check_job(kind, params, settings)
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    try:
        job = queue.submit(kind, checked, record.key_id)
    except QueueFull as err:
        raise HTTPException(429, str(err), headers={"Retry-After": str(err.retry_after)}) from None
    if from_form:
        return RedirectResponse(f"{base}/jobs", status_code=303)
    return JSONResponse({**job, "links": [{"rel": "status", "href": f"{base}/jobs/{job['job_id']}"}]},
                        status_code=202)


@router.get("/jobs", summary="Recent jobs, and forms to start one (HTML for browsers)",
            response_model=schemas.JobList, response_model_exclude_unset=True, responses={200: {"content": {"text/html": {}}}})
def list_jobs(request: Request, queue: Jobs, record: Annotated[KeyRecord, Depends(reader)]):
    jobs = queue.recent(20)
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(page(request, "jobs.html.j2", title="Jobs", jobs=jobs,
                                 kinds=[k for k in KINDS if record.allows(k)], options=OPTIONS))
    return {"jobs": jobs, "waiting": queue.waiting()}


@router.get("/jobs/{job_id}", summary="State of a job", dependencies=[Depends(reader)],
            response_model=schemas.Job, response_model_exclude_unset=True)
def job_status(job_id: str, queue: Jobs) -> dict:
    job = queue.get(job_id)
    if job is None:
        raise HTTPException(404, "no such job (jobs are kept in memory until restart)")
    return job

