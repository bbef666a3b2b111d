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
would teach a model that counts mean less early on; :func:`features.months.complete_windows`
scales each ``<w>m`` window feature by ``w / months with data`` instead, applied
alike at training and forecast origins (a no-op once history is complete).

Long window. The builder's matrix looks back at most 12 months (24 for the trend),
but on small areas the best single guide to next month is the long-run rate: on
Barnet's LSOAs the mean over every month before the origin beat the 12-month
count. :func:`features.months.with_long_window` adds ``mean_sv_36m``, the mean monthly
count of the target's own groups over the months *with data* among the
:data:`features.months.LONG_WINDOW` before the cutoff (a mean, so it needs no completion), to every
matrix a model sees here: training rows (as of each training origin) and the
forecast matrix alike.

The backtest rolls the forecast origin over ``origins``; at each one every method
is refitted on data before it, scored by :func:`models.evaluation.evaluate_ranking`
on the next ``horizon`` months, and the table averages the measures over origins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from features.months import complete_windows, month, shift, window_sum, with_long_window
from models.baselines import PanelMean, baseline_methods
from models.boosting import BlendedBoost, PoissonBoost
from models.evaluation import MEASURES, evaluate_ranking
from models.glm import PoissonGLM


class _Cache:
    """Feature matrices and panels of one builder, computed once per origin."""

    def __init__(self, fb, groups=None):
        self.fb = fb
        self.months = [month(m) for m in fb.months]
        self.count = fb.panel(groups=groups, weight="count")
        self.harm = fb.panel(groups=groups, weight="harm")
        # the long window describes the builder's serious violence, like the cnt_sv_* columns
        self.sv = self.count if groups is None else fb.panel(weight="count")
        self._X: dict[pd.Timestamp, pd.DataFrame] = {}

    def X(self, origin: pd.Timestamp) -> pd.DataFrame:
        if origin not in self._X:
            X = complete_windows(self.fb.matrix(f"{origin:%Y-%m}"), self.months, origin)
            self._X[origin] = with_long_window(X, self.sv, origin)
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
    t = shift(c, -horizon)
    while len(out) < train_origins and months and t >= months[0]:
        if sum(m < t for m in months) >= min_train_history:
            out.append(t)
        t = shift(t, -1)
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
    """The feature matrix at ``cutoff`` as models were trained on: windows completed, long window added."""
    X = complete_windows(fb.matrix(f"{month(cutoff):%Y-%m}"), [month(m) for m in fb.months], cutoff)
    return with_long_window(X, fb.panel(weight="count"), cutoff)


def default_methods(seed: int = 0) -> dict:
    """Baselines plus the models, by backtest name.

    ``glm`` the Poisson GLM, ``xgb`` the monotone Poisson boosting, ``blend`` the
    boosting blended with the long-window mean (the default model, see
    :data:`models.ranking.DEFAULT_METHOD`).
    """
    methods = baseline_methods()
    methods["glm"] = PoissonGLM()
    methods["xgb"] = PoissonBoost(seed=seed)
    methods["blend"] = BlendedBoost(PoissonBoost(seed=seed))
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
                   and all(shift(m, k) in set(cache.months) for k in range(horizon))]
    origins = [month(o) for o in origins]
    have = set(cache.months)
    for o in origins:
        if shift(o, horizon - 1) > last:
            raise ValueError(f"origin {o:%Y-%m}: horizon {horizon} runs past the last month of data {last:%Y-%m}")
        gaps = [shift(o, k) for k in range(horizon) if shift(o, k) not in have]
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
        previous = window_sum(cache.count, shift(o, -horizon), horizon)
        harm_previous = window_sum(cache.harm, shift(o, -horizon), horizon)
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
    return per if per_origin else summarise_origins(per)


def summarise_origins(per: pd.DataFrame) -> pd.DataFrame:
    """The backtest table from its per-origin rows: measures averaged over origins per (method, slice)."""
    measures = [*MEASURES, *(f"harm_{m}" for m in MEASURES)]
    return per.groupby(["method", "slice"], sort=False).agg(
        coverage=("coverage", "first"), top_n=("top_n", "first"), horizon=("horizon", "first"),
        n_origins=("origin", "nunique"), **{m: (m, "mean") for m in measures},
    ).reset_index()


def paired_comparison(
    per: pd.DataFrame, method: str, against: str, *, slice: str = "5% area", measure: str = "pei",
    n_boot: int = 10_000, seed: int = 0, level: float = 0.95,
) -> dict:
    """Per-origin paired comparison of two methods of one backtest (``per_origin=True`` rows).

    Differences ``method - against`` at each origin where both are defined;
    a difference within 1e-12 of zero is a tie.

    Returns
    -------
    dict: ``n_origins``, ``mean_diff``, ``wins``, ``losses``, ``ties``,
    ``win_share`` (wins over non-tied origins), ``sign_p`` (two-sided exact
    sign test on the non-tied origins), ``boot_lo``/``boot_hi`` (percentile
    ``level`` interval of the mean difference, ``n_boot`` resamples of origins
    with ``seed``), ``boot_p_le0`` (share of resampled means <= 0).

    Examples
    --------
    >>> per = pd.DataFrame({"method": ["a", "b"] * 3, "origin": ["1", "1", "2", "2", "3", "3"],
    ...                     "slice": "5% area", "pei": [0.9, 0.8, 0.7, 0.7, 0.6, 0.5]})
    >>> r = paired_comparison(per, "a", "b", n_boot=100)
    >>> (r["wins"], r["losses"], r["ties"], r["sign_p"])
    (2, 0, 1, 0.5)
    """
    from scipy.stats import binomtest

    for name in (method, against):
        if name not in set(per["method"]):
            raise ValueError(f"paired_comparison: no method {name!r} in the backtest rows "
                             f"(methods: {sorted(set(per['method']))})")
    rows = per[per["slice"] == slice]
    if rows.empty:
        raise ValueError(f"paired_comparison: no slice {slice!r} (slices: {sorted(set(per['slice']))})")
    wide = rows.pivot(index="origin", columns="method", values=measure)[[method, against]].dropna()
    d = (wide[method] - wide[against]).to_numpy(dtype=float)
    d = np.where(np.abs(d) <= 1e-12, 0.0, d)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), size=(int(n_boot), len(d)))].mean(axis=1) if len(d) else np.array([np.nan])
    q = ((1 - level) / 2, (1 + level) / 2)
    return {
        "method": method, "against": against, "slice": slice, "measure": measure,
        "n_origins": len(d), "mean_diff": float(d.mean()) if len(d) else float("nan"),
        "wins": wins, "losses": losses, "ties": len(d) - wins - losses,
        "win_share": wins / (wins + losses) if wins + losses else float("nan"),
        "sign_p": float(binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0,
        "boot_lo": float(np.quantile(boot, q[0])), "boot_hi": float(np.quantile(boot, q[1])),
        "boot_p_le0": float((boot <= 0).mean()), "n_boot": int(n_boot), "seed": int(seed),
    }


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
