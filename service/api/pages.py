"""The map and the briefing of a run as web pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from service.api.auth import viewer

router = APIRouter(tags=["pages"], dependencies=[Depends(viewer)])


def _page(request: Request, run_id: str, name: str) -> HTMLResponse:
    run = request.app.state.repo.get(run_id).run
    path = run.path / name
    if not path.is_file():
        raise HTTPException(404, f"run {run.run_id!r} has no {name}: outputs were not written")
    return HTMLResponse(path.read_text(encoding="utf-8"))


@router.get("/runs/{run_id}/map", response_class=HTMLResponse, summary="The hotspot map")
def map_page(run_id: str, request: Request) -> HTMLResponse:
    return _page(request, run_id, "map.html")


@router.get("/runs/{run_id}/map.html", response_class=HTMLResponse, include_in_schema=False)
def map_file(run_id: str, request: Request) -> HTMLResponse:
    # The briefing links "map.html" relative to itself.
    return _page(request, run_id, "map.html")


@router.get("/runs/{run_id}/briefing", response_class=HTMLResponse, summary="The tasking briefing")
def briefing_page(run_id: str, request: Request) -> HTMLResponse:
    return _page(request, run_id, "briefing.html")
