"""What a route may ask the app for, typed: the settings, the runs, the job queue, keys, sessions.

``create_app`` makes each object once and keeps it on ``app.state``; this module is the only
place that reads it back. A route names what it needs as a parameter (``repo: Repo``) and
FastAPI passes it (``Depends``); a helper that already has the request calls the function
(``repository(request)``). Tests can swap any of them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.auth import Sessions
from service.api.repository import RunRepository
from service.api.state import SharedState
from service.jobs import JobQueue
from service.keys import KeyStore
from service.schedule import UpdateSchedule
from service.settings import Settings


def app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


def repository(request: Request) -> RunRepository:
    """The runs of ``settings.runs_dir``, read once and cached (:class:`service.api.repository.RunRepository`)."""
    return request.app.state.repo


def job_queue(request: Request) -> JobQueue:
    """The bounded queue the analysts' jobs and evaluations wait in."""
    return request.app.state.jobs


def base_url(request: Request) -> str:
    """The public URL links are built from (``settings.service.base_url``), never the ``Host`` header."""
    return request.app.state.base_url


def key_store(request: Request) -> KeyStore:
    return request.app.state.keys


def sessions(request: Request) -> Sessions:
    return request.app.state.sessions


def shared_state(request: Request) -> SharedState:
    """Sessions, login throttling and job records shared by the worker processes."""
    return request.app.state.shared


def update_schedule(request: Request) -> UpdateSchedule | None:
    """The monthly ``svrisk update`` schedule, None when it is off."""
    return getattr(request.app.state, "update_schedule", None)


def evaluation_jobs(request: Request) -> dict[str, dict]:
    """Evaluations queued by this process, by evaluation id (kept in memory until restart)."""
    return request.app.state.evaluations


AppSettings = Annotated[Settings, Depends(app_settings)]
Repo = Annotated[RunRepository, Depends(repository)]
Jobs = Annotated[JobQueue, Depends(job_queue)]
BaseUrl = Annotated[str, Depends(base_url)]
Keys = Annotated[KeyStore, Depends(key_store)]
SessionStore = Annotated[Sessions, Depends(sessions)]
Shared = Annotated[SharedState, Depends(shared_state)]
Schedule = Annotated[UpdateSchedule | None, Depends(update_schedule)]
EvaluationJobs = Annotated[dict[str, dict], Depends(evaluation_jobs)]
