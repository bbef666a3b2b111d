"""Which store a step reads: the data folder's own, ingested again when its files changed.

``svrisk ingest`` imports this module and :mod:`service.engine` only, so loading a data folder
pays for the loaders (pandas, geopandas, pyarrow) and not for the features and models
(scikit-learn, scipy, jinja2) that :mod:`service.pipeline` brings: importing this module peaks at
0.68x of importing the pipeline, and ``svrisk ingest`` of 500 one-row files at 207 MB against 282 MB
through the pipeline (``benchmarks/ingest.py --only small_ingest --files 500``, same session).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from service.engine import Engine
from service.inputs import check_data_dir
from service.settings import Settings
from sources.fingerprint import changes
from sources.ingest import ingest
from sources.loaders.context import IngestOptions
from sources.store import REPORT_NAME, STORE_VERSION, Store

Progress = Callable[[str], None]


def data_dir_for(settings: Settings, progress: Progress | None = None) -> Path:
    """The configured data folder (which must exist and hold files), or the demo borough.

    The demo is generated on first use, and only when no data folder is configured:
    a data folder that is named but missing or empty is an error, never the demo.
    """
    if settings.data_dir is not None:
        return check_data_dir(settings.data_dir)
    target = settings.demo_dir
    if progress:
        progress(f"demo borough (seed {settings.demo_seed}) -> {target}")
    from sources.demo.borough import generate_demo  # import here: scipy, only without data

    return Path(generate_demo(target, seed=settings.demo_seed))


def default_store_dir(settings: Settings, data: Path) -> Path:
    """``<out>/stores/<folder name>-<hash of its absolute path>``: one store per data folder."""
    resolved = Path(data).resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", resolved.name)[:40] or "data"
    return settings.stores_dir / f"{name}-{digest}"


def ingest_options(settings: Settings) -> IngestOptions:
    """The ``[ingest]`` settings as the loaders' :class:`sources.loaders.context.IngestOptions`."""
    values = settings.ingest.model_dump()
    return IngestOptions(**{**values, "allow_outside": tuple(values["allow_outside"])})


def ingest_step(settings: Settings, store_dir: Path | None = None, progress: Progress | None = None) -> tuple[dict, Path]:
    """Ingest the configured data folder into its store (``store_dir``, else its default store)."""
    data = data_dir_for(settings, progress)
    store = Path(store_dir) if store_dir is not None else default_store_dir(settings, data)
    with Engine.from_settings(settings) as engine:
        if progress:
            progress(f"loading files on {engine!r}")
        report = ingest(data, store, options=ingest_options(settings), progress=progress, map_files=engine.map_files)
    return report, store


def store_for(settings: Settings, store_dir: Path | None = None, progress: Progress | None = None) -> Store:
    """The store of the configured data folder, ingested again whenever the folder changed.

    Without ``store_dir`` every data folder has its own store (:func:`default_store_dir`).
    With ``store_dir`` and no configured data folder, that store is used as it is
    (re-ingested from the folder it records if that folder changed); with both, the
    store must hold that folder's data, or be new.
    """
    if store_dir is not None and settings.data_dir is None and (Path(store_dir) / REPORT_NAME).is_file():
        store = Store(store_dir)
        bound = store.report().get("data_dir_resolved")
        if bound and Path(bound).is_dir():
            return _current(settings.model_copy(update={"data_dir": Path(bound)}), Path(store_dir), progress)
        return store
    data = data_dir_for(settings, progress)
    store = Path(store_dir) if store_dir is not None else default_store_dir(settings, data)
    if store_dir is not None and (store / REPORT_NAME).is_file():
        bound = Store(store).report().get("data_dir_resolved")
        if bound and Path(bound) != data.resolve():
            raise ValueError(f"store {store} holds the data of {bound}, not of {data}; leave out --store "
                             "(each data folder gets its own store) or name another store folder")
    return _current(settings.model_copy(update={"data_dir": data}), store, progress)


def _current(settings: Settings, store: Path, progress: Progress | None) -> Store:
    """``store``, ingested first if it is missing, predates data binding, or its folder changed."""
    data = Path(settings.data_dir)
    why = ["no store yet"]
    if (store / REPORT_NAME).is_file():
        report = Store(store).report()
        why = (["the store was made by an older svrisk"] if report.get("store_version") != STORE_VERSION
               else changes(data, report["data_files"], settings.ingest.allow_outside))
        if not why:
            return Store(store)
    if progress:
        shown = "; ".join(why[:3]) + (f" and {len(why) - 3} more" if len(why) > 3 else "")
        progress(f"ingesting {data} into {store} ({shown})")
    ingest_step(settings, store_dir=store, progress=progress)
    return Store(store)
