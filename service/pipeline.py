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


def store_for(settings: Settings, store_dir: Path | None = None, progress: Progress | None = None):
    """Open the store, ingesting the configured data first if there is none yet."""
    from features.store import REPORT_NAME, Store

    store = Path(store_dir) if store_dir is not None else settings.store_dir
    if not (store / REPORT_NAME).is_file():
        ingest_step(settings, store_dir=store, progress=progress)
    return Store(store)


def features_step(settings: Settings, units: str, cutoff: str, store_dir: Path | None = None,
                  out_dir: Path | None = None, progress: Progress | None = None) -> dict:
    from features.build import FeatureBuilder, features_to_files
    from geo.units import build_units

    store = store_for(settings, store_dir, progress)
    unit_set = build_units(store, units, settings)
    builder = FeatureBuilder(store, unit_set, settings)
    return features_to_files(builder, cutoff, Path(out_dir) if out_dir is not None else settings.out_dir / "features")


def job_runners(settings: Settings) -> dict:
    """What the API's analyst-only POST /jobs/{kind} runs: the same steps as the CLI."""
    def ingest_job(params: dict) -> dict:
        report, store = ingest_step(settings)
        return {"store": str(store), "totals": report["totals"], "reconciled": report["reconciled"]}

    return {"ingest": ingest_job}
