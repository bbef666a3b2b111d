"""Liveness and a root index; no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.repository import NotFound

router = APIRouter(tags=["health"])


@router.get("/health", summary="Is the service up, and which run is the latest")
def health(request: Request) -> dict:
    repo = request.app.state.repo
    try:
        latest = repo.latest_id()
    except NotFound:
        latest = None
    return {"status": "ok", "version": request.app.version, "latest_run": latest,
            "runs_dir_exists": repo.runs_dir.is_dir()}


@router.get("/", include_in_schema=False)
def index(request: Request) -> dict:
    base = str(request.base_url).rstrip("/")
    return {"title": request.app.title, "links": [
        {"rel": "service-doc", "href": f"{base}/docs"},
        {"rel": "service-desc", "href": f"{base}/openapi.json"},
        {"rel": "runs", "href": f"{base}/runs"},
        {"rel": "ogc", "href": f"{base}/ogc"},
    ]}
