"""Read-only access to the run folders under ``settings.runs_dir``, cached for serving.

Each run's tables are read once and kept until its ``run.json`` or ``ranking.parquet``
changes on disk; at most ``cache_size`` runs are kept (least recently used out first), and
GeoJSON is serialised once per layer and CRS. Run ids are checked before they touch the file
system (no ``..``, no separators). Two ids have a meaning: ``published`` (the run an analyst
published, see :mod:`service.publish`) and ``latest`` (the newest complete run).

Messages name runs, layers and files by their run id, never by a server path. A run that
cannot be read (deleted while served, damaged files) raises :class:`Unavailable` (503).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import WORKING_CRS
from reports import layers as gl
from reports import run_catalogue as rc
from reports.run_folder import Run, load_run, read_meta, run_layers
from service.publish import RUN_ID, published

log = logging.getLogger("svrisk.api")
#: a cached run is read again when one of these changes on disk
STAMP_FILES = tuple(f.path for f in (rc.RUN_JSON, rc.RANKING, rc.HOTSPOTS, rc.AREAS))


class NotFound(LookupError):
    """A run, layer or feature that does not exist (the API answers 404 with this text)."""


class Unavailable(RuntimeError):
    """A run that exists but cannot be served now (the API answers 503 with this text)."""


@dataclass
class LayerCache:
    """One layer ready to serve: ids, properties, and geometries per CRS.

    ``geoms``/``bounds`` hold ``"web"`` (EPSG:4326, lon/lat) and ``"bng"`` (EPSG:27700);
    GeoJSON geometries are made on first use per CRS and kept.
    """

    name: str
    ids: list[str]
    props: list[dict]
    frame: pd.DataFrame  # the properties as a table, for filters
    geoms: dict[str, np.ndarray]
    bounds: dict[str, np.ndarray]  # (n, 4) minx, miny, maxx, maxy
    by_id: dict[str, int]
    types: dict[str, str] = field(default_factory=dict)  # queryable property -> JSON type
    _geojson: dict[str, list] = field(default_factory=dict)
    _text: dict[str, list] = field(default_factory=dict)
    _body: bytes | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def geometry(self, crs: str) -> list:
        out = self._geojson.get(crs)
        if out is None:
            out = [json.loads(shapely.to_geojson(g)) if g is not None else None for g in self.geoms[crs]]
            self._geojson[crs] = out
        return out

    def feature(self, i: int, crs: str = "web") -> dict:
        return {"type": "Feature", "id": self.ids[i], "geometry": self.geometry(crs)[i],
                "properties": self.props[i]}

    def feature_json(self, i: int, crs: str = "web") -> str:
        """One feature as GeoJSON text, made once per CRS (pages are joined from these)."""
        texts = self._text.get(crs)
        if texts is None:
            texts = self._text[crs] = [None] * len(self.ids)
        if texts[i] is None:
            texts[i] = json.dumps(self.feature(i, crs))
        return texts[i]

    @property
    def features(self) -> list[dict]:
        """Every feature in lon/lat (EPSG:4326)."""
        return [self.feature(i) for i in range(len(self.ids))]


@dataclass
class CachedRun:
    stamp: tuple
    run: Run
    layers: dict[str, gpd.GeoDataFrame]
    web: dict[str, LayerCache] = field(default_factory=dict)
    table: pd.DataFrame | None = None
    rows: list[dict] | None = None
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


def _rounded(geoms, decimals: int) -> np.ndarray:
    arr = np.asarray(geoms, dtype=object)
    return shapely.transform(arr, lambda xy: np.round(xy, decimals))


def json_type(series: pd.Series) -> str | None:
    """The JSON Schema type of a property column, None if it is not a plain value."""
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        return "number"
    values = series.dropna()
    if len(values) == 0 or values.map(lambda v: isinstance(v, str)).all():
        return "string"
    return None


def column_types(frame: pd.DataFrame) -> dict[str, str]:
    """{column: JSON type} of the columns that hold plain values (the OGC queryables)."""
    return {c: t for c in frame.columns if (t := json_type(frame[c])) is not None}


def feature_ids(name: str, gdf: gpd.GeoDataFrame) -> list[str]:
    """Stable feature ids: ``unit_id`` or ``area_id`` when unique, else the row number."""
    for col in ("unit_id", "area_id"):
        if col in gdf.columns and gdf[col].notna().all() and gdf[col].is_unique:
            return [str(v) for v in gdf[col]]
    return [str(i) for i in range(len(gdf))]


class RunRepository:
    """The runs in one folder: list them, find the published and latest, serve their tables and layers."""

    def __init__(self, runs_dir, cache_size: int = 4):
        self.runs_dir = Path(runs_dir)
        self.cache_size = int(cache_size)
        self._lock = threading.RLock()  # the cache and listing dicts
        self._load_lock = threading.Lock()  # one run read at a time: memory stays bounded
        self._cache: OrderedDict[str, CachedRun] = OrderedDict()
        self._listing: tuple[int, list[dict], list[Path]] | None = None

    def path(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id or ""):
            raise NotFound("that is not a valid run id (letters, digits, '.', '_' and '-', at most 128)")
        p = self.runs_dir / run_id
        if not (p / rc.RUN_JSON.path).is_file():
            raise NotFound(f"no run {run_id!r}")
        return p

    def list(self) -> list[dict]:
        """Metadata of every readable run, newest first (by ``created``, then run id).

        Cached until the runs folder changes (a run added or removed) or a folder that had
        no ``run.json`` gets one. Hidden folders (runs still being written) are never listed.
        """
        try:
            mtime = self.runs_dir.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        with self._lock:
            cached = self._listing
            if (cached is not None and cached[0] == mtime
                    and not any((p / rc.RUN_JSON.path).is_file() for p in cached[2])):
                return cached[1]
            out, pending = [], []
            for p in self.runs_dir.iterdir():
                if not p.is_dir() or not RUN_ID.match(p.name):
                    continue
                if not (p / rc.RUN_JSON.path).is_file():
                    pending.append(p)
                    continue
                try:
                    out.append(read_meta(p))
                except (ValueError, OSError):
                    continue  # a broken run.json is not listed; /runs/{id} reports it as unavailable
            out.sort(key=lambda m: (str(m.get("created", "")), str(m["run_id"])), reverse=True)
            self._listing = (mtime, out, pending)
            return out

    def latest_id(self) -> str:
        runs = self.list()
        if not runs:
            raise NotFound("no runs yet: run the pipeline first")
        return str(runs[0]["run_id"])

    def published_id(self) -> str | None:
        """The published run's id, or None when nothing is published."""
        try:
            record = published(self.runs_dir)
        except ValueError as err:
            log.error("publication record unreadable: %s", err)
            raise Unavailable("the published run cannot be determined; an analyst can publish "
                              "one again with `svrisk publish RUN`") from None
        return None if record is None else str(record["run_id"])

    def resolve(self, run_id: str) -> str:
        if run_id == "latest":
            return self.latest_id()
        if run_id == "published":
            rid = self.published_id()
            if rid is None:
                raise NotFound("no run is published yet: an analyst publishes one with "
                               "`svrisk publish RUN` or POST /runs/{run_id}/publish")
            if not (self.runs_dir / rid / rc.RUN_JSON.path).is_file():
                raise Unavailable(f"the published run {rid!r} is not on the server any more; "
                                  "an analyst should publish another")
            return rid
        return run_id

    def stamp(self, run_id: str) -> tuple:
        """(resolved run id, modification times of its files): what a served answer was made from."""
        run_id = self.resolve(run_id)
        p = self.path(run_id)
        try:
            return (run_id, *((p / f).stat().st_mtime_ns if (p / f).exists() else 0
                              for f in STAMP_FILES))
        except OSError:
            raise Unavailable(f"run {run_id!r} cannot be read now") from None

    def get(self, run_id: str) -> CachedRun:
        stamp = self.stamp(run_id)
        run_id = stamp[0]
        p = self.runs_dir / run_id
        with self._lock:
            cached = self._cache.get(run_id)
            if cached is not None and cached.stamp == stamp:
                self._cache.move_to_end(run_id)
                return cached
        with self._load_lock:
            with self._lock:
                cached = self._cache.get(run_id)
                if cached is not None and cached.stamp == stamp:
                    return cached
            try:
                run = load_run(p)
                cached = CachedRun(stamp, run, run_layers(run))
            except (ValueError, OSError, KeyError) as err:
                # damaged or vanishing files: said in the log, a 503 without paths to the client
                log.error("run %s cannot be served: %s", run_id, err)
                raise Unavailable(f"run {run_id!r} cannot be served: its files are incomplete "
                                  "or damaged (the server log says which)") from None
            with self._lock:
                self._cache[run_id] = cached
                self._cache.move_to_end(run_id)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return cached

    def warm(self, run_id: str = "published") -> str | None:
        """Make what the heavy endpoints serve now (tables, layers, GeoJSON); the run's id or None.

        Called when the service starts and when a run is published, so the first clients
        after a publication do not wait for it. Nothing is raised: a run that cannot be
        read is reported by the requests that ask for it.
        """
        try:
            rid = self.resolve(run_id)
            self.ranking_records(rid)
            self.ranking_csv(rid)
            for name in self.layer_names(rid):
                self.layer(rid, name).geometry("web")
                self.layer_geojson(rid, name)
            return rid
        except (NotFound, Unavailable) as err:
            log.info("nothing to precompute for %s: %s", run_id, err)
            return None

    def cached_ids(self) -> list[str]:
        """Runs held in memory, least recently used first."""
        with self._lock:
            return list(self._cache)

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

    def ranking_records(self, run_id: str) -> list[dict]:
        """The ranking's rows as JSON-safe dicts, made once per run (pages are slices)."""
        c = self.get(run_id)
        table = self.table(run_id)
        with self._lock:
            if c.rows is None:
                c.rows = records(table)
            return c.rows

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
                flat = gl.flatten(c.layers[name])
                geom = flat.geometry.name
                # served coordinates: millimetres in BNG, 1e-7 degrees (about 1 cm) in lon/lat
                bng = _rounded(flat.to_crs(WORKING_CRS).geometry.values, 3)
                web = _rounded(flat.to_crs(gl.WEB_CRS).geometry.values, 7)
                ids = feature_ids(name, flat)
                frame = pd.DataFrame(flat.drop(columns=geom)).reset_index(drop=True)
                c.web[name] = LayerCache(name, ids, records(frame), frame, {"web": web, "bng": bng},
                                         {"web": shapely.bounds(web), "bng": shapely.bounds(bng)},
                                         {fid: i for i, fid in enumerate(ids)}, column_types(frame))
            return c.web[name]

    def layer_geojson(self, run_id: str, name: str) -> bytes:
        lc = self.layer(run_id, name)
        with self._lock:
            if lc._body is None:
                lc._body = json.dumps({"type": "FeatureCollection", "name": name,
                                       "features": lc.features}).encode("utf-8")
            return lc._body


__all__ = ["NotFound", "RunRepository", "Unavailable", "feature_ids", "records"]
