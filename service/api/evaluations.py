"""Evaluations of place-based interventions: analysts start one, anyone with a key reads them.

``POST /evaluations`` (analyst) checks its options as the CLI does
(:func:`service.inputs.check_options`: 422 naming the value, before anything is queued) and queues ``svrisk evaluate`` with the request's options on the
service's job queue (:class:`service.jobs.JobQueue`: bounded, 429 when full, each job in its
own process) through the ``"evaluate"`` job callable ``create_app`` was given; its state is
kept in memory until the folder ``<out_dir>/evaluations/<id>/`` holds ``evaluation.json``. ``GET /evaluations/{id}`` is that JSON (or the state while it runs);
``/summary`` the one-page HTML, ``/summary.pdf`` and ``/series.csv`` the files.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from models.interventions import DEFAULT_BUFFER_M, DEFAULT_PLACEBOS, DEFAULT_PRE_MONTHS
from reports.evaluation import RUN_AREA, read_evaluation
from service.api import schemas
from service.api.auth import require, viewer
from service.api.deps import AppSettings, BaseUrl, EvaluationJobs, Jobs
from service.inputs import check_options
from service.jobs import QueueFull
from service.keys import KeyRecord
from service.settings import Settings

router = APIRouter(tags=["evaluations"])
EVALUATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
UNIT_IDS = re.compile(r"^[A-Za-z0-9_]+( *, *[A-Za-z0-9_]+)*$")
FILES = {"summary": ("summary.html", "text/html; charset=utf-8"), "summary.pdf": ("summary.pdf", "application/pdf"),
         "series.csv": ("series.csv", "text/csv; charset=utf-8")}
evaluator = require("evaluate")


class EvaluationRequest(BaseModel):
    """What to evaluate: the options of ``svrisk evaluate``."""

    area: str = Field(..., description="A run's area (A1, or <run_id>/A1) or comma-separated unit ids.",
                      max_length=4000)
    start: str = Field(..., description="YYYY-MM: first month of the intervention.", pattern=r"^\d{4}-\d{2}$")
    end: str | None = Field(None, description="YYYY-MM: last month evaluated.", pattern=r"^\d{4}-\d{2}$")
    run: str | None = Field(None, description="Run whose area `area` names, or 'latest' (default: the published run).",
                            pattern=EVALUATION_ID.pattern)
    units: str | None = Field(None, description="Unit set for unit ids (default: the settings').")
    buffer_m: float = Field(DEFAULT_BUFFER_M, ge=0, le=5000)
    pre_months: int = Field(DEFAULT_PRE_MONTHS, ge=1, le=120)
    placebos: int = Field(DEFAULT_PLACEBOS, ge=0, le=999)


def _folder(settings: Settings, evaluation_id: str) -> Path:
    if not EVALUATION_ID.match(evaluation_id or ""):
        raise HTTPException(404, "that is not a valid evaluation id")
    return Path(settings.out_dir) / "evaluations" / evaluation_id


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@router.post("/evaluations", status_code=202, summary="Evaluate an intervention area (analysts)",
             responses={429: {"description": "The job queue is full; see Retry-After"}},
             response_model=schemas.EvaluationQueued, response_model_exclude_unset=True)
def start_evaluation(body: EvaluationRequest, queue: Jobs, settings: AppSettings, base_url: BaseUrl,
                     evaluations: EvaluationJobs, record: Annotated[KeyRecord, Depends(evaluator)]) -> dict:
    if "evaluate" not in queue.runners:
        raise HTTPException(501, "evaluations are not wired in this service")
    if not (RUN_AREA.match(body.area) or UNIT_IDS.match(body.area)):
        # a file path would let a caller read files on the server: polygons are for the command line
        raise HTTPException(400, "area must be a run's area (A1 or <run_id>/A1) or comma-separated unit ids")
    try:  # the CLI's own checks, before anything is queued
        checked = check_options({"units": body.units, "start": body.start, "end": body.end},
                                settings, ("units", "start", "end"), what="evaluation")
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    params = {**body.model_dump(), **checked}
    evaluation_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-api-{secrets.token_hex(3)}-{params['start']}"
    try:
        queued = queue.submit("evaluate", {**params, "evaluation": evaluation_id}, record.key_id)
    except QueueFull as err:
        raise HTTPException(429, str(err), headers={"Retry-After": str(err.retry_after)}) from None
    job = {"evaluation_id": evaluation_id, "job_id": queued["job_id"], "status": "queued",
           "requested_by": record.key_id, "created": _now(), "params": params}
    evaluations[evaluation_id] = job
    base = f"{base_url}/evaluations/{evaluation_id}"
    return {**job, "links": [{"rel": "self", "href": base}, {"rel": "summary", "href": f"{base}/summary"}]}


@router.get("/evaluations", summary="Evaluations written so far, newest first", dependencies=[Depends(viewer)],
            response_model=schemas.EvaluationList, response_model_exclude_unset=True)
def list_evaluations(settings: AppSettings) -> dict:
    root = Path(settings.out_dir) / "evaluations"
    items = []
    for folder in sorted(root.iterdir(), reverse=True) if root.is_dir() else []:
        if (folder / "evaluation.json").is_file() and EVALUATION_ID.match(folder.name):
            doc = read_evaluation(folder)
            items.append({"evaluation_id": folder.name, "area": doc.get("area_source"), "start": doc.get("start"),
                          "end": doc.get("end"), "verdict": doc.get("verdict")})
    return {"evaluations": items, "count": len(items)}


@router.get("/evaluations/{evaluation_id}", summary="Every estimate of one evaluation (or its state)",
            dependencies=[Depends(viewer)], response_model=schemas.Evaluation, response_model_exclude_unset=True)
def get_evaluation(evaluation_id: str, settings: AppSettings, queue: Jobs, evaluations: EvaluationJobs) -> dict:
    folder = _folder(settings, evaluation_id)
    job = evaluations.get(evaluation_id)
    # the job's record; queued by another worker process, it is found by the evaluation id
    state = queue.get(job["job_id"] if job else "", ref=evaluation_id) or {}
    if job is None and state:
        job = {"evaluation_id": evaluation_id, "job_id": state["job_id"], "status": state["status"],
               "requested_by": state.get("requested_by"), "created": state.get("created"),
               "params": {k: v for k, v in state.get("params", {}).items() if k != "evaluation"}}
    # done when its job has finished writing (evaluation.json comes before the summary files)
    if (folder / "evaluation.json").is_file() and state.get("status") not in ("queued", "running"):
        return {"evaluation_id": evaluation_id, "status": "done", **read_evaluation(folder)}
    if job is None:
        raise HTTPException(404, "no such evaluation")
    return {**job, **{k: state[k] for k in ("status", "started", "finished", "error") if k in state}}


@router.get("/evaluations/{evaluation_id}/{name}", summary="The summary page, its PDF or the monthly series",
            dependencies=[Depends(viewer)])
def evaluation_file(evaluation_id: str, name: str, settings: AppSettings):
    if name not in FILES:
        raise HTTPException(404, f"no file {name!r}; choose from {sorted(FILES)}")
    filename, media = FILES[name]
    path = _folder(settings, evaluation_id) / filename
    if not path.is_file():
        raise HTTPException(404, f"evaluation {evaluation_id!r} has no {filename}")
    return FileResponse(path, media_type=media, filename=filename if name != "summary" else None)
