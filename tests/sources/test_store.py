"""The store's partitioned events layout: Hilbert key, month x zone files, row groups, reading back."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from sources.store import (
    NO_POINT_KEY,
    Store,
    hilbert_key,
    partition_files,
    write_partitioned,
)


def test_hilbert_key_visits_every_cell_once_stepping_to_a_neighbour():
    n = 8
    xs, ys = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    keys = hilbert_key(xs.ravel(), ys.ravel(), order=3, extent=(0, 0, n, n))
    assert sorted(keys.tolist()) == list(range(n * n))
    order = np.argsort(keys)
    steps = np.abs(np.diff(xs.ravel()[order])) + np.abs(np.diff(ys.ravel()[order]))
    assert (steps == 1).all()  # consecutive keys are side-by-side cells
    assert hilbert_key([np.nan], [1.0])[0] == NO_POINT_KEY


def _xy2d(n: int, x: int, y: int) -> int:
    """The textbook Hilbert index of cell (x, y) on an n x n grid, one level at a time."""
    d, s = 0, n // 2
    while s > 0:
        rx, ry = int(x & s > 0), int(y & s > 0)
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:
            if rx == 1:
                x, y = n - 1 - x, n - 1 - y
            x, y = y, x
        s //= 2
    return d


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 7, 8, 9])
def test_hilbert_keys_read_in_chunks_of_levels_equal_the_textbook_index_cell_by_cell(order):
    n = 1 << order
    xs, ys = np.meshgrid(np.arange(n), np.arange(n))
    xs, ys = xs.ravel(), ys.ravel()
    keys = hilbert_key(xs + 0.5, ys + 0.5, order=order, extent=(0, 0, n, n))
    pick = np.random.default_rng(order).choice(n * n, min(n * n, 3000), replace=False)
    assert keys[pick].tolist() == [_xy2d(n, int(x), int(y)) for x, y in zip(xs[pick], ys[pick], strict=True)]
    assert np.array_equal(np.sort(keys), np.arange(n * n))


def test_hilbert_key_of_the_store_grid_is_unchanged():  # stores written before keep their layout
    keys = hilbert_key([530_000.0, 0.0, 1_310_719.9], [180_000.0, 0.0, 1_310_719.9])
    n = 1 << 16
    cells = [(int(530_000 / 20), int(180_000 / 20)), (0, 0), (n - 1, n - 1)]
    assert keys.tolist() == [_xy2d(n, x, y) for x, y in cells]


def _events(n: int, months: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(520_000, 540_000, n)
    y = rng.uniform(175_000, 195_000, n)
    geoms = shapely.points(x, y)
    geoms[:3] = None  # events without a point
    return gpd.GeoDataFrame({
        "event_id": pd.array([f"e{i}" for i in range(n)], dtype="string"),
        "month": pd.to_datetime("2019-01-01") + pd.to_timedelta(0, "D")
        + pd.to_timedelta(rng.integers(0, months, n) * 31, "D"),
        "harm": np.arange(n, dtype=float),
    }, geometry=geoms, crs="EPSG:27700").assign(month=lambda f: f["month"].dt.to_period("M").dt.to_timestamp())


def test_a_frame_of_many_arrow_chunks_is_written_as_the_same_frame_in_one(tmp_path):
    ev = _events(3_000, months=3).assign(category=lambda f: pd.array(
        [f"cat{i % 7}" if i % 11 else None for i in range(len(f))], dtype="string[pyarrow]"),
        event_id=lambda f: f["event_id"].astype("string[pyarrow]"))
    pieces = pd.concat([ev.iloc[a:a + 250] for a in range(0, len(ev), 250)], ignore_index=True)
    chunked = gpd.GeoDataFrame(pieces, geometry="geometry", crs=ev.crs)
    assert chunked["category"].array.__arrow_array__().num_chunks == 12  # as an ingest's concat leaves it
    write_partitioned(ev, tmp_path / "one", partition_rows=400, row_group_rows=150)
    write_partitioned(chunked, tmp_path / "many", partition_rows=400, row_group_rows=150)
    one, many = partition_files(tmp_path / "one"), partition_files(tmp_path / "many")
    assert [p.name for p in one] == [p.name for p in many] and len(one) > 3
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one, many, strict=True))
    back = pd.concat([pd.read_parquet(p) for p in many], ignore_index=True)
    assert sorted(back["category"].dropna()) == sorted(ev["category"].dropna())
    assert back["category"].isna().sum() == ev["category"].isna().sum()


def test_partitions_by_month_and_zone_with_bounded_row_groups(tmp_path):
    ev = _events(3_000, months=3)
    layout = write_partitioned(ev, tmp_path / "events.parquet", partition_rows=400, row_group_rows=150)
    files = partition_files(tmp_path / "events.parquet")
    months = sorted({f.name[:7] for f in files})
    zones = sorted({f.stem[-4:] for f in files})
    assert months == ["2019-01", "2019-02", "2019-03"]
    assert len(zones) == 3  # the busiest month has about 1,000 events: 3 zones of about 400
    assert layout["files"] == len(files) == 9 and layout["rows_per_file_max"] <= 500
    for f in files:
        meta = pq.read_metadata(f)
        assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 150
        part = gpd.read_parquet(f)
        assert (part["month"].dt.strftime("%Y-%m") == f.name[:7]).all()
        located = ~part.geometry.isna()
        keys = hilbert_key(part.geometry[located].x, part.geometry[located].y)
        assert (np.diff(keys.astype(np.int64)) >= 0).all()  # Hilbert order inside a file
    last = [f for f in files if f.stem.endswith("z002")]
    assert sum(gpd.read_parquet(f).geometry.isna().sum() for f in last) == 3  # no point: the last zone


def test_dataset_reads_back_as_the_table_whatever_the_input_order(tmp_path):
    ev = _events(500, months=2, seed=1).iloc[3:].reset_index(drop=True)  # every event has its own point
    write_partitioned(ev, tmp_path / "a" / "events.parquet", partition_rows=100)
    write_partitioned(ev.sample(frac=1, random_state=3), tmp_path / "b" / "events.parquet", partition_rows=100)
    for sub in ("a", "b"):
        (tmp_path / sub / "ingest_report.json").write_text("{}")
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    assert a.has("events") and a.files("events") and not a.has("nothing")
    ta, tb = a.table("events"), b.table("events")
    assert isinstance(ta, gpd.GeoDataFrame) and ta.crs.to_epsg() == 27700
    pd.testing.assert_frame_equal(ta, tb)  # same rows, same files, same order
    assert list(ta.columns) == list(ev.columns)
    pd.testing.assert_frame_equal(ta.sort_values("harm").reset_index(drop=True), ev, check_dtype=False)
    assert ta["month"].is_monotonic_increasing


def test_an_empty_table_is_one_empty_file(tmp_path):
    ev = _events(10, months=1).iloc[:0]
    write_partitioned(ev, tmp_path / "events.parquet")
    (tmp_path / "ingest_report.json").write_text("{}")
    table = Store(tmp_path).table("events")
    assert len(table) == 0 and list(table.columns) == list(ev.columns)


def test_the_target_folder_must_be_new(tmp_path):
    (tmp_path / "events.parquet").mkdir()
    with pytest.raises(FileExistsError):
        write_partitioned(_events(5, 1), tmp_path / "events.parquet")
