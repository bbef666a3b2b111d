"""The ranking of a run as JSON (paged) or CSV (``?format=csv`` or ``Accept: text/csv``).

JSON pages hold at most ``settings.service.max_page_size`` rows; CSV without ``limit`` or
``offset`` is the whole ranking as one download (served from a cached file body).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from service.api import schemas
from service.api.auth import reader
from service.api.deps import AppSettings, BaseUrl, Repo

router = APIRouter(tags=["rankings"], dependencies=[Depends(reader)])


@router.get("/runs/{run_id}/ranking", summary="Ranked places (1 = highest expected count)",
            response_model=schemas.RankingPage,
            responses={200: {"content": {"text/csv": {}}, "description": "A page of the ranking (JSON), or CSV"}})
def ranking(
    run_id: str,
    request: Request,
    repo: Repo,
    settings: AppSettings,
    base_url: BaseUrl,
    limit: int | None = Query(None, ge=1, description="Rows per page (at most the service's max page size)."),
    offset: int = Query(0, ge=0),
    format: Literal["json", "csv"] | None = Query(None, description="json (default) or csv"),
):
    max_size = settings.service.max_page_size
    if limit is not None and limit > max_size:
        raise HTTPException(400, f"limit={limit} exceeds the maximum page size {max_size}")
    wants_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    table = repo.table(run_id)
    run = repo.get(run_id).run
    if wants_csv:
        if limit is None and offset == 0:  # the whole ranking as a file (cached bytes)
            body = repo.ranking_csv(run_id)
        else:
            page = table.iloc[offset: offset + (limit or max_size)]
            body = page.to_csv(index=False).encode("utf-8")
        return Response(body, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="ranking_{run.run_id}.csv"'})
    size = limit or max_size
    page = repo.ranking_records(run_id)[offset: offset + size]
    base = f"{base_url}/runs/{run.run_id}/ranking"
    links = [{"rel": "self", "href": f"{base}?limit={size}&offset={offset}"}]
    if offset + size < len(table):
        links.append({"rel": "next", "href": f"{base}?limit={size}&offset={offset + size}"})
    if offset > 0:
        links.append({"rel": "prev", "href": f"{base}?limit={size}&offset={max(0, offset - size)}"})
    return JSONResponse({"run_id": run.run_id, "numberMatched": len(table), "numberReturned": len(page),
                         "offset": offset, "limit": size, "items": page, "links": links})
