"""The shapes of the API's JSON answers, as Pydantic models: ``/docs`` and ``/openapi.json`` show them.

Fields are declared in the order the routes write them, and routes that use a model as their
``response_model`` set ``response_model_exclude_unset=True``, so a body is exactly what the route
built: a key the route leaves out stays out (no ``null`` added), nothing is reordered. Open
parts (a run's metadata from ``run.json``, an evaluation's estimates) are ``extra="allow"``:
documented where known, passed through as written.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    """A model whose documented fields may be joined by others, passed through unchanged."""

    model_config = ConfigDict(extra="allow")


class Link(Open):
    rel: str
    href: str


class Health(Open):
    status: str = Field(description="'ok' while the service answers.")
    version: str
    published_run: str | None = Field(description="The run GIS clients, /map and /briefing show.")
    jobs_waiting: int
    job_queue_size: int
    update: dict[str, Any] = Field(description="The monthly update schedule, or {'schedule': 'off'}.")


class RunSummary(Open):
    run_id: str
    created: str | None = None
    model_version: str | None = None
    method: str | None = None
    units: str | None = None
    cutoff: str | None = Field(None, description="YYYY-MM: the first month forecast.")
    horizon: int | None = Field(None, description="Months ahead.")
    data_period: dict[str, Any] | None = None
    area_name: str | None = None
    demo: bool | None = None
    published: bool


class RunList(Open):
    runs: list[RunSummary] = Field(description="Newest first.")
    count: int
    published: str | None


class RunDetail(Open):
    """``run.json`` less the server's settings and folders, then what the service adds."""

    run_id: str
    published: bool
    layers: list[str]
    files: list[str] = Field(description="Output files written (map.html, briefing.pdf, layers.gpkg, ...).")
    links: list[Link]


class Figures(Open):
    """The run's headline figures (serious violence by offence group, knife crime by ward)."""

    run_id: str


class LedgerRecord(Open):
    run_id: str
    record: list[dict[str, Any]] = Field(description="The running record, per units and horizon.")
    scored: list[dict[str, Any]] = Field(description="Every forecast scored so far.")


class Publication(Open):
    run_id: str
    published: str = Field(description="When (UTC, ISO 8601).")
    by: str = Field(description="The key id (or 'cli') that published it.")
    demo: bool


class RankingPage(Open):
    run_id: str
    numberMatched: int  # noqa: N815 - OGC API's names
    numberReturned: int  # noqa: N815
    offset: int
    limit: int
    items: list[dict[str, Any]] = Field(description="Ranked places: rank, unit_id, expected count, reasons ...")
    links: list[Link]


class LayerEntry(Open):
    name: str
    href: str
    count: int


class LayerList(Open):
    run_id: str
    layers: list[LayerEntry]


class Job(Open):
    job_id: str
    kind: str = Field(description="ingest, train, rank, update or evaluate.")
    status: str = Field(description="queued, running, done or failed.")
    params: dict[str, Any]
    requested_by: str | None = None
    created: str | None = None
    started: str | None = None
    finished: str | None = None
    result: Any = None
    error: str | None = None


class JobStarted(Job):
    links: list[Link]


class JobList(Open):
    jobs: list[dict[str, Any]] = Field(description="The 20 most recent jobs, newest first (see Job).")
    waiting: int


class WhoAmI(Open):
    key_id: str
    name: str
    role: str
    scopes: list[str]
    expires: str | None


class EvaluationEntry(Open):
    evaluation_id: str
    area: str | None = None
    start: str | None = None
    end: str | None = None
    verdict: str | None = None


class EvaluationList(Open):
    evaluations: list[EvaluationEntry] = Field(description="Newest first.")
    count: int


class EvaluationQueued(Open):
    evaluation_id: str
    job_id: str
    status: str
    requested_by: str
    created: str
    params: dict[str, Any]
    links: list[Link]


class Evaluation(Open):
    """Every estimate of a finished evaluation (``evaluation.json``, with ``status`` 'done'), or its
    job's state while it runs (job_id, status, requested_by, created, params, started, error)."""

    evaluation_id: str
