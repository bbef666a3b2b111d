"""Partition functions of the scaled pipeline and the scaled generator (no Dask needed).

Two 100 m square units side by side, a handful of events: every count and kernel
weight below can be checked by hand.
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from features.incidents import KDE_BANDWIDTH_M, cube_cells, kernel_cells, month_ordinal
from features.reduce import TreeReducer, tree_reduce
from features.scale import (
    Piece,
    _plan,
    counts_part,
    event_pieces,
    event_sums,
    iter_events,
    locate_events,
    read_piece,
)
from geo.units import UnitSet
from sources.demo.borough import CrimeTypeRate, DemoProcess, generate_demo
from sources.demo.scale import MAX_BOROUGHS, generate_scaled
from sources.memstore import MemoryStore

GROUPS = ["violence", "robbery", "theft"]
TARGET = ["violence", "robbery"]


def two_units() -> UnitSet:
    frame = gpd.GeoDataFrame(
        {"unit_id": ["A", "B"], "name": ["a", "b"], "area_m2": [1e4, 1e4]},
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)], crs="EPSG:27700",
    )
    return UnitSet(frame, "test")


def events() -> gpd.GeoDataFrame:
    # A: 2 violence in Jan (harm 2 + 3), 1 theft in Feb; B: 1 robbery in Feb (harm 5);
    # one violence event far outside both units (counted nowhere, still a month with data)
    return gpd.GeoDataFrame(
        {
            "month": pd.to_datetime(["2018-01-01", "2018-01-01", "2018-02-01", "2018-02-01", "2018-02-01"]),
            "group": ["violence", "violence", "theft", "robbery", "violence"],
            "harm": [2.0, 3.0, 0.5, 5.0, 1.0],
        },
        geometry=shapely.points([(10, 10), (20, 20), (30, 30), (150, 50), (5000, 5000)]),
        crs="EPSG:27700",
    )


def test_month_ordinal_counts_months_from_year_zero():
    got = month_ordinal(pd.to_datetime(["2018-01-01", "2018-02-15", None]))
    assert got.tolist() == [2018 * 12, 2018 * 12 + 1, -1]


def test_cube_cells_sum_events_per_unit_month_group():
    located = locate_events(events(), two_units(), GROUPS, TARGET)
    assert located["unit"].tolist() == [0, 0, 0, 1, -1]
    cells = cube_cells(located["unit"], located["m"], located["g"], located["harm"])
    jan, feb = 2018 * 12, 2018 * 12 + 1
    rows = {(r.unit, r.m, r.g): (r.n, r.harm) for r in cells.itertuples()}
    assert rows == {
        (-1, feb, -1): (1.0, 0.0),  # the event outside every unit only marks February
        (0, jan, 0): (2.0, 5.0),
        (0, feb, 2): (1.0, 0.5),
        (1, feb, 1): (1.0, 5.0),
    }


def test_kernel_cells_by_hand():
    # unit point (50, 50); one event 200 m north in January
    cells = kernel_cells(np.array([[50.0, 50.0]]), np.array([[50.0, 250.0]]), np.array([2018 * 12]))
    h = KDE_BANDWIDTH_M
    assert cells["near"].iloc[0] == pytest.approx(math.exp(-1.0))
    assert cells["kde"].iloc[0] == pytest.approx(math.exp(-(200**2) / (2 * h * h)) / (2 * math.pi * h * h) * 1e6)
    far = kernel_cells(np.array([[50.0, 50.0]]), np.array([[50.0, 1500.0]]), np.array([2018 * 12]))
    assert len(far) == 0  # beyond 1 km: nothing


@pytest.mark.parametrize("chunk_rows", [1, 2, 5])
def test_chunked_sums_equal_one_pass(chunk_rows):
    units = two_units()
    sums = event_sums({"events": events()}, units, GROUPS, TARGET, chunk_rows=chunk_rows)
    assert sums.partitions == math.ceil(5 / chunk_rows)
    cube = sums.cube
    assert list(cube.months) == list(pd.to_datetime(["2018-01-01", "2018-02-01"]))
    assert cube.counts[:, :, 0].tolist() == [[2.0, 0.0], [0.0, 0.0]]  # violence
    assert cube.harm[:, :, 1].tolist() == [[0.0, 0.0], [0.0, 5.0]]  # robbery harm
    assert cube.counts[:, :, 2].tolist() == [[0.0, 1.0], [0.0, 0.0]]  # theft
    assert sums.assignment == {"read": 5, "no_location": 0, "assigned": 4, "outside": 1, "on_shared_boundary": 0}
    # near-repeat input: 3 target events within 1 km of A's point, the one at (5000, 5000) is not
    assert sums.kernel.near.sum() > 0
    whole = event_sums({"events": events()}, units, GROUPS, TARGET, chunk_rows=100)
    np.testing.assert_allclose(sums.kernel.near, whole.kernel.near, rtol=1e-12)
    np.testing.assert_allclose(sums.kernel.kde, whole.kernel.kde, rtol=1e-12)


def test_point_on_shared_boundary_counted_once():
    ev = events().iloc[:1].copy()
    ev.geometry = shapely.points([(100.0, 50.0)])  # on the edge between A and B
    located = locate_events(ev, two_units(), GROUPS, TARGET)
    assert located["unit"].tolist() == [0]  # "A" sorts first
    assert counts_part(located).iloc[0].to_dict()["on_shared_boundary"] == 1


def test_iter_events_streams_only_needed_columns(tmp_path):
    ev = events().assign(location="On or near X", outcome="none")
    ev.to_parquet(tmp_path / "events.parquet")
    (tmp_path / "ingest_report.json").write_text("{}")
    from sources.store import Store

    chunks = list(iter_events(Store(tmp_path), chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 1, 2]  # equal row ranges of at most chunk_rows
    assert list(chunks[0].columns) == ["month", "group", "harm", "geometry"]
    assert chunks[2].crs.to_epsg() == 27700


def test_missing_column_named():
    ev = events().drop(columns="harm")
    with pytest.raises(ValueError, match=r"missing columns \['harm'\]"):
        next(iter_events(MemoryStore({"events": ev})))


def test_plan_one_piece_per_file_split_and_joined():
    # a file over max_rows is split in equal ranges; small neighbours are joined up to merge_rows
    assert _plan([10, 1, 1, 1, 10], None, 8, 8) == [
        [(0, 0, 5)], [(0, 5, 10), (1, 0, 1), (2, 0, 1), (3, 0, 1)], [(4, 0, 5)], [(4, 5, 10)]]
    assert _plan([3, 3], None, 100, 0) == [[(0, 0, 3)], [(1, 0, 3)]]
    assert _plan([0], None, 8, 8) == [[(0, 0, 0)]]  # an empty table is one empty piece


def test_plan_exact_partitions_cross_file_boundaries():
    plan = _plan([3, 3, 3], 7, 100, 0)
    assert len(plan) == 7
    rows = [(s, r) for piece in plan for s, a, b in piece for r in range(a, b)]
    assert rows == [(s, r) for s in range(3) for r in range(3)]  # every row once, in order
    assert len(_plan([2, 1], 10, 100, 0)) == 3  # no more pieces than rows


def _parenthesise(group):
    return "(" + ",".join(group) + ")"


@pytest.mark.parametrize("split_every", [2, 3, 8])
def test_streamed_tree_adds_in_the_same_order_as_the_level_by_level_tree(split_every):
    for n in range(1, 40):
        items = [str(i) for i in range(n)]
        reducer = TreeReducer(_parenthesise, split_every)
        for item in items:
            reducer.push(item)
        assert reducer.result() == tree_reduce(items, _parenthesise, split_every)
    assert tree_reduce([str(i) for i in range(5)], _parenthesise, 2) == "(((0,1),(2,3)),4)"


def test_pieces_of_a_partitioned_store_read_back_every_event(tmp_path):
    from sources.store import Store, write_partitioned

    many = pd.concat([events()] * 7, ignore_index=True)  # 35 events, 2 months
    many["harm"] = np.arange(len(many), dtype=float)
    write_partitioned(gpd.GeoDataFrame(many, crs="EPSG:27700"), tmp_path / "events.parquet",
                      partition_rows=100, row_group_rows=4)
    (tmp_path / "ingest_report.json").write_text("{}")
    store = Store(tmp_path)
    assert [f.name for f in store.files("events")] == ["2018-01-z000.parquet", "2018-02-z000.parquet"]
    for n in (None, 3, 11):  # 11 pieces: more than the 2 files, cutting row groups of 4
        pieces = event_pieces(store, npartitions=n, merge_rows=0)
        assert len(pieces) == (2 if n is None else n)
        got = pd.concat([read_piece(p) for p in pieces], ignore_index=True)
        assert sorted(got["harm"]) == list(range(35))
        assert list(got.columns) == ["month", "group", "harm", "geometry"] and got.crs.to_epsg() == 27700
    memory = event_pieces(MemoryStore({"events": many}), npartitions=4)
    assert [p.rows for p in memory] == [9, 9, 8, 9] and isinstance(memory[0], Piece)


# ---------------------------------------------------------------------------- generator

LIGHT = DemoProcess(other_types=(CrimeTypeRate("Burglary", 40, {"resid": 0.4}),),
                    stop_search=CrimeTypeRate("stop and search", 20, {"dep": 0.5}))


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    return generate_scaled(tmp_path_factory.mktemp("scaled"), boroughs=3, years=1, seed=3, process=LIGHT)


def test_scaled_borough_zero_is_the_demo_borough(scaled, tmp_path):
    demo = generate_demo(tmp_path / "demo", seed=3, months=12, process=LIGHT)
    for rel in ["crime/2016-05/2016-05-demo-constabulary-street.csv",
                "crime/2016-12/2016-12-demo-constabulary-stop-and-search.csv"]:
        assert (scaled / rel).read_bytes() == (demo / rel).read_bytes()
    lsoa_demo = gpd.read_file(demo / "boundaries/lsoa2011.gpkg")
    lsoa_all = gpd.read_file(scaled / "boundaries/lsoa2011.gpkg")
    assert lsoa_all.iloc[:120]["LSOA11CD"].tolist() == lsoa_demo["LSOA11CD"].tolist()


def test_scaled_codes_places_and_forces_are_distinct(scaled):
    lsoa = gpd.read_file(scaled / "boundaries/lsoa2011.gpkg")
    assert len(lsoa) == 360 and lsoa["LSOA11CD"].is_unique
    assert {"E01900001", "E01901001", "E01902120"} <= set(lsoa["LSOA11CD"])
    boroughs = gpd.read_file(scaled / "boundaries/borough.gpkg")
    assert boroughs["GSS_CODE"].tolist() == ["E09900001", "E09901001", "E09902001"]
    assert shapely.intersection_all(boroughs.geometry.to_numpy()[:2]).area == 0  # side by side
    stations = pd.read_csv(scaled / "transport/stations.csv")
    assert stations["Station"].is_unique
    assert pd.read_csv(scaled / "schools/schools.csv")["URN"].is_unique
    files = sorted(p.name for p in (scaled / "crime/2016-03").glob("*-street.csv"))
    assert files == ["2016-03-demo-constabulary-02-street.csv", "2016-03-demo-constabulary-03-street.csv",
                     "2016-03-demo-constabulary-street.csv"]
    truth = json.loads((scaled / "truth.json").read_text())
    assert truth["boroughs"] == 3 and [b["gss_code"] for b in truth["borough"]] == boroughs["GSS_CODE"].tolist()


@pytest.mark.parametrize("bad", [0, MAX_BOROUGHS + 1])
def test_scaled_rejects_borough_counts_outside_the_code_ranges(tmp_path, bad):
    with pytest.raises(ValueError, match=f"boroughs must be an integer from 1 to {MAX_BOROUGHS}, got {bad}"):
        generate_scaled(tmp_path, boroughs=bad, years=1)
