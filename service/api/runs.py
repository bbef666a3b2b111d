"""Runs and their metadata (``run.json``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from service.api.auth import viewer

router = APIRouter(tags=["runs"], dependencies=[Depends(viewer)])

OUTPUT_FILES = ("map.html", "briefing.html", "layers.gpkg", "layers_shp.zip", "layers.kml")


@router.get("/runs", summary="All runs, newest first")
def list_runs(request: Request) -> dict:
    runs = request.app.state.repo.list()
    keep = ("run_id", "created", "model_version", "method", "units", "cutoff", "horizon",
            "data_period", "area_name")
    return {"runs": [{k: m.get(k) for k in keep} for m in runs], "count": len(runs)}


@router.get("/runs/{run_id}", summary="Metadata of one run ('latest' for the newest)")
def get_run(run_id: str, request: Request) -> dict:
    repo = request.app.state.repo
    cached = repo.get(run_id)
    run = cached.run
    base = str(request.base_url).rstrip("/") + f"/runs/{run.run_id}"
    return {
        **run.meta,
        "layers": list(cached.layers),
        "files": [f for f in OUTPUT_FILES if (run.path / f).is_file()],
        "links": [{"rel": "ranking", "href": f"{base}/ranking"},
                  {"rel": "layers", "href": f"{base}/layers"},
                  {"rel": "map", "href": f"{base}/map"},
                  {"rel": "briefing", "href": f"{base}/briefing"}],
    }
