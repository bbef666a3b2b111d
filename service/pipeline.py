"""Pipeline wiring: data folder -> store -> features -> models -> outputs.

Each step is one function the CLI and the API call; nothing here does the work
itself, it only decides which folders to read and write and hands the settings
to the packages as explicit arguments. Every step runs on one
:class:`service.engine.Engine` (local or Dask); the engine, not the step, knows
where the work happens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from features.build import FeatureBuilder, features_to_files
from features.demo.borough import generate_demo
from features.months import label, usable_cutoffs
from features.sources.ingest import data_hashes, ingest
from features.sources.loaders.context import IngestOptions
from features.sources.store import REPORT_NAME, Store
from features.units import build_units
from geo.units import UnitSet
from models.backtest import backtest_records, default_methods
from models.hotspots import write_geotiff
from models.hotspots.analysis import analyse_hotspots
from models.lifecycle import train
from reports.layers import write_gpkg
from reports.model_card import card_documents
from service.engine import Engine
from service.settings import Settings

Progress = Callable[[str], None]


def data_dir_for(settings: Settings, progress: Progress | None = None) -> Path:
    """The configured data folder, or the demo borough (generated on first use)."""
    if settings.data_dir is not None:
        return Path(settings.data_dir)
    target = settings.demo_dir
    if progress:
        progress(f"demo borough (seed {settings.demo_seed}) -> {target}")
    return Path(generate_demo(target, seed=settings.demo_seed))


def ingest_options(settings: Settings) -> IngestOptions:
    return IngestOptions(**settings.ingest.model_dump())


def ingest_step(settings: Settings, store_dir: Path | None = None, progress: Progress | None = None) -> tuple[dict, Path]:
    data = data_dir_for(settings, progress)
    store = Path(store_dir) if store_dir is not None else settings.store_dir
    with Engine.from_settings(settings) as engine:
        report = ingest(data, store, options=ingest_options(settings), progress=progress, map_files=engine.map_files)
    return report, store


def store_for(settings: Settings, store_dir: Path | None = None, progress: Progress | None = None) -> Store:
    """Open the store, ingesting the configured data first if there is none yet."""
    store = Path(store_dir) if store_dir is not None else settings.store_dir
    if not (store / REPORT_NAME).is_file():
        ingest_step(settings, store_dir=store, progress=progress)
    return Store(store)


def units_for(settings: Settings, store, units: str) -> UnitSet:
    return build_units(store, units, knn=settings.units.knn, distance_band_m=settings.units.distance_band_m)


def builder_on(engine: Engine, settings: Settings, units: str, store_dir: Path | None = None,
               progress: Progress | None = None) -> tuple[Store, FeatureBuilder]:
    """(store, FeatureBuilder) for a unit set, its event sums made on ``engine``."""
    store = store_for(settings, store_dir, progress)
    unit_set = units_for(settings, store, units)
    if progress:
        progress(f"summing events per unit and month on {engine!r}")
    return store, engine.feature_builder(store, unit_set, target_groups=settings.model.target_groups,
                                         allow_police_generated=settings.model.allow_police_generated)


def feature_builder(settings: Settings, units: str, store_dir: Path | None = None, progress: Progress | None = None):
    """(store, FeatureBuilder) for a unit set, on the configured engine."""
    with Engine.from_settings(settings) as engine:
        return builder_on(engine, settings, units, store_dir, progress)


def features_step(settings: Settings, units: str, cutoff: str, store_dir: Path | None = None,
                  out_dir: Path | None = None, progress: Progress | None = None) -> dict:
    _, builder = feature_builder(settings, units, store_dir, progress)
    return features_to_files(builder, cutoff, Path(out_dir) if out_dir is not None else settings.out_dir / "features")


def latest_cutoff(fb, window_months: int = 12) -> str:
    """The latest cutoff whose previous ``window_months`` all have data.

    A store can end with an isolated extract (one month years after the main series);
    a cutoff just after it would see one month of history, so it is skipped.
    """
    usable = usable_cutoffs(fb.months, window_months)
    if not usable:
        raise ValueError(f"no run of {window_months} consecutive months with events in the store")
    return label(usable[-1])


def target_events(store, settings: Settings):
    events = store.table("events")
    return events[events["group"].isin(settings.model.target_groups)]


def hotspots_step(settings: Settings, units: str, cutoff: str | None = None, store_dir: Path | None = None,
                  out_dir: Path | None = None, progress: Progress | None = None):
    """Run the hotspot analysis and write its layers (GeoParquet, GeoPackage, GeoTIFF, JSON)."""
    store, fb = feature_builder(settings, units, store_dir, progress)
    cutoff = cutoff or latest_cutoff(fb)
    if progress:
        progress(f"hotspots on {units} as of {cutoff} ({settings.model.permutations} permutations)")
    result = analyse_hotspots(fb, cutoff, events=target_events(store, settings),
                              permutations=settings.model.permutations, seed=settings.model.seed,
                              fdr_alpha=settings.model.fdr_alpha)
    out = Path(out_dir) if out_dir is not None else settings.out_dir / "hotspots" / f"{units}_{cutoff}"
    out.mkdir(parents=True, exist_ok=True)
    result.table.to_parquet(out / "hotspots.parquet")
    layers = {"hotspots": result.table}
    if len(result.areas):
        areas = result.areas.copy()
        areas["unit_ids"] = areas["unit_ids"].map(lambda v: "; ".join(map(str, v)) if not isinstance(v, str) else v)
        layers["areas"] = areas
    write_gpkg(layers, out / "hotspots.gpkg")
    paths = {"table": out / "hotspots.parquet", "gpkg": out / "hotspots.gpkg"}
    if result.kde is not None:
        write_geotiff(result.kde[0], result.kde[1], out / "kde.tif")
        paths["kde"] = out / "kde.tif"
    (out / "hotspots.json").write_text(json.dumps(result.meta, indent=2))
    return result, paths


def backtest_origins(fb, horizon: int, history_months: int, count: int = 18) -> list[str]:
    """The last ``count`` origins with a full history window before and the horizon after in the data."""
    ok = [label(m) for m in usable_cutoffs(fb.months, history_months, horizon)]
    if not ok:
        raise ValueError(f"no origin has {history_months} months of history and {horizon} month(s) after it")
    return ok[-count:]


def backtest_step(settings: Settings, units: str, horizon: int, origins: list[str] | None = None,
                  methods: list[str] | None = None, store_dir: Path | None = None, progress: Progress | None = None):
    """Rolling-origin backtest of the baselines and models; returns (table, records, origins)."""
    every = default_methods(seed=settings.model.seed)
    unknown = sorted(set(methods or []) - set(every))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {sorted(every)}")
    chosen = {k: v for k, v in every.items() if not methods or k in methods}
    with Engine.from_settings(settings) as engine:
        _, fb = builder_on(engine, settings, units, store_dir, progress)
        origins = origins or backtest_origins(fb, horizon, settings.model.history_months)
        if progress:
            progress(f"backtest on {units}: {len(chosen)} methods x {len(origins)} origins ({origins[0]}..{origins[-1]})")
        table = engine.backtest(fb, chosen, origins=origins, horizon=horizon,
                                history_months=settings.model.history_months)
    records = [dict(r, horizon=horizon) for r in backtest_records(table, units)]
    return table, records, origins


def train_step(settings: Settings, units: str, cutoff: str | None = None, method: str | None = None,
               store_dir: Path | None = None, progress: Progress | None = None) -> tuple[str, Path]:
    """Fit on data before the cutoff, backtest on the origins before it, save a versioned model + card."""
    models_dir = settings.out_dir / "models"
    with Engine.from_settings(settings) as engine:
        store, fb = builder_on(engine, settings, units, store_dir, progress)
        version = train_on(engine, settings, store, fb, cutoff, method, progress)
    return version, models_dir / version


def train_on(engine: Engine, settings: Settings, store, fb, cutoff: str | None = None, method: str | None = None,
             progress: Progress | None = None) -> str:
    """Train and save one version on ``engine``; the card is written with it."""
    cutoff = cutoff or latest_cutoff(fb, settings.model.history_months)
    horizon = settings.model.horizon_months
    try:
        origins = [o for o in backtest_origins(fb, horizon, settings.model.history_months, count=24) if o < cutoff][-12:]
    except ValueError:
        origins = []
    if progress:
        progress(f"training {method or 'the default model'} on {fb.units.edition} before {cutoff}")
    return train(fb, cutoff, settings.out_dir / "models", method=method, horizon=horizon, seed=settings.model.seed,
                 backtest_origins=origins or None, data_hashes=data_hashes(store.report()),
                 estimator_for=engine.estimator, documents=card_documents)
