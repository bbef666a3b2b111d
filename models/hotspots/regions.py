"""Operational areas: contiguous groups of the highest-risk units (Clear Hold Build footprints)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

METHODS = ("maxp", "skater")


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
        pw = _subgraph_w(w, idx)
        model = Skater(
            part,
            pw,
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


def _subgraph_w(w, idx):
    from libpysal.weights import WSP

    sp = w.sparse.tocsr()[idx][:, idx]
    return WSP(sp).to_W(silence_warnings=True)


def operational_areas(
    units_gdf,
    risk,
    population=None,
    top_share=0.1,
    min_units=3,
    max_area_km2=None,
    max_population=None,
    method="maxp",
    seed=0,
    id_column=None,
):
    """Contiguous operational areas formed from the highest-risk units.

    Steps: (1) select the ``ceil(top_share * n)`` units with the highest ``risk``
    (ties broken by the units' order in ``units_gdf``, earlier first); (2) link the
    selected units by queen contiguity (shared edge or corner) and take each connected
    group; (3) split each group into regions: ``"maxp"`` runs spopt's
    ``MaxPHeuristic`` (as many regions as possible, each with at least ``min_units``
    units, homogeneous in risk); ``"skater"`` keeps the group whole; (4) any region
    above ``max_area_km2`` or ``max_population`` is split in two with spopt's
    ``Skater`` on standardised risk and centroid position (so parts stay compact),
    each part keeping ``min_units``, until it fits or cannot be split further. A connected group with
    fewer than ``min_units`` units is kept as its own area and flagged
    ``meets_min_units = False``.

    Parameters
    ----------
    units_gdf : geopandas.GeoDataFrame
        Unit polygons in EPSG:27700.
    risk : array-like or pandas.Series (n,)
        Risk per unit (e.g. predicted harm), aligned with ``units_gdf`` (a Series is
        aligned on the index).
    population : array-like or pandas.Series (n,), optional
        Residents per unit; needed for ``max_population``.
    top_share : float, default 0.1
        Share of units to select, in (0, 1].
    min_units : int, default 3
    max_area_km2 : float, optional
    max_population : float, optional
    method : {"maxp", "skater"}, default "maxp"
    seed : int, default 0
        Seeds numpy's global generator around the max-p heuristic (spopt has no seed
        argument); the previous state is restored afterwards.
    id_column : str, optional
        Column holding unit ids; default the index.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per area, highest total risk first: ``area_id`` (1, 2, ...),
        ``n_units``, ``unit_ids`` (comma-separated), ``risk_sum``, ``risk_share`` (of
        all units' risk), ``population`` (if given), ``area_km2``,
        ``meets_min_units`` and the dissolved ``geometry``, in EPSG:27700. Its
        ``attrs`` record the parameters.
    """
    import geopandas as gpd
    from libpysal.graph import Graph

    if not isinstance(units_gdf, gpd.GeoDataFrame):
        raise TypeError(f"units_gdf must be a GeoDataFrame, got {type(units_gdf).__name__}")
    if units_gdf.crs is None or units_gdf.crs.to_epsg() != 27700:
        raise ValueError(f"units_gdf must be in EPSG:27700 (metres), got {units_gdf.crs}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0.0 < float(top_share) <= 1.0:
        raise ValueError(f"top_share must be in (0, 1], got {top_share!r}")
    if isinstance(min_units, bool) or not isinstance(min_units, (int, np.integer)) or min_units < 1:
        raise ValueError(f"min_units must be an int >= 1, got {min_units!r}")
    if max_population is not None and population is None:
        raise ValueError("max_population needs population")
    n = len(units_gdf)
    r = _aligned(risk, units_gdf, "risk")
    pop = None if population is None else _aligned(population, units_gdf, "population")
    ids = (
        units_gdf[id_column].astype(str).to_numpy()
        if id_column
        else units_gdf.index.astype(str).to_numpy()
    )

    k = max(1, math.ceil(float(top_share) * n - 1e-9))
    order = np.lexsort((np.arange(n), -r))  # highest risk first, ties by position
    chosen = np.sort(order[:k])
    sub = units_gdf.iloc[chosen][[units_gdf.geometry.name]].copy()
    sub["_risk"] = r[chosen]
    sub["_area"] = sub.geometry.area / 1e6
    sub["_pop"] = pop[chosen] if pop is not None else 0.0
    sub = sub.reset_index(drop=True)
    graph = Graph.build_contiguity(sub, rook=False)
    comp = np.asarray(graph.component_labels)
    w = graph.to_W()

    labels = np.full(len(sub), -1, dtype=int)
    next_label = 0
    for c in np.unique(comp):
        idx = np.flatnonzero(comp == c)
        local = np.zeros(len(idx), dtype=int)
        if method == "maxp" and len(idx) >= 2 * min_units:
            from spopt.region import MaxPHeuristic

            part = sub.iloc[idx].reset_index(drop=True)
            part["_count"] = 1.0
            state = np.random.get_state()
            np.random.seed(seed)
            try:
                model = MaxPHeuristic(
                    part, _subgraph_w(w, idx), ["_risk"], "_count", min_units, top_n=2
                )
                model.solve()
            finally:
                np.random.set_state(state)
            local = np.asarray(model.labels_, dtype=int)
            local = np.unique(local, return_inverse=True)[1]
        # enforce the upper bounds region by region
        final = np.zeros(len(idx), dtype=int)
        offset = 0
        for lab in np.unique(local):
            j = np.flatnonzero(local == lab)
            parts = np.zeros(len(j), dtype=int)
            for size_col, bound in (("_area", max_area_km2), ("_pop", max_population)):
                if bound is None:
                    continue
                sizes = sub[size_col].to_numpy()[idx[j]]
                if sizes.sum() > bound:
                    parts = _split_to_bounds(
                        sub.iloc[idx[j]], _subgraph_w(w, idx[j]), sizes, bound, min_units
                    )
                    break
            final[j] = parts + offset
            offset += parts.max() + 1
        labels[idx] = final + next_label
        next_label += final.max() + 1

    sub["_label"] = labels
    sub["_id"] = ids[chosen]
    total_risk = r.sum()
    rows = []
    for _, g in sub.groupby("_label", sort=True):
        rows.append(
            {
                "n_units": len(g),
                "unit_ids": ",".join(g["_id"]),
                "risk_sum": float(g["_risk"].sum()),
                "risk_share": float(g["_risk"].sum() / total_risk) if total_risk else np.nan,
                "population": float(g["_pop"].sum()) if pop is not None else np.nan,
                "meets_min_units": len(g) >= min_units,
                "geometry": g.geometry.union_all(),
            }
        )
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=units_gdf.crs)
    if pop is None:
        out = out.drop(columns="population")
    out["area_km2"] = out.geometry.area / 1e6
    out = out.sort_values(["risk_sum", "unit_ids"], ascending=[False, True], kind="stable")
    out.insert(0, "area_id", np.arange(1, len(out) + 1))
    out = out.reset_index(drop=True)
    out.attrs.update(
        {
            "method": method,
            "top_share": float(top_share),
            "min_units": int(min_units),
            "max_area_km2": max_area_km2,
            "max_population": max_population,
            "seed": seed,
            "contiguity": "queen",
        }
    )
    return out
