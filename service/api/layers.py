"""A run's layers as GeoJSON (EPSG:4326), and its GIS files for download."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import FileResponse

from reports import run_catalogue as rc
from service.api import schemas
from service.api.auth import reader
from service.api.deps import AppSettings, BaseUrl, Repo

router = APIRouter(tags=["layers"], dependencies=[Depends(reader)])

DOWNLOADS = {
    "gpkg": (rc.GPKG.path, "application/geopackage+sqlite3"),
    "shp": (rc.SHP_ZIP.path, "application/zip"),
    "kml": (rc.KML.path, "application/vnd.google-earth.kml+xml"),
}


@router.get("/runs/{run_id}/layers", summary="The layers of a run", response_model=schemas.LayerList, response_model_exclude_unset=True)
def list_layers(run_id: str, repo: Repo, base_url: BaseUrl) -> dict:
    run = repo.get(run_id).run
    base = f"{base_url}/runs/{run.run_id}/layers"
    return {"run_id": run.run_id, "layers": [
        {"name": n, "href": f"{base}/{n}", "count": len(repo.get(run_id).layers[n])}
        for n in repo.layer_names(run_id)]}


@router.get("/runs/{run_id}/layers/{layer}", summary="One layer as a GeoJSON FeatureCollection",
            response_class=Response, responses={200: {"content": {"application/geo+json": {}}}})
def layer(run_id: str, layer: str, repo: Repo, settings: AppSettings) -> Response:
    lc = repo.layer(run_id, layer)
    max_size = settings.service.max_page_size
    if len(lc) > max_size:
        raise HTTPException(400, f"layer {layer!r} has {len(lc)} features, more than the "
                                 f"maximum page size {max_size}: page it with /ogc/collections/"
                                 f"{layer}/items")
    return Response(repo.layer_geojson(run_id, layer), media_type="application/geo+json")


@router.get("/runs/{run_id}/download/{fmt}", summary="GIS file: gpkg, shp (zip) or kml")
def download(run_id: str, fmt: Literal["gpkg", "shp", "kml"], repo: Repo):
    run = repo.get(run_id).run
    name, media = DOWNLOADS[fmt]
    path = run.path / name
    if not path.is_file():
        raise HTTPException(404, f"run {run.run_id!r} has no {name}: outputs were not written")
    return FileResponse(path, media_type=media, filename=f"{run.run_id}_{name}")
