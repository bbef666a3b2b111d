"""The main job: one run folder with ranking, hot spots, areas, lists, profiles and outputs.

``make_run`` reads (or builds) the store, builds units and features, trains or loads
a model, ranks places with reasons, adds hotspot classes, Clear Hold Build areas, the
youth-work list, the fairness profile and the needs-assessment figures, then writes
the run folder (see the run-folder contract in README) and its map, briefing and layers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from features.figures import needs_assessment_figures
from geo.crs import WORKING_CRS
from models.fairness import fairness_profile
from models.hotspots.analysis import analyse_hotspots
from models.ranking import clear_hold_build, expected_harm, rank_from_model, youth_list
from models.registry import load_model
from reports.outputs import write_outputs
from service.engine import Engine
from service.pipeline import builder_on, latest_cutoff, target_events, train_on
from service.settings import Settings

Progress = Callable[[str], None]


def previous_ranking(runs_dir: Path, units: str) -> tuple[pd.DataFrame | None, str | None]:
    """The latest earlier run's ranking on the same units (for rank_change)."""
    if not runs_dir.is_dir():
        return None, None
    for run in sorted((p for p in runs_dir.iterdir() if (p / "run.json").is_file()), reverse=True):
        meta = json.loads((run / "run.json").read_text())
        if meta.get("units") == units and (run / "ranking.parquet").is_file():
            return pd.read_parquet(run / "ranking.parquet", columns=["unit_id", "rank"]), meta["run_id"]
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


def area_name(store) -> str:
    """The borough's name from its boundary layer, else the catalogue's name."""
    if store.has("units_borough"):
        names = store.units("borough")["name"].dropna()
        if len(names) == 1:
            return str(names.iloc[0])
    return str(store.report().get("catalogue", {}).get("name") or "study area")


def make_run(settings: Settings, *, units: str | None = None, cutoff: str | None = None,
             model_version: str | None = None, store_dir: Path | None = None,
             progress: Progress | None = None) -> Path:
    """Build one run folder under ``settings.runs_dir`` and write its outputs; return its path."""
    say = progress or (lambda _m: None)
    units = units or settings.units.default
    say(f"units {units}: building geometry and features")
    with Engine.from_settings(settings) as engine:
        store, fb = builder_on(engine, settings, units, store_dir, say)
        cutoff = cutoff or latest_cutoff(fb, settings.model.history_months)
        if model_version is None:
            model_version = train_on(engine, settings, store, fb, cutoff, progress=say)
    unit_set = fb.units
    models_dir = settings.out_dir / "models"
    model, model_meta = load_model(models_dir, model_version)
    if model_meta.get("units") != units:
        raise ValueError(f"model {model_version} was trained on {model_meta.get('units')} units, not {units}")
    say(f"hot spots ({settings.model.permutations} permutations)")
    hs = analyse_hotspots(fb, cutoff, events=target_events(store, settings), permutations=settings.model.permutations,
                          seed=settings.model.seed, fdr_alpha=settings.model.fdr_alpha, areas=False)
    previous, previous_id = previous_ranking(settings.runs_dir, units)
    say("ranking places")
    ranking, X = rank_from_model(fb, model, cutoff, hotspots=hs.table, previous=previous)
    hubs = hubs_layer(store)
    wards = None
    for edition in ("ward2022", "ward2018"):
        if store.has(f"units_{edition}"):
            wards = store.units(edition)
            break
    areas = clear_hold_build(ranking, unit_set.graph("queen"), harm=expected_harm(ranking, X), wards=wards,
                             hubs=hubs)
    youth = youth_list(ranking, X)
    police = bool(settings.model.allow_police_generated)
    fairness = fairness_profile(ranking, X, police_generated_used=police)
    events = store.table("events")
    population = store.table("population") if store.has("population") else None
    figures = needs_assessment_figures(events, population, cutoff)

    created = datetime.now(UTC)
    run_id = f"{created:%Y%m%dT%H%M%S}-{units}-{cutoff}"
    run_dir = settings.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    meta = {
        "run_id": run_id, "created": created.isoformat(timespec="seconds"), "model_version": model_version,
        "method": model_meta.get("method"), "units": units, "cutoff": cutoff,
        "horizon": settings.model.horizon_months, "data_period": model_meta.get("data_period"),
        "area_name": area_name(store), "seed": settings.model.seed,
        "permutations": settings.model.permutations, "target_groups": settings.model.target_groups,
        "police_generated_used": police, "previous_run": previous_id,
        "hotspots": hs.meta, "feature_notes": list(getattr(fb, "notes", [])),
        "settings": json.loads(settings.model_dump_json()),
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2, default=str))
    ranking.to_parquet(run_dir / "ranking.parquet")
    hot = hs.table.rename(columns={"lisa_class": "lisa_label"})
    hot[["unit_id", "Gs", "Zs", "p_sim", "q_value", "gi_class", "Gi_Bin", "lisa_label", "emerging", "geometry"]] \
        .to_parquet(run_dir / "hotspots.parquet")
    areas.to_parquet(run_dir / "areas.parquet")
    youth.to_parquet(run_dir / "youth_list.parquet")
    hubs.to_parquet(run_dir / "hubs.parquet")
    (run_dir / "fairness.json").write_text(json.dumps(fairness, indent=2, default=str))
    (run_dir / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
    say("writing map, briefing and GIS layers")
    write_outputs(run_dir)
    return run_dir
