"""The main job: one run folder with ranking, hot spots, areas, lists, profiles and outputs.

``make_run`` is the list of the run's steps, each a function below with explicit inputs and
outputs: it reads the data folder's store (ingesting it when the folder changed), builds
units and features and checks the cutoff against the months with complete data (before
anything is written) (:func:`choose_analysis`), loads or trains the models
(:func:`saved_model`, :func:`fit_models`), finds hot spots, ranks places with reasons
(:func:`rank_places`), makes the Clear Hold Build areas, the youth-work list, the fairness
profile and the needs-assessment figures (:func:`make_products`), then writes the run folder
and its map, briefing and layers (:func:`write_run_folder`; every file is named in
:mod:`reports.run_catalogue`) and records its forecasts in the ledger.

Two horizons, for two decisions: the main forecast (``model.horizon_months``, next
month) ranks places for youth-work deployment (``ranking.parquet``, the youth list);
the planning forecast (``model.planning_horizon_months``, next quarter) is made by a
second model trained for that horizon (``ranking_h<N>.parquet``) and the Clear Hold
Build areas are drawn from it. ``run.json["horizons"]`` gives each one's measured
skill against last year's counts and its attainable ceiling (from its model card),
and the briefing shows both.

The freshest data drives the run: when the store's monthly area tables (e.g. the
Met's ward tables) reach a later month than the point events, the run also holds
the *current* forecast on those areas for the month after their latest complete
month (``current_ranking.parquet``, ``run.json["current"]``), and the briefing leads
with it. Every analysis states its data period and how old its newest month is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from features.areas import (
    borough_identity,
    choose_source,
    latest_wards,
    point_month_counts,
    residents_by_group,
)
from features.context import open_schools
from features.figures import knife_figures, needs_assessment_figures
from features.months import Month, month, months_apart, ranges, shift
from geo.crs import WORKING_CRS
from geo.places import place_names
from models.backtest import forecast_matrix
from models.fairness import fairness_profile
from models.hotspots.analysis import analyse_hotspots
from models.ledger import Ledger, forecast_entry, last_sentence, record, running_record, score_due
from models.ranking import clear_hold_build, expected_harm, rank_from_model, youth_list
from models.registry import list_versions, load_model, version_meta
from reports import run_catalogue as rc
from reports.model_card import skill_summary
from reports.outputs import write_outputs
from reports.run_folder import previous_ranking
from service.engine import Engine
from service.pipeline import (
    builder_on,
    checked_cutoff,
    hotspot_options,
    ledger_dir,
    shortest_history,
    target_events,
    train_on,
)
from service.publish import complete_run, is_demo_store, stage_run
from service.settings import Settings
from sources.ingest import data_hashes

Progress = Callable[[str], None]


def hubs_layer(store) -> gpd.GeoDataFrame:
    """Stations (with their latest entries/exits) and open schools as one point layer."""
    parts = []
    if store.has("stations"):
        st = store.table("stations")
        foot = None
        if store.has("station_footfall"):
            ff = store.table("station_footfall")
            latest = ff[ff["year"] == ff.groupby("station_key")["year"].transform("max")]
            foot = latest.groupby("station_key")["entries_exits"].sum()
        parts.append(gpd.GeoDataFrame({"kind": "station", "name": st["name"],
                                       "footfall": st["station_key"].map(foot) if foot is not None else pd.NA},
                                      geometry=st.geometry, crs=st.crs))
    if store.has("schools"):
        sc = open_schools(store.table("schools"))
        parts.append(gpd.GeoDataFrame({"kind": "school", "name": sc["name"], "footfall": pd.NA},
                                      geometry=sc.geometry, crs=sc.crs))
    if not parts:
        return gpd.GeoDataFrame({"kind": [], "name": [], "footfall": []}, geometry=[], crs=WORKING_CRS)
    out = pd.concat(parts, ignore_index=True)
    out["footfall"] = pd.to_numeric(out["footfall"], errors="coerce")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WORKING_CRS)


STALE_MONTHS = 3
"""A forecast whose newest month of data is more than this many months before the run is flagged."""


def data_period(fb, cutoff: Month, today: date) -> dict:
    """The months an analysis at ``cutoff`` uses, and how old the newest one is on ``today``.

    ``start`` is the first complete month, ``end`` the month before the cutoff;
    ``age_months`` counts whole months from ``end`` to the month of ``today``
    (0 = the current month); ``stale`` is true when that is more than
    :data:`STALE_MONTHS`.
    """
    used = [m for m in fb.complete_months if m < cutoff]
    end = shift(cutoff, -1)
    age = months_apart(end, today)
    out = {"start": f"{used[0]:%Y-%m}" if used else f"{end:%Y-%m}", "end": f"{end:%Y-%m}",
           "age_months": int(age), "stale": bool(age > STALE_MONTHS), "source": fb.source,
           "units": fb.units.edition}
    if out["stale"]:
        out["warning"] = (f"the newest month of data ({end:%Y-%m}) is {age} months old on {today:%Y-%m-%d}: "
                          "this describes the past, not the present")
    return out


def data_binding(store) -> dict:
    """Which data folder a store holds and the sha256 of every input file."""
    report = store.report()
    return {"data_dir": report.get("data_dir_resolved") or report.get("data_dir"), "store": str(store.root),
            "ingested": report.get("created"), "inputs": data_hashes(report)}


def checked_model(models_dir: Path, version: str, fb, cutoff, data_dir: str | None):
    """Load a saved model and check it fits this run (units, data folder, features) before any work."""
    model, meta = load_model(models_dir, version)
    if meta.get("units") != fb.units.edition:
        raise ValueError(f"model {version} was trained on {meta.get('units')} units, not {fb.units.edition}")
    trained_on = meta.get("data_dir")
    if trained_on and data_dir and trained_on != data_dir:
        raise ValueError(f"model {version} was trained on the data of {trained_on}, not of {data_dir}; "
                         "train one on this folder (`svrisk train`) or rank without --model")
    X = forecast_matrix(fb, cutoff)
    # what the model would read from this matrix: a model of named columns (a GLM) picks its own
    expected = model.used_columns(X) if hasattr(model, "used_columns") else [str(c) for c in X.columns]
    names = meta.get("features")
    if names is not None and list(names) != expected:
        missing, extra = sorted(set(names) - set(expected)), sorted(set(expected) - set(names))
        raise ValueError(f"model {version} was trained on other features than this data gives: "
                         f"{len(missing)} it needs are missing ({', '.join(missing[:5]) or 'none'}) and "
                         f"{len(extra)} are new ({', '.join(extra[:5]) or 'none'}); retrain with `svrisk train`")
    return model, meta


def latest_model(models_dir: Path, units: str, data_dir: str | None, horizon: int | None = None) -> str:
    """The newest saved version trained on ``units`` of this data folder (for ``horizon`` months, if given)."""
    for version in reversed(list_versions(models_dir)):
        meta = version_meta(models_dir, version)
        if meta.get("units") == units and (not data_dir or meta.get("data_dir") in (None, data_dir)) \
                and (horizon is None or int(meta.get("horizon", 1)) == int(horizon)):
            return version
    which = f"{units} units of {data_dir}" + (f" with horizon {horizon}" if horizon is not None else "")
    raise ValueError(f"{models_dir}: no saved model for {which}; run `svrisk train` first")


HORIZON_USES = {"main": "youth-work deployment", "planning": "Clear Hold Build planning"}


def horizon_entry(role: str, model_version: str, model_meta: dict, ranking_file: str) -> dict:
    """One forecast of the run: its horizon, what it is for, its model and measured skill."""
    return {"role": role, "use": HORIZON_USES[role], "horizon": int(model_meta.get("horizon", 1)),
            "model_version": model_version, "method": model_meta.get("method"), "ranking": ranking_file,
            "skill": skill_summary(model_meta)}


def area_builders(engine: Engine, settings: Settings, store, store_dir, say, skip: str | None = None) -> list:
    """``[(builder, latest usable cutoff)]`` for every unit edition the store's monthly area tables can serve.

    Candidates are the boundary editions whose monthly area counts cover the target
    groups (:func:`features.areas.choose_source`), each summed from the area tables;
    ``skip`` leaves one edition out (the one already built).
    """
    out = []
    history = settings.model.history_months
    for edition in store.editions():
        if edition in ("borough", skip):
            continue
        if choose_source(store, edition, "auto", settings.model.target_groups, history) != "areas":
            continue
        _, fb = builder_on(engine, settings, edition, store_dir, say, source="areas")
        usable = fb.usable_cutoffs(history, 0, shortest_history(settings))
        if usable:
            out.append((fb, usable[-1]))
    return out


FINEST_WINDOW_MONTHS = 12
"""How much older than the freshest area table the finest one may be and still lead the run."""


def lead_choice(default_fb, default_last, areas: list, cutoff: Month | None = None, history: int = 12,
                min_history: int | None = None) -> tuple:
    """The analysis a run leads with when no units were asked for, and why (one sentence).

    The present, at the finest scale the data allow: the configured units (``default_fb``,
    whichever source serves them) lead when their data are current, i.e. their latest
    usable cutoff is within :data:`STALE_MONTHS` of the freshest analysis any source
    allows; otherwise the finest area edition whose latest cutoff is within
    :data:`FINEST_WINDOW_MONTHS` of the freshest leads (most units, then the fresher), with
    the fresher coarser editions beside it. With a ``cutoff``, only analyses that can serve it
    compete.
    """
    candidates = [(default_fb, default_last)] + list(areas)
    if cutoff is not None:
        candidates = [(fb, cutoff) for fb, _ in candidates if cutoff in fb.usable_cutoffs(history, 0, min_history)]
        if not candidates:
            return default_fb, None
    candidates = [(fb, last) for fb, last in candidates if last is not None]
    if not candidates:
        return default_fb, None
    freshest = max(last for _, last in candidates)
    if any(fb is default_fb and months_apart(last, freshest) <= STALE_MONTHS for fb, last in candidates):
        return default_fb, None
    # the finest of the area editions that are not much older than the freshest: a month-old LSOA table
    # serves a tasking meeting better than this month's ward table, a years-old one does not
    recent = [(fb, last) for fb, last in candidates if fb is not default_fb
              and months_apart(last, freshest) <= FINEST_WINDOW_MONTHS]
    if not recent:
        return default_fb, None
    fb, last = max(recent, key=lambda c: (len(c[0].units), c[1]))
    why = (f"{fb.units.edition} from the area tables leads: its data reach {shift(last, -1):%Y-%m}, while the "
           f"{default_fb.units.edition} {default_fb.source} end {shift(default_last, -1):%Y-%m}"
           if default_last is not None else f"{fb.units.edition} from the area tables leads")
    return fb, why


def beside_choice(lead_fb, lead_cutoff: Month, areas: list):
    """The area forecast shown beside the lead: another edition whose tables are at least as current.

    Beside a forecast from the area tables, the freshest other edition whose latest usable
    cutoff is not earlier (the ward forecast beside the LSOA one); beside a forecast from
    points, the freshest area edition that reaches later. The coarser edition wins a tie.
    """
    same_time_ok = lead_fb.source == "areas"
    pick = [(fb, last) for fb, last in areas if fb.units.edition != lead_fb.units.edition
            and (last > lead_cutoff or (same_time_ok and last == lead_cutoff))]
    if not pick:
        return None
    return max(pick, key=lambda p: (p[1], -len(p[0].units)))


@dataclass
class Analysis:
    """What a run forecasts from: the store, the analysis it leads with and its checked cutoff.

    ``areas`` are the monthly area editions that can forecast (``[(builder, latest usable
    cutoff)]``), ``built`` every builder made (their earlier forecasts are scored),
    ``current`` the area forecast shown beside the lead (:func:`beside_choice`), or None.
    """

    store: Any
    fb: Any
    cutoff: Month
    areas: list
    built: list
    binding: dict
    lead_note: str | None
    current: tuple | None

    @property
    def units(self) -> str:
        return self.fb.units.edition


@dataclass
class Forecast:
    """One forecast of a run: its role (``main``, ``planning``, ``current``), analysis, cutoff and model;
    :func:`rank_places` adds its ranking, feature matrix and the run it was compared with."""

    role: str
    fb: Any
    cutoff: Month
    version: str
    meta: dict
    model: Any
    ranking: pd.DataFrame | None = None
    X: pd.DataFrame | None = None
    previous_run: str | None = None

    @property
    def horizon(self) -> int:
        return int(self.meta.get("horizon", 1))

    @property
    def entry(self) -> rc.RunFile:
        return {"main": rc.RANKING, "planning": rc.PLANNING_RANKING, "current": rc.CURRENT_RANKING}[self.role]

    @property
    def file(self) -> str:
        """Its ranking's file in the run folder (:mod:`reports.run_catalogue`)."""
        return self.entry.name(horizon=self.horizon)


@dataclass
class PlaceContext:
    """Where places are: stations and open schools (``hubs``) and the latest wards, for names and areas."""

    hubs: gpd.GeoDataFrame
    wards: gpd.GeoDataFrame | None

    def names(self, units) -> pd.Series:
        return place_names(units.frame, self.wards, self.hubs[self.hubs["kind"] == "station"])


@dataclass
class Products:
    """What a run makes from its rankings besides them: areas, youth list, fairness profile, figures."""

    areas: gpd.GeoDataFrame
    youth: pd.DataFrame
    fairness: dict
    figures: dict


def make_run(settings: Settings, *, units: str | None = None, cutoff: Month | str | None = None,
             model_version: str | None = None, store_dir: Path | None = None, source: str = "auto",
             progress: Progress | None = None) -> Path:
    """Build one run folder under ``settings.runs_dir`` and write its outputs; return its path.

    ``cutoff`` (a Month or ``"YYYY-MM"``) None: the latest usable one. ``units`` None: the run leads with the present at the finest scale the data allow
    (:func:`lead_choice`: the configured units when their data are current, else the finest
    unit edition the fresher area tables cover), with the freshest other area forecast
    beside it (:func:`beside_choice`). ``source`` ("points", "areas") asks for one source.
    ``model_version``: None trains a new version; ``"latest"`` takes the newest version
    trained on these units of this data folder; any other value names a version.
    """
    say = progress or (lambda _m: None)
    created = datetime.now(UTC)
    with Engine.from_settings(settings) as engine:
        analysis = choose_analysis(engine, settings, units, cutoff, source, model_version, store_dir, say)
        saved = saved_model(settings, analysis, model_version)  # checked before any work
        ledger = score_earlier_forecasts(settings, analysis, say)
        forecasts, plan_note = fit_models(engine, settings, analysis, saved, say)
    hot_spots = find_hot_spots(settings, analysis, forecasts, say)
    context = place_context(analysis.store)
    rank_places(settings, forecasts, hot_spots, context, say)
    products = make_products(settings, analysis, forecasts, context)
    run_dir, meta = write_run_folder(settings, analysis, forecasts, hot_spots, context, products, ledger,
                                     plan_note, created, say)
    final = complete_run(run_dir, demo=meta["demo"])
    record_forecasts(ledger, forecasts, run_id=final.name, created=meta["created"])
    return final


def choose_analysis(engine: Engine, settings: Settings, units: str | None, cutoff: Month | str | None, source: str,
                    model_version: str | None, store_dir: Path | None, say: Progress) -> Analysis:
    """Ingest -> units -> features: the store, the analysis the run leads with, and its checked cutoff.

    The cutoff is checked against the lead's complete months before anything is trained
    or written; the error names the units that could forecast instead.
    """
    cutoff = None if cutoff is None else month(cutoff)  # the run's one parse: a Month from here on
    history, floor = settings.model.history_months, shortest_history(settings)
    chosen = units or settings.units.default
    say(f"units {chosen}: building geometry and features")
    store, fb = builder_on(engine, settings, chosen, store_dir, say, cutoff=cutoff, source=source)
    built = [fb]
    areas = area_builders(engine, settings, store, store_dir, say,
                          skip=fb.units.edition if fb.source == "areas" else None)
    own = fb.usable_cutoffs(history, 0, floor)
    if fb.source == "areas" and own:
        areas = [(fb, own[-1])] + areas
    lead_note = None
    if units is None and source == "auto" and model_version in (None, "latest"):
        lead, lead_note = lead_choice(fb, own[-1] if own else None,
                                      [a for a in areas if a[0] is not fb], cutoff, history, floor)
        if lead is not fb:
            say(f"leading with {lead.units.edition} ({lead_note})")
            fb = lead
    built += [a for a, _ in areas]
    try:
        cutoff = checked_cutoff(fb, cutoff, history, min_history=floor)
    except ValueError as exc:
        others = [f"{a.units.edition} from the area tables up to {last:%Y-%m}" for a, last in areas
                  if a.units.edition != fb.units.edition]
        raise ValueError(str(exc) + (f"; units that can forecast now: {', '.join(others)} (--units)"
                                     if others else "")) from None
    return Analysis(store, fb, cutoff, areas, built, data_binding(store), lead_note, beside_choice(fb, cutoff, areas))


def saved_model(settings: Settings, analysis: Analysis, model_version: str | None) -> Forecast | None:
    """The main forecast's saved model (``"latest"`` or a version), checked against this run; None: train one."""
    if model_version is None:
        return None
    models_dir, data_dir = settings.out_dir / "models", analysis.binding["data_dir"]
    if model_version == "latest":
        model_version = latest_model(models_dir, analysis.units, data_dir)
    model, meta = checked_model(models_dir, model_version, analysis.fb, analysis.cutoff, data_dir)
    return Forecast("main", analysis.fb, analysis.cutoff, model_version, meta, model)


def score_earlier_forecasts(settings: Settings, analysis: Analysis, say: Progress) -> Ledger:
    """The forecast ledger, with earlier forecasts whose months have arrived scored.

    Scored before anything is trained, so the model cards and this run's briefing quote them.
    """
    ledger = Ledger(ledger_dir(settings, analysis.store))
    say("forecast ledger: scoring earlier forecasts whose months have arrived")
    score_due(ledger, {(b.units.edition, b.source): b for b in analysis.built})
    return ledger


def fit_models(engine: Engine, settings: Settings, analysis: Analysis, saved: Forecast | None,
               say: Progress) -> tuple[dict[str, Forecast], str | None]:
    """Models: the main forecast's (``saved``, else trained), the planning horizon's and the current one's.

    Returns the forecasts by role and, when the planning forecast falls back to the main
    one, the sentence that says so.
    """
    models_dir = settings.out_dir / "models"
    main = saved
    if main is None:
        version = train_on(engine, settings, analysis.store, analysis.fb, analysis.cutoff, progress=say)
        model, meta = load_model(models_dir, version)
        main = Forecast("main", analysis.fb, analysis.cutoff, version, meta, model)
    forecasts = {"main": main}
    planning, plan_note = planning_model(engine, settings, analysis, main, trained=saved is None, say=say)
    if planning is not None:
        forecasts["planning"] = planning
    if analysis.current is not None:
        cfb, ccut = analysis.current
        say(f"forecast beside it: {cfb.units.edition} from the area tables, for {ccut:%Y-%m}")
        version = train_on(engine, settings, analysis.store, cfb, ccut, progress=say)
        model, meta = load_model(models_dir, version)
        forecasts["current"] = Forecast("current", cfb, ccut, version, meta, model)
    return forecasts, plan_note


def planning_model(engine: Engine, settings: Settings, analysis: Analysis, main: Forecast, *, trained: bool,
                   say: Progress) -> tuple[Forecast | None, str | None]:
    """The planning forecast's model (``model.planning_horizon_months``): trained beside a trained main
    model, else the latest saved one for that horizon; ``(None, why)`` when there is none."""
    plan_h = int(settings.model.planning_horizon_months)
    if not plan_h or plan_h == main.horizon:
        return None, None
    models_dir, data_dir = settings.out_dir / "models", analysis.binding["data_dir"]
    if trained:
        version = train_on(engine, settings, analysis.store, analysis.fb, analysis.cutoff, progress=say,
                           horizon=plan_h)
    else:
        try:
            version = latest_model(models_dir, analysis.units, data_dir, horizon=plan_h)
        except ValueError:
            note = (f"no saved {plan_h}-month model for {analysis.units}: the Clear Hold Build areas come "
                    f"from the {main.meta.get('horizon', 1)}-month forecast "
                    f"(`svrisk train --horizon {plan_h}` makes one)")
            say(note)
            return None, note
    model, meta = checked_model(models_dir, version, analysis.fb, analysis.cutoff, data_dir)
    return Forecast("planning", analysis.fb, analysis.cutoff, version, meta, model), None


def find_hot_spots(settings: Settings, analysis: Analysis, forecasts: dict[str, Forecast], say: Progress) -> dict:
    """Hot spots (Gi*, LISA, emerging) of each forecast's analysis at its cutoff, by role."""
    say(f"hot spots ({settings.hotspots.neighbourhood} neighbourhood, {settings.hotspots.inference} inference)")
    fb, store = analysis.fb, analysis.store
    lead = analyse_hotspots(fb, analysis.cutoff, areas=False, **hotspot_options(settings),
                            events=target_events(store, settings) if fb.source == "points" else None)
    out = {role: lead for role in forecasts if role != "current"}
    if "current" in forecasts:
        current = forecasts["current"]
        out["current"] = analyse_hotspots(current.fb, current.cutoff, areas=False, **hotspot_options(settings))
    return out


def place_context(store) -> PlaceContext:
    """The hubs (stations, open schools) and latest wards places are named and grouped by."""
    return PlaceContext(hubs_layer(store), latest_wards(store))


RANKING_MESSAGES = {"main": "ranking places", "planning": "ranking places for the next {h} months (planning)"}


def rank_places(settings: Settings, forecasts: dict[str, Forecast], hot_spots: dict, context: PlaceContext,
                say: Progress) -> None:
    """Rankings: each forecast's places ranked with reasons and hot-spot classes, and their rank change
    against the latest earlier run's ranking of the same kind (read from its run folder)."""
    for role, f in forecasts.items():
        if role in RANKING_MESSAGES:
            say(RANKING_MESSAGES[role].format(h=f.horizon))
        previous, f.previous_run = previous_ranking(settings.runs_dir, f.fb.units.edition, f.entry, f.file)
        f.ranking, f.X = rank_from_model(f.fb, f.model, f.cutoff, hotspots=hot_spots[role].table,
                                         previous=previous, places=context.names(f.fb.units))


def make_products(settings: Settings, analysis: Analysis, forecasts: dict[str, Forecast],
                  context: PlaceContext) -> Products:
    """Clear Hold Build areas (from the planning forecast when there is one: they are planned a quarter
    ahead), the youth-work list and fairness profile (next month), and the needs-assessment figures
    (on the freshest data)."""
    main, store = forecasts["main"], analysis.store
    chb = forecasts.get("planning", main)
    areas = clear_hold_build(chb.ranking, analysis.fb.units.graph("queen"), harm=expected_harm(chb.ranking, chb.X),
                             wards=context.wards, hubs=context.hubs)
    fairness = fairness_profile(main.ranking, main.X, police_generated_used=bool(settings.model.allow_police_generated),
                                ethnicity=residents_by_group(store, analysis.units))
    freshest = forecasts.get("current", main)
    figures = needs_assessment_figures(freshest.fb, store.table("population") if store.has("population") else None,
                                       freshest.cutoff)
    figures["knife"] = knife_figures(store.table("dashboard_counts") if store.has("dashboard_counts") else None,
                                     context.wards)
    return Products(areas, youth_list(main.ranking, main.X), fairness, figures)


def run_meta(settings: Settings, analysis: Analysis, forecasts: dict[str, Forecast], hot_spots: dict,
             ledger: Ledger, plan_note: str | None, run_id: str, created: datetime, demo: bool) -> dict:
    """``run.json``: what the run forecast, from which data and models, and how it was made."""
    main, store, today = forecasts["main"], analysis.store, created.date()
    police = bool(settings.model.allow_police_generated)
    horizons = [horizon_entry(f.role, f.version, f.meta, f.file) for f in forecasts.values() if f.role != "current"]
    current = forecasts.get("current")
    current_meta = None if current is None else {
        "units": current.fb.units.edition, "cutoff": f"{current.cutoff:%Y-%m}", "model_version": current.version,
        "method": current.meta.get("method"), "data_period": data_period(current.fb, current.cutoff, today),
        "hotspots": hot_spots["current"].meta, "feature_notes": list(current.fb.notes),
        "target_coverage": getattr(current.fb, "coverage", None)}
    return {
        "run_id": run_id, "created": created.isoformat(timespec="seconds"), "model_version": main.version,
        "method": main.meta.get("method"), "units": analysis.units, "cutoff": f"{analysis.cutoff:%Y-%m}",
        "horizon": settings.model.horizon_months, "data_period": data_period(analysis.fb, analysis.cutoff, today),
        "area_name": borough_identity(store)[1], "seed": settings.model.seed,
        "permutations": settings.model.permutations, "target_groups": settings.model.target_groups,
        "police_generated_used": police, "previous_run": main.previous_run, "demo": demo,
        "hotspots": hot_spots["main"].meta, "feature_notes": list(getattr(analysis.fb, "notes", [])),
        "horizons": horizons, "areas_horizon": horizons[-1]["horizon"], "horizons_note": plan_note,
        "current": current_meta, "data": analysis.binding, "lead": analysis.lead_note,
        "ledger": ledger_summary(ledger, analysis.units),
        "target_coverage": getattr(analysis.fb, "coverage", None), "points": points_note(store, analysis.fb),
        "quality_flags": important_flags(store.report(), police),
        "settings": public_settings(settings),
    }


def write_run_folder(settings: Settings, analysis: Analysis, forecasts: dict[str, Forecast], hot_spots: dict,
                     context: PlaceContext, products: Products, ledger: Ledger, plan_note: str | None,
                     created: datetime, say: Progress) -> tuple[Path, dict]:
    """Outputs: ``run.json``, the tables and the map, briefing and layers, each file named in
    :mod:`reports.run_catalogue`, into a hidden folder (see :mod:`service.publish`); returns it and
    ``run.json``'s content."""
    store = analysis.store
    demo = is_demo_store(store.report(), settings.demo_dir)
    run_id, run_dir = stage_run(settings.runs_dir, f"{created:%Y%m%dT%H%M%S}-{analysis.units}-{analysis.cutoff:%Y-%m}")
    meta = run_meta(settings, analysis, forecasts, hot_spots, ledger, plan_note, run_id, created, demo)
    (run_dir / rc.RUN_JSON.path).write_text(json.dumps(meta, indent=2, default=str))
    for f in forecasts.values():
        f.ranking.to_parquet(run_dir / f.file)
    hot = hot_spots["main"].table.rename(columns={"lisa_class": "lisa_label"})
    hot[list(rc.HOTSPOT_COLUMNS)].to_parquet(run_dir / rc.HOTSPOTS.path)
    products.areas.to_parquet(run_dir / rc.AREAS.path)
    products.youth.to_parquet(run_dir / rc.YOUTH_LIST.path)
    context.hubs.to_parquet(run_dir / rc.HUBS.path)
    if context.wards is not None:
        context.wards[list(rc.BOUNDARY_COLUMNS)].to_parquet(run_dir / rc.WARDS.path)
    if store.has("units_borough"):
        store.units("borough")[list(rc.BOUNDARY_COLUMNS)].to_parquet(run_dir / rc.BOROUGH.path)
    (run_dir / rc.FAIRNESS.path).write_text(json.dumps(products.fairness, indent=2, default=str))
    (run_dir / rc.FIGURES.path).write_text(json.dumps(products.figures, indent=2, default=str))
    say("writing map, briefing (HTML and PDF) and GIS layers")
    write_outputs(run_dir, tiles=settings.map.tiles, tiles_attribution=settings.map.tiles_attribution,
                  pdf=settings.map.pdf, browser=settings.map.browser)
    return run_dir, meta


def record_forecasts(ledger: Ledger, forecasts: dict[str, Forecast], *, run_id: str, created: str) -> None:
    """Each forecast into the ledger, once the run that issued it exists (scored when its months arrive)."""
    for f in forecasts.values():
        areas_m2 = pd.Series(f.fb.units.frame["area_m2"].to_numpy(dtype=float), index=f.fb.units.ids.astype(str))
        ledger.append(forecast_entry(f.ranking, f.X, run_id=run_id, created=created, units=f.fb.units.edition,
                                     source=f.fb.source, cutoff=f"{f.cutoff:%Y-%m}", horizon=f.horizon,
                                     method=f.meta.get("method"), model_version=f.version, areas=areas_m2))


def ledger_summary(ledger: Ledger, units: str, recent: int = 12) -> dict:
    """What a run says about its earlier forecasts: the last one scored, the last ``recent`` on these
    units, the running record per units and horizon, and drift warnings."""
    table = record(ledger)
    mine = table[table["units"] == units].tail(recent) if len(table) else table
    running = running_record(table)
    return {"folder": str(ledger.root), "last": last_sentence(table, units),
            "recent": mine.to_dict("records") if len(mine) else [], "record": running,
            "warnings": [w for r in running for w in r["warnings"]]}


def points_note(store, fb) -> str | None:
    """When the run is not on the point events, the months they cover and how to ask for them."""
    if fb.source == "points" or not store.has("events"):
        return None
    months = point_month_counts(store)
    if months.empty:
        return None
    return (f"street-level points (police.uk) cover {ranges(months.index)}: "
            "their pattern is in `svrisk run --source points`")


IMPORTANT_CHECKS = ("months_missing", "thin_months", "unit_month_missing", "period_doubled", "period_inflated",
                    "category_all_zero", "overlapping_releases")
"""Ingest quality flags a run repeats: gaps, thin months, doubled periods, overlapping releases."""


def important_flags(report: dict, police_generated_used: bool = False) -> list[dict]:
    """The ingest quality flags that change what a run's numbers mean (see :data:`IMPORTANT_CHECKS`).

    Flags on stop and search are left out unless the run used police-generated data.
    """
    return [{k: f[k] for k in ("table", "check", "severity", "message", "source") if k in f}
            for f in report.get("quality_flags", []) if f.get("check") in IMPORTANT_CHECKS
            and (police_generated_used or f.get("table") != "stop_search")]


def public_settings(settings: Settings) -> dict:
    """The settings a run used that say how it was made (no service paths or keys)."""
    keep = json.loads(settings.model_dump_json(include={"units", "model", "engine", "demo_seed"}))
    return keep
