"""`svrisk update`: bring a data folder up to date from its publishers, then (optionally) run.

The settings (``[update]`` in ``svrisk.toml``, ``SVRISK_UPDATE__*``) are turned into the
explicit arguments of :func:`sources.update.update_folder`; with ``run`` a new
run is made (ingest, features, model, outputs: the same :func:`service.run.make_run` as
``svrisk run``) when something new was placed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from service.inputs import check_data_dir
from service.run import make_run
from service.settings import Settings
from service.stores import Progress, ingest_options
from sources.fetch import FetchOptions
from sources.update import Endpoints, PoliceRate, update_folder


def fetch_options(settings: Settings) -> FetchOptions:
    u = settings.update
    return FetchOptions(timeout_s=u.timeout_s, retries=u.retries, backoff_s=u.backoff_s, max_wait_s=u.max_wait_s,
                        proxy=u.proxy)


def update_step(settings: Settings, *, offline: bool = False, run: bool = False,
                progress: Progress | None = None, fetch: FetchOptions | None = None) -> dict:
    """Update ``settings.data_dir`` from its publishers; with ``run``, make a run if anything was placed.

    Returns the update report (:func:`sources.update.update_folder`) with ``"run"``:
    the run folder made, or None.
    """
    if settings.data_dir is None:
        raise ValueError("svrisk update needs a data folder (--data or data_dir in svrisk.toml); the demo borough "
                         "has no publisher to update from")
    data = check_data_dir(settings.data_dir)
    digest = hashlib.sha256(str(data.resolve()).encode("utf-8")).hexdigest()[:10]
    u = settings.update
    report = update_folder(
        data, Path(settings.update_cache_dir) / f"{data.resolve().name}-{digest}",
        endpoints=Endpoints(london_datastore=u.london_datastore_url, police_uk=u.police_uk_url),
        fetch=fetch or fetch_options(settings),
        police_rate=PoliceRate(u.police_uk_rate_per_s, u.police_uk_burst),
        ingest_options=ingest_options(settings), offline=offline, progress=progress)
    report["run"] = None
    if run and not offline and report["placed"]:
        report["run"] = str(make_run(settings, progress=progress))
    return report
