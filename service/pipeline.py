"""Pipeline wiring: data folder -> store -> features -> models -> outputs.

Each step is one function the CLI and the API call; nothing here does the work
itself, it only decides which folders to read and write.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from features.ingest import ingest
from service.settings import Settings

Progress = Callable[[str], None]


def data_dir_for(settings: Settings, progress: Progress | None = None) -> Path:
    """The configured data folder, or the demo borough (generated on first use)."""
    if settings.data_dir is not None:
        return Path(settings.data_dir)
    from features.demo import generate_demo

    target = settings.demo_dir
    if progress:
        progress(f"demo borough (seed {settings.demo_seed}) -> {target}")
    return Path(generate_demo(target, seed=settings.demo_seed))


def ingest_step(settings: Settings, store_dir: Path | None = None, progress: Progress | None = None) -> tuple[dict, Path]:
    data = data_dir_for(settings, progress)
    store = Path(store_dir) if store_dir is not None else settings.store_dir
    report = ingest(data, store, settings=settings.ingest, progress=progress)
    return report, store
