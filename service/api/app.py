"""The HTTP service: ``create_app(settings)`` builds the FastAPI app (``svrisk serve``).

Every request passes :class:`service.api.guard.Guard` first (identity from headers, body
capped and read only for a known caller, CSRF for browser sessions); routes then ask for a
scope. Links are built from ``settings.service.base_url`` (the configured public URL),
never from the request's ``Host`` header. ``/docs`` and ``/redoc`` load their scripts from
this service (the ``fastapi-offline`` package ships them), so they work without internet.

Behind the guard, :class:`service.api.cache.ResponseCache` answers repeated requests about a
run from memory (ETag, gzip). Sessions, login throttling and job records live in
:class:`service.api.state.SharedState` (``settings.service.state_file``), so the worker
processes of ``svrisk serve --workers N`` agree on them. Validation errors name the field,
never the value sent.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from service.api import auth, evaluations, health, layers, login, ogc, pages, rankings, runs
from service.api import jobs as jobs_router
from service.api.auth import Sessions
from service.api.cache import ResponseCache
from service.api.guard import Guard
from service.api.repository import NotFound, RunRepository, Unavailable
from service.api.state import SharedState
from service.jobs import JobQueue, redactor
from service.keys import KeyStore
from service.schedule import UpdateSchedule
from service.settings import get_settings


def create_app(settings=None, *, jobs: Mapping[str, Callable[[dict], Any]] | None = None) -> FastAPI:
    """Build the API over ``settings.runs_dir`` with keys from ``settings.service.keys_file``.

    Parameters
    ----------
    settings : service.settings.Settings, optional
        Read with :func:`service.settings.get_settings` when None.
    jobs : mapping of {"ingest", "train", "rank"} to callable, optional
        What ``POST /jobs/{kind}`` runs (see :func:`service.jobs.job_runners`); each is called
        on a job worker thread with the job's checked options (a dict). Kinds left out
        answer 501.

    Returns
    -------
    fastapi.FastAPI
    """
    if settings is None:
        settings = get_settings()
    s = settings.service
    try:
        app_version = version("svrisk")
    except PackageNotFoundError:
        app_version = "0+unknown"
    shared = SharedState(s.state_file, max_sessions=s.max_sessions)
    queue = JobQueue(jobs or {}, max_queued=s.job_queue_size, workers=s.job_workers, keep=s.jobs_kept,
                     redact=redactor(settings.out_dir, settings.data_dir, settings.demo_dir), shared=shared)

    repo = RunRepository(settings.runs_dir, cache_size=s.run_cache_size)

    schedule = None
    if settings.update.schedule == "monthly" and "update" in queue.runners and settings.data_dir is not None:
        schedule = UpdateSchedule(queue, settings.update.day_of_month, settings.update.hour_utc)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if schedule is not None:
            schedule.start()
        # the published run's heavy answers are made before the first client asks
        threading.Thread(target=repo.warm, name="svrisk-warm", daemon=True).start()
        yield
        if schedule is not None:
            schedule.stop()
        queue.stop()

    app = FastAPI(
        title="svrisk",
        version=app_version,
        description="Serious violence risk: ranked places, hot spots, Clear Hold Build areas "
        "and GIS layers. Send an API key in the X-API-Key header, or HTTP Basic (user = key id, "
        "password = secret) for reading; browsers log in at /login. Places are ranked, never people.",
        docs_url=None, redoc_url=None, lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.base_url = s.base_url
    app.router.redirect_slashes = False  # the guard redirects, from the public URL
    app.state.repo = repo
    app.state.keys = KeyStore(s.keys_file)
    app.state.shared = shared
    app.state.sessions = Sessions(hours=s.session_hours, state=app.state.shared)
    app.state.jobs = queue
    app.state.update_schedule = schedule
    app.state.evaluations = {}  # evaluation id -> job, queued by this process (service.api.deps)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "60"})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # where and why, never the value sent (it could be anything, a key included)
        return JSONResponse({"detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "invalid")}
                                        for e in exc.errors()]}, status_code=422)

    # the last added runs first: the guard, then the response cache, then the routes
    app.add_middleware(ResponseCache, repo=repo, max_bytes=int(s.response_cache_mb * 2**20))
    app.add_middleware(Guard, keys=app.state.keys, sessions=app.state.sessions, base_url=s.base_url,
                       max_body_bytes=s.max_body_bytes, body_timeout_s=s.body_timeout_s,
                       max_header_bytes=s.max_header_bytes, max_json_depth=s.max_json_depth,
                       max_number_digits=s.max_number_digits)

    assets = f"{s.base_url}/docs/assets"
    app.mount("/docs/assets", StaticFiles(directory=str(files("fastapi_offline") / "static")),
              name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger():
        return get_swagger_ui_html(openapi_url=f"{s.base_url}/openapi.json", title="svrisk API",
                                   swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{assets}/swagger-ui.css",
                                   swagger_favicon_url=f"{assets}/favicon.png",
                                   oauth2_redirect_url=f"{s.base_url}/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_redirect():
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc():
        return get_redoc_html(openapi_url=f"{s.base_url}/openapi.json", title="svrisk API",
                              redoc_js_url=f"{assets}/redoc.standalone.js",
                              redoc_favicon_url=f"{assets}/favicon.png", with_google_fonts=False)

    for module in (health, login, auth, runs, rankings, layers, ogc, pages, jobs_router, evaluations):
        app.include_router(module.router)
    return app
