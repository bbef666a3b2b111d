"""The map and the briefing as web pages: the published run's at ``/map`` and ``/briefing``,
any run's at ``/runs/{run_id}/map`` and ``/runs/{run_id}/briefing``.

Browsers reach them after logging in (``/login`` sets a session cookie); an API key in the
``X-API-Key`` header works too.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from reports import run_catalogue as rc
from service.api.auth import reader
from service.api.deps import repository

router = APIRouter(tags=["pages"], dependencies=[Depends(reader)])


def _page(request: Request, run_id: str, name: str) -> HTMLResponse:
    run = repository(request).get(run_id).run
    path = run.path / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HTTPException(404, f"run {run.run_id!r} has no {name}: outputs were not written") from None
    # the page is the run's own file: let no other site frame it
    return HTMLResponse(text, headers={"X-Frame-Options": "SAMEORIGIN", "Cache-Control": "private"})


@router.get("/map", response_class=HTMLResponse, summary="The published run's hotspot map")
def published_map(request: Request) -> HTMLResponse:
    return _page(request, "published", rc.MAP.path)


@router.get("/map.html", response_class=HTMLResponse, include_in_schema=False)
def published_map_file(request: Request) -> HTMLResponse:
    # the briefing links "map.html" relative to itself
    return _page(request, "published", rc.MAP.path)


@router.get("/briefing", response_class=HTMLResponse, summary="The published run's tasking briefing")
def published_briefing(request: Request) -> HTMLResponse:
    return _page(request, "published", rc.BRIEFING.path)


@router.get("/runs/{run_id}/map", response_class=HTMLResponse, summary="The hotspot map of a run")
def map_page(run_id: str, request: Request) -> HTMLResponse:
    return _page(request, run_id, rc.MAP.path)


@router.get("/runs/{run_id}/map.html", response_class=HTMLResponse, include_in_schema=False)
def map_file(run_id: str, request: Request) -> HTMLResponse:
    return _page(request, run_id, rc.MAP.path)


@router.get("/runs/{run_id}/briefing", response_class=HTMLResponse, summary="The tasking briefing of a run")
def briefing_page(run_id: str, request: Request) -> HTMLResponse:
    return _page(request, run_id, rc.BRIEFING.path)
