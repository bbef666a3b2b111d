"""The main job: one run folder with ranking, hot spots, areas, lists, profiles and outputs.

``make_run`` reads the data folder's store (ingesting it when the folder changed),
builds units and features, checks the cutoff against the months with complete data
(before anything is written), trains or loads a model, ranks places with reasons,
adds hotspot classes, Clear Hold Build areas, the youth-work list, the fairness
profile and the needs-assessment figures, then writes the run folder (see the
run-folder contract in README) and its map, briefing and layers.

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
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from features.areas import (
    borough_identity,
    choose_source,
    latest_wards,
    point_month_counts,
    residents_by_group,
)
from features.figures import knife_figures, needs_assessment_figures
from features.months import month, months_apart, ranges, shift
from geo.crs import WORKING_CRS
from geo.places import place_names
from models.backtest import forecast_matrix
from models.fairness import fairness_profile
from models.hotspots.analysis import analyse_hotspots
from models.ledger import Ledger, forecast_entry, last_sentence, record, running_record, score_due
from models.ranking import clear_hold_build, expected_harm, rank_from_model, youth_list
from models.registry import list_versions, load_model
from reports.model_card import skill_summary
from reports.outputs import write_outputs
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


def previous_ranking(runs_dir: Path, units: str, table: str = "ranking") -> tuple[pd.DataFrame | None, str | None]:
    """The latest earlier run's ``table`` on the same units (for rank_change)."""
    if not runs_dir.is_dir():
        return None, None
    for run in sorted((p for p in runs_dir.iterdir() if not p.name.startswith(".") and (p / "run.json").is_file()),
                      reverse=True):
        meta = json.loads((run / "run.json").read_text())
        on = (meta.get("current") or {}).get("units") if table == "current_ranking" else meta.get("units")
        if on == units and (run / f"{table}.parquet").is_file():
            return pd.read_parquet(run / f"{table}.parquet", columns=["unit_id", "rank"]), meta["run_id"]
    return None, None


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
        sc = store.table("schools")
        open_ = sc["status"].fillna("open").str.lower().str.startswith("open")
        sc = sc[open_]
        parts.append(gpd.GeoDataFrame({"kind": "school", "name": sc["name"], "footfall": pd.NA},
                                      geometry=sc.geometry, crs=sc.crs))
    if not parts:
        return gpd.GeoDataFrame({"kind": [], "name": [], "footfall": []}, geometry=[], crs=WORKING_CRS)
    out = pd.concat(parts, ignore_index=True)
    out["footfall"] = pd.to_numeric(out["footfall"], errors="coerce")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WORKING_CRS)


STALE_MONTHS = 3
"""A forecast whose newest month of data is more than this many months before the run is flagged."""


def data_period(fb, cutoff, today: date) -> dict:
    """The months an analysis at ``cutoff`` uses, and how old the newest one is on ``today``.

    ``start`` is the first complete month, ``end`` the month before the cutoff;
    ``age_months`` counts whole months from ``end`` to the month of ``today``
    (0 = the current month); ``stale`` is true when that is more than
    :data:`STALE_MONTHS`.
    """
    c = month(cutoff)
    used = [m for m in fb.complete_months if m < c]
    end = shift(c, -1)
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
        meta = json.loads((models_dir / version / "meta.json").read_text(encoding="utf-8"))
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


def lead_choice(default_fb, default_last, areas: list, cutoff=None, history: int = 12,
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
        c = month(cutoff)
        candidates = [(fb, c) for fb, _ in candidates if c in fb.usable_cutoffs(history, 0, min_history)]
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


def beside_choice(lead_fb, lead_cutoff, areas: list):
    """The area forecast shown beside the lead: another edition whose tables are at least as current.

    Beside a forecast from the area tables, the freshest other edition whose latest usable
    cutoff is not earlier (the ward forecast beside the LSOA one); beside a forecast from
    points, the freshest area edition that reaches later. The coarser edition wins a tie.
    """
    c = month(lead_cutoff)
    same_time_ok = lead_fb.source == "areas"
    pick = [(fb, last) for fb, last in areas if fb.units.edition != lead_fb.units.edition
            and (last > c or (same_time_ok and last == c))]
    if not pick:
        return None
    return max(pick, key=lambda p: (p[1], -len(p[0].units)))


def make_run(settings: Settings, *, units: str | None = None, cutoff: str | None = None,
             model_version: str | None = None, store_dir: Path | None = None, source: str = "auto",
             progress: Progress | None = None) -> Path:
    """Build one run folder under ``settings.runs_dir`` and write its outputs; return its path.

    ``units`` None: the run leads with the present at the finest scale the data allow
    (:func:`lead_choice`: the configured units when their data are current, else the finest
    unit edition the fresher area tables cover), with the freshest other area forecast
    beside it (:func:`beside_choice`). ``source`` ("points", "areas") asks for one source.
    ``model_version``: None trains a new version; ``"latest"`` takes the newest version
    trained on these units of this data folder; any other value names a version.
    """
    say = progress or (lambda _m: None)
    models_dir = settings.out_dir / "models"
    created = datetime.now(UTC)
    history = settings.model.history_months
    floor = shortest_history(settings)
    lead_note = None
    with Engine.from_settings(settings) as engine:
        chosen = units or settings.units.default
        say(f"units {chosen}: building geometry and features")
        store, fb = builder_on(engine, settings, chosen, store_dir, say, cutoff=cutoff, source=source)
        built = [fb]
        areas = area_builders(engine, settings, store, store_dir, say,
                              skip=fb.units.edition if fb.source == "areas" else None)
        own = fb.usable_cutoffs(history, 0, floor)
        if fb.source == "areas" and own:
            areas = [(fb, own[-1])] + areas
        if units is None and source == "auto" and model_version in (None, "latest"):
            lead, lead_note = lead_choice(fb, own[-1] if own else None,
                                          [a for a in areas if a[0] is not fb], cutoff, history, floor)
            if lead is not fb:
                say(f"leading with {lead.units.edition} ({lead_note})")
                fb = lead
        units = fb.units.edition
        built += [a for a, _ in areas]
        binding = data_binding(store)
        try:
            cutoff = checked_cutoff(fb, cutoff, history, min_history=floor)
        except ValueError as exc:
            others = [f"{a.units.edition} from the area tables up to {last:%Y-%m}" for a, last in areas
                      if a.units.edition != fb.units.edition]
            raise ValueError(str(exc) + (f"; units that can forecast now: {', '.join(others)} (--units)"
                                         if others else "")) from None
        if model_version == "latest":
            model_version = latest_model(models_dir, units, binding["data_dir"])
        if model_version is not None:
            model, model_meta = checked_model(models_dir, model_version, fb, cutoff, binding["data_dir"])
        current = beside_choice(fb, cutoff, areas)
        # earlier forecasts whose months have arrived are scored before anything is trained, so the
        # model cards and this run's briefing quote them
        ledger = Ledger(ledger_dir(settings, store))
        say("forecast ledger: scoring earlier forecasts whose months have arrived")
        score_due(ledger, {(b.units.edition, b.source): b for b in built})
        trained = model_version is None
        if trained:
            model_version = train_on(engine, settings, store, fb, cutoff, progress=say)
            model, model_meta = load_model(models_dir, model_version)
        plan_h = int(settings.model.planning_horizon_months)
        plan_version, plan_note = None, None
        if plan_h and plan_h != int(model_meta.get("horizon", 1)):
            if trained:
                plan_version = train_on(engine, settings, store, fb, cutoff, progress=say, horizon=plan_h)
            else:
                try:
                    plan_version = latest_model(models_dir, units, binding["data_dir"], horizon=plan_h)
                except ValueError:
                    plan_note = (f"no saved {plan_h}-month model for {units}: the Clear Hold Build areas come "
                                 f"from the {model_meta.get('horizon', 1)}-month forecast "
                                 f"(`svrisk train --horizon {plan_h}` makes one)")
                    say(plan_note)
            if plan_version is not None:
                plan_model, plan_meta = checked_model(models_dir, plan_version, fb, cutoff, binding["data_dir"])
        if current is not None:
            cfb, ccut = current
            say(f"forecast beside it: {cfb.units.edition} from the area tables, for {ccut:%Y-%m}")
            current_version = train_on(engine, settings, store, cfb, f"{ccut:%Y-%m}", progress=say)
    unit_set = fb.units
    say(f"hot spots ({settings.hotspots.neighbourhood} neighbourhood, {settings.hotspots.inference} inference)")
    hs = analyse_hotspots(fb, cutoff, events=target_events(store, settings) if fb.source == "points" else None,
                          areas=False, **hotspot_options(settings))
    previous, previous_id = previous_ranking(settings.runs_dir, units)
    hubs = hubs_layer(store)
    wards = latest_wards(store)
    stations = hubs[hubs["kind"] == "station"]
    places = place_names(unit_set.frame, wards, stations)
    say("ranking places")
    ranking, X = rank_from_model(fb, model, cutoff, hotspots=hs.table, previous=previous, places=places)
    horizons = [horizon_entry("main", model_version, model_meta, "ranking.parquet")]
    plan_ranking = None
    if plan_version is not None:
        say(f"ranking places for the next {plan_h} months (planning)")
        plan_file = f"ranking_h{plan_h}.parquet"
        plan_ranking, _ = rank_from_model(fb, plan_model, cutoff, hotspots=hs.table, places=places,
                                          previous=previous_ranking(settings.runs_dir, units, plan_file[:-8])[0])
        horizons.append(horizon_entry("planning", plan_version, plan_meta, plan_file))
    # Clear Hold Build is planned a quarter ahead: its areas come from the planning forecast when there is one
    chb = plan_ranking if plan_ranking is not None else ranking
    areas = clear_hold_build(chb, unit_set.graph("queen"), harm=expected_harm(chb, X), wards=wards, hubs=hubs)
    youth = youth_list(ranking, X)
    police = bool(settings.model.allow_police_generated)
    fairness = fairness_profile(ranking, X, police_generated_used=police,
                                ethnicity=residents_by_group(store, fb.units.edition))
    population = store.table("population") if store.has("population") else None
    today = created.date()
    current_meta, current_ranking = None, None
    if current is not None:
        cfb, ccut = current
        cmodel, cmeta = load_model(models_dir, current_version)
        chs = analyse_hotspots(cfb, ccut, areas=False, **hotspot_options(settings))
        current_ranking, cX = rank_from_model(cfb, cmodel, ccut, hotspots=chs.table,
                                             previous=previous_ranking(settings.runs_dir, cfb.units.edition,
                                                                       "current_ranking")[0],
                                             places=place_names(cfb.units.frame, wards, stations))
        current_meta = {"units": cfb.units.edition, "cutoff": f"{ccut:%Y-%m}", "model_version": current_version,
                        "method": cmeta.get("method"), "data_period": data_period(cfb, ccut, today),
                        "hotspots": chs.meta, "feature_notes": list(cfb.notes),
                        "target_coverage": getattr(cfb, "coverage", None)}
    figures = needs_assessment_figures(current[0] if current is not None else fb, population,
                                       current[1] if current is not None else cutoff)
    figures["knife"] = knife_figures(store.table("dashboard_counts") if store.has("dashboard_counts") else None,
                                     wards)

    ledger_meta = ledger_summary(ledger, units)

    demo = is_demo_store(store.report(), settings.demo_dir)
    # written into a hidden folder, renamed when complete (see service.publish)
    run_id, run_dir = stage_run(settings.runs_dir, f"{created:%Y%m%dT%H%M%S}-{units}-{cutoff}")
    meta = {
        "run_id": run_id, "created": created.isoformat(timespec="seconds"), "model_version": model_version,
        "method": model_meta.get("method"), "units": units, "cutoff": cutoff,
        "horizon": settings.model.horizon_months, "data_period": data_period(fb, cutoff, today),
        "area_name": borough_identity(store)[1], "seed": settings.model.seed,
        "permutations": settings.model.permutations, "target_groups": settings.model.target_groups,
        "police_generated_used": police, "previous_run": previous_id, "demo": demo,
        "hotspots": hs.meta, "feature_notes": list(getattr(fb, "notes", [])),
        "horizons": horizons, "areas_horizon": horizons[-1]["horizon"] if plan_ranking is not None
        else horizons[0]["horizon"], "horizons_note": plan_note,
        "current": current_meta, "data": binding, "lead": lead_note, "ledger": ledger_meta,
        "target_coverage": getattr(fb, "coverage", None), "points": points_note(store, fb),
        "quality_flags": important_flags(store.report(), police),
        "settings": public_settings(settings),
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2, default=str))
    ranking.to_parquet(run_dir / "ranking.parquet")
    if plan_ranking is not None:
        plan_ranking.to_parquet(run_dir / horizons[-1]["ranking"])
    if current_ranking is not None:
        current_ranking.to_parquet(run_dir / "current_ranking.parquet")
    hot = hs.table.rename(columns={"lisa_class": "lisa_label"})
    hot[["unit_id", "Gs", "Zs", "p_sim", "q_value", "gi_class", "Gi_Bin", "lisa_label", "emerging", "geometry"]] \
        .to_parquet(run_dir / "hotspots.parquet")
    areas.to_parquet(run_dir / "areas.parquet")
    youth.to_parquet(run_dir / "youth_list.parquet")
    hubs.to_parquet(run_dir / "hubs.parquet")
    if wards is not None:
        wards[["code", "name", "geometry"]].to_parquet(run_dir / "wards.parquet")
    if store.has("units_borough"):
        store.units("borough")[["code", "name", "geometry"]].to_parquet(run_dir / "borough.parquet")
    (run_dir / "fairness.json").write_text(json.dumps(fairness, indent=2, default=str))
    (run_dir / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
    say("writing map, briefing (HTML and PDF) and GIS layers")
    write_outputs(run_dir, tiles=settings.map.tiles, tiles_attribution=settings.map.tiles_attribution,
                  pdf=settings.map.pdf, browser=settings.map.browser)
    final = complete_run(run_dir, demo=demo)
    # the forecasts go into the ledger only once the run that issued them exists
    issued = [(fb, ranking, X, cutoff, horizons[0]["horizon"], model_meta, model_version)]
    if plan_ranking is not None:
        issued.append((fb, plan_ranking, X, cutoff, horizons[-1]["horizon"], plan_meta, plan_version))
    if current_ranking is not None:
        issued.append((current[0], current_ranking, cX, current_meta["cutoff"], int(cmeta.get("horizon", 1)), cmeta,
                       current_version))
    for bfb, table, feats, cut, h, mmeta, version in issued:
        areas_m2 = pd.Series(bfb.units.frame["area_m2"].to_numpy(dtype=float), index=bfb.units.ids.astype(str))
        ledger.append(forecast_entry(table, feats, run_id=final.name, created=meta["created"],
                                     units=bfb.units.edition, source=bfb.source, cutoff=str(cut), horizon=int(h),
                                     method=mmeta.get("method"), model_version=version, areas=areas_m2))
    return final


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
