"""OGC API - Features over the published run's layers, and over any run at ``/ogc/runs/{id}``.

QGIS ("WFS / OGC API - Features" connection, Basic authentication) and ArcGIS Pro add
``<base>/ogc`` as a live source; it always shows the run an analyst published (see
:mod:`service.publish`), and ``<base>/ogc/runs/{run_id}`` shows one run whatever is
published. What is implemented:

- Part 1 Core, GeoJSON, HTML (``f=html`` or a browser's ``Accept``) and OpenAPI 3.0;
- Part 2 CRS by reference: collections list CRS84 and British National Grid
  (EPSG:27700, the ``storageCrs``); ``crs`` picks the CRS of the returned geometries
  (answered in ``Content-Crs``), ``bbox-crs`` the CRS of ``bbox``; EPSG:27700 axes are
  easting, northing;
- Part 3 queryables: ``/collections/{id}/queryables`` lists each layer's properties with
  their JSON types, and any of them is a filter by equality (``?rank=1``,
  ``?gi_class=Hot spot (99%)``; several are combined with AND).

``limit`` above the maximum page size is lowered to it (the standard's recommendation);
unknown or malformed query parameters answer 400.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from service.api.auth import reader
from service.api.deps import AppSettings, BaseUrl, Repo, base_url, repository
from service.api.html import page, wants_html
from service.inputs import shown

router = APIRouter(prefix="/ogc", tags=["ogc"], dependencies=[Depends(reader)])

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
BNG = "http://www.opengis.net/def/crs/EPSG/0/27700"
CRS_KEY = {CRS84: "web", BNG: "bng"}
CRS_ALIASES = {
    CRS84: CRS84, "https://www.opengis.net/def/crs/OGC/1.3/CRS84": CRS84, "[OGC:CRS84]": CRS84,
    "OGC:CRS84": CRS84, BNG: BNG, "https://www.opengis.net/def/crs/EPSG/0/27700": BNG,
    "[EPSG:27700]": BNG, "EPSG:27700": BNG,
}
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
]
GEOJSON = "application/geo+json"
SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
DEFAULT_LIMIT = 100
ITEM_PARAMS = {"limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "f"}
TITLES = {
    "ranked_units": "Ranked places (forecast risk)",
    "hotspots": "Gi* hot and cold spots",
    "emerging": "Emerging hot spots",
    "areas": "Clear Hold Build areas",
    "hubs": "Stations and schools",
    "youth_places": "Youth work places",
}


def layer_meta(meta: dict, name: str) -> dict:
    """The run record a layer's metadata comes from: the forecast beside the lead for ``current_*`` layers
    (its own model, data period and cutoff), the run's own otherwise."""
    if name.startswith("current_") and meta.get("current"):
        return {**meta, **{k: v for k, v in meta["current"].items() if v is not None}}
    return meta


def layer_title(meta: dict, name: str) -> str:
    """A collection's title for people: what it is, on which units, for which month."""
    base = TITLES.get(name.removeprefix("current_"), name)
    if name.startswith("current_"):
        return f"{base}: {meta.get('units')} forecast for {meta.get('cutoff')} (beside the lead)"
    if name == "ranked_units":
        return f"{base}: {meta.get('units')} forecast for {meta.get('cutoff')}"
    return base


RUN_PARAM = {"parameters": [{"name": "run_id", "in": "path", "required": True,
                             "schema": {"type": "string"},
                             "description": "A run id, or 'latest' for the newest run."}]}


# ----------------------------------------------------------------------------- helpers

def _run(request: Request) -> str:
    return request.path_params.get("run_id", "published")


def _base(request: Request) -> str:
    base = base_url(request) + "/ogc"
    rid = request.path_params.get("run_id")
    return f"{base}/runs/{quote(rid, safe='')}" if rid is not None else base


def _json(body: dict, media_type: str = "application/json", crs: str | None = None) -> Response:
    return Response(json.dumps(body), media_type=media_type,
                    headers={"Content-Crs": f"<{crs}>"} if crs else None)


def _cell(value):
    """A value as a table shows it: floats to 4 significant figures."""
    return f"{value:.4g}" if isinstance(value, float) else value


def _html(request: Request, title: str, **context) -> HTMLResponse:
    ctx = {"description": "", "links": [], "items": [], "columns": [], "caption": "", "rows": [],
           "data": ""}
    ctx.update(context)
    return HTMLResponse(page(request, "ogc.html.j2", title=title, **ctx))


def _check_params(request: Request, allowed: set[str], formats=("json",)) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(400, f"unknown query parameter(s) {[u[:40] for u in unknown[:5]]}; "
                                 f"allowed: {sorted(allowed)}")
    f = request.query_params.get("f")
    if f is not None and f not in (*formats, "html"):
        raise HTTPException(400, f"f={shown(f)} is not supported; use f={formats[0]} or f=html")


def _crs(request: Request, name: str) -> str:
    raw = request.query_params.get(name)
    if raw is None:
        return CRS84
    crs = CRS_ALIASES.get(raw.strip())
    if crs is None:
        raise HTTPException(400, f"{name}={shown(raw)} is not offered; use {CRS84} or {BNG}")
    return crs


def _int(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"{name}={shown(raw)} is not an integer") from None
    if value < minimum:
        raise HTTPException(400, f"{name}={value} is below the minimum {minimum}")
    return value


def _bbox(raw: str | None, crs: str) -> tuple[float, float, float, float] | None:
    if raw is None:
        return None
    try:
        nums = [float(x) for x in raw.split(",")]
    except ValueError:
        raise HTTPException(400, f"bbox={shown(raw)}: expected 4 or 6 comma-separated numbers") from None
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or not all(np.isfinite(nums)):
        raise HTTPException(400, f"bbox={shown(raw)}: expected 4 or 6 finite numbers, got {len(nums)}")
    minx, miny, maxx, maxy = nums
    if miny > maxy:
        raise HTTPException(400, f"bbox={shown(raw)}: the lower corner is above the upper one")
    if crs == CRS84 and not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise HTTPException(400, f"bbox={shown(raw)}: latitudes must be in [-90, 90] (or give bbox-crs)")
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
        raise HTTPException(400, f"datetime={shown(name)}: {shown(raw)} is not an RFC 3339 date-time") from None
    if pd.isna(ts):
        raise HTTPException(400, f"datetime={shown(name)}: {shown(raw)} is not an RFC 3339 date-time")
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
            raise HTTPException(400, f"datetime={shown(raw)} is not an instant or an interval")
    return (lo is None or lo <= end) and (hi is None or hi >= start)


def queryables(lc) -> dict[str, str]:
    return lc.types


def _parse(name: str, raw: str, kind: str):
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        raise HTTPException(400, f"{name}={shown(raw)} is not a {kind}") from None
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise HTTPException(400, f"{name}={shown(raw)} is not true or false")
        return raw.lower() == "true"
    return raw


def _filter_mask(lc, filters: dict[str, str]) -> np.ndarray:
    kinds = queryables(lc)
    mask = np.ones(len(lc), dtype=bool)
    for name, raw in filters.items():
        value = _parse(name, raw, kinds[name])
        col = lc.frame[name]
        mask &= (col == value).fillna(False).to_numpy(dtype=bool)
    return mask


# ----------------------------------------------------------------------------- documents

def _collection(request: Request, run_id: str, name: str) -> dict:
    repo = repository(request)
    meta = layer_meta(repo.meta(run_id), name)
    lc = repo.layer(run_id, name)
    b = lc.bounds["web"]
    bbox = ([float(np.nanmin(b[:, 0])), float(np.nanmin(b[:, 1])), float(np.nanmax(b[:, 2])),
             float(np.nanmax(b[:, 3]))] if len(b) else [-180.0, -90.0, 180.0, 90.0])
    start, end = _period(meta)
    href = f"{_base(request)}/collections/{name}"
    return {
        "id": name,
        "title": layer_title(meta, name),
        "description": f"{layer_title(meta, name)} from run {meta['run_id']} (model "
                       f"{meta.get('model_version')}, data {meta['data_period']['start']} to "
                       f"{meta['data_period']['end']}, forecast from {meta.get('cutoff')}).",
        "itemType": "feature",
        "crs": [CRS84, BNG],
        "storageCrs": BNG,
        "extent": {
            "spatial": {"bbox": [bbox], "crs": CRS84},
            "temporal": {"interval": [[start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                       end.strftime("%Y-%m-%dT%H:%M:%SZ")]],
                         "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"},
        },
        "links": [
            {"rel": "self", "type": "application/json", "title": "This collection", "href": href},
            {"rel": "alternate", "type": "text/html", "title": "This collection as HTML",
             "href": f"{href}?f=html"},
            {"rel": "items", "type": GEOJSON, "title": "Features", "href": f"{href}/items"},
            {"rel": "items", "type": "text/html", "title": "Features as HTML",
             "href": f"{href}/items?f=html"},
            {"rel": QUERYABLES_REL, "type": SCHEMA_JSON, "title": "Queryable properties",
             "href": f"{href}/queryables"},
        ],
    }


def landing(request: Request, repo: Repo, root: BaseUrl) -> Response:
    _check_params(request, {"f"})
    base = _base(request)
    rid = request.path_params.get("run_id")
    which = (f"run {rid}" if rid is not None
             else f"the published run ({repo.resolve('published')})")
    doc = {
        "title": "svrisk OGC API - Features",
        "description": f"Layers of {which}: ranked places, hot spots, emerging hot spots, "
                       "Clear Hold Build areas and hubs. Every run is also at /ogc/runs/{run_id}.",
        "links": [
            {"rel": "self", "type": "application/json", "title": "This document", "href": base},
            {"rel": "alternate", "type": "text/html", "title": "This document as HTML",
             "href": f"{base}?f=html"},
            {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "The API definition", "href": f"{root}/openapi.json"},
            {"rel": "service-doc", "type": "text/html", "title": "The API documentation",
             "href": f"{root}/docs"},
            {"rel": "conformance", "type": "application/json",
             "title": "Conformance classes", "href": f"{base}/conformance"},
            {"rel": "data", "type": "application/json", "title": "Collections",
             "href": f"{base}/collections"},
        ],
    }
    if wants_html(request):
        return _html(request, doc["title"], description=doc["description"],
                     links=[ln for ln in doc["links"] if ln["rel"] != "self"]
                     + [{"rel": "data", "type": "text/html", "title": "Collections as HTML",
                         "href": f"{base}/collections?f=html"}])
    return _json(doc)


def conformance(request: Request) -> Response:
    _check_params(request, {"f"})
    if wants_html(request):
        return _html(request, "Conformance classes",
                     links=[{"rel": "conformance", "href": c, "title": c} for c in CONFORMANCE])
    return _json({"conformsTo": CONFORMANCE})


def collections(request: Request, repo: Repo) -> Response:
    _check_params(request, {"f"})
    run_id = repo.resolve(_run(request))
    base = _base(request)
    docs = [_collection(request, run_id, n) for n in repo.layer_names(run_id)]
    if wants_html(request):
        return _html(request, f"Collections of run {run_id}", items=[
            {"href": f"{base}/collections/{c['id']}?f=html", "title": c["title"],
             "description": c["description"]} for c in docs])
    return _json({
        "links": [{"rel": "self", "type": "application/json", "title": "Collections",
                   "href": f"{base}/collections"},
                  {"rel": "alternate", "type": "text/html", "title": "Collections as HTML",
                   "href": f"{base}/collections?f=html"}],
        "crs": [CRS84, BNG],
        "collections": docs,
    })


def collection(cid: str, request: Request, repo: Repo) -> Response:
    _check_params(request, {"f"})
    doc = _collection(request, repo.resolve(_run(request)), cid)
    if wants_html(request):
        href = f"{_base(request)}/collections/{cid}"
        return _html(request, doc["title"], description=doc["description"], links=[
            {"rel": "items", "title": "Features (first page)", "href": f"{href}/items?f=html"},
            {"rel": "items", "title": "Features as GeoJSON", "href": f"{href}/items"},
            {"rel": "queryables", "title": "Queryable properties", "href": f"{href}/queryables?f=html"},
        ], data=json.dumps({"crs": doc["crs"], "storageCrs": doc["storageCrs"],
                            "extent": doc["extent"]}, indent=2))
    return _json(doc)


def collection_queryables(cid: str, request: Request, repo: Repo) -> Response:
    _check_params(request, {"f"})
    lc = repo.layer(repo.resolve(_run(request)), cid)
    href = f"{_base(request)}/collections/{cid}/queryables"
    props = {name: {"title": name, "type": kind} for name, kind in queryables(lc).items()}
    props["geometry"] = {"format": "geometry-any", "title": "geometry"}
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": href,
           "type": "object", "title": TITLES.get(cid, cid), "properties": props,
           "additionalProperties": False}
    if wants_html(request):
        return _html(request, f"Queryables of {TITLES.get(cid, cid)}",
                     description="Each property filters the items by equality, e.g. ?rank=1.",
                     columns=["property", "type"],
                     rows=[{"href": None, "values": [k, v.get("type", v.get("format"))]}
                           for k, v in props.items()])
    return _json(doc, SCHEMA_JSON)


def items(cid: str, request: Request, repo: Repo, settings: AppSettings) -> Response:
    run_id = repo.resolve(_run(request))
    lc = repo.layer(run_id, cid)
    kinds = queryables(lc)
    _check_params(request, ITEM_PARAMS | set(kinds), formats=("json", "geojson"))
    crs = _crs(request, "crs")
    bbox_crs = _crs(request, "bbox-crs")
    max_size = settings.service.max_page_size
    limit = min(_int(request, "limit", min(DEFAULT_LIMIT, max_size), 1), max_size)
    offset = _int(request, "offset", 0, 0)
    bbox = _bbox(request.query_params.get("bbox"), bbox_crs)
    filters = {k: v for k, v in request.query_params.items() if k in kinds and k not in ITEM_PARAMS}

    if not _datetime_matches(request.query_params.get("datetime"), layer_meta(repo.meta(run_id), cid)):
        mask = np.zeros(len(lc), dtype=bool)
    else:
        mask = _filter_mask(lc, filters) if filters else np.ones(len(lc), dtype=bool)
        if bbox is not None:
            b = lc.bounds[CRS_KEY[bbox_crs]]
            mask &= ((b[:, 0] <= bbox[2]) & (b[:, 2] >= bbox[0])
                     & (b[:, 1] <= bbox[3]) & (b[:, 3] >= bbox[1]))
            pre = np.flatnonzero(mask)
            if len(pre):
                hit = shapely.intersects(lc.geoms[CRS_KEY[bbox_crs]][pre], shapely.box(*bbox))
                mask[pre[~np.asarray(hit, dtype=bool)]] = False
    selected = np.flatnonzero(mask)
    page_idx = selected[offset: offset + limit]

    href = f"{_base(request)}/collections/{cid}/items"
    keep = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset", "f")}

    def link(rel: str, off: int, fmt: str | None = None) -> dict:
        q = urlencode({**keep, "limit": limit, "offset": off, **({"f": fmt} if fmt else {})})
        return {"rel": rel, "type": "text/html" if fmt == "html" else GEOJSON, "href": f"{href}?{q}"}

    links = [link("self", offset), link("alternate", offset, "html"),
             {"rel": "collection", "type": "application/json", "href": href.rsplit("/items", 1)[0]}]
    if offset + limit < len(selected):
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    key = CRS_KEY[crs]

    if wants_html(request):
        columns = list(lc.frame.columns)
        nav = [dict(ln, type="text/html", href=ln["href"] + "&f=html")
               for ln in links if ln["rel"] in ("next", "prev")]
        return _html(request, f"{TITLES.get(cid, cid)}: features",
                     caption=f"{len(page_idx)} of {len(selected)} features (offset {offset}).",
                     links=nav, columns=["id", *columns],
                     rows=[{"href": f"{href}/{quote(lc.ids[i], safe='')}?f=html",
                            "values": [lc.ids[i], *(_cell(lc.props[i].get(c)) for c in columns)]}
                           for i in page_idx])
    tail = json.dumps({"links": links, "timeStamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "numberMatched": int(len(selected)), "numberReturned": int(len(page_idx))})
    # features are serialised once per layer and CRS, then joined: a page costs a string join
    body = ('{"type": "FeatureCollection", "features": ['
            + ", ".join(lc.feature_json(int(i), key) for i in page_idx) + "], " + tail[1:])
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{crs}>"})


def item(cid: str, fid: str, request: Request, repo: Repo) -> Response:
    _check_params(request, {"f", "crs"}, formats=("json", "geojson"))
    crs = _crs(request, "crs")
    lc = repo.layer(repo.resolve(_run(request)), cid)
    i = lc.by_id.get(fid)
    if i is None:
        raise HTTPException(404, f"collection {cid!r} has no feature {shown(fid)}")
    href = f"{_base(request)}/collections/{cid}"
    if wants_html(request):
        props = lc.props[i]
        return _html(request, f"{TITLES.get(cid, cid)}: {fid}",
                     links=[{"rel": "collection", "title": "The collection", "href": f"{href}?f=html"}],
                     columns=["property", "value"],
                     rows=[{"href": None, "values": [k, _cell(v)]} for k, v in props.items()])
    return _json({**lc.feature(i, CRS_KEY[crs]), "links": [
        {"rel": "self", "type": GEOJSON, "href": f"{href}/items/{quote(fid, safe='')}"},
        {"rel": "collection", "type": "application/json", "href": href},
    ]}, GEOJSON, crs)


def runs_index(request: Request, repo: Repo, root: BaseUrl) -> Response:
    """Every run's OGC landing page."""
    _check_params(request, {"f"})
    base = root + "/ogc/runs"
    published = repo.published_id()
    entries = [{"run_id": m["run_id"], "created": m.get("created"), "units": m.get("units"),
                "cutoff": m.get("cutoff"), "published": m["run_id"] == published,
                "href": f"{base}/{m['run_id']}"} for m in repo.list()]
    if wants_html(request):
        return _html(request, "Runs", items=[
            {"href": f"{e['href']}?f=html", "title": e["run_id"],
             "description": f"{e['units']}, cutoff {e['cutoff']}" + (" (published)" if e["published"] else "")}
            for e in entries])
    return _json({"runs": entries, "links": [{"rel": "self", "type": "application/json", "href": base}]})


# ----------------------------------------------------------------------------- routes

_ROUTES = [
    ("", landing, "OGC API - Features landing page"),
    ("/conformance", conformance, "Conformance classes"),
    ("/collections", collections, "The run's layers"),
    ("/collections/{cid}", collection, "One collection"),
    ("/collections/{cid}/queryables", collection_queryables, "Queryable properties (JSON Schema)"),
    ("/collections/{cid}/items", items,
     "Features: bbox, bbox-crs, crs, datetime, limit, offset and property filters"),
    ("/collections/{cid}/items/{fid}", item, "One feature"),
]
router.add_api_route("/runs", runs_index, methods=["GET"], summary="Every run's OGC API")
for _path, _endpoint, _summary in _ROUTES:
    responses = {200: {"content": {GEOJSON: {}}}} if _endpoint in (items, item) else None
    router.add_api_route(_path, _endpoint, methods=["GET"], summary=f"{_summary} (published run)",
                         responses=responses)
    router.add_api_route(f"/runs/{{run_id}}{_path}", _endpoint, methods=["GET"],
                         summary=f"{_summary} (one run)", responses=responses,
                         openapi_extra=RUN_PARAM, name=f"{_endpoint.__name__}_of_run")
