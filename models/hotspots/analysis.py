"""Hotspot analysis of one unit set as of a cutoff: Gi*, LISA, emerging hot spots, areas, KDE.

This is the glue between the feature builder (counts per unit and month) and the
statistics in ``models.hotspots``; the CLI and the run pipeline both call
:func:`analyse_hotspots`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from features.months import month, shift, window_months, window_sum
from models.hotspots import EmergingHotSpots, hotspot_table, kde_surface, operational_areas


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


def analyse_hotspots(fb, cutoff, *, events: gpd.GeoDataFrame | None = None, window_months: int = 12, permutations: int = 999, seed: int = 0,
                     fdr_alpha: float = 0.05, top_share: float = 0.1, kde_cell_m: float = 50.0,
                     areas: bool = True) -> HotspotResult:
    """Gi*/LISA on the last ``window_months`` of target events, emerging hot spots on quarterly
    bins of the last two years, operational areas over the riskiest units, and (when the target
    ``events`` are given) a KDE surface of the same window."""
    cutoff = month(cutoff)
    units = fb.units
    frame = units.frame
    panel = fb.panel()
    y = window_counts(panel, cutoff, window_months).astype(float)
    graph = units.graph("queen")
    table = hotspot_table(frame.set_index("unit_id"), y, graph, permutations=permutations, seed=seed,
                          fdr_alpha=fdr_alpha)
    series = quarterly_series(panel, cutoff)
    table["emerging"] = pd.array(["not enough periods"] * len(table), dtype="string")
    if series.shape[1] >= 4:
        ehs = EmergingHotSpots(permutations=permutations, seed=seed, alpha=fdr_alpha).fit(
            series.reindex(frame["unit_id"]).to_numpy(dtype=float), graph)
        table["emerging"] = pd.array(ehs.pattern_, dtype="string")
    areas = (operational_areas(frame.set_index("unit_id"), y, top_share=top_share, seed=seed, graph=graph)
             if areas else gpd.GeoDataFrame(geometry=[], crs=frame.crs))
    kde = None
    if events is not None:
        recent = (events["month"] >= cutoff - pd.DateOffset(months=window_months)) & (events["month"] < cutoff)
        events = events[recent]
    if events is not None and len(events):
        xy = np.column_stack([events.geometry.x, events.geometry.y])
        kde = kde_surface(xy, kde_cell_m, tuple(frame.total_bounds))
    meta = {"cutoff": f"{cutoff:%Y-%m}", "window_months": window_months, "permutations": permutations,
            "seed": seed, "fdr_alpha": fdr_alpha, "units": units.edition, "quarters": list(series.columns),
            "value": f"target events in the {window_months} months before the cutoff"}
    return HotspotResult(table, areas, kde, meta)


def summary_lines(result: HotspotResult) -> list[str]:
    t = result.table
    lines = [f"units {result.meta['units']}, cutoff {result.meta['cutoff']}, {result.meta['value']}, "
             f"{result.meta['permutations']} permutations, seed {result.meta['seed']}, FDR {result.meta['fdr_alpha']}"]
    for title, col in (("Gi* class", "gi_class"), ("LISA", "lisa_class"), ("emerging", "emerging")):
        counts = t[col].value_counts()
        lines.append(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    hot = t[t["Gi_Bin"] > 0].sort_values("Zs", ascending=False).head(10)
    if len(hot):
        lines.append("top hot spots (unit, events, z): " + "; ".join(
            f"{r.unit_id} {r.y:.0f} {r.Zs:.1f}" for r in hot.itertuples()))
    if len(result.areas):
        lines.append(f"operational areas: {len(result.areas)} covering {result.areas['risk_share'].sum():.0%} "
                     "of recent events")
    return lines
