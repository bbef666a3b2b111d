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
forecast matrix alike; :func:`with_long_levels` adds the same long-run level of every
other feature group (``mean_asb_36m``, ...; police-generated groups only when allowed).

The backtest rolls the forecast origin over ``origins``; at each one every method
is refitted on data before it, scored by :func:`models.evaluation.evaluate_ranking`
on the next ``horizon`` months, and the table averages the measures over origins.
A :class:`NestedChoice` (the default) chooses among its candidates at each origin by
a backtest on earlier origins only, so its own backtest is nested.
:func:`backtest_report` turns the per-origin rows into the evidence every output
shows: per-origin and summary rows, paired differences against last year's counts
(:func:`paired_comparison`) and the expected PEI* of a long-run-rate oracle
(:func:`backtest_ceiling`), with how often methods score above it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from features.months import (
    LONG_MEAN_COLUMN,
    LONG_WINDOW,
    backtest_origins,
    complete_windows,
    long_window_mean,
    month,
    panel_months,
    shift,
    window_sum,
    with_long_window,
)
from models.baselines import ColumnRanker, EventSurface, KernelBaseline, PanelMean, baseline_methods
from models.boosting import BlendedBoost, PoissonBoost
from models.ceiling import N_SIMS, oracle_ceiling
from models.evaluation import MEASURES, evaluate_ranking
from models.glm import OTHER_LEVELS, OWN_HISTORY, PoissonGLM
from models.prediction_cache import PredictionCache, method_key

MIN_TRAIN_HISTORY = 6
"""Months of data a training origin needs before it (the training design's default)."""


def min_history(horizon: int, min_train_history: int = MIN_TRAIN_HISTORY) -> int:
    """The fewest months of history a cutoff can be fitted at for ``horizon``: a training origin
    ``horizon`` months before it with ``min_train_history`` months before that.

    The floor of a shortened window (``min_history`` of :func:`features.months.usable_cutoffs`).

    >>> min_history(1), min_history(3)
    (7, 9)
    """
    return int(min_train_history) + int(horizon)


class _Cache:
    """Feature matrices and panels of one builder, computed once per origin."""

    def __init__(self, fb, groups=None, predictions: PredictionCache | None = None):
        self.fb = fb
        self.predictions = predictions
        self.months = list(fb.months)  # the builder's months are Months
        self.count = fb.panel(groups=groups, weight="count")
        self.harm = fb.panel(groups=groups, weight="harm")
        # the long window describes the builder's serious violence, like the cnt_sv_* columns
        self.sv = self.count if groups is None else fb.panel(weight="count")
        self.levels = group_panels(fb)
        self._X: dict[pd.Timestamp, pd.DataFrame] = {}
        self._groups = groups
        self._surface: EventSurface | None = None
        self._areas: pd.Series | None = None
        self.memo: dict[tuple, object] = {}

    @property
    def surface(self) -> EventSurface:
        """The target events on a fine raster (kernel baselines), built on first use."""
        if self._surface is None:
            groups = self._groups or self.fb.target_groups
            self._surface = EventSurface.from_store(self.fb.store, self.fb.units, groups)
        return self._surface

    @property
    def areas(self) -> pd.Series:
        if self._areas is None:
            frame = self.fb.units.frame
            self._areas = pd.Series(frame["area_m2"].to_numpy(dtype=float),
                                    index=pd.Index(frame["unit_id"].astype(str), name="unit_id"))
        return self._areas

    def X(self, origin: pd.Timestamp) -> pd.DataFrame:
        if origin not in self._X:
            X = complete_windows(self.fb.matrix(origin), self.months, origin)
            self._X[origin] = with_long_levels(with_long_window(X, self.sv, origin), self.levels, origin)
        return self._X[origin]

    def n_stars(self, origin: pd.Timestamp, horizon: int) -> dict:
        """The ``n*`` of the target period at ``origin`` shared by every ranking scored there
        (``n_stars`` of :func:`models.evaluation.evaluate_ranking`)."""
        return self.memo.setdefault(("n_stars", origin, int(horizon)), {})

    def window(self, weight: str, start, months: int) -> pd.Series:
        """:func:`features.months.window_sum` of the ``"count"`` or ``"harm"`` panel, once per window
        (training targets, scored periods and inner origins ask for the same windows again); do not modify."""
        key = ("window", weight, month(start), int(months))
        if key not in self.memo:
            self.memo[key] = window_sum(self.count if weight == "count" else self.harm, start, months)
        return self.memo[key]

    def training_origins(self, cutoff, horizon: int, train_origins: int = 12,
                         min_train_history: int = MIN_TRAIN_HISTORY) -> list[pd.Timestamp]:
        """:func:`training_origins` on the builder's months, once per argument set; do not modify."""
        key = ("training_origins", month(cutoff), int(horizon), int(train_origins), int(min_train_history))
        if key not in self.memo:
            self.memo[key] = training_origins(self.months, cutoff, horizon, train_origins, min_train_history)
        return self.memo[key]

    def history(self, origin: pd.Timestamp) -> int:
        return sum(m < origin for m in self.months)


def long_level_column(group: str) -> str:
    """Name of the long-window mean monthly count of one offence group, e.g. ``mean_asb_36m``."""
    return f"mean_{group}_{LONG_WINDOW}m"


def group_panels(fb) -> dict[str, pd.DataFrame]:
    """Units x months counts of each feature group of the builder (police-generated ones only when allowed)."""
    return {g: fb.panel(groups=[g], weight="count") for g in getattr(fb, "feature_groups", [])}


def with_long_levels(X: pd.DataFrame, panels: dict[str, pd.DataFrame], cutoff) -> pd.DataFrame:
    """``X`` with each group's long-run level (:func:`long_level_column`) as of ``cutoff`` added.

    The same long window as :data:`features.months.LONG_MEAN_COLUMN`: the mean over
    the months with data among the :data:`features.months.LONG_WINDOW` before the cutoff.
    """
    index = X.index.astype(str)
    cols = {}
    for g, panel in panels.items():
        mean = long_window_mean(panel, cutoff)
        cols[long_level_column(g)] = mean.set_axis(mean.index.astype(str)).reindex(index).to_numpy()
    return X.assign(**cols) if cols else X


def training_origins(
    months: Sequence[pd.Timestamp], cutoff, horizon: int, train_origins: int = 12,
    min_train_history: int = MIN_TRAIN_HISTORY,
) -> list[pd.Timestamp]:
    """Origins whose targets ``[t, t + horizon)`` end before ``cutoff``, newest first."""
    c = month(cutoff)
    months = sorted(months)
    out = []
    t = shift(c, -horizon)
    while len(out) < train_origins and months and t >= months[0]:
        if sum(m < t for m in months) >= min_train_history:
            out.append(t)
        t = shift(t, -1)
    return out


def training_set(
    fb, cutoff, horizon: int = 1, *, train_origins: int = 12, min_train_history: int = MIN_TRAIN_HISTORY,
    groups=None, _cache: _Cache | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Stacked (origin, unit_id) rows for fitting a model that forecasts from ``cutoff``.

    Returns
    -------
    X : DataFrame indexed by (origin, unit_id)
    y : Series, events in ``[origin, origin + horizon)``
    """
    cache = _cache or _Cache(fb, groups)
    c = month(cutoff)
    key = ("training_set", c, int(horizon), train_origins, min_train_history)
    if key in cache.memo:  # every model fitted at this cutoff stacks the same rows
        return cache.memo[key]
    origins = cache.training_origins(cutoff, horizon, train_origins, min_train_history)
    if not origins:
        raise ValueError(
            f"no training origin before cutoff {c:%Y-%m} with horizon {horizon} and "
            f"{min_train_history} months of history (data covers "
            f"{cache.months[0]:%Y-%m}..{cache.months[-1]:%Y-%m})" if cache.months else "no data"
        )
    Xs = {t: cache.X(t) for t in origins}
    ys = {t: cache.window("count", t, horizon).reindex(Xs[t].index) for t in origins}
    X = pd.concat(Xs, names=["origin", "unit_id"])
    y = pd.concat(ys, names=["origin", "unit_id"]).rename("target")
    cache.memo[key] = (X, y)
    return X, y


def fit_at(fb, estimator, cutoff, horizon: int = 1, *, train_origins: int = 12,
           min_train_history: int = MIN_TRAIN_HISTORY, groups=None, predictions: PredictionCache | None = None,
           _cache=None):
    """A clone of ``estimator`` fitted on data before ``cutoff`` (see the training design).

    A :class:`NestedChoice` first chooses its candidate by a backtest on earlier
    origins (its candidates' predictions there read from ``predictions``, the store's
    prediction cache, when it holds them); the chosen candidate is fitted and returned,
    with the choice and its evidence in ``chosen_``.
    """
    if isinstance(estimator, NestedChoice):
        cache = _cache or _Cache(fb, groups, predictions)
        name, evidence = estimator.choose(cache, cutoff, horizon, train_origins, min_train_history, groups)
        model = fit_at(fb, estimator.candidates[name], cutoff, horizon, train_origins=train_origins,
                       min_train_history=min_train_history, groups=groups, _cache=cache)
        model.chosen_ = {"method": name, **evidence}
        return model
    X, y = training_set(fb, cutoff, horizon, train_origins=train_origins,
                        min_train_history=min_train_history, groups=groups, _cache=_cache)
    return clone(estimator).fit(X, y.to_numpy())


class NestedChoice:
    """The simple candidate, unless a richer one clearly beat it on earlier origins; chosen afresh at every cutoff.

    At a cutoff ``c`` each candidate is backtested on the (at most
    ``inner_origins``) latest origins whose targets end before ``c``
    (:func:`training_origins`), each fitted only on data before its own origin, and
    scored by its mean PEI* over the area slices ``coverages``. The first candidate
    is the simple one (the long-run mean); with ``simple=2`` the first two are simple
    yardsticks (the long-run mean and last year's count) and, given ``min_inner`` inner
    origins, the one with the better mean criterion is the simple one. A richer candidate
    is chosen only when

    * there are at least ``min_inner`` inner origins to judge by, and
    * its mean paired difference from the simple one over those origins is more than
      ``noise`` standard errors of that difference (its paired noise);

    among those that pass, the one with the largest mean difference. Otherwise the
    simple one: with few origins, or a gain within noise, a richer model's lead is
    more likely luck than skill (on little history it can lose badly). Nothing at or
    after ``c`` is used, so an outer backtest of a ``NestedChoice`` is an honest
    (nested) estimate of the whole procedure.

    Parameters
    ----------
    candidates : mapping name -> estimator
        Fittable estimators (their ``predict`` gives expected counts), the simple one first.
    inner_origins : int
        Earlier origins the choice is judged on (at most).
    min_inner : int
        Fewest inner origins on which a richer candidate may be chosen.
    noise : float
        Standard errors of the paired difference a richer candidate must beat the simple one by.
    coverages : sequence of float
        Area slices of the criterion.

    Attributes
    ----------
    choices_ : dict
        Cutoff ("YYYY-MM") -> chosen candidate name, for every cutoff chosen at.
    reasons_ : dict
        Cutoff ("YYYY-MM") -> why that candidate, in words.
    """

    def __init__(self, candidates: Mapping, inner_origins: int = 12, min_inner: int = 6, noise: float = 2.0,
                 coverages: Sequence[float] = (0.01, 0.05, 0.10), simple: int = 1):
        if not candidates:
            raise ValueError("NestedChoice needs at least one candidate")
        if not 1 <= int(simple) <= len(candidates):
            raise ValueError(f"simple must be between 1 and the {len(candidates)} candidates, got {simple!r}")
        self.candidates = dict(candidates)
        self.simple = int(simple)
        self.inner_origins = int(inner_origins)
        self.min_inner = int(min_inner)
        self.noise = float(noise)
        self.coverages = tuple(coverages)
        self.choices_: dict[str, str] = {}
        self.reasons_: dict[str, str] = {}

    def _measure(self, cache, name, origin, horizon, train_origins, min_train_history, groups) -> float:
        """Mean PEI* over the area slices of one candidate at one origin (memoised on the cache)."""
        key = ("nested", self.coverages, method_key(self.candidates[name]), origin, horizon, train_origins,
               min_train_history)
        if key not in cache.memo:
            if not cache.training_origins(origin, horizon, train_origins, min_train_history):
                cache.memo[key] = float("nan")  # too little history before this origin to fit a candidate
                return cache.memo[key]
            scores = _scores(self.candidates[name], cache, origin, horizon, train_origins, min_train_history, groups)
            actual = cache.window("count", origin, horizon)
            scores = scores.set_axis(scores.index.astype(str))
            table = evaluate_ranking(scores, cache.areas.reindex(scores.index),
                                     actual.set_axis(actual.index.astype(str)).reindex(scores.index),
                                     coverages=self.coverages, top_n=(), n_stars=cache.n_stars(origin, horizon))
            cache.memo[key] = float(table["pei"].mean())
        return cache.memo[key]

    def choose(self, cache, cutoff, horizon, train_origins=12, min_train_history=MIN_TRAIN_HISTORY,
               groups=None) -> tuple[str, dict]:
        """(name, evidence): the chosen candidate, why, and each candidate's mean criterion on the inner origins."""
        c = month(cutoff)
        inner = cache.training_origins(c, horizon, self.inner_origins, min_train_history)
        table = pd.DataFrame({name: [self._measure(cache, name, v, horizon, train_origins, min_train_history, groups)
                                     for v in inner] for name in self.candidates}, index=pd.DatetimeIndex(inner))
        table = table.dropna()
        name, why, paired = self.decide(table)
        self.choices_[f"{c:%Y-%m}"] = name
        self.reasons_[f"{c:%Y-%m}"] = why
        return name, {"criterion": f"mean PEI* at {', '.join(f'{x:.0%}' for x in self.coverages)} of area",
                      "inner_origins": [f"{v:%Y-%m}" for v in table.index], "why": why,
                      "scores": {k: round(float(v), 4) for k, v in table.mean().items()} if len(table) else {},
                      "paired": {k: {m: round(v, 4) for m, v in p.items()} for k, p in paired.items()}}

    def decide(self, table: pd.DataFrame) -> tuple[str, str, dict]:
        """(name, why, paired) from inner origins x candidates criterion rows (the rule in the class notes).

        Examples
        --------
        >>> rows = pd.DataFrame({"simple": [0.5, 0.6, 0.4, 0.5, 0.6, 0.5], "rich": [0.6, 0.7, 0.5, 0.6, 0.7, 0.6]})
        >>> NestedChoice({"simple": None, "rich": None}).decide(rows)[:2]
        ('rich', 'rich: beat simple by +0.1000 on 6 inner origins, more than its paired noise (2 s.e. = 0.0000)')
        >>> NestedChoice({"simple": None, "rich": None}).decide(rows.head(3))[1]
        'simple: 3 inner origins, fewer than the 6 a richer candidate needs'
        """
        names = list(self.candidates)
        simple, n = names[0], len(table)
        if n == 0:
            return simple, f"{simple}: no earlier origin to judge by", {}
        lead = ""
        if self.simple > 1 and n >= self.min_inner:
            # the simple yardsticks (a long-run mean, last year's count): the better one on the inner origins;
            # where places change (new estates, boundary re-basing) last year's count can beat a long mean
            best_simple = max(names[:self.simple], key=lambda r: (float(table[r].mean()), -names.index(r)))
            if best_simple != simple:
                lead = (f"{best_simple} led {simple} on {n} inner origins "
                        f"({float(table[best_simple].mean()):.4f} against {float(table[simple].mean()):.4f}); ")
                simple = best_simple
        names = [simple] + [r for r in names[self.simple:]]
        paired = {}
        for r in names[1:]:
            d = (table[r] - table[simple]).to_numpy(dtype=float)
            se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
            paired[r] = {"mean_diff": float(d.mean()), "se": se}
        if n < self.min_inner:
            return simple, f"{simple}: {n} inner origin{'s' if n != 1 else ''}, fewer than the {self.min_inner} a richer candidate needs", paired
        passing = [r for r, p in paired.items() if p["mean_diff"] > 0 and p["mean_diff"] > self.noise * p["se"]]
        if passing:
            best = max(passing, key=lambda r: (paired[r]["mean_diff"], -names.index(r)))
            p = paired[best]
            return best, (f"{best}: {lead}beat {simple} by {p['mean_diff']:+.4f} on {n} inner origins, more than its "
                          f"paired noise ({self.noise:g} s.e. = {self.noise * p['se']:.4f})"), paired
        if not paired:
            return simple, f"{simple}: {lead}the only candidate", paired
        best = max(paired, key=lambda r: (paired[r]["mean_diff"], -names.index(r)))
        p = paired[best]
        return simple, (f"{simple}: {lead}no richer candidate beat it by more than its paired noise on {n} inner origins "
                        f"(best {best} {p['mean_diff']:+.4f}, {self.noise:g} s.e. = {self.noise * p['se']:.4f})"), paired

    def __repr__(self) -> str:
        return f"NestedChoice({list(self.candidates)!r}, inner_origins={self.inner_origins}, min_inner={self.min_inner})"


def forecast_matrix(fb, cutoff) -> pd.DataFrame:
    """The feature matrix at ``cutoff`` as models were trained on: windows completed, long window added."""
    c = month(cutoff)
    X = complete_windows(fb.matrix(c), list(fb.months), c)
    return with_long_levels(with_long_window(X, fb.panel(weight="count"), c), group_panels(fb), c)


def transparent_candidates() -> dict:
    """The default's candidates, simplest first: each a rate anyone can read.

    ``long_mean`` the 36-month mean (as an estimator on the matrix), ``count_12m`` last
    year's count (the two simple yardsticks: :class:`NestedChoice` takes the better of them on
    the inner origins as the one a richer candidate must beat), ``glm_own`` a
    Poisson GLM on the place's own history (:data:`models.glm.OWN_HISTORY`),
    ``glm_levels`` that plus the long-run levels of other crime types
    (:data:`models.glm.OTHER_LEVELS`), ``glm`` that plus context and the spatial lag
    (:data:`models.glm.DEFAULT_GLM_FEATURES`).
    """
    return {
        "long_mean": ColumnRanker(LONG_MEAN_COLUMN),
        "count_12m": ColumnRanker("cnt_sv_12m"),
        "glm_own": PoissonGLM(features=OWN_HISTORY, spatial_lag=False),
        "glm_levels": PoissonGLM(features=(*OWN_HISTORY, *OTHER_LEVELS), spatial_lag=False),
        "glm": PoissonGLM(),
    }


def default_methods(seed: int = 0) -> dict:
    """Baselines plus the models, by backtest name.

    The transparent candidates (:func:`transparent_candidates`), ``nested`` the
    default (:class:`NestedChoice` among them, see :data:`models.ranking.DEFAULT_METHOD`),
    and two options kept for comparison: ``xgb`` the monotone Poisson boosting and
    ``blend`` the boosting blended with the long-window mean.
    """
    methods = baseline_methods()
    candidates = transparent_candidates()
    methods |= {k: v for k, v in candidates.items() if k not in ("long_mean", "count_12m")}  # already baselines
    methods["nested"] = NestedChoice(candidates, simple=2)
    methods["xgb"] = PoissonBoost(seed=seed)
    methods["blend"] = BlendedBoost(PoissonBoost(seed=seed))
    return methods


ON_REQUEST = ("xgb", "blend")
"""Methods of :func:`default_methods` a backtest runs only when asked (the boosting: slow, and not the default)."""


def backtest_methods(seed: int = 0) -> dict:
    """The methods a backtest runs by default: :func:`default_methods` less :data:`ON_REQUEST`."""
    return {k: v for k, v in default_methods(seed).items() if k not in ON_REQUEST}


def _scores(method, cache: _Cache, origin, horizon, train_origins, min_train_history, groups):
    """Expected counts of one method at one origin, computed once per backtest (and per store, with a
    :class:`~models.prediction_cache.PredictionCache`): methods with equal parameters share them."""
    if isinstance(method, PanelMean):  # a mean of the panel: cheaper than a cache read
        before = cache.count.loc[:, panel_months(cache.count) < origin]
        return method.scores(before, origin, horizon)
    if isinstance(method, NestedChoice):
        name, _ = method.choose(cache, origin, horizon, train_origins, min_train_history, groups)
        return _scores(method.candidates[name], cache, origin, horizon, train_origins, min_train_history, groups)
    key = ("scores", method_key(method), origin, horizon, train_origins, min_train_history)
    if key not in cache.memo:  # a nested choice's candidates are scored at the same origins again
        cache.memo[key] = _stored_scores(method, cache, origin, horizon, train_origins, min_train_history, groups)
    scores, choice = cache.memo[key]
    if isinstance(method, KernelBaseline):
        method.choices_[f"{month(origin):%Y-%m}"] = choice
    return scores.copy()


def _stored_scores(method, cache: _Cache, origin, horizon, train_origins, min_train_history, groups):
    """(scores, kernel choice or None): read from the prediction cache when it holds them, else computed (and stored)."""
    disk, key = cache.predictions, None
    if disk is not None:
        fb = cache.fb
        key = disk.key(units=fb.units.edition, source=getattr(fb, "source", "points"),
                       target=sorted(groups or fb.target_groups), features=sorted(getattr(fb, "feature_groups", [])),
                       method=method_key(method), origin=f"{month(origin):%Y-%m}", horizon=int(horizon),
                       train_origins=int(train_origins), min_train_history=int(min_train_history))
        hit = disk.get(key)
        if hit is not None:
            scores, extra = hit
            return scores, tuple(extra["choice"]) if "choice" in extra else None
    if isinstance(method, KernelBaseline):
        select = cache.training_origins(origin, horizon, train_origins, min_train_history)
        scores = method.scores(cache.surface, cache.count, cache.areas, origin, horizon, select)
        choice = method.choices_[f"{month(origin):%Y-%m}"]
    else:
        model = fit_at(cache.fb, method, origin, horizon, train_origins=train_origins,
                       min_train_history=min_train_history, groups=groups, _cache=cache)
        X = cache.X(origin)
        scores, choice = pd.Series(model.predict(X), index=X.index), None
    if disk is not None:
        disk.put(key, scores, {"choice": list(choice)} if choice is not None else None)
    return scores, choice


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
    min_train_history: int = MIN_TRAIN_HISTORY,
    groups=None,
    per_origin: bool = False,
    forecasts: dict | None = None,
    min_history_months: int | None = None,
    seconds: dict | None = None,
    predictions: PredictionCache | None = None,
    _cache: _Cache | None = None,
) -> pd.DataFrame:
    """Rolling-origin backtest of several ranking methods on one unit set.

    Parameters
    ----------
    fb : features.build.FeatureBuilder (or an object with ``matrix``, ``panel``, ``months``, ``units``)
    methods : mapping name -> estimator or :class:`~models.baselines.PanelMean`
        None means :func:`backtest_methods` (every method but the boosting).
    origins : sequence of "YYYY-MM", optional
        Forecast origins. None means every usable cutoff
        (:func:`features.months.backtest_origins`): ``history_months`` complete months
        before it (at least ``min_history_months`` when the data begin inside that
        window) and ``horizon`` complete months from it.
    horizon : int
        Months forecast (the target window).
    coverages, top_n
        Slices (share of area, number of places).
    history_months, min_history_months : int
        Complete months an origin needs before it, and the shortest history allowed when the
        data begin inside that window (default origins only; None: no shortening).
    train_origins, min_train_history
        Training design, see the module notes.
    groups : list of str, optional
        Target offence groups (default: the builder's target groups).
    per_origin : bool
        Return one row per (method, origin, slice) instead of the means.
    seconds : dict, optional
        Filled with each method's own run time in seconds, summed over origins: what it
        added to the shared work (feature matrices, training rows and candidate fits are
        computed once, by the first method that needs them, in the order of ``methods``).
    forecasts : dict, optional
        Filled with ``(method, "YYYY-MM") -> expected counts`` (Series by unit_id)
        and ``("actual", "YYYY-MM") -> events``, e.g. for a pooled calibration check.
    predictions : PredictionCache, optional
        Per-origin predictions kept on disk (:mod:`models.prediction_cache`): read instead
        of refitted when the store, units, method, origin and code are unchanged, written
        otherwise. The nested default's candidates are read like any other method.
    _cache : optional
        The work already done on ``fb`` (feature matrices, training rows, per-origin scores) by
        :func:`fit_at` with the same ``_cache``, e.g. a training's nested choice.

    Returns
    -------
    DataFrame: ``method``, ``slice``, ``coverage``, ``top_n``, ``horizon``,
    ``n_origins``, ``hit_rate``, ``pai``, ``pei``, ``rri`` and ``harm_*``
    (means over origins; RRI over origins where it is defined).
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a whole number of months >= 1, got {horizon!r}")
    methods = dict(backtest_methods() if methods is None else methods)
    if getattr(fb, "source", "points") != "points":
        points = [k for k, m in methods.items() if isinstance(m, KernelBaseline)]
        if points:
            raise ValueError(f"method(s) {points} spread point events with a kernel; the {fb.units.edition} "
                             "events here are monthly counts by area (leave them out)")
    cache = _cache or _Cache(fb, groups, predictions)
    if not cache.months:
        raise ValueError("the builder has no months of event data")
    last = cache.months[-1]
    if origins is None:
        origins = backtest_origins(data_months(fb), history_months, horizon, min_history=min_history_months,
                                   count=len(cache.months)).origins
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
    areas = cache.areas
    rows = []
    for o in origins:
        # the periods every method at this origin is scored on, by unit_id as text (once, not per method)
        actual, harm, previous, harm_previous = (
            cache.window(w, start, horizon).pipe(lambda s: s.set_axis(s.index.astype(str)))
            for w, start in (("count", o), ("harm", o), ("count", shift(o, -horizon)), ("harm", shift(o, -horizon))))
        for name, method in methods.items():
            started = time.perf_counter()
            scores = _scores(method, cache, o, horizon, train_origins, min_train_history, groups)
            scores.index = scores.index.astype(str)
            if forecasts is not None:
                forecasts[(name, f"{o:%Y-%m}")] = scores
                forecasts[("actual", f"{o:%Y-%m}")] = actual
            table = evaluate_ranking(
                scores, areas.reindex(scores.index), actual, previous=previous, harm=harm,
                harm_previous=harm_previous, coverages=coverages, top_n=top_n, n_stars=cache.n_stars(o, horizon),
            )
            table.insert(0, "origin", f"{o:%Y-%m}")
            table.insert(0, "method", name)
            if isinstance(method, NestedChoice):
                table["chosen"] = method.choices_[f"{o:%Y-%m}"]
                table["why"] = method.reasons_[f"{o:%Y-%m}"]
            rows.append(table)
            if seconds is not None:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
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


def data_months(fb) -> list[pd.Timestamp]:
    """The builder's months with complete data (``complete_months`` when it has them, else ``months``)."""
    complete = getattr(fb, "complete_months", None)
    complete = complete() if callable(complete) else complete
    return list(fb.months if complete is None else complete)


def backtest_ceiling(
    fb, origins: Sequence, horizon: int = 1, coverages: Sequence[float] = (0.01, 0.05, 0.10),
    top_n: Sequence[int] = (10, 20), *, groups=None, n_sims: int = N_SIMS, seed: int = 0,
) -> dict:
    """The expected PEI* of a long-run-rate oracle (:func:`models.ceiling.oracle_ceiling`) for a backtest's origins.

    Rates and overdispersion come from the months with complete data from
    :data:`features.months.LONG_WINDOW` months before the first origin to the end of
    the last target window: the span the forecasts drew on and were scored on.
    """
    origins = sorted(month(o) for o in origins)
    if not origins:
        raise ValueError("backtest_ceiling: no origins")
    first, end = shift(origins[0], -LONG_WINDOW), shift(origins[-1], int(horizon))
    panel = fb.panel(groups=groups, weight="count")
    have = set(panel_months(panel))
    use = [m for m in data_months(fb) if first <= m < end and m in have]
    frame = fb.units.frame
    areas = pd.Series(frame["area_m2"].to_numpy(dtype=float), index=frame["unit_id"].astype(str))
    return oracle_ceiling(panel, areas, horizon, months=use, coverages=coverages, top_n=top_n,
                              n_sims=n_sims, seed=seed)


def area_slice_labels(per: pd.DataFrame) -> list[str]:
    """The area slices of a backtest table ("1% area", ...), in their order."""
    return list(dict.fromkeys(per.loc[per["coverage"].notna(), "slice"]))


def backtest_report(
    per: pd.DataFrame, units: str, *, default: str | None = None, reference: str = "count_12m",
    ceiling: dict | None = None, n_boot: int = 10_000, seed: int = 0,
) -> dict:
    """The backtest as one JSON-ready document: per-origin and summary rows, paired differences, ceiling.

    Parameters
    ----------
    per : DataFrame
        Per-origin rows (``backtest(..., per_origin=True)``).
    units : str
        The unit set's edition.
    default : str, optional
        The default method's name: its rows get ``"default": true``.
    reference : str
        The method every other is compared with, per origin (the plain 12-month count).
    ceiling : dict, optional
        :func:`backtest_ceiling`: summary rows then carry ``ceiling_pei``,
        ``ceiling_hit_rate`` and the method's share of each (``pei_share``,
        ``hit_rate_share``).

    Returns
    -------
    dict: ``units``, ``horizon``, ``origins`` (first, last, count), ``default_method``,
    ``reference``, ``records`` (rows with an ``origin`` are per origin; rows without
    are the means over origins), ``paired`` (:func:`paired_comparison` of each method
    against ``reference`` at each area slice, on PEI*), ``ceiling``.
    """
    summary = summarise_origins(per)
    if ceiling is not None:
        ceiling = {**ceiling, "rows": ceiling_exceedance(per, summary, ceiling["rows"])}
        ceil = pd.DataFrame(ceiling["rows"])[["slice", "ceiling_pei", "ceiling_hit_rate"]]
        summary = summary.merge(ceil, on="slice", how="left")
        summary["pei_share"] = summary["pei"] / summary["ceiling_pei"]
        summary["hit_rate_share"] = summary["hit_rate"] / summary["ceiling_hit_rate"]
    records = backtest_records(per, units) + backtest_records(summary, units)
    for r in records:
        r["default"] = r.get("method") == default
    methods = list(dict.fromkeys(per["method"]))
    paired = []
    if reference in methods:
        for name in methods:
            if name == reference:
                continue
            for sl in area_slice_labels(per):
                r = paired_comparison(per, name, reference, slice=sl, n_boot=n_boot, seed=seed)
                paired.append({**{k: _plain(v) for k, v in r.items()}, "default": name == default})
    origins = sorted(set(per["origin"]))
    return {
        "units": units, "horizon": int(per["horizon"].iloc[0]) if len(per) else None,
        "origins": [origins[0], origins[-1], len(origins)] if origins else [],
        "default_method": default, "reference": reference, "records": records, "paired": paired,
        "ceiling": None if ceiling is None else {
            **{k: _plain(v) for k, v in ceiling.items() if k != "rows"},
            "rows": [{k: v if isinstance(v, list) else _plain(v) for k, v in r.items()} for r in ceiling["rows"]]},
    }


def ceiling_exceedance(per: pd.DataFrame, summary: pd.DataFrame, rows: list[dict]) -> list[dict]:
    """The ceiling rows with how often methods score above the oracle's expected PEI*, per slice.

    Adds ``above`` (share of per-origin method rows with PEI* above ``ceiling_pei``),
    ``above_hi`` (share above the top of its simulation interval, ``ceiling_pei_hi``)
    and ``methods_above`` (methods whose mean PEI* over origins is above ``ceiling_pei``).
    A forecaster that knew each place's long-run rate would score about ``ceiling_pei``;
    rows above it are expected (noise, and places that really changed), so it is a
    yardstick, not an upper bound.
    """
    out = []
    for r in rows:
        mine = per[per["slice"] == r["slice"]]["pei"].dropna()
        means = summary[summary["slice"] == r["slice"]].set_index("method")["pei"].dropna()
        c, hi = r.get("ceiling_pei"), r.get("ceiling_pei_hi")
        ok = c is not None and np.isfinite(c)
        out.append({**r,
                    "above": float((mine > c).mean()) if ok and len(mine) else None,
                    "above_hi": float((mine > hi).mean()) if ok and hi is not None and len(mine) else None,
                    "methods_above": sorted(means[means > c].index) if ok else []})
    return out


def _plain(v):
    """A JSON-ready value: NaN and NA become None, numpy scalars Python ones."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


def backtest_records(table: pd.DataFrame, units: str) -> list[dict]:
    """The backtest table as JSON-ready records (``units`` = the edition)."""
    return [{"units": units, **{k: _plain(v) for k, v in row.items()}} for row in table.to_dict(orient="records")]
