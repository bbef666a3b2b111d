"""Read-only access to the run folders under ``settings.runs_dir``, cached for serving.

Each run's tables are read once and kept until its ``run.json`` or ``ranking.parquet``
changes on disk; GeoJSON is serialised once per layer. Run ids are checked before they
touch the file system (no ``..``, no separators).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from reports import layers as gl
from reports.run_folder import Run, load_run, read_meta, run_layers

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class NotFound(LookupError):
    """A run, layer or feature that does not exist (the API answers 404 with this text)."""


@dataclass
class LayerCache:
    """One layer ready to serve: features as dicts (EPSG:4326) and their bounds."""

    name: str
    features: list[dict]
    geoms: np.ndarray
    bounds: np.ndarray  # (n, 4) minx, miny, maxx, maxy in lon/lat
    by_id: dict[str, int]
    geojson: bytes | None = None


@dataclass
class CachedRun:
    stamp: tuple
    run: Run
    layers: dict[str, gpd.GeoDataFrame]
    web: dict[str, LayerCache] = field(default_factory=dict)
    table: pd.DataFrame | None = None
    csv: bytes | None = None


def _json_value(v):
    if v is None:
        return None
    if isinstance(v, np.ndarray | list | tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-safe records: NA -> None, numpy scalars -> Python, arrays -> lists."""
    cols = list(frame.columns)
    return [{c: _json_value(v) for c, v in zip(cols, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)]


def feature_ids(name: str, gdf: gpd.GeoDataFrame) -> list[str]:
    """Stable feature ids: ``unit_id`` or ``area_id`` when unique, else the row number."""
    for col in ("unit_id", "area_id"):
        if col in gdf.columns and gdf[col].notna().all() and gdf[col].is_unique:
            return [str(v) for v in gdf[col]]
    return [str(i) for i in range(len(gdf))]


class RunRepository:
    """The runs in one folder: list them, find the latest, serve their tables and layers."""

    def __init__(self, runs_dir):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.RLock()
        self._cache: dict[str, CachedRun] = {}
        self._listing: tuple[int, list[dict], list[Path]] | None = None

    def path(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id or ""):
            raise NotFound(f"run id {run_id!r} is not a valid run id")
        p = self.runs_dir / run_id
        if not (p / "run.json").is_file():
            raise NotFound(f"no run {run_id!r} in {self.runs_dir}")
        return p

    def list(self) -> list[dict]:
        """Metadata of every readable run, newest first (by ``created``, then run id).

        Cached until the runs folder changes (a run added or removed) or a folder that had
        no ``run.json`` gets one (the pipeline writes it last).
        """
        try:
            mtime = self.runs_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        with self._lock:
            cached = self._listing
            if (cached is not None and cached[0] == mtime
                    and not any((p / "run.json").is_file() for p in cached[2])):
                return cached[1]
            out, pending = [], []
            for p in self.runs_dir.iterdir():
                if not p.is_dir() or not RUN_ID.match(p.name):
                    continue
                if not (p / "run.json").is_file():
                    pending.append(p)
                    continue
                try:
                    out.append(read_meta(p))
                except ValueError:
                    continue  # a broken run.json is not listed; /runs/{id} reports why
            out.sort(key=lambda m: (str(m.get("created", "")), str(m["run_id"])), reverse=True)
            self._listing = (mtime, out, pending)
            return out

    def latest_id(self) -> str:
        runs = self.list()
        if not runs:
            raise NotFound(f"no runs in {self.runs_dir} yet: run the pipeline first")
        return str(runs[0]["run_id"])

    def resolve(self, run_id: str) -> str:
        return self.latest_id() if run_id == "latest" else run_id

    def get(self, run_id: str) -> CachedRun:
        run_id = self.resolve(run_id)
        p = self.path(run_id)
        stamp = tuple((p / f).stat().st_mtime_ns if (p / f).exists() else 0
                      for f in ("run.json", "ranking.parquet", "hotspots.parquet", "areas.parquet"))
        with self._lock:
            cached = self._cache.get(run_id)
            if cached is None or cached.stamp != stamp:
                run = load_run(p)
                cached = CachedRun(stamp, run, run_layers(run))
                self._cache[run_id] = cached
            return cached

    def meta(self, run_id: str) -> dict:
        return self.get(run_id).run.meta

    def table(self, run_id: str) -> pd.DataFrame:
        """The ranking without geometry, sorted by rank."""
        c = self.get(run_id)
        with self._lock:
            if c.table is None:
                r = c.run.ranking
                c.table = pd.DataFrame(r.drop(columns=r.geometry.name))
            return c.table

    def ranking_csv(self, run_id: str) -> bytes:
        c = self.get(run_id)
        table = self.table(run_id)
        with self._lock:
            if c.csv is None:
                c.csv = table.to_csv(index=False).encode("utf-8")
            return c.csv

    def layer_names(self, run_id: str) -> list[str]:
        return list(self.get(run_id).layers)

    def layer(self, run_id: str, name: str) -> LayerCache:
        c = self.get(run_id)
        if name not in c.layers:
            raise NotFound(f"run {c.run.run_id!r} has no layer {name!r}; it has {list(c.layers)}")
        with self._lock:
            if name not in c.web:
                gdf = gl.flatten(c.layers[name]).to_crs(gl.WEB_CRS)
                geom = gdf.geometry.name
                ids = feature_ids(name, gdf)
                props = records(pd.DataFrame(gdf.drop(columns=geom)))
                geoms = np.asarray(gdf.geometry.values, dtype=object)
                feats = [
                    {"type": "Feature", "id": fid,
                     "geometry": json.loads(shapely.to_geojson(g)) if g is not None else None,
                     "properties": pr}
                    for fid, g, pr in zip(ids, geoms, props, strict=True)
                ]
                c.web[name] = LayerCache(name, feats, geoms, shapely.bounds(geoms),
                                         {fid: i for i, fid in enumerate(ids)})
            return c.web[name]

    def layer_geojson(self, run_id: str, name: str) -> bytes:
        lc = self.layer(run_id, name)
        with self._lock:
            if lc.geojson is None:
                lc.geojson = json.dumps({"type": "FeatureCollection", "name": name,
                                         "features": lc.features}).encode("utf-8")
            return lc.geojson


__all__ = ["NotFound", "RunRepository", "feature_ids", "records"]
