"""Runs and their metadata (``run.json``, less the server's settings), and publishing one."""

from __future__ import annotations

import threading
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from models.ledger import Ledger, LedgerError, record, running_record
from reports import run_catalogue as rc
from service.api import schemas
from service.api.auth import publisher, reader
from service.api.deps import AppSettings, BaseUrl, Repo
from service.keys import KeyRecord
from service.publish import publish

router = APIRouter(tags=["runs"])

OUTPUT_FILES = tuple(f.path for f in rc.OUTPUT_FILES)
#: run.json entries a client is not shown: how the server is set up is not its business
PRIVATE_META = ("settings",)


def _relative(path: str, root: str) -> str:
    if root and path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1:]
    return PurePath(path.split("!", 1)[0]).name


def public_meta(meta: dict) -> dict:
    """``run.json`` as clients see it: no settings, no server folders; inputs by their name
    in the data folder, with their sha256 (so a partner can check what a run was made from)."""
    out = {k: v for k, v in meta.items() if k not in PRIVATE_META}
    data = meta.get("data")
    if not isinstance(data, dict):
        return out
    root = str(data.get("data_dir") or "").rstrip("/")
    out["data"] = {"ingested": data.get("ingested"),
                   "inputs": {_relative(str(k), root): v for k, v in (data.get("inputs") or {}).items()}}
    folders = [f for f in (root, str(data.get("store") or "").rstrip("/")) if f]

    def clean(value):
        if isinstance(value, str):
            for f in folders:
                value = value.replace(f + "/", "").replace(f, "<data folder>")
            return value
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(out)


@router.get("/runs", summary="All runs, newest first", dependencies=[Depends(reader)],
            response_model=schemas.RunList, response_model_exclude_unset=True)
def list_runs(repo: Repo) -> dict:
    runs = repo.list()
    published = repo.published_id()
    keep = ("run_id", "created", "model_version", "method", "units", "cutoff", "horizon",
            "data_period", "area_name", "demo")
    return {"runs": [{**{k: m.get(k) for k in keep}, "published": m["run_id"] == published}
                     for m in runs],
            "count": len(runs), "published": published}


@router.get("/runs/{run_id}", summary="Metadata of one run ('published', 'latest' or an id)",
            dependencies=[Depends(reader)],
            # documented, not filtered: the body opens with run.json's own keys, in its order
            response_model=None, responses={200: {"model": schemas.RunDetail}})
def get_run(run_id: str, repo: Repo, base_url: BaseUrl) -> dict:
    cached = repo.get(run_id)
    run = cached.run
    base = f"{base_url}/runs/{run.run_id}"
    return {
        **public_meta(run.meta),
        "published": run.run_id == repo.published_id(),
        "layers": list(cached.layers),
        "files": [f for f in OUTPUT_FILES if (run.path / f).is_file()],
        "links": [{"rel": "ranking", "href": f"{base}/ranking"},
                  {"rel": "layers", "href": f"{base}/layers"},
                  {"rel": "map", "href": f"{base}/map"},
                  {"rel": "briefing", "href": f"{base}/briefing"},
                  {"rel": "figures", "href": f"{base}/figures"},
                  {"rel": "ogc", "href": f"{base_url}/ogc/runs/{run.run_id}"}],
    }


@router.get("/runs/{run_id}/figures", summary="The run's headline figures: serious violence by offence group "
            "(12 months, rate, change) and knife crime with young victims by ward", dependencies=[Depends(reader)],
            response_model=schemas.Figures, response_model_exclude_unset=True)
def get_figures(run_id: str, repo: Repo) -> dict:
    run = repo.get(run_id).run
    return {"run_id": run.run_id, **(run.figures or {})}


@router.get("/ledger", summary="The forecast ledger of the published run's data folder: every issued forecast "
            "scored against what then happened, and the running record against the 12-month count",
            dependencies=[Depends(reader)], response_model=schemas.LedgerRecord, response_model_exclude_unset=True)
def get_ledger(repo: Repo, settings: AppSettings) -> dict:
    run = repo.get("published").run
    store = str((run.meta.get("data") or {}).get("store") or "")
    if not store:
        raise HTTPException(404, "the published run names no data store, so it has no ledger")
    ledger = Ledger(settings.out_dir / "ledger" / PurePath(store).name)
    try:
        scored = record(ledger)
        return {"run_id": run.run_id, "record": running_record(scored),
                "scored": scored.to_dict("records") if len(scored) else []}
    except LedgerError as err:
        raise HTTPException(503, "the forecast ledger cannot be read: " + str(err).split(": ", 1)[-1]) from None


@router.post("/runs/{run_id}/publish", summary="Publish a run: /ogc and the default pages serve it",
             response_model=schemas.Publication, response_model_exclude_unset=True)
def publish_run(run_id: str, repo: Repo, record: Annotated[KeyRecord, Depends(publisher)]) -> dict:
    rid = repo.resolve(run_id) if run_id == "latest" else run_id
    repo.get(rid)  # 404 if absent, 503 if it cannot be read: never publish a broken run
    try:
        record = publish(repo.runs_dir, rid, by=record.key_id)
    except ValueError as err:
        raise HTTPException(404, str(err)) from None
    # the heavy answers of the newly published run are made now, not by its first clients
    threading.Thread(target=repo.warm, args=(rid,), name="svrisk-warm", daemon=True).start()
    return record
