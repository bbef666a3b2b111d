"""Event sums for the feature builder: one function per partition of the events table, summed.

The work that grows with the number of events is (1) finding each event's unit,
(2) summing events and harm per unit, month and group, and (3) summing distance
kernels (near-repeat, KDE) per unit and month. Each is a function of one piece
of the events whose results add up:

* :func:`locate_events` - one piece of the events table -> unit, month, group,
  harm, x, y per event (``UnitSet.locate``, point in polygon);
* :func:`cube_part` - located events -> partial (unit, month, group) sums
  (:func:`features.incidents.cube_cells`);
* :func:`kernel_part` - located events -> partial (unit, month) kernel sums
  (:func:`features.incidents.kernel_cells`);
* :func:`counts_part` - located events -> the assignment report's counts;
* :func:`piece_sums` - all three for one :class:`Piece`, as :class:`PartialSums`.

**Pieces.** A store's events are a partitioned dataset, one file per month and
spatial zone (see :mod:`sources.store`). :func:`event_pieces` plans the
pieces the engines work on: by default one per partition file (a file larger than
``max_rows`` is split at row ranges; with ``merge_rows`` small neighbouring files
are taken together), or exactly ``npartitions`` equal row ranges. A piece is read
on its own (:func:`read_piece`, only the columns summed): no shuffle at run time.

**Engines.** :func:`event_sums` maps :func:`piece_sums` over the pieces with the
engine's ``map_reduce`` and adds the partial sums in a fixed tree
(:func:`features.reduce.tree_reduce`): in this process (the default), on a process pool using every
core (``service.workers``), or on a Dask cluster, one task per piece and the tree
of additions on the workers. The tree is the same whoever runs it, so the local
engine gives identical sums with 1 or 16 workers; the Dask engine adds in the same
tree as well, so counts are equal and harm and kernel sums agree to rounding
(relative 1e-12) when the pieces differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely
from pyproj import CRS
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
from features.reduce import serial_map_reduce
from geo.crs import WORKING_CRS, check_crs
from geo.units import assignment_counts
from sources.memstore import as_store

EVENT_COLUMNS = ("month", "group", "harm")
DEFAULT_CHUNK_ROWS = 250_000
"""Most events in one piece: about 100 MB of working memory per piece (per worker)."""
MERGE_ROWS = 50_000
"""Neighbouring partition files smaller than this are read as one piece (a borough's months are a
few thousand events each: one task per month would cost more in overhead than it gains)."""
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

MapReduce = Callable[..., object]
"""``map_reduce(func, items, combine, shared=(), rows=None) -> combine-tree of [func(item, *shared) for item
in items]`` (``rows``: the events of all items, so a pool can keep a small job in process)."""


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
        Pieces the events were processed in.
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


@dataclass
class PartialSums:
    """The sums of some pieces: cube cells, kernel cells, assignment counts (add with :func:`add_partials`)."""

    cube: pd.DataFrame
    kernel: pd.DataFrame
    counts: dict
    pieces: int = 1


# ---------------------------------------------------------------------------- partition work


def locate_events(part: gpd.GeoDataFrame, units, groups: list[str], target_groups: list[str]) -> pd.DataFrame:
    """One piece of the events table -> one row per event: its unit and what is summed.

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


def frame_sums(events: gpd.GeoDataFrame, units, groups: list[str], target_groups: list[str]) -> PartialSums:
    """:class:`PartialSums` of one frame of events."""
    located = locate_events(events, units, groups, target_groups)
    counts = {k: int(v) for k, v in counts_part(located).iloc[0].items()}
    return PartialSums(cube_part(located), kernel_part(located, units.centroids), counts)


def piece_sums(piece: Piece, units, groups: list[str], target_groups: list[str]) -> PartialSums:
    """Read one piece and sum it: the task both engines run, once per piece."""
    return frame_sums(read_piece(piece), units, groups, target_groups)


def add_partials(parts: Sequence[PartialSums]) -> PartialSums:
    """The sum of several :class:`PartialSums` (cells with the same key added, in the given order)."""
    parts = list(parts)
    if len(parts) == 1:
        return parts[0]
    counts = {k: sum(int(p.counts.get(k, 0)) for p in parts) for k in COUNT_KEYS}
    return PartialSums(combine_cells([p.cube for p in parts], CUBE_KEYS),
                       combine_cells([p.kernel for p in parts], KERNEL_KEYS), counts,
                       sum(p.pieces for p in parts))


def finish_sums(cube: pd.DataFrame, kernel: pd.DataFrame, counts: dict, units, groups: list[str],
                engine: str = "local", partitions: int = 1) -> EventSums:
    """The cube and kernel sums from fully added cells (both engines end here)."""
    cube_obj = MonthlyCube.from_cells(cube, len(units), groups)
    kernel_obj = KernelSums.from_cells(kernel, len(units), cube_obj.origin, len(cube_obj.months))
    return EventSums(cube_obj, kernel_obj, {k: int(counts.get(k, 0)) for k in COUNT_KEYS}, engine, partitions)


# ---------------------------------------------------------------------------- pieces and reading


@dataclass(frozen=True, eq=False)
class Piece:
    """One unit of parallel work: row ranges ``(file, start, stop)`` of Parquet files read as one
    frame, or (in-memory stores) the rows of ``frame``."""

    parts: tuple[tuple[str, int, int], ...] = ()
    frame: gpd.GeoDataFrame | None = None

    @property
    def rows(self) -> int:
        if self.frame is not None:
            return len(self.frame)
        return sum(b - a for _, a, b in self.parts)


def _check_events(columns, crs, where: str) -> None:
    missing = [c for c in EVENT_COLUMNS if c not in columns]
    if missing or "geometry" not in columns:
        raise ValueError(f"events table: missing columns {missing or ['geometry']} ({where})")
    check_crs(crs, f"events table ({where})")


def _geo_column(schema, where: str) -> str:
    """The WKB geometry column of a GeoParquet file, after checking its columns and CRS."""
    import json

    meta = json.loads((schema.metadata or {}).get(b"geo", b"{}"))
    col = meta.get("primary_column", "geometry")
    info = meta.get("columns", {}).get(col, {})
    crs = CRS.from_user_input(info["crs"]) if info.get("crs") else None
    names = set(schema.names)
    _check_events(names - {col} | ({"geometry"} if col in names else set()), crs, where)
    if info.get("encoding", "WKB").upper() != "WKB":
        raise ValueError(f"events table: geometry encoding {info['encoding']!r} is not WKB ({where})")
    return col


def _plan(sizes: Sequence[int], npartitions: int | None, max_rows: int, merge_rows: int) -> list[list[tuple]]:
    """Pieces as lists of ``(source, start, stop)`` over sources of ``sizes`` rows, in order.

    ``npartitions``: that many equal row ranges over all sources together (fewer if there
    are fewer rows). Otherwise one piece per source, a source over ``max_rows`` split into
    equal ranges, and neighbouring pieces joined while together at most ``merge_rows``.
    The plan depends on the sizes only, never on who runs it.
    """
    total = int(sum(sizes))
    starts = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    if total == 0:
        return [[(0, 0, 0)]] if len(sizes) else []
    if npartitions is not None:
        if npartitions < 1:
            raise ValueError(f"npartitions must be >= 1, got {npartitions!r}")
        n = min(int(npartitions), total)
        edges = np.round(np.linspace(0, total, n + 1)).astype(np.int64)
        out = []
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            first = int(np.searchsorted(starts, a, side="right") - 1)
            last = int(np.searchsorted(starts, b, side="left") - 1)
            out.append([(s, int(max(a, starts[s]) - starts[s]), int(min(b, starts[s + 1]) - starts[s]))
                        for s in range(first, last + 1) if min(b, starts[s + 1]) > max(a, starts[s])])
        return out
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows!r}")
    pieces: list[list[tuple]] = []
    for s, size in enumerate(sizes):
        k = max(1, -(-int(size) // int(max_rows)))
        edges = np.round(np.linspace(0, size, k + 1)).astype(np.int64)
        pieces += [[(s, int(a), int(b))] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    merged: list[list[tuple]] = []
    for p in pieces:
        if merged and sum(b - a for _, a, b in merged[-1]) + sum(b - a for _, a, b in p) <= merge_rows:
            merged[-1] = merged[-1] + p
        else:
            merged.append(p)
    return merged


def event_pieces(store, npartitions: int | None = None, max_rows: int = DEFAULT_CHUNK_ROWS,
                 merge_rows: int = MERGE_ROWS) -> list[Piece]:
    """The pieces of the events table the engines map over (see the module notes and :func:`_plan`).

    Checks the columns and CRS once here, so a piece can be read without checks.
    """
    store = as_store(store)
    if not store.has("events"):
        raise ValueError("events table: the store has no events")
    files = store.files("events") if hasattr(store, "files") else None
    if files is None:
        events = store.table("events")
        if not isinstance(events, gpd.GeoDataFrame):
            raise ValueError(f"events table: missing columns {['geometry']}")
        _check_events(set(events.columns) | {"geometry"}, events.crs, "in-memory store")
        events = events[[*EVENT_COLUMNS, events.geometry.name]]
        plan = _plan([len(events)], npartitions, max_rows, merge_rows)
        return [Piece(frame=events.iloc[seg[0][1]:seg[-1][2]]) for seg in plan]
    metas = [pq.read_metadata(f) for f in files]
    for f in {0, len(files) - 1}:
        _geo_column(metas[f].schema.to_arrow_schema(), str(files[f]))
    plan = _plan([m.num_rows for m in metas], npartitions, max_rows, merge_rows)
    return [Piece(parts=tuple((str(files[s]), a, b) for s, a, b in seg)) for seg in plan]


def _read_range(path: str, start: int, stop: int) -> pd.DataFrame:
    pf = pq.ParquetFile(path)
    col = _geo_column(pf.schema_arrow, path)
    if pf.num_row_groups == 0:
        return pf.schema_arrow.empty_table().select([*EVENT_COLUMNS, col]).to_pandas().rename(columns={col: "geometry"})
    sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
    edges = np.r_[0, np.cumsum(sizes)]
    groups = [i for i in range(len(sizes)) if edges[i] < stop and edges[i + 1] > start] or [0]
    table = pf.read_row_groups(groups, columns=[*EVENT_COLUMNS, col])
    offset = int(edges[groups[0]])
    frame = table.slice(start - offset, stop - start).to_pandas()
    return frame.rename(columns={col: "geometry"})


def read_piece(piece: Piece) -> gpd.GeoDataFrame:
    """The events of one piece: ``month``, ``group``, ``harm`` and the point, EPSG:27700."""
    if piece.frame is not None:
        return piece.frame
    frames = [_read_range(path, a, b) for path, a, b in piece.parts]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    geom = gpd.GeoSeries.from_wkb(frame.pop("geometry"), crs=WORKING_CRS)
    return gpd.GeoDataFrame(frame, geometry=geom.values, crs=WORKING_CRS)


def iter_events(store, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[gpd.GeoDataFrame]:
    """The events table in pieces of at most ``chunk_rows``, with only the columns summed."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
    for piece in event_pieces(store, max_rows=chunk_rows, merge_rows=chunk_rows):
        yield read_piece(piece)


# ---------------------------------------------------------------------------- engines


def event_sums(store, units, groups: list[str], target_groups: list[str], *,
               chunk_rows: int = DEFAULT_CHUNK_ROWS, npartitions: int | None = None,
               map_reduce: MapReduce | None = None, engine: str = "local") -> EventSums:
    """The events summed per unit, month and group, piece by piece with ``map_reduce``.

    Parameters
    ----------
    chunk_rows : int
        Most events in one piece (a larger partition file is split).
    npartitions : int, optional
        Exactly this many pieces (equal row ranges) instead of one per partition file
        (small neighbouring files joined up to :data:`MERGE_ROWS`).
    map_reduce : callable, optional
        ``map_reduce(func, items, combine, shared, rows=events)`` (:func:`serial_map_reduce`, the default;
        a process pool or a Dask cluster from :class:`service.engine.Engine`).
    engine : str
        Recorded in the result.

    The pieces, and the tree their sums are added in, depend on the store alone, so the
    sums are the same to the last bit whoever runs the pieces (one process, a pool, a
    cluster). Memory stays near one piece's working set per worker plus the (units x
    months x groups) arrays, whatever the number of events.
    """
    pieces = event_pieces(store, npartitions, chunk_rows, min(MERGE_ROWS, chunk_rows))
    run = map_reduce or serial_map_reduce
    total = run(piece_sums, pieces, add_partials, (units, list(groups), list(target_groups)),
                rows=sum(p.rows for p in pieces))
    return finish_sums(total.cube, total.kernel, total.counts, units, groups, engine, len(pieces))


def read_events_dask(store, npartitions: int | None = None):
    """The events table as a dask-geopandas GeoDataFrame, one partition per piece (no shuffle).

    By default a partition is one partition file of the store (month x spatial zone), so
    nearby events of one month are together already; ``npartitions`` splits the rows evenly.
    """
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401  (registers GeoDataFrame partitions with dask)

    pieces = event_pieces(store, npartitions, max_rows=DEFAULT_CHUNK_ROWS)
    meta = gpd.GeoDataFrame({"month": pd.Series(dtype="datetime64[us]"), "group": pd.Series(dtype="string"),
                             "harm": pd.Series(dtype=float)}, geometry=gpd.GeoSeries([], crs=WORKING_CRS),
                            crs=WORKING_CRS)
    return dd.from_map(read_piece, pieces, meta=meta, enforce_metadata=False)
