"""Units of analysis (LSOAs, wards, grid cells) and their spatial weights.

A :class:`UnitSet` is built once per edition and shared by everything that works
on that edition: point assignment, feature building, hotspot statistics. Its
graphs are built on first use, cached, and never changed in place.

Editions come from the store's ``units_<edition>`` tables (``lsoa2011``,
``lsoa2021``, ``ward2018``, ``ward2022``); ``grid<metres>`` (e.g. ``grid250``)
makes square cells and ``hex<metres>`` (e.g. ``hex300``) hexagons clipped to the
borough (see :mod:`geo.grid`); ``grid`` and ``hex`` alone choose the size from the
event locations (:func:`geo.grid.auto_cell_size`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from geo.crs import WORKING_CRS, check_crs
from geo.editions import cell_edition
from geo.grid import make_grid, make_hex_grid

if TYPE_CHECKING:
    from libpysal.graph import Graph

GRAPH_KINDS = ("queen", "knn", "band")
QUEEN_SNAP_M = 1.0
"""Polygons closer than this (metres) are queen neighbours: generalised boundaries leave slivers."""
BAND_TOLERANCE_M = 1e-6
"""A unit exactly at the band distance is inside it (float noise cannot drop it)."""


class UnitSet:
    """One set of units with stable ids, areas, centroids and spatial weights.

    Parameters
    ----------
    frame : GeoDataFrame
        Columns ``unit_id`` (unique str), ``name``, ``area_m2``, ``geometry``
        (polygons, EPSG:27700). Rows are re-ordered by ``unit_id`` and re-indexed
        0..n-1; that order is the order of every array this object returns.
    edition : str
        ``"lsoa2011"``, ``"grid250"``, ...
    knn : int
        Neighbours for the ``"knn"`` graph (capped at n - 1).
    distance_band_m : float
        Threshold in metres for the ``"band"`` graph, between centroids.
    meta : dict, optional
        How the units were made (for grids: cell shape, size and the rule that chose it);
        written into the outputs' metadata.
    """

    def __init__(self, frame: gpd.GeoDataFrame, edition: str, knn: int = 8, distance_band_m: float = 500.0,
                 meta: dict | None = None):
        _check_frame(frame, edition)
        frame = frame[["unit_id", "name", "area_m2", "geometry"]].copy()
        frame["unit_id"] = frame["unit_id"].astype("string")
        frame["name"] = frame["name"].astype("string")
        frame["area_m2"] = frame["area_m2"].astype("float64")
        self.frame: gpd.GeoDataFrame = frame.sort_values("unit_id", kind="stable").reset_index(drop=True)
        self.edition = edition
        self.knn = int(knn)
        self.distance_band_m = float(distance_band_m)
        pts = self.frame.geometry.representative_point()
        self.centroids: np.ndarray = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
        self.centroids.setflags(write=False)
        self.meta: dict = dict(meta or {})
        self._graphs: dict = {}

    def __len__(self) -> int:
        return len(self.frame)

    def __getstate__(self) -> dict:
        # A pool's workers locate points and never need the cached graphs: sending them would
        # cost their size and make every worker import libpysal (1 s of a core) to unpickle them.
        return {**self.__dict__, "_graphs": {}}

    def __repr__(self) -> str:
        return f"UnitSet({self.edition!r}, n={len(self)})"

    @property
    def ids(self) -> pd.Index:
        """Unit ids in row order, as a pandas Index (named ``unit_id``)."""
        return pd.Index(self.frame["unit_id"], name="unit_id")

    def graph(self, kind: str = "queen") -> Graph:
        """Spatial weights keyed by ``unit_id`` (binary; call ``.transform("r")`` to row-standardise).

        ``"queen"``: polygons sharing a point, or closer than ``QUEEN_SNAP_M`` (1 m). ``"knn"``: the ``knn`` nearest
        centroids. ``"band"``: centroids within ``distance_band_m``. Units left
        without any neighbour (islands) are linked to their nearest unit by
        centroid, both ways, so every unit has at least one neighbour.
        """
        if kind not in GRAPH_KINDS:
            raise ValueError(f"unknown graph kind {kind!r}; expected one of {GRAPH_KINDS}")
        if kind not in self._graphs:
            self._graphs[kind] = self._build_graph(kind)
        return self._graphs[kind]

    def _build_graph(self, kind: str) -> Graph:
        # imported here, not with the module: a pool worker locating points never needs it (1 s of a core)
        from libpysal.graph import Graph

        ids = self.ids
        n = len(ids)
        if n < 2:
            raise ValueError(f"{self.edition}: need at least 2 units for spatial weights, have {n}")
        points = gpd.GeoSeries(shapely.points(self.centroids), index=ids, crs=WORKING_CRS)
        if kind == "queen":
            # Generalised boundary files (e.g. ONS "generalised, clipped" LSOAs) rarely share
            # vertices exactly, so exact contiguity finds no neighbours at all; polygons within
            # QUEEN_SNAP_M of each other count as touching.
            g = Graph.build_fuzzy_contiguity(self.frame.set_index(ids).geometry, buffer=QUEEN_SNAP_M)
        elif kind == "knn":
            g = Graph.build_knn(points, k=min(self.knn, n - 1))
        else:
            g = Graph.build_distance_band(points, threshold=self.distance_band_m, binary=True)
        return _fill_islands(g, ids, points)

    def band_graph(self, distance_m: float, min_neighbours: int = 0) -> Graph:
        """Binary fixed distance band between centroids, each unit given at least ``min_neighbours``.

        Units ``j`` with centroid distance ``<= distance_m`` from unit ``i`` are its
        neighbours. A unit with fewer than ``min_neighbours`` (capped at n - 1) inside
        the band takes its ``min_neighbours`` nearest instead, as ArcGIS's spatial
        weights do when a distance band is combined with a number of neighbours; the
        link is added for that unit only, so the graph may be asymmetric. With
        ``min_neighbours=0`` units without neighbours stay isolated. Built once per
        (distance, minimum) and cached.
        """
        if not distance_m > 0:
            raise ValueError(f"distance band must be > 0 metres, got {distance_m!r}")
        n = len(self)
        k = min(int(min_neighbours), n - 1)
        key = ("band", float(distance_m), k)
        if key not in self._graphs:
            i, j, _ = neighbour_pairs(self.centroids, distance_m)
            if k > 0:
                card = np.bincount(i, minlength=n)
                short = np.flatnonzero(card < k)
                if short.size:
                    _, nn = cKDTree(self.centroids).query(self.centroids[short], k=k + 1)
                    nn = np.asarray(nn).reshape(short.size, k + 1)
                    fi = np.repeat(short, k + 1).reshape(short.size, k + 1)
                    other = nn != fi
                    # drop the unit itself (or, with duplicate points, the (k+1)-th) to keep k
                    first_k = np.cumsum(other, axis=1) <= k
                    sel = other & first_k
                    keep = ~np.isin(i, short)
                    i = np.concatenate([i[keep], fi[sel]])
                    j = np.concatenate([j[keep], nn[sel]])
            self._graphs[key] = graph_from_pairs(self.ids, i, j)
        return self._graphs[key]

    def assign(self, points: gpd.GeoSeries | gpd.GeoDataFrame, report: dict | None = None) -> np.ndarray:
        """Row position of the unit holding each point, or -1 when outside every unit.

        A point on a boundary shared by several units goes to the one whose
        ``unit_id`` sorts first (units are stored in that order), so every point
        is counted exactly once. If ``report`` is a dict it receives the counts
        ``read``, ``no_location``, ``assigned``, ``outside`` and ``on_shared_boundary``.
        """
        out, located, shared = self.locate(points)
        if report is not None:
            report.update(assignment_counts(out, located, shared))
        return out

    def locate(self, points: gpd.GeoSeries | gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per point: unit row position (-1 outside), has a location, lies on a shared boundary.

        The work behind :meth:`assign`, per point so that chunks or partitions of
        a large table can be located separately and their counts added up
        (:func:`assignment_counts`).
        """
        geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
        if len(geoms):
            check_crs(geoms.crs, "points")
        out = np.full(len(geoms), -1, dtype=np.int64)
        shared = np.zeros(len(geoms), dtype=bool)
        if len(geoms) == 0:
            return out, np.zeros(0, dtype=bool), shared
        arr = geoms.to_numpy()
        valid = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
        pidx, uidx = self.frame.sindex.query(arr[valid], predicate="intersects")
        if len(pidx):
            order = np.lexsort((uidx, pidx))
            pidx, uidx = pidx[order], uidx[order]
            first = np.r_[True, pidx[1:] != pidx[:-1]]
            rows = np.flatnonzero(valid)
            out[rows[pidx[first]]] = uidx[first]
            many = np.bincount(pidx) > 1
            shared[rows[np.flatnonzero(many)]] = True
        return out, valid, shared


def assignment_counts(unit: np.ndarray, located: np.ndarray, shared: np.ndarray) -> dict[str, int]:
    """``read``, ``no_location``, ``assigned``, ``outside``, ``on_shared_boundary`` of located points."""
    unit, located, shared = np.asarray(unit), np.asarray(located, dtype=bool), np.asarray(shared, dtype=bool)
    return {
        "read": int(len(unit)), "no_location": int((~located).sum()), "assigned": int((unit >= 0).sum()),
        "outside": int(((unit < 0) & located).sum()), "on_shared_boundary": int(shared.sum()),
    }


def neighbour_pairs(coords: np.ndarray, distance_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ordered pairs ``(i, j, d)`` of distinct points at most ``distance_m`` apart (both directions).

    Sorted by ``i`` then ``j``; the one distance-band rule that every band graph and the
    incremental spatial autocorrelation series share.
    """
    coords = np.asarray(coords, dtype=float)
    tree = cKDTree(coords)
    pairs = tree.query_pairs(float(distance_m) + BAND_TOLERANCE_M, output_type="ndarray")
    a, b = pairs[:, 0], pairs[:, 1]
    i = np.concatenate([a, b]).astype(np.intp)
    j = np.concatenate([b, a]).astype(np.intp)
    d = np.hypot(*(coords[i] - coords[j]).T) if len(i) else np.zeros(0)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def kth_neighbour_distance(coords: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its ``k``-th nearest other point (k capped at n - 1)."""
    coords = np.asarray(coords, dtype=float)
    k = max(1, min(int(k), len(coords) - 1))
    tree = cKDTree(coords)
    out = np.empty(len(coords))
    step = max(1, 2_000_000 // (k + 1))  # queries per chunk: at most ~16 MB of distances at once
    for start in range(0, len(coords), step):
        d, _ = tree.query(coords[start:start + step], k=k + 1)
        out[start:start + step] = np.asarray(d).reshape(-1, k + 1)[:, k]
    return out


def graph_from_pairs(ids: pd.Index, i: np.ndarray, j: np.ndarray, weight: np.ndarray | None = None) -> Graph:
    """A libpysal Graph keyed by ``ids`` from positional pairs; units without a pair stay as isolates."""
    from libpysal.graph import Graph

    n = len(ids)
    i, j = np.asarray(i, dtype=np.intp), np.asarray(j, dtype=np.intp)
    w = np.ones(len(i)) if weight is None else np.asarray(weight, dtype=float)
    lonely = np.setdiff1d(np.arange(n), i)
    # libpysal keeps an isolate as a zero-weight self-link
    i, j, w = np.concatenate([i, lonely]), np.concatenate([j, lonely]), np.concatenate([w, np.zeros(lonely.size)])
    order = np.lexsort((j, i))
    arr = np.asarray(ids, dtype=object)
    out = Graph.from_arrays(arr[i[order]], arr[j[order]], w[order])
    if list(out.unique_ids) != list(ids):  # pragma: no cover - guards the row-order contract
        raise RuntimeError("graph ids are not in unit order")
    return out


def _fill_islands(g: Graph, ids: pd.Index, points: gpd.GeoSeries) -> Graph:
    from libpysal.graph import Graph

    isolates = set(g.isolates)
    adj = g.adjacency.reset_index()
    adj.columns = ["focal", "neighbor", "weight"]
    adj = adj[adj["focal"] != adj["neighbor"]]
    if isolates:
        nn = Graph.build_knn(points, k=1).adjacency.reset_index()
        nn.columns = ["focal", "neighbor", "weight"]
        nn = nn[nn["focal"].isin(isolates)]
        back = nn.rename(columns={"focal": "neighbor", "neighbor": "focal"})
        adj = pd.concat([adj, nn, back], ignore_index=True)
        adj["weight"] = 1.0
        adj = adj.drop_duplicates(["focal", "neighbor"])
    pos = pd.Series(np.arange(len(ids)), index=ids)
    adj = adj.assign(_f=pos.reindex(adj["focal"]).to_numpy(), _n=pos.reindex(adj["neighbor"]).to_numpy())
    adj = adj.sort_values(["_f", "_n"], kind="stable")
    out = Graph.from_arrays(
        adj["focal"].to_numpy(dtype=object), adj["neighbor"].to_numpy(dtype=object),
        adj["weight"].to_numpy(dtype=float),
    )
    if list(out.unique_ids) != list(ids):  # pragma: no cover - guards the row-order contract
        raise RuntimeError("graph ids are not in unit order")
    return out


def _check_frame(frame: gpd.GeoDataFrame, edition: str) -> None:
    missing = [c for c in ("unit_id", "name", "area_m2", "geometry") if c not in frame.columns]
    if missing:
        raise ValueError(f"{edition}: unit frame lacks columns {missing}")
    check_crs(frame.crs, f"{edition}: units")
    if len(frame) == 0:
        raise ValueError(f"{edition}: no units")
    dup = frame["unit_id"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{edition}: duplicate unit_id {frame['unit_id'].iloc[row]!r} at row {row}")
    bad = frame["unit_id"].isna()
    if bad.any():
        raise ValueError(f"{edition}: unit_id is missing at row {int(np.flatnonzero(bad.to_numpy())[0])}")



def boundary_units(raw: gpd.GeoDataFrame, edition: str, knn: int = 8, distance_band_m: float = 500.0) -> UnitSet:
    """Units from a boundary layer with ``code`` and ``name`` columns (EPSG:27700).

    Geometries are repaired with ``make_valid``; ``area_m2`` is computed from them.
    """
    for col in ("code", "name"):
        if col not in raw.columns:
            raise ValueError(f"units_{edition}: column {col!r} is missing")
    check_crs(raw.crs, f"units_{edition}")
    geom = shapely.make_valid(raw.geometry.to_numpy())
    frame = gpd.GeoDataFrame(
        {
            "unit_id": raw["code"].astype("string").to_numpy(),
            "name": raw["name"].astype("string").to_numpy(),
            "area_m2": shapely.area(geom),
        },
        geometry=geom,
        crs=WORKING_CRS,
    )
    return UnitSet(frame, edition, knn=knn, distance_band_m=distance_band_m)


def grid_units(area: gpd.GeoSeries, edition: str, knn: int = 8, distance_band_m: float = 500.0,
               size_m: float | None = None, meta: dict | None = None) -> UnitSet:
    """Cells over ``area`` for a ``grid<metres>`` (squares) or ``hex<metres>`` (hexagons) edition.

    ``grid`` and ``hex`` without a size need ``size_m`` (e.g. from
    :func:`geo.grid.auto_cell_size`); ``meta`` says how it was chosen.
    """
    cell = cell_edition(edition)
    if cell is None:
        raise ValueError(f"{edition!r} is not a grid edition; grids are named 'grid<metres>' or 'hex<metres>', "
                         "e.g. 'grid250', 'hex300' ('grid' or 'hex' alone: size chosen from the data)")
    shape, size = cell
    if size is None:
        if size_m is None:
            raise ValueError(f"edition {edition!r} has no cell size: give one ('{edition}250') or choose it from the data")
        size = float(size_m)
    make = make_hex_grid if shape == "hexagon" else make_grid
    info = {"cell_shape": shape, "cell_size_m": size, **(meta or {})}
    return UnitSet(make(area, size), edition, knn=knn, distance_band_m=distance_band_m, meta=info)
