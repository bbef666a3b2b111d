"""A run folder read back: its metadata, tables and side files, and the export layers.

A run folder (``<out>/runs/<run_id>/``, written by the pipeline) holds ``run.json`` and
GeoParquet tables, each named in :mod:`reports.run_catalogue`; :func:`load_run` reads it and
:func:`run_layers` turns it into the layers every output (map, briefing, GIS files, API) is
made from. :func:`previous_ranking` finds the ranking a new run compares its ranks with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.crs import WORKING_CRS
from reports import layers as gl
from reports import run_catalogue as rc
from reports.run_catalogue import REQUIRED_META

CONTEXT = (rc.BOROUGH.key, rc.WARDS.key)
"""Orientation tables (boundaries with names) the map and briefing draw under the places."""


@dataclass
class Run:
    """A run folder read into memory: metadata, tables and the JSON side files."""

    path: Path
    meta: dict
    tables: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    fairness: dict | None = None
    figures: dict | None = None

    @property
    def run_id(self) -> str:
        return str(self.meta["run_id"])

    @property
    def ranking(self) -> gpd.GeoDataFrame:
        return self.tables["ranking"]


def read_meta(run_dir) -> dict:
    """Read and check ``run.json`` of a run folder."""
    path = Path(run_dir) / rc.RUN_JSON.path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a run folder")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"{path} lacks {missing}; a run.json needs {list(REQUIRED_META)}")
    gl.data_period(meta)  # raises with the file's run id if malformed
    return meta


def _read_json(path: Path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


def planning_file(meta: dict) -> str | None:
    """The planning forecast's file named in ``run.json["horizons"]`` (``ranking_h3.parquet``), or None."""
    for entry in meta.get("horizons") or []:
        if entry.get("role") == "planning" and rc.PLANNING_RANKING.pattern().match(str(entry.get("ranking", ""))):
            return str(entry["ranking"])
    return None


def load_run(run_dir) -> Run:
    """Read a run folder; ``ranking.parquet`` is required, the other tables are optional.

    The tables are those of :data:`reports.run_catalogue.TABLES`, keyed as there, plus
    ``planning_ranking`` when ``run.json["horizons"]`` names one. Tables are brought to
    EPSG:27700 (a table without a CRS is an error naming the file).
    """
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    tables: dict[str, gpd.GeoDataFrame] = {}
    files = [(f.key, f.path) for f in rc.TABLES]
    if (plan := planning_file(meta)) is not None:
        files.append((rc.PLANNING_RANKING.key, plan))
    for key, name in files:
        p = run_dir / name
        if not p.is_file():
            if key == rc.RANKING.key:
                raise FileNotFoundError(f"{p} not found: every run needs a ranking")
            continue
        gdf = gpd.read_parquet(p)
        if gdf.crs is None:
            raise ValueError(f"{p} has no CRS; expected EPSG:27700")
        tables[key] = gdf.to_crs(WORKING_CRS)
    ranking = tables["ranking"]
    for col in ("unit_id", "rank", "expected"):
        if col not in ranking.columns:
            raise ValueError(f"{run_dir / rc.RANKING.path} lacks column {col!r}")
    tables["ranking"] = ranking.sort_values(["rank", "unit_id"], kind="stable").reset_index(drop=True)
    return Run(run_dir, meta, tables, _read_json(run_dir / rc.FAIRNESS.path), _read_json(run_dir / rc.FIGURES.path))


def previous_ranking(runs_dir, units: str, table: rc.RunFile = rc.RANKING,
                     name: str | None = None) -> tuple[pd.DataFrame | None, str | None]:
    """The latest earlier run's ``table`` on the same ``units``: its ``unit_id`` and ``rank`` and its run id.

    A new run reads it for each ranking's ``change``. ``name`` fills a patterned entry
    (``ranking_h3.parquet`` of :data:`~reports.run_catalogue.PLANNING_RANKING`); for
    :data:`~reports.run_catalogue.CURRENT_RANKING` the units are those of ``run.json["current"]``.
    Hidden (unfinished) runs are skipped; ``(None, None)`` when there is none.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return None, None
    name = name or table.path
    for run in sorted((p for p in runs_dir.iterdir() if not p.name.startswith(".")
                       and (p / rc.RUN_JSON.path).is_file()), reverse=True):
        meta = json.loads((run / rc.RUN_JSON.path).read_text())
        on = (meta.get("current") or {}).get("units") if table is rc.CURRENT_RANKING else meta.get("units")
        if on == units and (run / name).is_file():
            return pd.read_parquet(run / name, columns=["unit_id", "rank"]), meta["run_id"]
    return None, None


def _is_pattern(value) -> bool:
    return pd.notna(value) and str(value).strip().lower() not in gl.NO_PATTERN


def context_layers(run: Run) -> dict[str, gpd.GeoDataFrame]:
    """The run's orientation layers: ``borough`` outline and ``wards`` (``code``, ``name``), when saved."""
    return {name: run.tables[name] for name in CONTEXT if name in run.tables and len(run.tables[name])}


def run_layers(run: Run) -> dict[str, gpd.GeoDataFrame]:
    """The export layers of a run, each stamped with run id, model version and data period.

    ``ranked_units`` is the ranking with its ``risk_class`` (top 1/5/10/25% of the area, the
    classes the maps and the GIS style colour by); ``hotspots`` the Gi*/LISA table; ``emerging`` the
    hotspot rows whose emerging category is a pattern (not "no pattern detected");
    ``areas`` the Clear Hold Build areas; ``hubs`` stations and schools; ``youth_places``
    the youth-work list; ``current_ranked_units`` the forecast from the freshest area
    tables (stamped with its own model and data period). Layers whose table is absent
    are left out.
    """
    t = run.tables
    out = {"ranked_units": gl.with_risk_class(t["ranking"])}
    if "hotspots" in t:
        out["hotspots"] = t["hotspots"]
    emerging_src = t.get("hotspots", t["ranking"])
    if "emerging" in emerging_src.columns:
        out["emerging"] = emerging_src[emerging_src["emerging"].map(_is_pattern)].reset_index(drop=True)
    for name, table in (("areas", "areas"), ("hubs", "hubs"), ("youth_places", "youth_list")):
        if table in t:
            out[name] = t[table]
    stamped = {name: gl.stamp(gdf, run.meta) for name, gdf in out.items()}
    if rc.CURRENT_RANKING.key in t and run.meta.get("current"):
        current = dict(run.meta["current"], run_id=run.meta["run_id"])
        stamped["current_ranked_units"] = gl.stamp(gl.with_risk_class(t[rc.CURRENT_RANKING.key]), current)
    return stamped
