"""Rolling-origin backtests, and fitting a model as of a cutoff without leakage.

Training design. To forecast the ``horizon`` months from cutoff ``c``, a model is
fitted on (unit, origin) rows from earlier origins ``t = c - h, c - h - 1, ...``
(at most ``train_origins`` of them): features as of ``t`` (months before ``t``),
target = events in ``[t, t + h)``, so every training target ends before ``c``.
Origins with fewer than ``min_train_history`` months of data before them are not
used.

Window completion. The feature builder counts what there is when a window reaches
before the first month of data (or over a month without data), so a 12-month count
at an origin with 7 months of history is 7 months' worth. Training on such rows
would teach a model that counts mean less early on; :func:`complete_windows`
scales each ``<w>m`` window feature by ``w / months with data`` instead, applied
alike at training and forecast origins (a no-op once history is complete).

The backtest rolls the forecast origin over ``origins``; at each one every method
is refitted on data before it, scored by :func:`models.evaluation.evaluate_ranking`
on the next ``horizon`` months, and the table averages the measures over origins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from models.baselines import PanelMean, baseline_methods
from models.evaluation import MEASURES, evaluate_ranking

_WINDOW = re.compile(r"^(cnt_.+|harm_.+|lag_cnt_.+|kde_.+|sas)_(\d+)m$")
_RATE_12M = ("sv_rate_eb",)


def month(value) -> pd.Timestamp:
    """First day of the month of ``value`` ("2018-01", a date, a Timestamp)."""
    try:
        return pd.Timestamp(value).to_period("M").to_timestamp()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a month: {value!r} (expected 'YYYY-MM')") from exc


def _shift(m: pd.Timestamp, k: int) -> pd.Timestamp:
    return m + pd.DateOffset(months=int(k))


def window_sum(panel: pd.DataFrame, start: pd.Timestamp, months: int) -> pd.Series:
    """Sum of the panel's months in ``[start, start + months)`` per unit."""
    cols = pd.DatetimeIndex(pd.to_datetime(panel.columns))
    keep = (cols >= start) & (cols < _shift(start, months))
    return panel.loc[:, keep].sum(axis=1).astype(float)


def complete_windows(X: pd.DataFrame, data_months: Sequence[pd.Timestamp], cutoff) -> pd.DataFrame:
    """Scale ``<w>m`` window features by ``w / (months with data in the window)``.

    ``sv_rate_eb`` is treated as a 12-month window. Windows with no data at all
    are left as they are (zero).
    """
    c = month(cutoff)
    have = set(pd.DatetimeIndex(data_months))
    out = X.copy()
    for col in X.columns:
        m = _WINDOW.match(str(col))
        w = int(m.group(2)) if m else (12 if col in _RATE_12M else 0)
        if not w:
            continue
        n = sum(_shift(c, -k) in have for k in range(1, w + 1))
        if 0 < n < w:
            out[col] = X[col] * (w / n)
    return out


class _Cache:
    """Feature matrices and panels of one builder, computed once per origin."""

    def __init__(self, fb, groups=None):
        self.fb = fb
        self.months = [month(m) for m in fb.months]
        self.count = fb.panel(groups=groups, weight="count")
        self.harm = fb.panel(groups=groups, weight="harm")
        self._X: dict[pd.Timestamp, pd.DataFrame] = {}

    def X(self, origin: pd.Timestamp) -> pd.DataFrame:
        if origin not in self._X:
            self._X[origin] = complete_windows(self.fb.matrix(f"{origin:%Y-%m}"), self.months, origin)
        return self._X[origin]

    def history(self, origin: pd.Timestamp) -> int:
        return sum(m < origin for m in self.months)


def training_origins(
    months: Sequence[pd.Timestamp], cutoff, horizon: int, train_origins: int = 12,
    min_train_history: int = 6,
) -> list[pd.Timestamp]:
    """Origins whose targets ``[t, t + horizon)`` end before ``cutoff``, newest first."""
    c = month(cutoff)
    months = sorted(month(m) for m in months)
    out = []
    t = _shift(c, -horizon)
    while len(out) < train_origins and months and t >= months[0]:
        if sum(m < t for m in months) >= min_train_history:
            out.append(t)
        t = _shift(t, -1)
    return out


def training_set(
    fb, cutoff, horizon: int = 1, *, train_origins: int = 12, min_train_history: int = 6,
    groups=None, _cache: _Cache | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Stacked (origin, unit_id) rows for fitting a model that forecasts from ``cutoff``.

    Returns
    -------
    X : DataFrame indexed by (origin, unit_id)
    y : Series, events in ``[origin, origin + horizon)``
    """
    cache = _cache or _Cache(fb, groups)
    origins = training_origins(cache.months, cutoff, horizon, train_origins, min_train_history)
    if not origins:
        raise ValueError(
            f"no training origin before cutoff {month(cutoff):%Y-%m} with horizon {horizon} and "
            f"{min_train_history} months of history (data covers "
            f"{cache.months[0]:%Y-%m}..{cache.months[-1]:%Y-%m})" if cache.months else "no data"
        )
    Xs = {t: cache.X(t) for t in origins}
    ys = {t: window_sum(cache.count, t, horizon).reindex(Xs[t].index) for t in origins}
    X = pd.concat(Xs, names=["origin", "unit_id"])
    y = pd.concat(ys, names=["origin", "unit_id"]).rename("target")
    return X, y


def fit_at(fb, estimator, cutoff, horizon: int = 1, *, train_origins: int = 12,
           min_train_history: int = 6, groups=None, _cache=None):
    """A clone of ``estimator`` fitted on data before ``cutoff`` (see the training design)."""
    X, y = training_set(fb, cutoff, horizon, train_origins=train_origins,
                        min_train_history=min_train_history, groups=groups, _cache=_cache)
    return clone(estimator).fit(X, y.to_numpy())


def forecast_matrix(fb, cutoff) -> pd.DataFrame:
    """The feature matrix at ``cutoff`` with windows completed, as models were trained on."""
    return complete_windows(fb.matrix(f"{month(cutoff):%Y-%m}"), [month(m) for m in fb.months], cutoff)


def default_methods(seed: int = 0) -> dict:
    """Baselines plus the two models, by backtest name."""
    from models.boosting import PoissonBoost
    from models.glm import PoissonGLM

    methods = baseline_methods()
    methods["glm"] = PoissonGLM()
    methods["xgb"] = PoissonBoost(seed=seed)
    return methods


def _scores(method, cache: _Cache, origin, horizon, train_origins, min_train_history, groups):
    if isinstance(method, PanelMean):
        before = cache.count.loc[:, pd.to_datetime(cache.count.columns) < origin]
        return method.scores(before, origin, horizon)
    model = fit_at(cache.fb, method, origin, horizon, train_origins=train_origins,
                   min_train_history=min_train_history, groups=groups, _cache=cache)
    X = cache.X(origin)
    return pd.Series(model.predict(X), index=X.index)


def backtest(
    fb,
    methods: Mapping | None = None,
    origins: Sequence | None = None,
    horizon: int = 1,
    coverages: Sequence[float] = (0.01, 0.05, 0.10),
    top_n: Sequence[int] = (10, 20),
    history_months: int = 12,
    *,
    train_origins: int = 12,
    min_train_history: int = 6,
    groups=None,
    per_origin: bool = False,
) -> pd.DataFrame:
    """Rolling-origin backtest of several ranking methods on one unit set.

    Parameters
    ----------
    fb : features.build.FeatureBuilder (or an object with ``matrix``, ``panel``, ``months``, ``units``)
    methods : mapping name -> estimator or :class:`~models.baselines.PanelMean`
        None means :func:`default_methods`.
    origins : sequence of "YYYY-MM", optional
        Forecast origins. None means every month with ``history_months`` of data
        before it and ``horizon`` months of data from it.
    horizon : int
        Months forecast (the target window).
    coverages, top_n
        Slices (share of area, number of places).
    history_months : int
        Months of data an origin needs before it (default origins only).
    train_origins, min_train_history
        Training design, see the module notes.
    groups : list of str, optional
        Target offence groups (default: the builder's target groups).
    per_origin : bool
        Return one row per (method, origin, slice) instead of the means.

    Returns
    -------
    DataFrame: ``method``, ``slice``, ``coverage``, ``top_n``, ``horizon``,
    ``n_origins``, ``hit_rate``, ``pai``, ``pei``, ``rri`` and ``harm_*``
    (means over origins; RRI over origins where it is defined).
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a whole number of months >= 1, got {horizon!r}")
    methods = dict(default_methods() if methods is None else methods)
    cache = _Cache(fb, groups)
    if not cache.months:
        raise ValueError("the builder has no months of event data")
    last = cache.months[-1]
    if origins is None:
        origins = [m for m in cache.months if cache.history(m) >= history_months
                   and all(_shift(m, k) in set(cache.months) for k in range(horizon))]
    origins = [month(o) for o in origins]
    have = set(cache.months)
    for o in origins:
        if _shift(o, horizon - 1) > last:
            raise ValueError(f"origin {o:%Y-%m}: horizon {horizon} runs past the last month of data {last:%Y-%m}")
        gaps = [_shift(o, k) for k in range(horizon) if _shift(o, k) not in have]
        if gaps:
            raise ValueError(
                f"origin {o:%Y-%m}: no event data for {', '.join(f'{g:%Y-%m}' for g in gaps)} "
                "in the target window; a zero there would be false"
            )
    if not origins:
        raise ValueError(f"no origin has {history_months} months of history and {horizon} months after it")
    areas = pd.Series(fb.units.frame["area_m2"].to_numpy(dtype=float),
                      index=pd.Index(fb.units.frame["unit_id"].astype(str), name="unit_id"))
    rows = []
    for o in origins:
        actual = window_sum(cache.count, o, horizon)
        harm = window_sum(cache.harm, o, horizon)
        previous = window_sum(cache.count, _shift(o, -horizon), horizon)
        harm_previous = window_sum(cache.harm, _shift(o, -horizon), horizon)
        for name, method in methods.items():
            scores = _scores(method, cache, o, horizon, train_origins, min_train_history, groups)
            scores.index = scores.index.astype(str)
            table = evaluate_ranking(
                scores, areas.reindex(scores.index), actual.set_axis(actual.index.astype(str)),
                previous=previous.set_axis(previous.index.astype(str)),
                harm=harm.set_axis(harm.index.astype(str)),
                harm_previous=harm_previous.set_axis(harm_previous.index.astype(str)),
                coverages=coverages, top_n=top_n,
            )
            table.insert(0, "origin", f"{o:%Y-%m}")
            table.insert(0, "method", name)
            rows.append(table)
    per = pd.concat(rows, ignore_index=True)
    per["horizon"] = int(horizon)
    if per_origin:
        return per
    measures = [*MEASURES, *(f"harm_{m}" for m in MEASURES)]
    keys = ["method", "slice"]
    out = per.groupby(keys, sort=False).agg(
        coverage=("coverage", "first"), top_n=("top_n", "first"), horizon=("horizon", "first"),
        n_origins=("origin", "nunique"), **{m: (m, "mean") for m in measures},
    ).reset_index()
    return out


def backtest_records(table: pd.DataFrame, units: str) -> list[dict]:
    """The backtest table as JSON-ready records (``units`` = the edition)."""
    records = []
    for row in table.to_dict(orient="records"):
        rec = {"units": units}
        for k, v in row.items():
            if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                v = None
            elif isinstance(v, np.generic):
                v = v.item()
            rec[k] = v
        records.append(rec)
    return records
