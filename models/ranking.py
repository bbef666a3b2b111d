"""The ranking of places, and the deployment lists built from it.

:func:`rank_places` assembles the run folder's ``ranking.parquet`` (columns
:data:`RANKING_COLUMNS`, sorted by rank); :func:`rank_from_model` does it from a
fitted model and a feature builder. Ranks follow the tie rule of
:func:`models.evaluation.rank_order` (expected count descending, then the last
12 months' count descending, then unit_id ascending).

Deployment lists:

* :func:`clear_hold_build` - contiguous groups (the unit set's queen graph) of
  the units in the top slice, scored by expected harm and described by wards and
  hubs: candidate Clear Hold Build footprints (``areas.parquet``).
* :func:`youth_list` - a detached youth-work list that weights places by the
  risk that falls on under-25s: youth share, schools, transport hubs, robbery and
  (when allowed) weapons, with the forecast itself (``youth_list.parquet``).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from models.backtest import forecast_matrix
from models.evaluation import rank_order, top_slice
from models.hotspots.regions import SEPARATOR, operational_areas
from models.reasons import coherent, describe, reasons, sentence

DEFAULT_METHOD = "nested"
"""The model `svrisk train` fits unless told otherwise: the transparent candidate that did best
on earlier origins (:class:`models.backtest.NestedChoice` over
:func:`models.backtest.transparent_candidates`).

At every cutoff the candidates - the 36-month mean (``long_mean``), a Poisson GLM on the
place's own history (``glm_own``), that plus the long-run levels of other victim-reported
crime (``glm_levels``), and that plus context and the spatial lag (``glm``) - are backtested
on the 12 latest origins whose targets end before the cutoff, each fitted only on data
before its own origin; the best by mean PEI* at 1%, 5% and 10% of the area is fitted and
used. Every candidate reads as a rate: the long mean directly, the GLMs as rate ratios per
doubling of a count (model card). Nothing is tuned on one borough: the same rule picks
per borough, unit set and horizon, and the backtest of the whole procedure is nested (the
choice at an origin sees only earlier origins). The boosting (``xgb``) and its blend with the
long mean (``blend``, the default before) remain options (``--method``).

Evidence (``benchmarks/backtest.py``, docs/forecasting.md; Barnet police.uk 2016-01..2018-06, the
pipeline's origins 2017-01..2018-06 for next month and 2016-11..2018-04 for next quarter; PEI* at
5% of the area, scored exactly; paired per origin, 95% bootstrap interval; ceiling from
:mod:`models.ceiling`):

======================  =========  =========  ======  ================================  =======
units, horizon          count_12m  long_mean  nested  nested - count_12m (better/worse)  ceiling
======================  =========  =========  ======  ================================  =======
grid250, next month     0.686      0.692      0.702   +0.017 [+0.006, +0.028] (14/3)    0.723
grid250, next quarter   0.828      0.835      0.849   +0.021 [+0.013, +0.029] (15/0)    0.861
lsoa2011, next month    0.790      0.814      0.815   +0.025 [+0.006, +0.047] (10/8)    0.822
lsoa2011, next quarter  0.875      0.899      0.889   +0.014 [+0.004, +0.024] (11/5)    0.925
======================  =========  =========  ======  ================================  =======

Against ``long_mean`` at 5%: grid +0.010 [+0.002, +0.019] and +0.013 [+0.006, +0.021]; LSOAs
+0.001 [-0.015, +0.017] and -0.010 [-0.022, +0.000] (ties; in the second the long mean is ahead
and the interval only just contains zero). At 1% and 10% of the area no interval of the default
against either lies below zero, but against the count it wins only next quarter (10% on the
grid, 1% on LSOAs) and otherwise ties. The room is small: the count already reaches 95-96% of
the ceiling, the default 96-99%. Re-check with ``svrisk backtest`` on a new borough."""

RANKING_COLUMNS = [
    "unit_id", "name", "place", "rank", "expected", "expected_lo", "expected_hi", "risk_share",
    "reason_1", "reason_2", "reason_3", "gi_class", "Gi_Bin", "emerging", "rank_change",
    "recent_count", "geometry",
]
AREA_COLUMNS = ["area_id", "n_units", "unit_ids", "expected", "harm_share", "wards", "hubs",
                "reasons", "geometry"]
YOUTH_COLUMNS = ["unit_id", "name", "place", "youth_rank", "youth_score", "reasons", "geometry"]


def predictive_interval(expected, dispersion: float = 0.0, level: float = 0.8):
    """Central ``level`` interval of next period's count around ``expected``.

    Poisson when ``dispersion`` is 0, else negative binomial with
    ``Var = mu + dispersion * mu^2`` (the model's moment estimate).

    Returns
    -------
    lo, hi : ndarray of float
    """
    from scipy.stats import nbinom, poisson

    mu = np.maximum(np.asarray(expected, dtype=float), 1e-12)
    q = ((1 - level) / 2, (1 + level) / 2)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if dispersion <= 0:
        return poisson.ppf(q[0], mu), poisson.ppf(q[1], mu)
    r = 1.0 / dispersion
    p = r / (r + mu)
    return nbinom.ppf(q[0], r, p), nbinom.ppf(q[1], r, p)


def _by_unit(frame: pd.DataFrame | None, what: str) -> pd.DataFrame | None:
    if frame is None:
        return None
    if "unit_id" not in frame.columns:
        raise ValueError(f"{what}: needs a unit_id column, has {list(frame.columns)}")
    out = pd.DataFrame(frame).copy()
    out["unit_id"] = out["unit_id"].astype(str)
    if out["unit_id"].duplicated().any():
        raise ValueError(f"{what}: duplicate unit_id {out.loc[out['unit_id'].duplicated(), 'unit_id'].iloc[0]!r}")
    return out.set_index("unit_id")


def rank_places(
    units: gpd.GeoDataFrame,
    expected: pd.Series,
    *,
    dispersion: float = 0.0,
    reason_table: pd.DataFrame | None = None,
    recent_count: pd.Series | None = None,
    hotspots: pd.DataFrame | None = None,
    previous: pd.DataFrame | None = None,
    places: pd.Series | None = None,
    level: float = 0.8,
) -> gpd.GeoDataFrame:
    """One row per unit, sorted by rank, in the run folder's ranking contract.

    Parameters
    ----------
    units : GeoDataFrame
        ``unit_id``, ``name``, ``geometry`` (EPSG:27700), e.g. ``UnitSet.frame``.
    expected : Series indexed by unit_id
        Forecast count for the next horizon.
    dispersion : float
        The model's negative-binomial alpha for the interval (0 = Poisson).
    reason_table : DataFrame indexed by unit_id, optional
        ``reason_1``..``reason_3`` (see :func:`models.reasons.reasons`).
    recent_count : Series indexed by unit_id, optional
        Events in the last 12 months (the first tie-breaker).
    hotspots : DataFrame, optional
        ``unit_id`` with ``gi_class``, ``Gi_Bin``, ``emerging`` (hotspots.parquet).
    previous : DataFrame, optional
        The previous run's ranking (``unit_id``, ``rank``): ``rank_change`` is
        previous rank minus this rank (positive = moved up); NA for new units
        or without a previous run.
    places : Series indexed by unit_id, optional
        The name people use for each unit (:func:`geo.places.place_names`: ward and
        nearest station); ``place`` falls back to ``name`` where it is missing.
    level : float
        Interval coverage (0.8 = 80%).
    """
    frame = units[["unit_id", "name", "geometry"]].copy()
    frame["unit_id"] = frame["unit_id"].astype(str)
    ids = pd.Index(frame["unit_id"])
    exp = expected.set_axis(expected.index.astype(str))
    missing = ids.difference(exp.index)
    if len(missing):
        raise ValueError(f"expected: no forecast for unit_id {missing[0]!r} ({len(missing)} units)")
    exp = exp.reindex(ids).astype(float)
    place = (places.set_axis(places.index.astype(str)).reindex(ids) if places is not None
             else pd.Series(pd.NA, index=ids, dtype="string"))
    frame["place"] = pd.array(place.fillna(frame.set_index("unit_id")["name"]).to_numpy(), dtype="string")
    recent = (pd.Series(0.0, index=ids) if recent_count is None
              else recent_count.set_axis(recent_count.index.astype(str)).reindex(ids).fillna(0.0))
    order = rank_order(exp, recent)
    rank = pd.Series(np.arange(1, len(order) + 1), index=order).reindex(ids)
    lo, hi = predictive_interval(exp.to_numpy(), dispersion, level)
    total = exp.sum()
    frame["rank"] = rank.to_numpy().astype("int64")
    frame["expected"] = exp.to_numpy()
    frame["expected_lo"] = lo
    frame["expected_hi"] = hi
    frame["risk_share"] = exp.to_numpy() / total if total > 0 else np.nan
    rt = reason_table.set_axis(reason_table.index.astype(str)) if reason_table is not None else None
    for i in (1, 2, 3):
        col = f"reason_{i}"
        vals = rt[col].reindex(ids) if rt is not None and col in rt.columns else pd.Series(pd.NA, index=ids)
        frame[col] = pd.array(vals.to_numpy(), dtype="string")
    hs = _by_unit(hotspots, "hotspots")
    for col, dtype in (("gi_class", "string"), ("Gi_Bin", "Int64"), ("emerging", "string")):
        vals = hs[col].reindex(ids) if hs is not None and col in hs.columns else pd.Series(pd.NA, index=ids)
        frame[col] = pd.array(vals.to_numpy(), dtype=dtype)
    prev = _by_unit(previous, "previous ranking")
    if prev is not None:
        change = prev["rank"].reindex(ids).astype("Int64") - rank.astype("Int64")
        frame["rank_change"] = pd.array(change.to_numpy(), dtype="Int64")
    else:
        frame["rank_change"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    frame["recent_count"] = recent.to_numpy(dtype=float)
    out = gpd.GeoDataFrame(frame[RANKING_COLUMNS], geometry="geometry", crs=units.crs)
    return out.sort_values("rank").reset_index(drop=True)


def expected_harm(ranking: pd.DataFrame, X: pd.DataFrame) -> pd.Series:
    """Expected harm per unit: expected count x the unit's harm per event over 12 months.

    Units without events in the last 12 months take the borough's harm per event.
    """
    X = X.set_axis(X.index.astype(str))
    ids = ranking["unit_id"].astype(str)
    cnt = X["cnt_sv_12m"].reindex(ids).to_numpy(dtype=float)
    harm = X["harm_sv_12m"].reindex(ids).to_numpy(dtype=float)
    borough = harm.sum() / cnt.sum() if cnt.sum() > 0 else 1.0
    per_event = np.where(cnt > 0, harm / np.where(cnt > 0, cnt, 1.0), borough)
    return pd.Series(ranking["expected"].to_numpy(dtype=float) * per_event, index=ids.to_numpy())


def rank_from_model(
    fb, model, cutoff, *, hotspots=None, previous=None, places=None, level: float = 0.8
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Rank the builder's units at ``cutoff`` with a fitted model.

    Returns the ranking and the feature matrix it used (windows completed, as
    in training; reasons quote the same values).
    """
    X = forecast_matrix(fb, cutoff)
    expected = pd.Series(model.predict(X), index=X.index.astype(str))
    table = None
    if hasattr(model, "contributions"):
        table = reasons(model.contributions(X), X)
    elif hasattr(model, "column_index_"):
        name = str(model.feature_names_in_[model.column_index_])
        med = float(X[name].median())
        # a one-column baseline ranks by the column: a value above the median raises the forecast
        table = pd.DataFrame({"reason_1": [sentence(describe(name, v, med), 1.0)
                                           if coherent(name, v, med, 1.0) else pd.NA for v in X[name]]},
                             index=X.index.astype(str))
    recent = fb.matrix(cutoff)["cnt_sv_12m"] if "cnt_sv_12m" in X.columns else None
    ranking = rank_places(
        fb.units.frame, expected, dispersion=float(getattr(model, "dispersion_", 0.0)),
        reason_table=table, recent_count=recent, hotspots=hotspots, previous=previous, places=places,
        level=level,
    )
    return ranking, X


def clear_hold_build(
    ranking: gpd.GeoDataFrame,
    graph,
    *,
    harm: pd.Series | None = None,
    coverage: float = 0.05,
    areas_m2: pd.Series | None = None,
    wards: gpd.GeoDataFrame | None = None,
    hubs: gpd.GeoDataFrame | None = None,
    hub_buffer_m: float = 250.0,
    max_area_km2: float | None = None,
) -> gpd.GeoDataFrame:
    """Candidate Clear Hold Build areas: contiguous groups of the top units, by expected harm.

    The top units are the ranking's top slice covering ``coverage`` of the area
    (the tie rule of :func:`models.evaluation.top_slice`); they are grouped by
    :func:`models.hotspots.regions.operational_areas` with ``graph`` (the unit
    set's queen Graph keyed by unit_id, ``UnitSet.graph("queen")``): each
    connected group of top units is one area, split with SKATER only when it is
    larger than ``max_area_km2``. Each area is scored by its expected harm
    (``harm`` per unit, default the expected count); ``area_id`` "A1" is the area
    with the most expected harm (ties by unit_ids).

    Returns the ``areas.parquet`` contract (:data:`AREA_COLUMNS`): area_id,
    n_units, unit_ids (``"; "``-joined), expected, harm_share (share of the
    borough's expected harm), wards (names of the wards it overlaps, largest
    overlap first; ``wards`` needs ``code`` and ``name``) and hubs (names of
    hubs within ``hub_buffer_m``, highest ``footfall`` first; ``hubs`` needs
    ``kind`` and ``name``), both ``"; "``-joined, reasons (the most frequent
    first reasons of its units), geometry.
    """
    r = ranking.assign(unit_id=ranking["unit_id"].astype(str)).set_index("unit_id")
    if harm is not None:
        harm = harm.set_axis(harm.index.astype(str))
    if areas_m2 is None:
        areas_m2 = r.geometry.area
    recent = r["recent_count"] if "recent_count" in r.columns else None
    top = top_slice(r["expected"], areas_m2.reindex(r.index), coverage=coverage, previous=recent)
    out = operational_areas(
        r, r["expected"], harm=harm, selected=top, graph=graph, method="skater", min_units=1,
        max_area_km2=max_area_km2, wards=wards, hubs=hubs, hub_buffer_m=hub_buffer_m,
    )
    out = out.sort_values(["harm_sum", "unit_ids"], ascending=[False, True], kind="stable")
    first = r["reason_1"] if "reason_1" in r.columns else pd.Series(pd.NA, index=r.index)
    out["reasons"] = [
        "; ".join(first.reindex(ids.split(SEPARATOR)).dropna().astype(str).value_counts(sort=True).index[:3])
        for ids in out["unit_ids"]
    ]
    out["expected"] = out["risk_sum"]
    out["area_id"] = [f"A{i + 1}" for i in range(len(out))]
    return gpd.GeoDataFrame(out[AREA_COLUMNS].reset_index(drop=True), geometry="geometry", crs=ranking.crs)


YOUTH_WEIGHTS = {
    "expected": 2.0,
    "share_10_24": 1.0,
    "schools_500": 1.0,
    "foot_500": 1.0,
    "bus_stop_density": 0.5,
    "cnt_robbery_12m": 1.0,
    "cnt_weapons_12m": 1.0,
}
"""Weights of the youth-work score's terms (each term is a percentile rank 0..1)."""


def youth_list(
    ranking: gpd.GeoDataFrame, X: pd.DataFrame, *, top_n: int = 20, weights: dict | None = None
) -> gpd.GeoDataFrame:
    """A detached youth-work list: places where risk falls on young people.

    The score is the weighted mean of percentile ranks (0..1, ties averaged) of
    the forecast and of the youth-relevant features present in ``X``
    (:data:`YOUTH_WEIGHTS`: youth share, schools within 500 m, station footfall
    within 500 m, bus stops, robbery and - only when police-generated features
    are allowed and present - weapons). Missing features drop out and the
    weights renormalise. Ties: score, then expected count, then unit_id.
    Reasons name the three terms with the highest percentile.
    """
    weights = dict(YOUTH_WEIGHTS if weights is None else weights)
    X = X.set_axis(X.index.astype(str))
    r = ranking.assign(unit_id=ranking["unit_id"].astype(str)).set_index("unit_id")
    terms = {}
    for name in weights:
        if name == "expected":
            terms[name] = r["expected"]
        elif name in X.columns:
            terms[name] = X[name].reindex(r.index)
    if not terms:
        raise ValueError(f"youth_list: none of {list(weights)} is available")
    pct = pd.DataFrame({k: v.astype(float).rank(pct=True, method="average") for k, v in terms.items()})
    w = pd.Series({k: weights[k] for k in terms})
    score = (pct * w).sum(axis=1) / w.sum()
    order = rank_order(score, r["expected"])[:top_n]
    rows = []
    for i, u in enumerate(order, start=1):
        best = pct.loc[u].sort_values(ascending=False, kind="stable").index[:3]
        text = []
        for name in best:
            if name == "expected":
                text.append(f"forecast {r.loc[u, 'expected']:.1f} serious violence events (rank {r.loc[u, 'rank']})")
            else:
                text.append(describe(name, float(X.loc[u, name]), float(X[name].median())))
        rows.append({"unit_id": u, "name": r.loc[u, "name"],
                     "place": r.loc[u, "place"] if "place" in r.columns else r.loc[u, "name"], "youth_rank": i,
                     "youth_score": float(score[u]), "reasons": "; ".join(text), "geometry": r.loc[u, "geometry"]})
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=YOUTH_COLUMNS), geometry="geometry", crs=ranking.crs)
