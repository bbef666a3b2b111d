"""OGC API - Features (Part 1: Core, GeoJSON, OpenAPI 3.0) over the latest run's layers.

QGIS ("WFS / OGC API - Features" connection) and ArcGIS Pro add ``<base>/ogc`` as a live
source. Collections are the layers of the newest run; geometries are in CRS84 (lon/lat)
as the standard requires. ``limit`` above the maximum page size is lowered to it (the
standard's recommendation), unknown or malformed query parameters answer 400.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, HTTPException, Request, Response

from service.api.auth import viewer

router = APIRouter(prefix="/ogc", tags=["ogc"], dependencies=[Depends(viewer)])

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
GEOJSON = "application/geo+json"
DEFAULT_LIMIT = 100
ITEM_PARAMS = {"limit", "offset", "bbox", "datetime", "f"}
TITLES = {
    "ranked_units": "Ranked places (forecast risk)",
    "hotspots": "Gi* hot and cold spots",
    "emerging": "Emerging hot spots",
    "areas": "Clear Hold Build areas",
    "hubs": "Stations and schools",
    "youth_places": "Youth work places",
}


def _json(body: dict, media_type: str = "application/json", status: int = 200) -> Response:
    return Response(json.dumps(body), media_type=media_type, status_code=status,
                    headers={"Content-Crs": f"<{CRS84}>"} if media_type == GEOJSON else None)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _check_params(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(400, f"unknown query parameter(s) {unknown}; allowed: {sorted(allowed)}")
    f = request.query_params.get("f")
    if f is not None and f not in ("json", "geojson"):
        raise HTTPException(400, f"f={f!r} is not supported; use f=json")


def _int(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise HTTPException(400, f"{name}={value} is below the minimum {minimum}")
    return value


def _bbox(raw: str | None) -> tuple[float, float, float, float] | None:
    if raw is None:
        return None
    try:
        nums = [float(x) for x in raw.split(",")]
    except ValueError:
        raise HTTPException(400, f"bbox={raw!r}: expected 4 or 6 comma-separated numbers") from None
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4:
        raise HTTPException(400, f"bbox={raw!r}: expected 4 or 6 numbers, got {len(nums)}")
    minx, miny, maxx, maxy = nums
    if miny > maxy or not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise HTTPException(400, f"bbox={raw!r}: latitudes must be in [-90, 90] and min <= max")
    return minx, miny, maxx, maxy


def _period(meta: dict) -> tuple[pd.Timestamp, pd.Timestamp]:
    p = meta["data_period"]
    start = pd.Timestamp(f"{p['start']}-01", tz="UTC")
    end = pd.Timestamp(f"{p['end']}-01", tz="UTC") + pd.offsets.MonthBegin(1) - pd.Timedelta(seconds=1)
    return start, end


def _instant(raw: str, name: str) -> pd.Timestamp | None:
    if raw in ("..", ""):
        return None
    try:
        ts = pd.Timestamp(raw)
    except (ValueError, TypeError):
        raise HTTPException(400, f"datetime={name!r}: {raw!r} is not an RFC 3339 date-time") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _datetime_matches(raw: str | None, meta: dict) -> bool:
    """Features carry the run's data period; a datetime filter keeps them if it overlaps."""
    if raw is None:
        return True
    start, end = _period(meta)
    if "/" in raw:
        a, b = raw.split("/", 1)
        lo, hi = _instant(a, raw), _instant(b, raw)
    else:
        lo = hi = _instant(raw, raw)
        if lo is None:
            raise HTTPException(400, f"datetime={raw!r} is not an instant or an interval")
    return (lo is None or lo <= end) and (hi is None or hi >= start)


def _collection(request: Request, run_id: str, name: str) -> dict:
    repo = request.app.state.repo
    meta = repo.meta(run_id)
    lc = repo.layer(run_id, name)
    b = lc.bounds
    bbox = ([float(np.nanmin(b[:, 0])), float(np.nanmin(b[:, 1])), float(np.nanmax(b[:, 2])),
             float(np.nanmax(b[:, 3]))] if len(b) else [-180.0, -90.0, 180.0, 90.0])
    start, end = _period(meta)
    href = f"{_base(request)}/collections/{name}"
    return {
        "id": name,
        "title": TITLES.get(name, name),
        "description": f"{TITLES.get(name, name)} from run {meta['run_id']} (model "
                       f"{meta.get('model_version')}, data {meta['data_period']['start']} to "
                       f"{meta['data_period']['end']}, forecast from {meta.get('cutoff')}).",
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {
            "spatial": {"bbox": [bbox], "crs": CRS84},
            "temporal": {"interval": [[start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                       end.strftime("%Y-%m-%dT%H:%M:%SZ")]],
                         "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"},
        },
        "links": [
            {"rel": "self", "type": "application/json", "title": "This collection", "href": href},
            {"rel": "items", "type": GEOJSON, "title": "Features", "href": f"{href}/items"},
        ],
    }


@router.get("", summary="OGC API - Features landing page")
def landing(request: Request) -> Response:
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return _json({
        "title": "svrisk OGC API - Features",
        "description": "Layers of the latest svrisk run: ranked places, hot spots, emerging hot "
                       "spots, Clear Hold Build areas and hubs.",
        "links": [
            {"rel": "self", "type": "application/json", "title": "This document", "href": base},
            {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "The API definition", "href": f"{root}/openapi.json"},
            {"rel": "service-doc", "type": "text/html", "title": "The API documentation",
             "href": f"{root}/docs"},
            {"rel": "conformance", "type": "application/json",
             "title": "Conformance classes", "href": f"{base}/conformance"},
            {"rel": "data", "type": "application/json", "title": "Collections",
             "href": f"{base}/collections"},
        ],
    })


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request) -> Response:
    _check_params(request, {"f"})
    return _json({"conformsTo": CONFORMANCE})


@router.get("/collections", summary="The latest run's layers")
def collections(request: Request) -> Response:
    _check_params(request, {"f"})
    repo = request.app.state.repo
    run_id = repo.latest_id()
    base = _base(request)
    return _json({
        "links": [{"rel": "self", "type": "application/json", "title": "Collections",
                   "href": f"{base}/collections"}],
        "collections": [_collection(request, run_id, n) for n in repo.layer_names(run_id)],
    })


@router.get("/collections/{cid}", summary="One collection")
def collection(cid: str, request: Request) -> Response:
    _check_params(request, {"f"})
    return _json(_collection(request, request.app.state.repo.latest_id(), cid))


@router.get("/collections/{cid}/items", summary="Features, with bbox, datetime, limit and offset",
            responses={200: {"content": {GEOJSON: {}}}})
def items(cid: str, request: Request) -> Response:
    _check_params(request, ITEM_PARAMS)
    repo = request.app.state.repo
    run_id = repo.latest_id()
    lc = repo.layer(run_id, cid)
    max_size = request.app.state.settings.service.max_page_size
    limit = min(_int(request, "limit", min(DEFAULT_LIMIT, max_size), 1), max_size)
    offset = _int(request, "offset", 0, 0)
    bbox = _bbox(request.query_params.get("bbox"))

    if not _datetime_matches(request.query_params.get("datetime"), repo.meta(run_id)):
        selected = np.zeros(0, dtype=int)
    elif bbox is None:
        selected = np.arange(len(lc.features))
    else:
        b = lc.bounds
        pre = np.flatnonzero((b[:, 0] <= bbox[2]) & (b[:, 2] >= bbox[0])
                             & (b[:, 1] <= bbox[3]) & (b[:, 3] >= bbox[1]))
        hit = shapely.intersects(lc.geoms[pre], shapely.box(*bbox)) if len(pre) else []
        selected = pre[np.asarray(hit, dtype=bool)] if len(pre) else pre
    page = selected[offset: offset + limit]

    href = f"{_base(request)}/collections/{cid}/items"
    keep = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}

    def link(rel: str, off: int) -> dict:
        q = urlencode({**keep, "limit": limit, "offset": off})
        return {"rel": rel, "type": GEOJSON, "href": f"{href}?{q}"}

    links = [link("self", offset),
             {"rel": "collection", "type": "application/json", "href": href.rsplit("/items", 1)[0]}]
    if offset + limit < len(selected):
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    return _json({
        "type": "FeatureCollection",
        "features": [lc.features[i] for i in page],
        "links": links,
        "timeStamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "numberMatched": int(len(selected)),
        "numberReturned": int(len(page)),
    }, GEOJSON)


@router.get("/collections/{cid}/items/{fid}", summary="One feature",
            responses={200: {"content": {GEOJSON: {}}}})
def item(cid: str, fid: str, request: Request) -> Response:
    _check_params(request, {"f"})
    repo = request.app.state.repo
    lc = repo.layer(repo.latest_id(), cid)
    i = lc.by_id.get(fid)
    if i is None:
        raise HTTPException(404, f"collection {cid!r} has no feature {fid!r}")
    href = f"{_base(request)}/collections/{cid}"
    return _json({**lc.features[i], "links": [
        {"rel": "self", "type": GEOJSON, "href": f"{href}/items/{fid}"},
        {"rel": "collection", "type": "application/json", "href": href},
    ]}, GEOJSON)
