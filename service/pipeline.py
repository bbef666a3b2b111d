"""Pipeline wiring: data folder -> store -> features -> models -> outputs.

Each step is one function the CLI and the API call; nothing here does the work
itself, it only decides which folders to read and write and hands the settings
to the packages as explicit arguments. Every step runs on one
:class:`service.engine.Engine` (local or Dask); the engine, not the step, knows
where the work happens.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from features.areas import borough_identity, choose_source, latest_wards
from features.build import FeatureBuilder, features_to_files
from features.months import Month, label, month
from features.units import build_units
from geo.units import UnitSet
from models.backtest import (
    ON_REQUEST,
    backtest_ceiling,
    backtest_report,
    default_methods,
    min_history,
)
from models.baselines import KernelBaseline
from models.hotspots import write_geotiff
from models.hotspots.analysis import analyse_hotspots
from models.interventions import (
    DEFAULT_BUFFER_M,
    DEFAULT_PLACEBOS,
    DEFAULT_PRE_MONTHS,
    EvaluationRefused,
    evaluate_intervention,
    plan_intervention,
    staggered_areas,
)
from models.ledger import Ledger, LedgerError, record, running_record
from models.lifecycle import REFERENCE, train
from models.prediction_cache import PredictionCache
from models.ranking import DEFAULT_METHOD
from reports.evaluation import (
    RUN_AREA,
    AreaSpec,
    area_wards,
    evaluation_id,
    parse_area,
    write_evaluation,
    write_plan,
)
from reports.layers import write_gpkg
from reports.model_card import card_documents
from service.engine import Engine
from service.publish import run_for_areas
from service.settings import Settings
from service.stores import Progress, store_for
from sources.ingest import data_hashes
from sources.store import Store

HOTSPOT_WINDOW = 12
"""Months of events the hot-spot statistics count (see ``models.hotspots.analysis``)."""


def units_for(settings: Settings, store, units: str) -> UnitSet:
    return build_units(store, units, knn=settings.units.knn, distance_band_m=settings.units.distance_band_m,
                       max_units=settings.units.max_units)


def builder_on(engine: Engine, settings: Settings, units: str, store_dir: Path | None = None,
               progress: Progress | None = None, source: str = "auto", cutoff: str | None = None,
               ) -> tuple[Store, FeatureBuilder]:
    """(store, FeatureBuilder) for a unit set, its event sums made on ``engine``.

    ``source`` (points, monthly area tables or auto, see :func:`features.areas.choose_source`)
    is decided here, with the requested ``cutoff`` when there is one.
    """
    store = store_for(settings, store_dir, progress)
    unit_set = units_for(settings, store, units)
    source = choose_source(store, units, source, settings.model.target_groups, settings.model.history_months,
                           month(cutoff) if cutoff else None)
    if progress:
        progress(f"summing events per unit and month on {engine!r}")
    calls = engine.last_call()[0]
    fb = engine.feature_builder(store, unit_set, target_groups=settings.model.target_groups,
                                allow_police_generated=settings.model.allow_police_generated, source=source)
    done, how = engine.last_call()
    if progress and done > calls:
        progress(f"events summed on {how}")
    return store, fb


def feature_builder(settings: Settings, units: str, store_dir: Path | None = None, progress: Progress | None = None,
                    cutoff: str | None = None):
    """(store, FeatureBuilder) for a unit set, on the configured engine."""
    with Engine.from_settings(settings) as engine:
        return builder_on(engine, settings, units, store_dir, progress, cutoff=cutoff)


def features_step(settings: Settings, units: str, cutoff: str, store_dir: Path | None = None,
                  out_dir: Path | None = None, progress: Progress | None = None) -> dict:
    _, builder = feature_builder(settings, units, store_dir, progress, cutoff=cutoff)
    cutoff = checked_cutoff(builder, cutoff, settings.model.history_months,
                            min_history=shortest_history(settings))
    return features_to_files(builder, cutoff, Path(out_dir) if out_dir is not None else settings.out_dir / "features")


def shortest_history(settings: Settings, horizon: int | None = None) -> int:
    """The fewest complete months a cutoff may stand on when the data begin inside its window.

    What fitting needs (:func:`models.backtest.min_history`) for ``horizon``, or for the
    longest horizon a run trains (next month and the planning horizon) when None.
    """
    if horizon is None:
        horizon = max(int(settings.model.horizon_months), int(settings.model.planning_horizon_months or 0))
    return min(min_history(int(horizon)), int(settings.model.history_months))


def latest_cutoff(fb, window_months: int = 12, horizon: int = 0, min_history: int | None = None) -> Month:
    """The latest cutoff whose previous ``window_months`` (and ``horizon`` after it) are complete.

    A store can end with an isolated extract (one month years after the main series),
    or with a thin month; a cutoff after either would see a broken history, so it is skipped.
    With ``min_history``, data shorter than the window are used from their first complete
    month, when there are at least ``min_history`` of them.
    """
    usable = fb.usable_cutoffs(window_months, horizon, min_history)
    if not usable:
        floor = window_months if min_history is None else min(min_history, window_months)
        raise ValueError(f"no cutoff of {fb.units.edition} has {floor} complete months before it "
                         f"(data {fb.data_span()})")
    return usable[-1]


def checked_cutoff(fb, cutoff: Month | str | None, history: int, horizon: int = 0,
                   min_history: int | None = None) -> Month:
    """``cutoff`` (a Month, or ``"YYYY-MM"`` parsed here) as a Month if its history (and horizon) are
    complete, else a ValueError naming the bad months; the latest usable cutoff when ``cutoff`` is None."""
    if cutoff is None:
        return latest_cutoff(fb, history, horizon, min_history)
    return fb.check_cutoff(cutoff, history, horizon, min_history=min_history)


def target_events(store, settings: Settings):
    events = store.table("events")
    return events[events["group"].isin(settings.model.target_groups)]


def hotspot_options(settings: Settings, **overrides) -> dict:
    """Keyword arguments of :func:`models.hotspots.analysis.analyse_hotspots` from the settings.

    ``overrides`` (e.g. CLI options) replace settings where they are not None.
    """
    hs = settings.hotspots
    options = {"permutations": settings.model.permutations, "seed": settings.model.seed,
               "fdr_alpha": settings.model.fdr_alpha, "neighbourhood": hs.neighbourhood, "band_m": hs.band_m,
               "min_neighbours": hs.min_neighbours, "inference": hs.inference}
    options.update({k: v for k, v in overrides.items() if v is not None})
    return options


def hotspots_step(settings: Settings, units: str, cutoff: str | None = None, store_dir: Path | None = None,
                  out_dir: Path | None = None, progress: Progress | None = None, **overrides):
    """Run the hotspot analysis and write its layers (GeoParquet, GeoPackage, GeoTIFF, JSON).

    ``overrides``: ``neighbourhood``, ``band_m``, ``min_neighbours``, ``inference`` in place of
    the settings' (see :func:`hotspot_options`).
    """
    store, fb = feature_builder(settings, units, store_dir, progress, cutoff=cutoff)
    cutoff = checked_cutoff(fb, cutoff, HOTSPOT_WINDOW, min_history=shortest_history(settings))
    options = hotspot_options(settings, **overrides)
    if progress:
        how = (f"{options['permutations']} permutations" if options["inference"] == "permutation"
               else "normal-theory p-values")
        progress(f"hotspots on {units} as of {cutoff:%Y-%m} ({options['neighbourhood']} neighbourhood, {how})")
    result = analyse_hotspots(fb, cutoff, events=target_events(store, settings) if fb.source == "points" else None,
                              **options)
    out = Path(out_dir) if out_dir is not None else settings.out_dir / "hotspots" / f"{units}_{cutoff:%Y-%m}"
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
    paths["meta"] = out / "hotspots.json"
    return result, paths


def origin_plan(fb, horizon: int, history_months: int, count: int = 18) -> tuple[list[Month], list[str]]:
    """(origins, notes): the last ``count`` usable origins (:meth:`features.build.FeatureBuilder.backtest_origins`,
    history shortened down to :func:`models.backtest.min_history` when the data are short) and what
    shortened or removed them."""
    plan, notes = fb.backtest_origins(history_months, horizon, min_history(horizon), count)
    return list(plan.origins), notes


def backtest_origins(fb, horizon: int, history_months: int, count: int = 18) -> list[Month]:
    """The last ``count`` origins with complete history before them and a complete horizon after (:func:`origin_plan`)."""
    return origin_plan(fb, horizon, history_months, count)[0]


def split_origins(fb, origins: list[Month], horizon: int, history_months: int) -> tuple[list[Month], dict[str, str]]:
    """The usable ``origins`` and, for each skipped one (by its "YYYY-MM"), why (the months that are missing or thin)."""
    usable, skipped = [], {}
    for o in origins:
        try:
            usable.append(fb.check_cutoff(o, history_months, horizon, what="origin", min_history=min_history(horizon)))
        except ValueError as exc:
            skipped[f"{o:%Y-%m}"] = str(exc).split(": ", 1)[1].split("; the latest", 1)[0].split("; no origin", 1)[0]
    return usable, skipped


def prediction_cache(settings: Settings, store: Store) -> PredictionCache | None:
    """The store's on-disk prediction cache (``<store>/cache/predictions``), None when
    ``model.prediction_cache_mb`` is 0."""
    mb = settings.model.prediction_cache_mb
    return PredictionCache.for_store(store, max_mb=mb) if mb > 0 else None


def backtest_step(settings: Settings, units: str, horizon: int, origins: list[Month] | None = None,
                  methods: list[str] | None = None, store_dir: Path | None = None,
                  progress: Progress | None = None, fresh: bool = False) -> dict:
    """Rolling-origin backtest of the baselines and models with paired differences and the ceiling.

    Returns :func:`models.backtest.backtest_report` (the plain 12-month count is
    always included: every method is compared with it) with ``skipped``: the
    requested origins that could not be scored, and why; and ``origin_notes``: for
    default origins, what shortened or removed them (:func:`origin_plan`). The boosting
    (:data:`models.backtest.ON_REQUEST`) runs only when asked for by name. Per-origin
    predictions are read from the store's prediction cache (:func:`prediction_cache`) when an
    earlier backtest made them on the same store, code and method; ``fresh`` empties it first.
    """
    every = default_methods(seed=settings.model.seed)
    unknown = sorted(set(methods or []) - set(every))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {sorted(every)}")
    chosen = {k: v for k, v in every.items()
              if (k in methods if methods else k not in ON_REQUEST) or k == REFERENCE}
    with Engine.from_settings(settings) as engine:
        store, fb = builder_on(engine, settings, units, store_dir, progress)
        predictions = prediction_cache(settings, store)
        if predictions is not None and fresh:
            predictions.clear()
        if getattr(fb, "source", "points") != "points" and not methods:
            kernels = [k for k, m in chosen.items() if isinstance(m, KernelBaseline)]
            chosen = {k: m for k, m in chosen.items() if k not in kernels}
            if progress:
                progress(f"{', '.join(kernels)} left out: the {units} events are monthly counts by area, not points")
        skipped: dict[str, str] = {}
        notes: list[str] = []
        if origins:
            origins, skipped = split_origins(fb, origins, horizon, settings.model.history_months)
            if not origins:
                raise ValueError(f"none of the origins can be scored: {skipped}")
        else:
            origins, notes = origin_plan(fb, horizon, settings.model.history_months)  # said with the report
        if progress:
            progress(f"backtest on {units}: {len(chosen)} methods x {len(origins)} origins ({origins[0]:%Y-%m}..{origins[-1]:%Y-%m})")
        per = engine.backtest(fb, chosen, origins=origins, horizon=horizon,
                              history_months=settings.model.history_months, per_origin=True, predictions=predictions)
        if progress and predictions is not None:
            progress(f"predictions: {predictions.hits} read from the cache, {predictions.misses} computed"
                     + (f", {predictions.rejected} damaged cache entries remade" if predictions.rejected else ""))
        if progress:
            progress("expected PEI* of a long-run-rate oracle (simulation from the long-run rates)")
        ceiling = backtest_ceiling(fb, origins, horizon, seed=settings.model.seed)
    report = backtest_report(per, units, default=DEFAULT_METHOD, reference=REFERENCE, ceiling=ceiling,
                             seed=settings.model.seed)
    return {**report, "skipped": skipped, "origin_notes": notes}


def train_step(settings: Settings, units: str, cutoff: str | None = None, method: str | None = None,
               store_dir: Path | None = None, progress: Progress | None = None,
               horizon: int | None = None) -> tuple[str, Path]:
    """Fit on data before the cutoff, backtest on the origins before it, save a versioned model + card."""
    models_dir = settings.out_dir / "models"
    with Engine.from_settings(settings) as engine:
        store, fb = builder_on(engine, settings, units, store_dir, progress, cutoff=cutoff)
        version = train_on(engine, settings, store, fb, cutoff, method, progress, horizon=horizon)
    return version, models_dir / version


def ledger_dir(settings: Settings, store) -> Path:
    """The forecast ledger of one data folder: beside the runs, named like its store (which is remade on ingest)."""
    return settings.out_dir / "ledger" / Path(store.root).name


def train_on(engine: Engine, settings: Settings, store, fb, cutoff: Month | str | None = None, method: str | None = None,
             progress: Progress | None = None, horizon: int | None = None) -> str:
    """Train and save one version on ``engine`` for ``horizon`` months (default the settings'); the card is written with it."""
    horizon = int(horizon or settings.model.horizon_months)
    cutoff = checked_cutoff(fb, cutoff, settings.model.history_months, min_history=shortest_history(settings, horizon))
    try:
        origins = [o for o in backtest_origins(fb, horizon, settings.model.history_months, count=24) if o < cutoff][-12:]
    except ValueError:
        origins = []
    if progress:
        progress(f"training {method or 'the default model'} on {fb.units.edition} before {cutoff:%Y-%m}, "
                 f"horizon {horizon} month(s)")
    report = store.report()

    def on_engine(estimator):
        chosen = engine.estimator(estimator)  # a local fit's threads are decided now, from the load now
        params = chosen.get_params() if hasattr(chosen, "get_params") else {}
        threads = params.get("n_jobs", params.get("estimator__n_jobs"))
        if progress and engine.kind == "local" and threads:
            progress(f"fitting on at most {threads} thread(s) of {engine.cores} usable core(s) "
                     "(one per 10M cells of the training matrix)")
        return chosen

    try:
        issued = running_record(record(Ledger(ledger_dir(settings, store))))
    except LedgerError as exc:
        issued = []
        if progress:
            progress(f"warning: the model card leaves out the forecast ledger: {exc}")
    predictions = prediction_cache(settings, store)
    version = train(fb, cutoff, settings.out_dir / "models", method=method, horizon=horizon, seed=settings.model.seed,
                    backtest_origins=origins or None, data_hashes=data_hashes(report), ledger=issued,
                    data_dir=report.get("data_dir_resolved"), estimator_for=on_engine, documents=card_documents,
                    predictions=predictions)
    if progress and predictions is not None:
        progress(f"predictions: {predictions.hits} read from the cache, {predictions.misses} computed")
    return version


def area_spec(settings: Settings, area: str, run: str | None = None) -> tuple[AreaSpec, str | None]:
    """What ``--area`` names (:func:`reports.evaluation.parse_area`), a run's area read from the
    run ``run`` names, else the published one (:func:`service.publish.run_for_areas`).

    Returns the area and, for a run's area, which run it came from and why:
    ``"area A1 of run <id> (published)"`` (None for a polygon or unit ids).
    """
    chosen, how = run_for_areas(settings.runs_dir, run)
    named = RUN_AREA.match((area or "").strip())
    if named and named.group("run"):
        how = "named in --area"
    spec = parse_area(area, settings.runs_dir, chosen)
    if spec.kind != "run_area":
        return spec, None
    run_id, area_id = spec.source.rsplit("/", 1)
    return spec, f"area {area_id} of run {run_id} ({how})"


def outcome(fb, groups: str | None, weight: str) -> tuple[list[str], str]:
    """The taxonomy groups an evaluation counts (``groups`` comma-separated, default the target) and its name.

    An unknown group or weight is an error naming the known ones.
    """
    chosen = [g.strip() for g in groups.split(",") if g.strip()] if groups else list(fb.target_groups)
    unknown = [g for g in chosen if g not in fb.groups]
    if unknown or not chosen:
        raise ValueError(f"--groups {groups!r}: unknown offence group(s) {unknown}; known: {fb.groups}")
    if weight not in ("count", "harm"):
        raise ValueError(f"--weight must be 'count' or 'harm', got {weight!r}")
    name = "serious violence" if set(chosen) == set(fb.target_groups) else " and ".join(chosen)
    return chosen, ("harm-weighted " + name) if weight == "harm" else name


def evaluate_step(settings: Settings, area: str, start: str, end: str | None = None, *, run: str | None = None,
                  units: str | None = None, buffer_m: float = DEFAULT_BUFFER_M, pre_months: int = DEFAULT_PRE_MONTHS,
                  placebos: int = DEFAULT_PLACEBOS, evaluation: str | None = None, store_dir: Path | None = None,
                  out_dir: Path | None = None, progress: Progress | None = None, groups: str | None = None,
                  weight: str = "count", also: list[str] | None = None):
    """Evaluate an intervention area from ``start``; write summary (HTML, PDF), series and estimates.

    ``area`` is a polygon file, a run's area (``A1`` in the published run or ``run``, a
    run id or ``"latest"``, or ``<run_id>/A1``) or unit ids (see :func:`area_spec`); which
    run an area came from is said in a progress line and in the evaluation's ``area_run``.
    ``groups`` (comma-separated taxonomy groups, default the target groups) and ``weight``
    ("count" or "harm") choose the outcome. ``also``: other areas that started at other months,
    ``AREA@YYYY-MM`` each; with them the areas together are evaluated as a staggered
    adoption (``estimates["staggered"]``, :func:`models.interventions.staggered_areas`).
    Returns the evaluation and the written files (:class:`reports.evaluation.Written`).
    """

    start, end = month(start), month(end) if end is not None else None  # parsed once, before any work
    spec, area_run = area_spec(settings, area, run)
    if progress and area_run:
        progress(area_run)
    store, fb = feature_builder(settings, spec.units_edition(units, settings.units.default), store_dir, progress,
                                cutoff=start)
    if progress:
        progress(f"evaluating {spec.label} from {start:%Y-%m} on {fb.units.edition} ({placebos} placebos)")
    area_ids = spec.unit_ids_in(fb.units)
    spec.wards = spec.wards or area_wards(fb.units, area_ids, latest_wards(store))
    chosen, offences = outcome(fb, groups, weight)
    ev = evaluate_intervention(fb.panel(chosen, weight), fb.units, area_ids, start, end=end,
                               complete_months=fb.complete_months, pre_months=pre_months, buffer_m=buffer_m,
                               n_placebos=placebos, seed=settings.model.seed, outcome=offences)
    ev.warnings += spec.warnings(start)
    if also:
        areas = [(area_ids, start)]
        for text in also:
            name, sep, when = text.rpartition("@")
            if not sep or not name:
                raise ValueError(f"--also {text!r}: give AREA@YYYY-MM (an area and the month it started)")
            other, _ = area_spec(settings, name, run)
            areas.append((other.unit_ids_in(fb.units), month(when)))
        try:
            ev.estimates["staggered"] = staggered_areas(
                fb.panel(chosen, weight), fb.units, areas, complete_months=fb.complete_months,
                pre_months=pre_months, buffer_m=buffer_m, seed=settings.model.seed)
        except EvaluationRefused as err:
            ev.warnings.append(f"the areas were not judged together: {err}")
    created = datetime.now(UTC)
    meta = {"evaluation_id": evaluation or evaluation_id(spec, start, created),
            "created": created.isoformat(timespec="seconds"), "area_name": borough_identity(store)[1],
            "offences": f"{offences} (" + ", ".join(chosen) + ")", "seed": settings.model.seed,
            "data_period": f"{fb.months[0]:%Y-%m}/{fb.months[-1]:%Y-%m}", "store": str(store.root),
            **({"area_run": area_run} if area_run else {})}
    folder = Path(out_dir) if out_dir is not None else settings.out_dir / "evaluations" / meta["evaluation_id"]
    return ev, write_evaluation(ev, folder, spec, fb.units, meta=meta)


def plan_step(settings: Settings, area: str, months: int, *, before: str | None = None, run: str | None = None,
              units: str | None = None, buffer_m: float = DEFAULT_BUFFER_M, pre_months: int = DEFAULT_PRE_MONTHS,
              store_dir: Path | None = None, out_dir: Path | None = None, progress: Progress | None = None,
              groups: str | None = None, weight: str = "count"):
    """Before an intervention: the detectable effect and power for ``months`` months in ``area``; write the plan.

    The pre-period is the last ``pre_months`` complete months of the data (before ``before``
    if given). Returns the plan and the written files (:class:`reports.evaluation.Written`).
    """

    before = label(before) if before is not None else None
    spec, area_run = area_spec(settings, area, run)
    if progress and area_run:
        progress(area_run)
    store, fb = feature_builder(settings, spec.units_edition(units, settings.units.default), store_dir, progress,
                                cutoff=before)
    area_ids = spec.unit_ids_in(fb.units)
    spec.wards = spec.wards or area_wards(fb.units, area_ids, latest_wards(store))
    if progress:
        progress(f"planning {spec.label} for {months} months on {fb.units.edition}")
    chosen, offences = outcome(fb, groups, weight)
    plan = plan_intervention(fb.panel(chosen, weight), fb.units, area_ids, months, complete_months=fb.complete_months,
                             pre_months=pre_months, buffer_m=buffer_m, before=before)
    created = datetime.now(UTC)
    meta = {"evaluation_id": "plan-" + evaluation_id(spec, plan["months_before"][-1], created),
            "created": created.isoformat(timespec="seconds"), "area_name": borough_identity(store)[1],
            "offences": f"{offences} (" + ", ".join(chosen) + ")", "store": str(store.root),
            **({"area_run": area_run} if area_run else {})}
    folder = Path(out_dir) if out_dir is not None else settings.out_dir / "evaluations" / meta["evaluation_id"]
    return plan, write_plan(plan, folder, spec, meta=meta)
