"""Operational areas: contiguous groups of the highest-risk units (Clear Hold Build footprints).

The default rule (``method="skater"``) is: select the top units, link them by the
unit set's contiguity graph, keep every connected group as one area, and split a
group with spopt's ``Skater`` only when it breaks an upper bound (area or
population). It is deterministic and takes well under a second on a borough's
250 m grid (``benchmarks/operational_areas.py``).

``method="maxp"`` (spopt's ``MaxPHeuristic``: as many regions as possible, each
with at least ``min_units`` units) is kept for analysts who want a hot cluster cut
into many small, risk-homogeneous areas. spopt 0.7.0's simulated annealing can loop
for ever when no movable unit borders another region (seen on a 250 m grid of
Barnet: more than ten minutes on an 8-unit group); the loop is fixed upstream in
pysal/spopt#506, after 0.7.0, and the same fix is applied here while max-p runs.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager

import numpy as np
import pandas as pd

from geo.crs import check_crs

METHODS = ("skater", "maxp")
SEPARATOR = "; "
"""Joins lists inside one cell (unit ids, ward and hub names): GIS formats hold no lists."""

_MAXP_LOCK = threading.Lock()


def _aligned(values, units, name):
    if isinstance(values, pd.Series):
        if not values.index.equals(units.index):
            missing = units.index.difference(values.index)
            if len(missing):
                raise ValueError(
                    f"{name} has no value for unit index {missing[0]!r} ({len(missing)} missing)"
                )
            values = values.reindex(units.index)
        arr = values.to_numpy(dtype=float)
    else:
        arr = np.asarray(values, dtype=float)
    if arr.shape != (len(units),):
        raise ValueError(
            f"{name} must have one value per unit ({len(units)}), got shape {arr.shape}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} is not finite for unit {units.index[i]!r}: {arr[i]!r}")
    return arr


def _layer(layer, name, columns, geom_types):
    """Check an optional description layer (wards, hubs) and return it in EPSG:27700."""
    import geopandas as gpd

    if layer is None:
        return None
    if not isinstance(layer, gpd.GeoDataFrame):
        raise TypeError(f"{name} must be a GeoDataFrame, got {type(layer).__name__}")
    missing = [c for c in columns if c not in layer.columns]
    if missing:
        raise ValueError(f"{name} needs column {missing[0]!r}, has {list(layer.columns)}")
    check_crs(layer.crs, name)
    types = layer.geometry.geom_type
    bad = ~types.isin(geom_types) & layer.geometry.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{name} row {i} ({layer[columns[-1]].iloc[i]!r}) is a {types.iloc[i]}, "
            f"expected {' or '.join(geom_types)}"
        )
    return layer[layer.geometry.notna() & ~layer.geometry.is_empty]


def _adjacency(sub_ids, geoms, graph, snap_m):
    """Symmetric 0/1 CSR adjacency among the selected units (row order of ``sub_ids``).

    With ``graph``: its links between selected units (non-zero weight, no
    self-links). Without: fuzzy queen contiguity of ``geoms``, polygons within
    ``snap_m`` metres counting as touching.
    """
    import geopandas as gpd
    from libpysal.graph import Graph
    from scipy.sparse import coo_matrix

    pos = pd.Index(sub_ids)
    if graph is not None:
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a libpysal.graph.Graph, got {type(graph).__name__}")
        known = pd.Index(np.asarray(graph.unique_ids).astype(str))
        missing = pos.difference(known)
        if len(missing):
            raise ValueError(
                f"graph has no unit {missing[0]!r} ({len(missing)} of the {len(pos)} selected "
                "units missing): pass the unit set's graph, keyed by the same ids"
            )
        adj = graph.adjacency
        focal = adj.index.get_level_values(0).astype(str)
        neigh = adj.index.get_level_values(1).astype(str)
        weight = adj.to_numpy(dtype=float)
    else:
        gs = gpd.GeoSeries(np.asarray(geoms), index=pos, crs=27700)
        if snap_m > 0:
            built = Graph.build_fuzzy_contiguity(gs, buffer=float(snap_m))
        else:
            built = Graph.build_contiguity(gs, rook=False)
        adj = built.adjacency
        focal = adj.index.get_level_values(0).astype(str)
        neigh = adj.index.get_level_values(1).astype(str)
        weight = adj.to_numpy(dtype=float)
    i = pos.get_indexer(focal)
    j = pos.get_indexer(neigh)
    keep = (i >= 0) & (j >= 0) & (i != j) & (weight != 0)
    n = len(pos)
    mat = coo_matrix((np.ones(int(keep.sum())), (i[keep], j[keep])), shape=(n, n)).tocsr()
    mat = ((mat + mat.T) > 0).astype(float)
    return mat.tocsr()


def _w(adj, idx):
    """A libpysal W over rows ``idx`` of the adjacency (ids 0..len(idx)-1), for spopt."""
    from libpysal.weights import WSP

    return WSP(adj[idx][:, idx].tocsr()).to_W(silence_warnings=True)


@contextmanager
def _maxp_guarded():
    """Run spopt's max-p with the fix of pysal/spopt#506 (not in spopt 0.7.0).

    The simulated annealing picks units that may leave their region; if none of
    them borders another region it never moves and never stops. Keeping only
    units with a neighbour in another region is upstream's fix; applying it to a
    fixed spopt changes nothing. A lock keeps the swap to one thread at a time.
    """
    import spopt.region.maxp as mp

    original = mp._pick_move_area

    def pick(labels, region_lists, region_spatial_attrs, threshold_array, weight, *rest):
        areas = original(labels, region_lists, region_spatial_attrs, threshold_array, weight, *rest)
        return [a for a in areas if any(labels[b] != labels[a] for b in weight.neighbors[a])]

    with _MAXP_LOCK:
        mp._pick_move_area = pick
        try:
            yield
        finally:
            mp._pick_move_area = original


def _maxp_labels(part, w, min_units, seed, iterations):
    from spopt.region import MaxPHeuristic

    part = part.assign(_count=1.0)
    with _maxp_guarded():
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            model = MaxPHeuristic(
                part,
                w,
                ["_risk"],
                "_count",
                min_units,
                top_n=2,
                max_iterations_construction=iterations[0],
                max_iterations_sa=iterations[1],
            )
            model.solve()
        finally:
            np.random.set_state(state)
    labels = np.asarray(model.labels_)
    if labels.dtype == object or (labels < 0).any():
        # no feasible partition (spopt leaves labels unset): keep the group whole
        return np.zeros(len(part), dtype=int)
    return np.unique(labels, return_inverse=True)[1]


def _split_to_bounds(sub, w, size, max_size, min_units):
    """Split one contiguous group with SKATER until every part has ``size <= max_size``.

    Returns a label per row of ``sub``. Parts that cannot be split further (fewer
    than ``2 * min_units`` units) are kept as they are.
    """
    from spopt.region import Skater

    labels = np.zeros(len(sub), dtype=int)
    todo = [np.arange(len(sub))]
    next_label = 0
    while todo:
        idx = todo.pop()
        if size[idx].sum() <= max_size or len(idx) < 2 * min_units:
            labels[idx] = next_label
            next_label += 1
            continue
        part = sub.iloc[idx].reset_index(drop=True)
        # split on risk and position (standardised) so the parts stay compact; the
        # offset keeps neighbours with identical attributes linked in SKATER's tree
        cent = part.geometry.centroid
        cols = {"_a_risk": part["_risk"], "_a_x": cent.x, "_a_y": cent.y}
        for c, v in cols.items():
            v = np.asarray(v, dtype=float)
            part[c] = (v - v.mean()) / v.std() if v.std() > 0 else 0.0
        model = Skater(
            part,
            _w(w, idx),
            list(cols),
            n_clusters=2,
            floor=min_units,
            islands="ignore",
            spanning_forest_kwds={"dissimilarity": _offset_manhattan},
        )
        model.solve()
        lab = np.asarray(model.labels_)
        groups = [idx[lab == k] for k in np.unique(lab)]
        if len(groups) < 2:
            labels[idx] = next_label
            next_label += 1
            continue
        todo.extend(groups)
    return labels


def _offset_manhattan(X, Y=None):
    from sklearn.metrics.pairwise import manhattan_distances

    return manhattan_distances(X, Y) + 1e-6


def _ward_names(areas, wards, min_overlap):
    """Per area, the wards covering at least ``min_overlap`` of it, largest share first."""
    import geopandas as gpd

    if wards is None or wards.empty:
        return [""] * len(areas)
    left = gpd.GeoDataFrame(
        {"_row": np.arange(len(areas))}, geometry=areas.geometry.values, crs=areas.crs
    )
    right = gpd.GeoDataFrame(
        {"_name": wards["name"].astype(str).to_numpy()},
        geometry=wards.geometry.values,
        crs=wards.crs,
    )
    pieces = gpd.overlay(left, right, how="intersection", keep_geom_type=True)
    pieces["_share"] = pieces.geometry.area / areas.geometry.area.to_numpy()[pieces["_row"]]
    pieces = pieces.groupby(["_row", "_name"], as_index=False)["_share"].sum()
    pieces = pieces[pieces["_share"] >= min_overlap - 1e-12]
    pieces = pieces.sort_values(
        ["_row", "_share", "_name"], ascending=[True, False, True], kind="stable"
    )
    names = pieces.groupby("_row")["_name"].agg(SEPARATOR.join)
    return [names.get(i, "") for i in range(len(areas))]


def _hub_names(areas, hubs, buffer_m):
    """Per area, hubs inside it (or within ``buffer_m``), highest footfall first, then by name."""
    import geopandas as gpd

    if hubs is None or hubs.empty:
        return [""] * len(areas)
    geoms = areas.geometry.buffer(buffer_m) if buffer_m > 0 else areas.geometry
    left = gpd.GeoDataFrame({"_row": np.arange(len(areas))}, geometry=geoms.values, crs=areas.crs)
    foot = (
        pd.to_numeric(hubs["footfall"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        if "footfall" in hubs.columns
        else np.zeros(len(hubs))
    )
    right = gpd.GeoDataFrame(
        {"_name": hubs["name"].astype(str).to_numpy(), "_foot": foot},
        geometry=hubs.geometry.values,
        crs=hubs.crs,
    )
    hit = gpd.sjoin(right, left, how="inner", predicate="intersects")
    hit = hit.sort_values(["_row", "_foot", "_name"], ascending=[True, False, True], kind="stable")
    hit = hit.drop_duplicates(["_row", "_name"])
    names = hit.groupby("_row")["_name"].agg(SEPARATOR.join)
    return [names.get(i, "") for i in range(len(areas))]


def operational_areas(
    units_gdf,
    risk,
    population=None,
    top_share=0.1,
    min_units=3,
    max_area_km2=None,
    max_population=None,
    method="skater",
    seed=0,
    id_column=None,
    *,
    graph=None,
    snap_m=1.0,
    selected=None,
    harm=None,
    wards=None,
    hubs=None,
    hub_buffer_m=0.0,
    ward_min_overlap=0.01,
    max_iterations_construction=10,
    max_iterations_sa=2,
):
    """Contiguous operational areas formed from the highest-risk units.

    Steps: (1) select the ``ceil(top_share * n)`` units with the highest ``risk``
    (ties broken by the units' order in ``units_gdf``, earlier first), or the
    units listed in ``selected``; (2) link them by ``graph`` (the unit set's
    contiguity, e.g. ``UnitSet.graph("queen")``) restricted to the selected
    units, or, without a graph, by queen contiguity allowing gaps up to
    ``snap_m`` metres (generalised boundaries such as the London LSOAs do not
    share vertices exactly), and take each connected group; (3) split each group
    into regions: ``"skater"`` (the default) keeps the group whole; ``"maxp"``
    runs spopt's ``MaxPHeuristic`` on groups of at least ``2 * min_units``
    units (as many regions as possible, each with at least ``min_units`` units,
    homogeneous in risk); (4) any region above ``max_area_km2`` or
    ``max_population`` is split in two with spopt's ``Skater`` on standardised
    risk and centroid position (so parts stay compact), each part keeping
    ``min_units``, until it fits or cannot be split further. A connected group
    with fewer than ``min_units`` units is kept as its own area and flagged
    ``meets_min_units = False``. (5) Each area is described: the wards it
    overlaps, the hubs inside it, its share of risk and harm.

    Parameters
    ----------
    units_gdf : geopandas.GeoDataFrame
        Unit polygons in EPSG:27700.
    risk : array-like or pandas.Series (n,)
        Risk per unit (e.g. predicted count), aligned with ``units_gdf`` (a Series
        is aligned on the index).
    population : array-like or pandas.Series (n,), optional
        Residents per unit; needed for ``max_population``.
    top_share : float, default 0.1
        Share of units to select, in (0, 1]. Ignored when ``selected`` is given.
    min_units : int, default 3
    max_area_km2 : float, optional
    max_population : float, optional
    method : {"skater", "maxp"}, default "skater"
    seed : int, default 0
        Seeds numpy's global generator around the max-p heuristic (spopt has no
        seed argument); the previous state is restored afterwards.
    id_column : str, optional
        Column holding unit ids; default the index. Ids are compared as text.
    graph : libpysal.graph.Graph, optional
        Contiguity keyed by the unit ids; must contain every selected unit.
    snap_m : float, default 1.0
        Without ``graph``: polygons closer than this (metres) are neighbours.
    selected : sequence of unit ids, optional
        The units to group, instead of the ``top_share`` rule.
    harm : array-like or pandas.Series (n,), optional
        Harm per unit (e.g. expected harm-weighted count); default ``risk``.
    wards : geopandas.GeoDataFrame, optional
        Ward polygons (EPSG:27700) with ``code`` and ``name``.
    hubs : geopandas.GeoDataFrame, optional
        Hub points (EPSG:27700) with ``kind`` and ``name``, optionally
        ``footfall`` (annual entries and exits) to order them.
    hub_buffer_m : float, default 0.0
        Hubs within this distance of an area count as in it.
    ward_min_overlap : float, default 0.01
        A ward is listed when it covers at least this share of the area (so a
        boundary drawn a few metres apart does not add a neighbouring ward).
    max_iterations_construction, max_iterations_sa : int, default 10 and 2
        Passed to ``MaxPHeuristic`` (spopt's defaults are 99 and 10).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per area, highest total risk first (ties by ``unit_ids``):
        ``area_id`` (1, 2, ...), ``n_units``, ``unit_ids`` (``"; "``-joined, in
        id order), ``risk_sum``, ``risk_share`` (of all units' risk),
        ``harm_sum``, ``harm_share`` (of all units' harm), ``population`` (if
        given), ``area_km2``, ``wards`` (names, largest overlap first),
        ``hubs`` (names, highest footfall first, then by name), ``meets_min_units``
        and the dissolved ``geometry``, in EPSG:27700. ``wards`` and ``hubs``
        are empty strings when the layer is not given. Its ``attrs`` record the
        parameters.

    Examples
    --------
    >>> units = build_units(store, "grid250")                       # doctest: +SKIP
    >>> frame = units.frame.set_index("unit_id")                    # doctest: +SKIP
    >>> operational_areas(frame, y, graph=units.graph("queen"),     # doctest: +SKIP
    ...                   wards=store.units("ward2018"), max_area_km2=1.0)
    """
    import geopandas as gpd

    if not isinstance(units_gdf, gpd.GeoDataFrame):
        raise TypeError(f"units_gdf must be a GeoDataFrame, got {type(units_gdf).__name__}")
    check_crs(units_gdf.crs, "units_gdf")
    _check_options(method, top_share, min_units, max_population, population, snap_m, hub_buffer_m,
                   ward_min_overlap)
    wards = _layer(wards, "wards", ["code", "name"], ("Polygon", "MultiPolygon"))
    hubs = _layer(hubs, "hubs", ["kind", "name"], ("Point", "MultiPoint"))
    r = _aligned(risk, units_gdf, "risk")
    h = r if harm is None else _aligned(harm, units_gdf, "harm")
    pop = None if population is None else _aligned(population, units_gdf, "population")
    ids = _unit_ids(units_gdf, id_column)

    chosen = _select(r, ids, top_share, selected)
    sub = units_gdf.iloc[chosen][[units_gdf.geometry.name]].copy()
    sub["_risk"] = r[chosen]
    sub["_harm"] = h[chosen]
    sub["_area"] = sub.geometry.area / 1e6
    sub["_pop"] = pop[chosen] if pop is not None else 0.0
    sub["_id"] = ids[chosen]
    sub = sub.reset_index(drop=True)
    adj = _adjacency(sub["_id"].to_numpy(), sub.geometry.to_numpy(), graph, snap_m)
    sub["_label"] = _region_labels(sub, adj, method, min_units, seed,
                                   (max_iterations_construction, max_iterations_sa),
                                   {"_area": max_area_km2, "_pop": max_population})

    out = _describe(sub, r.sum(), h.sum(), pop is not None, min_units, units_gdf.crs)
    at = list(out.columns).index("meets_min_units")
    out.insert(at, "area_km2", out.geometry.area / 1e6)
    out.insert(at + 1, "wards", _ward_names(out, wards, float(ward_min_overlap)))
    out.insert(at + 2, "hubs", _hub_names(out, hubs, float(hub_buffer_m)))
    out.attrs.update(
        {
            "method": method,
            "top_share": None if selected is not None else float(top_share),
            "selected": None if selected is None else len(chosen),
            "min_units": int(min_units),
            "max_area_km2": max_area_km2,
            "max_population": max_population,
            "seed": seed,
            "contiguity": "graph"
            if graph is not None
            else f"queen, snapped within {float(snap_m)} m",
            "ward_min_overlap": float(ward_min_overlap),
            "hub_buffer_m": float(hub_buffer_m),
            "max_iterations": [int(max_iterations_construction), int(max_iterations_sa)]
            if method == "maxp"
            else None,
        }
    )
    return out


def _check_options(method, top_share, min_units, max_population, population, snap_m, hub_buffer_m,
                   ward_min_overlap):
    """Raise a ValueError naming the first of :func:`operational_areas`' scalar options that is invalid."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0.0 < float(top_share) <= 1.0:
        raise ValueError(f"top_share must be in (0, 1], got {top_share!r}")
    if isinstance(min_units, bool) or not isinstance(min_units, (int, np.integer)) or min_units < 1:
        raise ValueError(f"min_units must be an int >= 1, got {min_units!r}")
    if max_population is not None and population is None:
        raise ValueError("max_population needs population")
    for name, value in (("snap_m", snap_m), ("hub_buffer_m", hub_buffer_m)):
        if not np.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"{name} must be a distance >= 0 in metres, got {value!r}")
    if not 0.0 <= float(ward_min_overlap) <= 1.0:
        raise ValueError(f"ward_min_overlap must be in [0, 1], got {ward_min_overlap!r}")


def _unit_ids(units_gdf, id_column) -> np.ndarray:
    """The units' ids as text (``id_column`` or the index), refused when one repeats."""
    if id_column is not None and id_column not in units_gdf.columns:
        raise ValueError(f"id_column {id_column!r} is not a column of units_gdf")
    ids = (
        units_gdf[id_column].astype(str).to_numpy()
        if id_column
        else units_gdf.index.astype(str).to_numpy()
    )
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise ValueError(f"unit id {ids[dup][0]!r} appears more than once in units_gdf")
    return ids


def _select(r, ids, top_share, selected) -> np.ndarray:
    """Step 1: positions of the units to group, in order: the ``ceil(top_share * n)`` highest
    risks (ties by position, earlier first), or the ``selected`` ids."""
    if selected is None:
        n = len(r)
        k = max(1, math.ceil(float(top_share) * n - 1e-9))
        order = np.lexsort((np.arange(n), -r))  # highest risk first, ties by position
        return np.sort(order[:k])
    want = pd.Index([str(u) for u in selected])
    at = pd.Index(ids).get_indexer(want)
    if (at < 0).any():
        raise ValueError(f"selected unit {want[at < 0][0]!r} is not in units_gdf")
    if len(want) == 0:
        raise ValueError("selected is empty: give at least one unit id")
    return np.unique(at)


def _region_labels(sub, adj, method, min_units, seed, iterations, bounds) -> np.ndarray:
    """Steps 2-4: one region label per selected unit, regions numbered group by group.

    Each connected group of ``adj`` is one region, or (``"maxp"``, at least ``2 * min_units``
    units) max-p's regions; each region then splits to the upper ``bounds`` (column -> bound).
    """
    from scipy.sparse.csgraph import connected_components

    comp = connected_components(adj, directed=False)[1]
    labels = np.full(len(sub), -1, dtype=int)
    next_label = 0
    for c in np.unique(comp):
        idx = np.flatnonzero(comp == c)
        local = np.zeros(len(idx), dtype=int)
        if method == "maxp" and len(idx) >= 2 * min_units:
            part = sub.iloc[idx].reset_index(drop=True)
            local = _maxp_labels(part, _w(adj, idx), min_units, seed, iterations)
        final = _within_bounds(sub, adj, idx, local, bounds, min_units)
        labels[idx] = final + next_label
        next_label += final.max() + 1
    return labels


def _within_bounds(sub, adj, idx, local, bounds, min_units) -> np.ndarray:
    """Step 4: the ``local`` regions of the units at ``idx``, each split (by the first of its
    ``bounds`` it breaks) until it fits; labels renumbered from 0."""
    final = np.zeros(len(idx), dtype=int)
    offset = 0
    for lab in np.unique(local):
        j = np.flatnonzero(local == lab)
        parts = np.zeros(len(j), dtype=int)
        for size_col, bound in bounds.items():
            if bound is None:
                continue
            sizes = sub[size_col].to_numpy()[idx[j]]
            if sizes.sum() > bound:
                parts = _split_to_bounds(sub.iloc[idx[j]], adj[idx[j]][:, idx[j]], sizes, bound, min_units)
                break
        final[j] = parts + offset
        offset += parts.max() + 1
    return final


def _describe(sub, total_risk, total_harm, has_population, min_units, crs):
    """Step 5 (sums): one row per region label of ``sub``, highest total risk first (ties by
    ``unit_ids``), numbered by ``area_id``; wards and hubs are added by the caller."""
    import geopandas as gpd

    rows = []
    for _, g in sub.groupby("_label", sort=True):
        g = g.sort_values("_id", kind="stable")
        rows.append(
            {
                "n_units": len(g),
                "unit_ids": SEPARATOR.join(g["_id"]),
                "risk_sum": float(g["_risk"].sum()),
                "risk_share": float(g["_risk"].sum() / total_risk) if total_risk else np.nan,
                "harm_sum": float(g["_harm"].sum()),
                "harm_share": float(g["_harm"].sum() / total_harm) if total_harm else np.nan,
                "population": float(g["_pop"].sum()) if has_population else np.nan,
                "meets_min_units": len(g) >= min_units,
                "geometry": g.geometry.union_all(),
            }
        )
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    if not has_population:
        out = out.drop(columns="population")
    out = out.sort_values(["risk_sum", "unit_ids"], ascending=[False, True], kind="stable")
    out = out.reset_index(drop=True)
    out.insert(0, "area_id", np.arange(1, len(out) + 1))
    return out
