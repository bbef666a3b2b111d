"""The data store: validated tables on disk, (Geo)Parquet, one file per table or a partitioned dataset.

``svrisk ingest`` writes a store; everything downstream reads it through
:class:`Store`, never the raw files. Layout::

    <store>/
      ingest_report.json        per input file: sha256, rows read/accepted/rejected, flags
      rejects.parquet           every rejected row with file, row number and reason
      events.parquet/           GeoParquet dataset, EPSG:27700 (see sources.schema):
        2018-01-z000.parquet      one file per month and spatial zone, rows in Hilbert order
        ...
      units_lsoa2011.parquet    one per boundary edition present
      ...

**The events dataset** (:data:`PARTITIONED`) is laid out for parallel work: one file
(a *partition*) per month and spatial zone, each at most about
:data:`PARTITION_ROWS` events, in row groups of at most :data:`ROW_GROUP_ROWS`.
The spatial key of an event is its position along a Hilbert curve over the whole
British National Grid (:func:`hilbert_key`: the same key for the same point in
every store); the zones are ranges of that key chosen from the data so that the
busiest month's zones hold about :data:`PARTITION_ROWS` events each (every month
uses the same zones). A partition is the unit of parallel work: engines read it
whole, with no shuffle at run time (see :mod:`features.scale`). File names are
plain (no ``key=value``), so the folder reads as one table with the table's own
columns in pandas, pyarrow, dask, DuckDB or GDAL; the files sort in month, zone
order, and :meth:`Store.table` returns the rows in that order.
"""

from __future__ import annotations

import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from geo.crs import check_crs

REPORT_NAME = "ingest_report.json"
STORE_VERSION = 4
"""Bumped whenever ingest writes different tables from the same files; an older store is ingested again.
4: events as a partitioned dataset by month and spatial zone."""

PARTITIONED = ("events",)
"""Tables written as a partitioned dataset (a folder of Parquet files) rather than one file."""
PARTITION_ROWS = 100_000
"""Target events per partition file (month x zone): small enough to spread over many workers,
large enough that per-task overhead stays a few per cent of the work."""
ROW_GROUP_ROWS = 50_000
"""Rows per Parquet row group inside a partition (a reader can split a partition at row groups)."""
HILBERT_ORDER = 16
"""The Hilbert curve's grid is 2^16 x 2^16 cells of 20 m over :data:`HILBERT_EXTENT_M`."""
HILBERT_EXTENT_M = (0.0, 0.0, 1_310_720.0, 1_310_720.0)
"""A square covering the British National Grid (0-700 km east, 0-1,300 km north), in EPSG:27700."""
NO_POINT_KEY = np.uint64(1) << np.uint64(2 * HILBERT_ORDER)
"""The spatial key of an event without a point: after every real key (it goes to the last zone)."""
NO_MONTH = "none"
"""File-name month of events without a month."""


class Store:
    """Read access to an ingested store folder.

    Parameters
    ----------
    root : path
        A folder written by ``svrisk ingest`` (it holds ``ingest_report.json``).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / REPORT_NAME).is_file():
            raise FileNotFoundError(
                f"{self.root}: not an svrisk store (no {REPORT_NAME}); run `svrisk ingest` first"
            )

    def path(self, name: str) -> Path:
        """``<store>/<name>.parquet``: a file, or a folder of partition files (:data:`PARTITIONED`)."""
        return self.root / f"{name}.parquet"

    def has(self, name: str) -> bool:
        return self.path(name).exists()

    def files(self, name: str) -> list[Path]:
        """The Parquet files of a table in order: the file itself, or the partitions of a dataset."""
        path = self.path(name)
        if path.is_file():
            return [path]
        if path.is_dir():
            return partition_files(path)
        raise FileNotFoundError(f"{self.root}: the store has no table {name!r}")

    def table(self, name: str) -> pd.DataFrame | gpd.GeoDataFrame:
        """Read one table; point and polygon tables come back as GeoDataFrames in EPSG:27700."""
        path = self.path(name)
        if not path.exists():
            raise FileNotFoundError(f"{self.root}: the store has no table {name!r}")
        try:
            frame = gpd.read_parquet(path)
        except ValueError:  # plain Parquet, no geometry column metadata
            return pd.read_parquet(path)
        check_crs(frame.crs, str(path))
        return frame

    def units(self, edition: str) -> gpd.GeoDataFrame:
        return self.table(f"units_{edition}")

    def editions(self) -> list[str]:
        return sorted(p.stem.removeprefix("units_") for p in self.root.glob("units_*.parquet"))

    def report(self) -> dict:
        return json.loads((self.root / REPORT_NAME).read_text())


# ---------------------------------------------------------------------------- partitioned layout


def partition_files(folder: Path) -> list[Path]:
    """The partition files of a dataset folder, in month then zone order (their names sort so)."""
    return sorted(p for p in Path(folder).glob("*.parquet") if p.is_file())


HILBERT_CHUNK = 4
"""Levels of the curve :func:`hilbert_key` reads at once, by table lookup."""


@functools.cache
def _hilbert_tables(k: int = HILBERT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """The curve through ``k`` levels as two lookup tables, each indexed by
    ``state << 2k | x << k | y`` for every ``k``-bit ``x`` and ``y``: the ``k`` base-4 digits
    of the key (as one number), and the state after.

    The state is how the cell's coordinates are turned on entry: bit 0, x and y swapped; bit 1,
    both complemented. The two commute, so any sequence of turns is one of the four states.
    """
    n = 1 << k
    digits = np.zeros((4, n, n), dtype=np.uint64)
    after = np.zeros((4, n, n), dtype=np.int64)
    for state in range(4):
        for x0 in range(n):
            for y0 in range(n):
                x, y = (x0 ^ (n - 1), y0 ^ (n - 1)) if state & 2 else (x0, y0)
                x, y = (y, x) if state & 1 else (x, y)
                swapped, flipped, d, s = state & 1, state >> 1, 0, n >> 1
                while s:
                    rx, ry = int(x & s > 0), int(y & s > 0)
                    d += s * s * ((3 * rx) ^ ry)
                    if rx and not ry:  # the lower-right quadrant runs the other way: turn it round
                        x, y, flipped = (n - 1) - x, (n - 1) - y, flipped ^ 1
                    if not ry:  # the lower quadrants lie on their side: swap x and y
                        x, y, swapped = y, x, swapped ^ 1
                    s >>= 1
                digits[state, x0, y0] = d
                after[state, x0, y0] = swapped | flipped << 1
    return digits.ravel(), after.ravel()


def hilbert_key(x, y, order: int = HILBERT_ORDER, extent=HILBERT_EXTENT_M) -> np.ndarray:
    """Position of each point along a Hilbert curve over ``extent`` (uint64; NaN -> :data:`NO_POINT_KEY`).

    Points close on the curve are close on the ground, so a range of keys is a compact
    area. The grid is fixed (not fitted to the data), so a point's key is the same in
    every store and in every chunk of an ingest.

    The levels are read :data:`HILBERT_CHUNK` at a time from :func:`_hilbert_tables` (London's
    2M events: 0.2 s, where a level at a time took 1.0 s; the keys are the same, tested).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = 1 << order
    x0, y0, x1, y1 = extent
    missing = ~(np.isfinite(x) & np.isfinite(y))
    xi = np.clip(np.floor((np.nan_to_num(x) - x0) / (x1 - x0) * n), 0, n - 1).astype(np.int64)
    yi = np.clip(np.floor((np.nan_to_num(y) - y0) / (y1 - y0) * n), 0, n - 1).astype(np.int64)
    k = HILBERT_CHUNK
    digits, after = _hilbert_tables(k)
    padded = -(-order // k) * k
    # Levels above ``order`` (coordinates 0 there) each swap x and y and add no digit: start turned
    # so that the swaps they make leave the real levels unturned.
    state = np.full(len(x), (padded - order) & 1, dtype=np.int64)
    d = np.zeros(len(x), dtype=np.uint64)
    mask = (1 << k) - 1
    for shift in range(padded - k, -1, -k):
        at = state << 2 * k | ((xi >> shift) & mask) << k | (yi >> shift) & mask
        d = d << np.uint64(2 * k) | digits[at]
        state = after[at]
    d[missing] = NO_POINT_KEY
    return d


def zone_cuts(keys: np.ndarray, month_code: np.ndarray, partition_rows: int = PARTITION_ROWS) -> np.ndarray:
    """Key values that split the curve into zones of about ``partition_rows`` events in the busiest month.

    Zone ``z`` holds keys in ``[cuts[z-1], cuts[z])``; the cuts are quantiles of the
    keys of all events, so every zone holds about the same share of every month.
    ``month_code`` is any integer code of each event's month.
    """
    if len(keys) == 0:
        return np.zeros(0, dtype=np.uint64)
    busiest = int(np.unique(month_code, return_counts=True)[1].max())
    zones = max(1, -(-busiest // max(int(partition_rows), 1)))
    located = keys[keys != NO_POINT_KEY]
    if zones == 1 or len(located) == 0:
        return np.zeros(0, dtype=np.uint64)
    q = np.quantile(located, np.arange(1, zones) / zones, method="higher").astype(np.uint64)
    return np.unique(q)


def month_codes(month) -> tuple[np.ndarray, list[str]]:
    """(code of each row's month, ``YYYY-MM`` of each code): codes sort as the months, missing last
    (labelled :data:`NO_MONTH`), so file names sort in month order."""
    m = pd.DatetimeIndex(pd.to_datetime(month))
    ordinal = np.where(m.isna(), np.iinfo(np.int64).max, np.asarray(m.year, dtype=np.int64) * 12
                       + np.asarray(m.month, dtype=np.int64) - 1) if len(m) else np.zeros(0, dtype=np.int64)
    uniq, code = np.unique(ordinal, return_inverse=True)
    labels = [NO_MONTH if u == np.iinfo(np.int64).max else f"{u // 12:04d}-{u % 12 + 1:02d}" for u in uniq.tolist()]
    return code.astype(np.int64), labels


def partition_layout(frame: gpd.GeoDataFrame, partition_rows: int = PARTITION_ROWS
                     ) -> tuple[np.ndarray, list[tuple[int, int]], list[str]]:
    """(row order, [start, stop) of each partition in that order, file name of each partition).

    Rows are ordered by month, zone and Hilbert key (stable for equal keys).
    """
    geoms = frame.geometry.to_numpy()
    located = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    x = np.full(len(frame), np.nan)
    y = np.full(len(frame), np.nan)
    if located.any():
        x[located] = shapely.get_x(geoms[located])
        y[located] = shapely.get_y(geoms[located])
    keys = hilbert_key(x, y)
    code, labels = month_codes(frame["month"])
    cuts = zone_cuts(keys, code, partition_rows)
    zone = np.searchsorted(cuts, keys, side="right").astype(np.int64)
    order = np.lexsort((keys, zone, code))
    part = (code * (len(cuts) + 1) + zone)[order]
    if not len(part):
        return order, [], []
    starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
    bounds = list(zip(starts.tolist(), [*starts[1:].tolist(), len(part)], strict=True))
    first = order[starts]
    names = [f"{labels[c]}-z{z:03d}.parquet" for c, z in zip(code[first].tolist(), zone[first].tolist(), strict=True)]
    return order, bounds, names


def _one_chunk(column: pd.Series) -> pd.Series:
    """``column`` with its Arrow chunks joined into one: a take from a column of many chunks (one per
    file an ingest read) joins them first, every time."""
    to_arrow = getattr(column.array, "__arrow_array__", None)
    arrow = to_arrow() if to_arrow is not None else None
    if not isinstance(arrow, pa.ChunkedArray) or arrow.num_chunks < 2:
        return column
    joined = pd.Series(type(column.array)(arrow.combine_chunks()), index=column.index, name=column.name)
    return joined if joined.dtype == column.dtype else column


def _joined(frame: pd.DataFrame, pool: ThreadPoolExecutor) -> pd.DataFrame:
    """``frame`` with each column in one chunk (:func:`_one_chunk`), joined on ``pool``."""
    if frame.columns.empty:
        return frame
    out = pd.concat(list(pool.map(lambda name: _one_chunk(frame[name]), frame.columns)), axis=1)
    if isinstance(frame, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(out, geometry=frame.geometry.name, crs=frame.crs)
    return out


def write_partitioned(frame: gpd.GeoDataFrame, folder: Path, partition_rows: int = PARTITION_ROWS,
                      row_group_rows: int = ROW_GROUP_ROWS, threads: int | None = None) -> dict:
    """Write ``frame`` as a dataset folder of month x zone partitions; returns the layout for the report.

    Rows are sorted by month, zone and key, so the files do not depend on the order the
    rows came in, except that rows with the same month and key (the same 20 m cell, or no
    point) keep their order in ``frame``. The files are written by ``threads`` threads
    (None: one per core; encoding WKB and Parquet runs outside the GIL).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    order, bounds, names = partition_layout(frame, partition_rows)
    if not bounds:  # an empty table still has one (empty) file, so its columns are known
        bounds, names = [(0, 0)], [f"{NO_MONTH}-z000.parquet"]
    threads = max(1, threads or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        joined = _joined(frame, pool)

        def write(i: int) -> int:  # each partition's rows taken on its thread, as it is written
            a, b = bounds[i]
            part = joined.take(order[a:b]).reset_index(drop=True)
            part.to_parquet(folder / names[i], index=False, row_group_size=max(int(row_group_rows), 1))
            return b - a

        sizes = list(pool.map(write, range(len(bounds))))
    return {"files": len(bounds), "rows_per_file_max": int(max(sizes)), "partition_rows": int(partition_rows),
            "row_group_rows": int(row_group_rows), "key": f"month, zone of a Hilbert curve (order {HILBERT_ORDER})"}
