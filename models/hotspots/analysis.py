"""Hotspot analysis of one unit set as of a cutoff: Gi*, LISA, emerging hot spots, areas, KDE.

This is the glue between the feature builder (counts per unit and month) and the
statistics in ``models.hotspots``; the CLI and the run pipeline both call
:func:`analyse_hotspots`.

One neighbourhood serves Gi*, local Moran and the emerging hot spots of an analysis:
by default a fixed distance band chosen from the counts as ArcGIS's Optimized Hot Spot
Analysis chooses it (:mod:`models.hotspots.scale`), with at least 8 neighbours per
unit. One inference serves them too: by default the normal-theory p-value of each
z-score (ArcGIS's), Benjamini-Hochberg FDR over all units; conditional permutations
are the option. The result's ``meta`` says which, and carries the diagnostics an
analyst checks first (global Moran's I and its p, the band, neighbour counts, number
of units, smallest q, and one sentence saying why when nothing is significant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from features.months import month, shift, window_months, window_sum
from models.hotspots import EmergingHotSpots, hotspot_table, kde_surface, operational_areas
from models.hotspots._crand import check_inference
from models.hotspots.scale import MIN_NEIGHBOURS, Neighbourhood, global_moran, select_neighbourhood

INFERENCE_LABELS = {
    "normal": "normal-theory p-values of the z-scores (ArcGIS's default)",
    "permutation": "conditional-permutation pseudo p-values",
}


@dataclass
class HotspotResult:
    table: gpd.GeoDataFrame  # one row per unit: Gi*, LISA, emerging category
    areas: gpd.GeoDataFrame  # contiguous operational areas
    kde: tuple[np.ndarray, object] | None  # (array, affine) of recent events per km2
    meta: dict = field(default_factory=dict)


def window_counts(panel: pd.DataFrame, cutoff: pd.Timestamp, months: int) -> pd.Series:
    """Events per unit in the ``months`` before ``cutoff``, from a units x months panel."""
    if not any(m in panel.columns for m in window_months(cutoff, months)):
        raise ValueError(f"no event data in the {months} months before cutoff {cutoff:%Y-%m}")
    return window_sum(panel, shift(cutoff, -months), months)


def quarterly_series(panel: pd.DataFrame, cutoff: pd.Timestamp, quarters: int = 12) -> pd.DataFrame:
    """Units x 3-month bins ending at ``cutoff`` (oldest first), only bins fully covered by data."""
    bins = {}
    for q in range(quarters, 0, -1):
        start, end = cutoff - pd.DateOffset(months=3 * q), cutoff - pd.DateOffset(months=3 * (q - 1))
        cols = [m for m in panel.columns if start <= m < end]
        if len(cols) == 3:
            bins[f"{start:%Y-%m}"] = panel[cols].sum(axis=1)
    return pd.DataFrame(bins)


def analyse_hotspots(fb, cutoff, *, events: gpd.GeoDataFrame | None = None, window_months: int = 12,
                     permutations: int = 999, seed: int = 0, fdr_alpha: float = 0.05, top_share: float = 0.1,
                     kde_cell_m: float = 50.0, areas: bool = True, neighbourhood: str = "auto",
                     band_m: float | None = None, min_neighbours: int = MIN_NEIGHBOURS,
                     inference: str = "normal") -> HotspotResult:
    """Gi*/LISA on the last ``window_months`` of target events, emerging hot spots on quarterly
    bins of the last three years, operational areas over the riskiest units, and (when the target
    ``events`` are given) a KDE surface of the same window.

    Parameters
    ----------
    fb : features.build.FeatureBuilder
    cutoff : str or Timestamp
        ``"YYYY-MM"``: months strictly before it are analysed.
    events : GeoDataFrame, optional
        Target events with ``month`` (for the KDE surface).
    window_months, seed, fdr_alpha, top_share, kde_cell_m, areas
        As before: window length, seed of any random draws, FDR level, share of units
        for operational areas, KDE cell, whether to build areas.
    permutations : int
        Conditional permutations, run only when ``inference="permutation"``.
    neighbourhood : {"auto", "band", "knn", "queen"}
        See :func:`models.hotspots.scale.select_neighbourhood`; ``"auto"`` chooses a fixed
        distance band by incremental spatial autocorrelation (``band_m`` overrides it).
    band_m : float, optional
    min_neighbours : int
        Every unit gets at least this many neighbours on a band (0: no minimum).
    inference : {"normal", "permutation"}
        How Gi*, LISA and the emerging-hot-spot bins are tested.

    Returns
    -------
    HotspotResult
        ``meta`` holds the parameters, ``neighbourhood`` (band, rule, reason, neighbour
        counts, the incremental series), ``diagnostics`` and ``emerging`` (its
        neighbourhood and inference).
    """
    cutoff = month(cutoff)
    inference = check_inference(inference)
    perms = int(permutations) if inference == "permutation" else 0
    units = fb.units
    frame = units.frame
    panel = fb.panel()
    y = window_counts(panel, cutoff, window_months).astype(float).reindex(units.ids)
    nb = select_neighbourhood(units, y.to_numpy(), neighbourhood, band_m=band_m, min_neighbours=min_neighbours)
    graph = nb.graph
    table = hotspot_table(frame.set_index("unit_id"), y, graph, permutations=perms, seed=seed,
                          fdr_alpha=fdr_alpha, inference=inference)
    series = quarterly_series(panel, cutoff)
    table["emerging"] = pd.array(["not enough periods"] * len(table), dtype="string")
    if series.shape[1] >= 4:
        ehs = EmergingHotSpots(permutations=perms, seed=seed, alpha=fdr_alpha, inference=inference).fit(
            series.reindex(frame["unit_id"]).to_numpy(dtype=float), graph)
        table["emerging"] = pd.array(ehs.pattern_, dtype="string")
    areas = (operational_areas(frame.set_index("unit_id"), y, top_share=top_share, seed=seed,
                               graph=units.graph("queen"))
             if areas else gpd.GeoDataFrame(geometry=[], crs=frame.crs))
    kde = None
    if events is not None:
        recent = (events["month"] >= cutoff - pd.DateOffset(months=window_months)) & (events["month"] < cutoff)
        events = events[recent]
    if events is not None and len(events):
        xy = np.column_stack([events.geometry.x, events.geometry.y])
        kde = kde_surface(xy, kde_cell_m, tuple(frame.total_bounds))
    meta = {"cutoff": f"{cutoff:%Y-%m}", "window_months": window_months,
            "permutations": perms or None, "seed": seed, "fdr_alpha": fdr_alpha, "units": units.edition,
            "quarters": list(series.columns),
            "value": f"target events in the {window_months} months before the cutoff",
            "inference": inference, "inference_text": INFERENCE_LABELS[inference],
            "neighbourhood": nb.to_meta(),
            "diagnostics": hotspot_diagnostics(y.to_numpy(), table, nb, inference=inference, fdr_alpha=fdr_alpha),
            "emerging": {"neighbourhood": nb.label, "inference": inference, "time_window": 1,
                         "weights": "binary: spatial neighbours in the same quarter, the unit and its "
                                    "neighbours in the previous quarter",
                         "periods": int(series.shape[1])}}
    if units.meta:
        meta["unit_set"] = dict(units.meta)
    return HotspotResult(table, areas, kde, meta)


WIDE_SHARE = 1 / 3
"""Above this share of significant units the neighbourhood is probably too wide for the units."""


def hotspot_diagnostics(y, table: pd.DataFrame, nb: Neighbourhood, *, inference: str, fdr_alpha: float) -> dict:
    """What an analyst checks before trusting a hot-spot map, as one JSON-ready dict.

    Global Moran's I (row-standardised weights of the analysis's neighbourhood,
    randomisation p), number of units, neighbour counts (min/mean/max), the smallest
    Gi* and LISA q-values, how many units are significant, a one-line ``summary`` and,
    when no unit is a significant Gi* hot or cold spot, ``no_significance_reason``: one
    sentence saying why.
    """
    y = np.asarray(y, dtype=float)
    w = nb.graph.transform("r").sparse
    gm = global_moran(y, w)
    hot, cold = int((table["Gi_Bin"] > 0).sum()), int((table["Gi_Bin"] < 0).sum())
    lisa = int((table["lisa_class"] != "Not Significant").sum())
    q_gi = _nanmin(table["q_value"])
    q_lisa = _nanmin(table["lisa_q_value"])
    counts = nb.neighbour_counts()
    n = int(len(y))
    summary = (f"Gi* on {nb.label} ({nb.rule}), {INFERENCE_LABELS[inference]} with Benjamini-Hochberg FDR "
               f"{fdr_alpha:g}: {hot} hot and {cold} cold spot(s) among {n} units")
    reason = None
    if hot + cold == 0:
        q_text = "no unit could be tested" if q_gi is None else f"the smallest q-value is {q_gi:.2f}"
        moran = f"global Moran's I {gm['I']:.3f}, p {_p(gm['p'])}"
        if gm["p"] > 0.05 or not np.isfinite(gm["p"]):
            why = (f"the counts show no overall spatial clustering at this scale ({moran}), and {q_text} "
                   f"against the {fdr_alpha:g} needed after the false discovery rate over {n} units")
        else:
            why = (f"the counts cluster overall ({moran}) but no single place stands out enough: {q_text} "
                   f"against the {fdr_alpha:g} needed after the false discovery rate over {n} units "
                   f"with {counts['mean']:.1f} neighbours on average ({nb.label})")
        reason = f"No place is a significant Gi* hot or cold spot: {why}."
    warnings = []
    if n and (hot + cold) / n > WIDE_SHARE:
        warnings.append(f"{hot + cold} of {n} units ({(hot + cold) / n:.0%}) are significant hot or cold spots: "
                        f"the neighbourhood ({nb.label}) is probably too wide for these units, so Gi* describes "
                        "broad regions rather than places; try a smaller --band or --neighbourhood knn")
    empty_hot = int(((table["Gi_Bin"] > 0) & (np.asarray(y) == 0)).sum())
    if empty_hot:
        warnings.append(f"{empty_hot} hot spot(s) had no events themselves: Gi* counts a place together with "
                        "its neighbours, so a quiet place ringed by busy ones is hot")
    return {"n_units": n, "warnings": warnings, "global_moran": {"I": gm["I"], "z": gm["z"], "p": gm["p"]},
            "neighbourhood": nb.label, "band_m": nb.band_m, "neighbours": counts,
            "smallest_q": {"gi": q_gi, "lisa": q_lisa},
            "significant": {"gi_hot": hot, "gi_cold": cold, "lisa": lisa},
            "summary": summary, "no_significance_reason": reason}


def _nanmin(values) -> float | None:
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    return float(v.min()) if len(v) else None


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def summary_lines(result: HotspotResult) -> list[str]:
    """The CLI summary: parameters, neighbourhood, diagnostics, classes, top hot spots, areas."""
    t, m = result.table, result.meta
    inference = m.get("inference_text") or f"{m['permutations']} permutations"
    lines = [f"units {m['units']}, cutoff {m['cutoff']}, {m['value']}, {inference}, seed {m['seed']}, "
             f"FDR {m['fdr_alpha']}"]
    nb, dg = m.get("neighbourhood"), m.get("diagnostics")
    if nb:
        c = nb["neighbours"]
        lines.append(f"neighbourhood: {nb['conceptualisation']}"
                     + (f" {nb['band_m']:,.0f} m" if nb.get("band_m") is not None else "")
                     + f" ({nb['reason']}); neighbours min {c['min']} / mean {c['mean']:.1f} / max {c['max']}")
    if dg:
        gm, q = dg["global_moran"], dg["smallest_q"]
        qs = ", ".join(f"{k} {v:.3g}" for k, v in (("Gi*", q["gi"]), ("LISA", q["lisa"])) if v is not None) or "none"
        lines.append(f"diagnostics: global Moran's I {gm['I']:.3f} (z {gm['z']:.2f}, p {_p(gm['p'])}), "
                     f"{dg['n_units']} units, smallest q {qs}")
        if dg.get("no_significance_reason"):
            lines.append(dg["no_significance_reason"])
        lines += [f"warning: {w}" for w in dg.get("warnings", [])]
    for title, col in (("Gi* class", "gi_class"), ("LISA", "lisa_class"), ("emerging", "emerging")):
        counts = t[col].value_counts()
        lines.append(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    hot = t[t["Gi_Bin"] > 0].sort_values("Zs", ascending=False).head(10)
    if len(hot):
        lines.append("top hot spots (unit, events, z): " + "; ".join(
            f"{r.unit_id} {r.y:.0f}{' (none itself: its neighbours)' if r.y == 0 else ''} {r.Zs:.1f}"
            for r in hot.itertuples()))
    if len(result.areas):
        lines.append(f"operational areas: {len(result.areas)} covering {result.areas['risk_share'].sum():.0%} "
                     "of recent events")
    return lines
