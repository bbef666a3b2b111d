"""Who lives in the places a ranking puts first, against the whole borough.

Predictive rankings can send attention where it already goes (Lum & Isaac 2016;
Ensign et al. 2018). Every ranking therefore reports the deprivation profile of
its top places against the borough's, population-weighted (residents of the top
places vs all residents). Ethnicity is reported only where the data has it; the
open data svrisk reads by default does not, and the profile says so. Targets
never use police-generated counts, and features use them only when an analyst
allows it (the profile's note says which).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _wmean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = np.isfinite(values) & np.isfinite(weights)
    w = weights[ok]
    return float(np.sum(values[ok] * w) / np.sum(w)) if w.sum() > 0 else float("nan")


def fairness_profile(
    ranking: pd.DataFrame,
    X: pd.DataFrame,
    *,
    top_n: int = 20,
    police_generated_used: bool = False,
    ethnicity: pd.DataFrame | None = None,
) -> dict:
    """Deprivation (and ethnicity, when given) of the top ``top_n`` places vs the borough.

    Parameters
    ----------
    ranking : DataFrame
        ``unit_id`` and ``rank`` (the run's ranking).
    X : DataFrame indexed by unit_id
        The feature matrix: ``imd_score``, ``imd_decile`` and ``pop_total``
        (weights; equal weights when absent, and the note says so).
    top_n : int
    police_generated_used : bool
        Whether police-generated features were allowed (stated in the note).
    ethnicity : DataFrame indexed by unit_id, optional
        Residents by ethnic group (one column per group); adds one row per group
        (its share of residents).

    Returns
    -------
    dict ``{"top_n", "rows": [{"measure", "top_places", "borough", "ratio"}], "note"}``
    (``fairness.json`` in a run folder). ``ratio`` = top places / borough.

    Examples
    --------
    A ranking whose top places hold the most deprived residents has a ratio
    above 1 on "mean IMD score".
    """
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n!r}")
    X = X.set_axis(X.index.astype(str))
    ids = ranking.sort_values("rank")["unit_id"].astype(str)
    top = ids.iloc[:top_n].to_numpy()
    notes = []
    if "pop_total" in X.columns:
        weight = X["pop_total"].astype(float)
    else:
        weight = pd.Series(1.0, index=X.index)
        notes.append("no population figures: places weighted equally")
    rows = []

    def add(measure: str, values: pd.Series):
        v = values.astype(float)
        t = _wmean(v.reindex(top).to_numpy(), weight.reindex(top).to_numpy())
        b = _wmean(v.to_numpy(), weight.reindex(v.index).to_numpy())
        ratio = t / b if b not in (0.0,) and np.isfinite(b) else float("nan")
        rows.append({"measure": measure, "top_places": t, "borough": b, "ratio": ratio})

    if "imd_score" in X.columns:
        add("mean IMD 2019 score (higher = more deprived)", X["imd_score"])
    if "imd_decile" in X.columns:
        add("share of residents in the most deprived 20% of England (IMD deciles 1-2)",
            (X["imd_decile"] <= 2).astype(float).where(X["imd_decile"].notna()))
        add("mean IMD decile (1 = most deprived)", X["imd_decile"])
    if "share_10_24" in X.columns:
        add("share of residents aged 10-24", X["share_10_24"])
    if not rows:
        notes.append("no deprivation figures in the feature matrix: deprivation profile not available")
    if ethnicity is not None:
        eth = ethnicity.set_axis(ethnicity.index.astype(str))
        total = eth.sum(axis=1).replace(0, np.nan)
        for col in eth.columns:
            add(f"share of residents: {col}", eth[col] / total)
    else:
        notes.append("ethnicity: not in the data svrisk was given, so not reported")
    notes.append(
        "targets exclude police-generated counts; features "
        + ("INCLUDE police-generated counts (allowed by the analyst)" if police_generated_used
           else "exclude them (stop and search, drugs and weapons possession)")
    )
    for r in rows:
        for k in ("top_places", "borough", "ratio"):
            r[k] = None if not np.isfinite(r[k]) else round(float(r[k]), 4)
    return {"top_n": int(top_n), "rows": rows, "note": "; ".join(notes)}
