"""A run folder read back: its metadata, tables and side files, and the export layers.

A run folder (``<out>/runs/<run_id>/``, written by the pipeline) holds ``run.json`` and
GeoParquet tables; :func:`load_run` reads it and :func:`run_layers` turns it into the
layers every output (map, briefing, GIS files, API) is made from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.crs import WORKING_CRS
from reports import layers as gl

REQUIRED_META = ("run_id", "created", "model_version", "cutoff", "data_period")
TABLES = ("ranking", "hotspots", "areas", "youth_list", "hubs", "wards", "borough", "current_ranking")
CONTEXT = ("borough", "wards")
"""Orientation tables (boundaries with names) the map and briefing draw under the places."""


@dataclass
class Run:
    """A run folder read into memory: metadata, tables and the JSON side files."""

    path: Path
    meta: dict
    tables: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    fairness: dict | None = None
    figures: dict | None = None
    backtest: list | dict | None = None

    @property
    def run_id(self) -> str:
        return str(self.meta["run_id"])

    @property
    def ranking(self) -> gpd.GeoDataFrame:
        return self.tables["ranking"]


def read_meta(run_dir) -> dict:
    """Read and check ``run.json`` of a run folder."""
    path = Path(run_dir) / "run.json"
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


def load_run(run_dir) -> Run:
    """Read a run folder; ``ranking.parquet`` is required, the other tables are optional.

    Tables are brought to EPSG:27700 (a table without a CRS is an error naming the file).
    """
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    tables: dict[str, gpd.GeoDataFrame] = {}
    for name in TABLES:
        p = run_dir / f"{name}.parquet"
        if not p.is_file():
            if name == "ranking":
                raise FileNotFoundError(f"{p} not found: every run needs a ranking")
            continue
        gdf = gpd.read_parquet(p)
        if gdf.crs is None:
            raise ValueError(f"{p} has no CRS; expected EPSG:27700")
        tables[name] = gdf.to_crs(WORKING_CRS)
    ranking = tables["ranking"]
    for col in ("unit_id", "rank", "expected"):
        if col not in ranking.columns:
            raise ValueError(f"{run_dir / 'ranking.parquet'} lacks column {col!r}")
    tables["ranking"] = ranking.sort_values(["rank", "unit_id"], kind="stable").reset_index(drop=True)
    return Run(run_dir, meta, tables, _read_json(run_dir / "fairness.json"),
               _read_json(run_dir / "figures.json"), _read_json(run_dir / "backtest.json"))


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
    if "current_ranking" in t and run.meta.get("current"):
        current = dict(run.meta["current"], run_id=run.meta["run_id"])
        stamped["current_ranked_units"] = gl.stamp(gl.with_risk_class(t["current_ranking"]), current)
    return stamped
