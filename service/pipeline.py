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
    if settings.engine == "dask":
        from service.engine import Engine

        with Engine.from_settings(settings) as engine:
            report = ingest(data, store, settings=settings.ingest, progress=progress, map_files=engine.map_files)
    else:
        report = ingest(data, store, settings=settings.ingest, progress=progress)
    return report, store


def store_for(settings: Settings, store_dir: Path | None = None, progress: Progress | None = None):
    """Open the store, ingesting the configured data first if there is none yet."""
    from features.store import REPORT_NAME, Store

    store = Path(store_dir) if store_dir is not None else settings.store_dir
    if not (store / REPORT_NAME).is_file():
        ingest_step(settings, store_dir=store, progress=progress)
    return Store(store)


def feature_builder(settings: Settings, units: str, store_dir: Path | None = None, progress: Progress | None = None):
    """(store, FeatureBuilder) for a unit set; on the Dask engine the event sums are made on the cluster."""
    from features.build import FeatureBuilder
    from geo.units import build_units

    store = store_for(settings, store_dir, progress)
    unit_set = build_units(store, units, settings)
    if settings.engine == "dask":
        from service.engine import Engine

        if progress:
            progress(f"engine dask ({settings.dask_scheduler or 'local cluster'}): summing events per unit and month")
        with Engine.from_settings(settings) as engine:
            return store, engine.feature_builder(store, unit_set, settings)
    return store, FeatureBuilder(store, unit_set, settings)


def features_step(settings: Settings, units: str, cutoff: str, store_dir: Path | None = None,
                  out_dir: Path | None = None, progress: Progress | None = None) -> dict:
    from features.build import features_to_files

    _, builder = feature_builder(settings, units, store_dir, progress)
    return features_to_files(builder, cutoff, Path(out_dir) if out_dir is not None else settings.out_dir / "features")


def job_runners(settings: Settings) -> dict:
    """What the API's analyst-only POST /jobs/{kind} runs: the same steps as the CLI."""
    def ingest_job(params: dict) -> dict:
        report, store = ingest_step(settings)
        return {"store": str(store), "totals": report["totals"], "reconciled": report["reconciled"]}

    def train_job(params: dict) -> dict:
        version, folder = train_step(settings, params.get("units") or settings.units.default,
                                     params.get("cutoff"), params.get("method"))
        return {"model_version": version, "folder": str(folder)}

    def rank_job(params: dict) -> dict:
        from service.run import make_run

        run_dir = make_run(settings, units=params.get("units"), cutoff=params.get("cutoff"),
                           model_version=params.get("model"))
        return {"run_id": run_dir.name}

    return {"ingest": ingest_job, "train": train_job, "rank": rank_job}


def latest_cutoff(fb, window_months: int = 12) -> str:
    """The latest cutoff whose previous ``window_months`` all have data.

    A store can end with an isolated extract (one month years after the main series);
    a cutoff just after it would see one month of history, so it is skipped.
    """
    import pandas as pd

    present = set(fb.months)
    for last in sorted(present, reverse=True):
        window = [last - pd.DateOffset(months=k) for k in range(window_months)]
        if all(m in present for m in window):
            return f"{last + pd.DateOffset(months=1):%Y-%m}"
    raise ValueError(f"no run of {window_months} consecutive months with events in the store")


def target_events(store, settings: Settings):
    events = store.table("events")
    return events[events["group"].isin(settings.model.target_groups)]


def hotspots_step(settings: Settings, units: str, cutoff: str | None = None, store_dir: Path | None = None,
                  out_dir: Path | None = None, progress: Progress | None = None):
    """Run the hotspot analysis and write its layers (GeoParquet, GeoPackage, GeoTIFF, JSON)."""
    import json

    from geo.layers import write_gpkg
    from models.hotspots import write_geotiff
    from service.hotspots import analyse_hotspots

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
    import pandas as pd

    present = set(fb.months)
    ok = []
    for m in sorted(present):
        before = all(m - pd.DateOffset(months=k) in present for k in range(1, history_months + 1))
        after = all(m + pd.DateOffset(months=k) in present for k in range(horizon))
        if before and after:
            ok.append(f"{m:%Y-%m}")
    if not ok:
        raise ValueError(f"no origin has {history_months} months of history and {horizon} month(s) after it")
    return ok[-count:]




def backtest_step(settings: Settings, units: str, horizon: int, origins: list[str] | None = None,
                  methods: list[str] | None = None, store_dir: Path | None = None, progress: Progress | None = None):
    """Rolling-origin backtest of the baselines and models; returns (table, records, origins)."""
    from models.backtest import backtest, backtest_records, default_methods

    _, fb = feature_builder(settings, units, store_dir, progress)
    origins = origins or backtest_origins(fb, horizon, settings.model.history_months)
    every = default_methods(seed=settings.model.seed)
    unknown = sorted(set(methods or []) - set(every))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {sorted(every)}")
    chosen = {k: v for k, v in every.items() if not methods or k in methods}
    if progress:
        progress(f"backtest on {units}: {len(chosen)} methods x {len(origins)} origins ({origins[0]}..{origins[-1]})")
    if settings.engine == "dask":
        from service.engine import Engine

        with Engine.from_settings(settings) as engine:
            table = engine.backtest(fb, chosen, origins=origins, horizon=horizon,
                                    history_months=settings.model.history_months)
    else:
        table = backtest(fb, chosen, origins=origins, horizon=horizon, history_months=settings.model.history_months)
    records = [dict(r, horizon=horizon) for r in backtest_records(table, units)]
    return table, records, origins


def train_step(settings: Settings, units: str, cutoff: str | None = None, method: str | None = None,
               store_dir: Path | None = None, progress: Progress | None = None) -> tuple[str, Path]:
    """Fit on data before the cutoff, backtest on the origins before it, save a versioned model + card."""
    from features.ingest import data_hashes
    from models.lifecycle import train

    store, fb = feature_builder(settings, units, store_dir, progress)
    cutoff = cutoff or latest_cutoff(fb, settings.model.history_months)
    horizon = settings.model.horizon_months
    try:
        origins = [o for o in backtest_origins(fb, horizon, settings.model.history_months, count=24) if o < cutoff][-12:]
    except ValueError:
        origins = []
    hashes = data_hashes(store.report())
    models_dir = settings.out_dir / "models"
    if progress:
        progress(f"training {method or 'the default model'} on {units} before {cutoff}")
    kwargs = dict(method=method, horizon=horizon, seed=settings.model.seed, backtest_origins=origins or None,
                  data_hashes=hashes)
    if settings.engine == "dask":
        from service.engine import Engine

        with Engine.from_settings(settings) as engine:
            version = train(fb, cutoff, models_dir, estimator_for=engine.estimator, **kwargs)
    else:
        version = train(fb, cutoff, models_dir, **kwargs)
    return version, models_dir / version
