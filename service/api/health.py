"""Liveness and a root index; no key needed.

``/health`` runs on the event loop, not the thread pool, and touches one small file, so it
answers while every worker thread is busy.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api import schemas
from service.api.deps import BaseUrl, Jobs, Repo, Schedule
from service.api.repository import Unavailable

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the service up, and which run is published", response_model=schemas.Health, response_model_exclude_unset=True)
async def health(request: Request, repo: Repo, jobs: Jobs, schedule: Schedule) -> dict:
    try:
        published = repo.published_id()
    except Unavailable:
        published = None
    return {"status": "ok", "version": request.app.version, "published_run": published,
            "jobs_waiting": jobs.waiting(), "job_queue_size": jobs.max_queued,
            "update": schedule.state() if schedule is not None else {"schedule": "off"}}


@router.get("/", include_in_schema=False)
def index(request: Request, base: BaseUrl) -> dict:
    return {"title": request.app.title, "links": [
        {"rel": "login", "href": f"{base}/login"},
        {"rel": "service-doc", "href": f"{base}/docs"},
        {"rel": "service-desc", "href": f"{base}/openapi.json"},
        {"rel": "runs", "href": f"{base}/runs"},
        {"rel": "ogc", "href": f"{base}/ogc"},
        {"rel": "map", "href": f"{base}/map"},
        {"rel": "briefing", "href": f"{base}/briefing"},
    ]}
