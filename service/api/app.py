"""The HTTP service: ``create_app(settings)`` builds the FastAPI app (``svrisk serve``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.api import auth, evaluations, health, layers, ogc, pages, rankings, runs
from service.api import jobs as jobs_router
from service.api.repository import NotFound, RunRepository
from service.keys import KeyStore
from service.settings import get_settings

MAX_BODY_BYTES = 64 * 1024


def create_app(settings=None, *, jobs: Mapping[str, Callable[[dict], Any]] | None = None) -> FastAPI:
    """Build the API over ``settings.runs_dir`` with keys from ``settings.service.keys_file``.

    Parameters
    ----------
    settings : service.settings.Settings, optional
        Read with :func:`service.settings.get_settings` when None.
    jobs : mapping of {"ingest", "train", "rank"} to callable, optional
        What ``POST /jobs/{kind}`` runs; each is called with the request's JSON options
        (a dict). Kinds left out answer 501.

    Returns
    -------
    fastapi.FastAPI
    """
    if settings is None:
        settings = get_settings()
    try:
        app_version = version("svrisk")
    except PackageNotFoundError:
        app_version = "0+unknown"
    app = FastAPI(
        title="svrisk",
        version=app_version,
        description="Serious violence risk: ranked places, hot spots, Clear Hold Build areas "
        "and GIS layers. Send an API key in the X-API-Key header. Places are ranked, never people.",
    )
    app.state.settings = settings
    app.state.repo = RunRepository(settings.runs_dir)
    app.state.keys = KeyStore(settings.service.keys_file)
    app.state.jobs = dict(jobs or {})
    app.state.job_log = {}

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ValueError)
    async def bad_data(request: Request, exc: ValueError) -> JSONResponse:
        # A run folder that does not meet the contract: say which file and what is wrong.
        return JSONResponse({"detail": f"run data problem: {exc}"}, status_code=500)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body larger than {MAX_BODY_BYTES} bytes"},
                                status_code=413)
        return await call_next(request)

    for module in (health, auth, runs, rankings, layers, ogc, pages, jobs_router, evaluations):
        app.include_router(module.router)
    return app
