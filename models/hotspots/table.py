"""One table of Gi* and LISA results per unit, for the CLI and GIS layers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .getisord import GetisOrdGStar
from .moran import LocalMoran


def hotspot_table(units_gdf, y, graph, permutations=999, seed=0, fdr_alpha=0.05, id_column=None,
                  inference="normal"):
    """Gi* hot/cold spots and local Moran clusters for every unit.

    Parameters
    ----------
    units_gdf : geopandas.GeoDataFrame
        Units (EPSG:27700). Their ids (``id_column``, default the index) must be the
        graph's ``unique_ids`` in the same order.
    y : array-like or pandas.Series (n,)
        Value per unit (counts, harm, rates); a Series is aligned on the ids.
    graph : libpysal.graph.Graph or libpysal.weights.W
    permutations : int, default 999
        0 runs none (then ``p_sim`` columns are NaN); permutation inference needs >= 99.
    seed : int, default 0
    fdr_alpha : float, default 0.05
        FDR level (Benjamini-Hochberg) for both Gi* classes and LISA labels.
    id_column : str, optional
    inference : {"normal", "permutation"}, default "normal"
        Which p-values make ``p_value``/``q_value`` and the classes, for Gi* and LISA
        alike (see :class:`GetisOrdGStar`, :class:`LocalMoran`).

    Returns
    -------
    geopandas.GeoDataFrame
        ``unit_id``, ``y``, ``n_neighbours`` (itself not counted; ArcGIS's NNeighbors
        counts the unit too), Gi* columns ``Gs``, ``Zs``, ``p_sim``, ``p_value``
        (two-sided), ``q_value`` (BH), ``Gi_Bin``, ``gi_class``, LISA columns ``Is``,
        ``lisa_z``, ``lisa_q``, ``lisa_p_sim``, ``lisa_p_value``, ``lisa_q_value``,
        ``lisa_class``, and geometry. ``attrs`` holds permutations, seed, fdr_alpha,
        inference and the two estimators' settings.
    """
    import geopandas as gpd

    if not isinstance(units_gdf, gpd.GeoDataFrame):
        raise TypeError(f"units_gdf must be a GeoDataFrame, got {type(units_gdf).__name__}")
    ids = pd.Index(units_gdf[id_column] if id_column else units_gdf.index)
    graph_ids = getattr(graph, "unique_ids", None)
    if graph_ids is None:
        graph_ids = getattr(graph, "id_order", None)
    if graph_ids is not None and not pd.Index(graph_ids).equals(ids):
        raise ValueError(
            "graph's unit ids differ from units_gdf's "
            f"({'column ' + repr(id_column) if id_column else 'index'}): first units "
            f"{list(pd.Index(graph_ids)[:3])} vs {list(ids[:3])}"
        )
    if isinstance(y, pd.Series):
        missing = ids.difference(y.index)
        if len(missing):
            raise ValueError(f"y has no value for unit {missing[0]!r} ({len(missing)} missing)")
        y = y.reindex(ids).to_numpy()
    gi = GetisOrdGStar(permutations=permutations, seed=seed, alpha=fdr_alpha, fdr=True,
                       inference=inference).fit(y, graph)
    lisa = LocalMoran(permutations=permutations, seed=seed, alpha=fdr_alpha, fdr=True,
                      inference=inference).fit(y, graph)
    out = gpd.GeoDataFrame(
        {
            "unit_id": ids.to_numpy(),
            "y": np.asarray(y, dtype=float),
            "n_neighbours": gi.n_neighbours_,
            "Gs": gi.Gs_,
            "Zs": gi.Zs_,
            "p_sim": gi.p_sim_,
            "p_value": gi.p_value_,
            "q_value": gi.q_value_,
            "Gi_Bin": gi.Gi_Bin_,
            "gi_class": pd.array(gi.gi_class_, dtype="string"),
            "Is": lisa.Is_,
            "lisa_z": lisa.z_I_,
            "lisa_q": lisa.q_,
            "lisa_p_sim": lisa.p_sim_,
            "lisa_p_value": lisa.p_value_,
            "lisa_q_value": lisa.q_value_,
            "lisa_class": pd.array(lisa.labels_, dtype="string"),
        },
        geometry=units_gdf.geometry.to_numpy(),
        crs=units_gdf.crs,
    )
    out.attrs.update(
        {
            "permutations": int(permutations),
            "seed": seed,
            "fdr_alpha": float(fdr_alpha),
            "inference": inference,
            "gi": gi.get_params(),
            "lisa": lisa.get_params(),
        }
    )
    return out
