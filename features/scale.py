"""Event sums for the feature builder: chunk by chunk (local engine) or on Dask partitions.

The work that grows with the number of events is (1) finding each event's unit,
(2) summing events and harm per unit, month and group, and (3) summing distance
kernels (near-repeat, KDE) per unit and month. Each is a function of one chunk
of events whose results add up:

* :func:`locate_events` - one chunk of the events table -> unit, month, group,
  harm, x, y per event (``UnitSet.locate``, point in polygon);
* :func:`cube_part` - located events -> partial (unit, month, group) sums
  (:func:`features.incidents.cube_cells`);
* :func:`kernel_part` - located events -> partial (unit, month) kernel sums
  (:func:`features.incidents.kernel_cells`);
* :func:`counts_part` - located events -> the assignment report's counts.

The local engine (:func:`event_sums`) streams the events table from Parquet in
chunks of ``chunk_rows`` and calls them in a loop; the Dask engine
(:func:`event_sums_dask`) reads the same table with dask-geopandas, partitions it
by a spatial key (Hilbert curve), calls the same functions with ``map_partitions``
and adds the partial sums with a dask DataFrame groupby. Both end in
:func:`finish_sums`, which gives the :class:`~features.incidents.MonthlyCube` and
:class:`~features.incidents.KernelSums` the feature windows are sliced from. Counts
are equal between engines; harm and kernel sums are added in a different order,
so they agree to floating-point rounding (relative 1e-12).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from features.incidents import (
    CUBE_KEYS,
    KERNEL_KEYS,
    KernelSums,
    MonthlyCube,
    combine_cells,
    cube_cells,
    group_positions,
    kernel_cells,
    month_ordinal,
)
from features.sources.memstore import as_store
from geo.crs import WORKING_CRS, check_crs
from geo.units import assignment_counts

EVENT_COLUMNS = ("month", "group", "harm")
DEFAULT_CHUNK_ROWS = 250_000
"""Events per chunk on the local engine: about 100 MB of working memory per chunk."""
COUNT_KEYS = ("read", "no_location", "assigned", "outside", "on_shared_boundary")

LOCATED_META = pd.DataFrame({
    "unit": np.zeros(0, np.int64), "m": np.zeros(0, np.int64), "g": np.zeros(0, np.int64),
    "harm": np.zeros(0), "sv": np.zeros(0, bool), "x": np.zeros(0), "y": np.zeros(0),
    "located": np.zeros(0, bool), "shared": np.zeros(0, bool),
})
CUBE_META = pd.DataFrame({"unit": np.zeros(0, np.int64), "m": np.zeros(0, np.int64),
                          "g": np.zeros(0, np.int64), "n": np.zeros(0), "harm": np.zeros(0)})
KERNEL_META = pd.DataFrame({"unit": np.zeros(0, np.int64), "m": np.zeros(0, np.int64),
                            "near": np.zeros(0), "kde": np.zeros(0)})
COUNTS_META = pd.DataFrame({k: np.zeros(0, np.int64) for k in COUNT_KEYS})


@dataclass
class EventSums:
    """What the feature builder needs from the events table, summed.

    Attributes
    ----------
    cube : MonthlyCube
        Events and harm per unit, month and group.
    kernel : KernelSums
        Near-repeat and KDE kernel sums of the target groups per unit and month.
    assignment : dict
        ``read``, ``no_location``, ``assigned``, ``outside``, ``on_shared_boundary``.
    engine : str
        ``"local"`` or ``"dask"``.
    partitions : int
        Chunks (local) or partitions (dask) the events were processed in.
    source : str
        ``"points"`` (the events table) or ``"areas"`` (monthly counts by area, see
        :func:`features.areas.area_sums`: no points, so no kernel sums).
    """

    cube: MonthlyCube
    kernel: KernelSums
    assignment: dict = field(default_factory=dict)
    engine: str = "local"
    partitions: int = 1
    source: str = "points"


# ---------------------------------------------------------------------------- partition work


def locate_events(part: gpd.GeoDataFrame, units, groups: list[str], target_groups: list[str]) -> pd.DataFrame:
    """One chunk of the events table -> one row per event: its unit and what is summed.

    Columns ``unit`` (row position in ``units``, -1 outside), ``m`` (month ordinal),
    ``g`` (position in ``groups``, -1 otherwise), ``harm``, ``sv`` (a target group),
    ``x``, ``y``, ``located`` (has a point), ``shared`` (on a boundary of several units).
    """
    unit, located, shared = units.locate(part)
    geoms = part.geometry.to_numpy()
    x = np.full(len(part), np.nan)
    y = np.full(len(part), np.nan)
    if located.any():
        x[located] = shapely.get_x(geoms[located])
        y[located] = shapely.get_y(geoms[located])
    grp = part["group"].astype("string")
    return pd.DataFrame({
        "unit": unit, "m": month_ordinal(part["month"]), "g": group_positions(grp, groups),
        "harm": part["harm"].to_numpy(dtype=float, na_value=np.nan),
        "sv": grp.isin(list(target_groups)).fillna(False).to_numpy(dtype=bool),
        "x": x, "y": y, "located": located, "shared": shared,
    })


def cube_part(located: pd.DataFrame) -> pd.DataFrame:
    """Partial (unit, month, group) sums of located events (see :func:`cube_cells`)."""
    return cube_cells(located["unit"].to_numpy(), located["m"].to_numpy(), located["g"].to_numpy(),
                      located["harm"].to_numpy())


def kernel_part(located: pd.DataFrame, unit_xy: np.ndarray, tree: cKDTree | None = None) -> pd.DataFrame:
    """Partial (unit, month) kernel sums of the located target-group events (see :func:`kernel_cells`)."""
    pick = (located["sv"] & located["located"]).to_numpy(dtype=bool)
    xy = np.column_stack([located["x"].to_numpy()[pick], located["y"].to_numpy()[pick]])
    return kernel_cells(unit_xy, xy, located["m"].to_numpy()[pick], tree=tree)


def counts_part(located: pd.DataFrame) -> pd.DataFrame:
    """The assignment report's counts of located events, as one row."""
    c = assignment_counts(located["unit"].to_numpy(), located["located"].to_numpy(), located["shared"].to_numpy())
    return pd.DataFrame({k: [np.int64(c[k])] for k in COUNT_KEYS})


def finish_sums(cube: pd.DataFrame, kernel: pd.DataFrame, counts: dict, units, groups: list[str],
                engine: str = "local", partitions: int = 1) -> EventSums:
    """The cube and kernel sums from fully added cells (both engines end here)."""
    cube_obj = MonthlyCube.from_cells(cube, len(units), groups)
    kernel_obj = KernelSums.from_cells(kernel, len(units), cube_obj.origin, len(cube_obj.months))
    return EventSums(cube_obj, kernel_obj, {k: int(counts.get(k, 0)) for k in COUNT_KEYS}, engine, partitions)


# ---------------------------------------------------------------------------- reading


def _check_events(columns, crs, where: str) -> None:
    missing = [c for c in EVENT_COLUMNS if c not in columns]
    if missing or "geometry" not in columns:
        raise ValueError(f"events table: missing columns {missing or ['geometry']} ({where})")
    check_crs(crs, f"events table ({where})")


def iter_events(store, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[gpd.GeoDataFrame]:
    """The events table in chunks of at most ``chunk_rows``, with only the columns summed.

    A store folder is streamed from ``events.parquet`` batch by batch (only
    ``month``, ``group``, ``harm`` and the point are decoded); an in-memory store
    is sliced.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
    store = as_store(store)
    path = store.path("events") if hasattr(store, "path") else None
    if path is not None and path.is_file():
        import json

        import pyarrow.parquet as pq
        from pyproj import CRS

        pf = pq.ParquetFile(path)
        meta = json.loads((pf.schema_arrow.metadata or {}).get(b"geo", b"{}"))
        col = meta.get("primary_column", "geometry")
        info = meta.get("columns", {}).get(col, {})
        crs = CRS.from_user_input(info["crs"]) if info.get("crs") else None
        names = set(pf.schema_arrow.names)
        _check_events(names - {col} | ({"geometry"} if col in names else set()), crs, str(path))
        if info.get("encoding", "WKB").upper() != "WKB":  # pragma: no cover - ingest writes WKB
            yield from _slices(store.table("events"), chunk_rows)
            return
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=[*EVENT_COLUMNS, col]):
            frame = batch.to_pandas()
            geom = gpd.GeoSeries.from_wkb(frame.pop(col), crs=WORKING_CRS)
            yield gpd.GeoDataFrame(frame, geometry=geom.values, crs=WORKING_CRS)
        return
    events = store.table("events")
    if not isinstance(events, gpd.GeoDataFrame):
        raise ValueError(f"events table: missing columns {['geometry']}")
    _check_events(set(events.columns) | {"geometry"}, events.crs, "in-memory store")
    yield from _slices(events[[*EVENT_COLUMNS, events.geometry.name]], chunk_rows)


def _slices(events: gpd.GeoDataFrame, chunk_rows: int) -> Iterator[gpd.GeoDataFrame]:
    if len(events) == 0:
        yield events
    for a in range(0, len(events), chunk_rows):
        yield events.iloc[a:a + chunk_rows]


# ---------------------------------------------------------------------------- engines


def event_sums(store, units, groups: list[str], target_groups: list[str],
               chunk_rows: int = DEFAULT_CHUNK_ROWS) -> EventSums:
    """Local engine: stream the events in chunks and add up each chunk's sums.

    Memory stays near one chunk's working set plus the (units x months x groups)
    arrays, whatever the number of events.
    """
    tree = cKDTree(units.centroids) if len(units) else None
    cubes, kernels, counts, n = [], [], dict.fromkeys(COUNT_KEYS, 0), 0
    for chunk in iter_events(store, chunk_rows):
        located = locate_events(chunk, units, groups, target_groups)
        cubes.append(cube_part(located))
        kernels.append(kernel_part(located, units.centroids, tree))
        for k, v in counts_part(located).iloc[0].items():
            counts[k] += int(v)
        n += 1
        if len(cubes) > 8:  # keep the partial sums small on long inputs
            cubes, kernels = [combine_cells(cubes, CUBE_KEYS)], [combine_cells(kernels, KERNEL_KEYS)]
    return finish_sums(combine_cells(cubes, CUBE_KEYS), combine_cells(kernels, KERNEL_KEYS),
                       counts, units, groups, "local", n)


def read_events_dask(store, npartitions: int | None = None, spatial: bool = True):
    """The events table as a dask-geopandas GeoDataFrame, optionally spatially partitioned.

    ``spatial`` sorts events along a Hilbert curve (``spatial_shuffle``) into
    ``npartitions`` partitions, so each partition's events lie near each other and
    meet few units; events without a point go to a partition of their own.
    """
    import dask_geopandas

    store = as_store(store)
    path = store.path("events") if hasattr(store, "path") else None
    if path is not None and path.is_file():
        first = next(iter_events(store, 1))  # validates columns and CRS, reads one row
        del first
        gdf = dask_geopandas.read_parquet(path, columns=[*EVENT_COLUMNS, "geometry"])
    else:
        events = store.table("events")
        if not isinstance(events, gpd.GeoDataFrame):
            raise ValueError(f"events table: missing columns {['geometry']}")
        _check_events(set(events.columns) | {"geometry"}, events.crs, "in-memory store")
        gdf = dask_geopandas.from_geopandas(events[[*EVENT_COLUMNS, events.geometry.name]],
                                            npartitions=max(npartitions or 1, 1))
    if spatial:
        n = npartitions or gdf.npartitions
        gdf = gdf.spatial_shuffle(by="hilbert", npartitions=n)
    elif npartitions:
        gdf = gdf.repartition(npartitions=npartitions)
    return gdf


def event_sums_dask(store, units, groups: list[str], target_groups: list[str], *,
                    npartitions: int | None = None, spatial: bool = True) -> EventSums:
    """Dask engine: the same partition functions via ``map_partitions``, summed on the cluster.

    Runs on the current ``distributed`` client (see :mod:`service.engine`).
    """
    import dask

    gdf = read_events_dask(store, npartitions, spatial)
    located = gdf.map_partitions(locate_events, units, list(groups), list(target_groups), meta=LOCATED_META)
    cubes = located.map_partitions(cube_part, meta=CUBE_META)
    kernels = located.map_partitions(kernel_part, units.centroids, meta=KERNEL_META)
    counts = located.map_partitions(counts_part, meta=COUNTS_META)
    cube_sum = cubes.groupby(CUBE_KEYS).sum()
    kernel_sum = kernels.groupby(KERNEL_KEYS).sum()
    cube, kernel, total = dask.compute(cube_sum, kernel_sum, counts.sum())
    cube = cube.reset_index().sort_values(CUBE_KEYS, kind="stable").reset_index(drop=True)
    kernel = kernel.reset_index().sort_values(KERNEL_KEYS, kind="stable").reset_index(drop=True)
    return finish_sums(cube, kernel, {k: int(v) for k, v in total.items()}, units, groups, "dask",
                       int(located.npartitions))
