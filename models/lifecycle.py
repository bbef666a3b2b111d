"""Training a version: fit on data before a cutoff, check it, save it with its card data.

The checks go into the version's metadata (see :func:`models.registry.save_model`):
rate ratios (GLM), which candidate a nested default chose and why, a calibration
table, the fairness profile of the ranking at the cutoff and, when origins are given,
a backtest against the plain 12-month count and the long-window mean with paired
differences per origin and the attainable ceiling.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.months import month, window_sum
from models.backtest import (
    NestedChoice,
    _Cache,
    backtest,
    backtest_ceiling,
    backtest_report,
    default_methods,
    fit_at,
    forecast_matrix,
)
from models.baselines import ColumnRanker, PanelMean
from models.evaluation import calibration_table
from models.fairness import fairness_profile
from models.ranking import DEFAULT_METHOD, rank_from_model
from models.registry import save_model

REFERENCE = "count_12m"
"""The baseline every trained model is compared with: last year's counts."""


def train(
    fb,
    cutoff,
    models_dir: str | Path,
    *,
    method: str | None = None,
    horizon: int = 1,
    seed: int = 0,
    train_origins: int = 12,
    backtest_origins: list | None = None,
    data_hashes: dict | None = None,
    data_dir: str | None = None,
    top_n: int = 20,
    estimator_for=None,
    documents=None,
    ledger: list[dict] | None = None,
    predictions=None,
) -> str:
    """Fit ``method`` on data before ``cutoff``, check it, and save it as a new version.

    The card gets: rate ratios (GLM), the nested default's choice and its evidence
    (``chosen``), a calibration table, the fairness profile of the ranking at
    ``cutoff``, and, when ``backtest_origins`` are given, the backtest of this method,
    the plain 12-month count and the long-window mean on them (``backtest`` summary
    rows with the ceiling shares, ``backtest_paired`` per-origin paired differences
    against the count, ``ceiling``).

    Calibration: with backtest origins, the forecasts made at each of them (each
    from data before its origin) pooled against what happened, so one unusual
    month does not pass for a bias; without, one forecast of
    ``[cutoff - horizon, cutoff)`` by a model fitted before it.

    ``estimator_for`` maps the chosen estimator to the one actually trained (the Dask
    engine's :meth:`service.engine.Engine.estimator` sends the boosting to a cluster).
    ``documents`` renders files saved beside the model (the model card; see
    :func:`models.registry.save_model`). ``predictions`` (a
    :class:`~models.prediction_cache.PredictionCache`) holds the per-origin predictions
    an earlier backtest or training on the same store made, read instead of refitted by
    the nested choice and the card's backtest.

    Returns
    -------
    str, the version saved.
    """
    method = method or DEFAULT_METHOD
    methods = default_methods(seed)

    def trainable(m) -> bool:
        return hasattr(m, "fit") or isinstance(m, NestedChoice)

    if method not in methods or not trainable(methods[method]):
        fittable = [k for k, v in methods.items() if trainable(v)]
        raise ValueError(f"method {method!r} cannot be trained; choose one of {fittable}")
    estimator = methods[method] if estimator_for is None else estimator_for(methods[method])
    c = month(cutoff)
    shared = _Cache(fb, None, predictions)  # the nested choice's fits at earlier origins serve the card's backtest
    model = fit_at(fb, estimator, c, horizon, train_origins=train_origins, _cache=shared)
    ranking, X = rank_from_model(fb, model, c)
    police = bool(getattr(fb, "allow_police_generated", False))
    meta = {
        "method": method, "units": fb.units.edition, "cutoff": f"{c:%Y-%m}", "horizon": int(horizon),
        "seed": int(seed), "train_origins": int(train_origins),
        "target_groups": list(getattr(fb, "target_groups", []) or []),
        "data_period": {"start": f"{month(fb.months[0]):%Y-%m}",
                        "end": f"{max(m for m in map(month, fb.months) if m < c):%Y-%m}"},
        "data_hashes": data_hashes or {}, "data_dir": data_dir, "source": getattr(fb, "source", "points"),
        "police_generated_used": police,
        "fairness": fairness_profile(ranking, X, top_n=top_n, police_generated_used=police),
    }
    if ledger:
        meta["ledger"] = ledger  # how the forecasts already issued on this data did (models.ledger.running_record)
    if hasattr(model, "rate_ratios"):
        meta["rate_ratios"] = model.rate_ratios()
    if hasattr(model, "chosen_"):
        meta["chosen"] = model.chosen_
    if backtest_origins:
        forecasts: dict = {}
        refs = {REFERENCE: ColumnRanker("cnt_sv_12m"), "long_mean": PanelMean()}
        per = backtest(fb, {method: estimator, **{k: v for k, v in refs.items() if k != method}},
                       origins=backtest_origins, horizon=horizon, train_origins=train_origins,
                       per_origin=True, forecasts=forecasts, _cache=shared)
        report = backtest_report(per, fb.units.edition, default=method, reference=REFERENCE,
                                 ceiling=backtest_ceiling(fb, backtest_origins, horizon, seed=seed), seed=seed)
        meta["backtest"] = [r for r in report["records"] if "origin" not in r]
        meta["backtest_paired"] = report["paired"]
        meta["ceiling"] = report["ceiling"]
        meta["backtest_origins"] = report["origins"]
        pooled = sorted(o for m, o in forecasts if m == method)
        pred = pd.concat([forecasts[(method, o)].add_prefix(f"{o}/") for o in pooled])
        actual = pd.concat([forecasts[("actual", o)].add_prefix(f"{o}/") for o in pooled])
        meta["calibration"] = calibration_table(pred, actual.reindex(pred.index), bins=10)
        meta["calibration_note"] = (f"pooled over the forecasts made at {len(pooled)} origins "
                                    f"{pooled[0]}..{pooled[-1]}, each from data before its origin")
    else:
        prior = c - pd.DateOffset(months=int(horizon))
        try:
            check = fit_at(fb, estimator, prior, horizon, train_origins=train_origins, predictions=predictions)
            Xp = forecast_matrix(fb, prior)
            actual = window_sum(fb.panel(), prior, horizon).set_axis(fb.panel().index.astype(str))
            pred = pd.Series(check.predict(Xp), index=Xp.index.astype(str))
            meta["calibration"] = calibration_table(pred, actual.reindex(pred.index), bins=10)
            meta["calibration_note"] = f"one forecast of {prior:%Y-%m} (horizon {horizon}) by a model fitted before it"
        except ValueError as exc:  # too little history before the cutoff for a separate check
            meta["calibration_note"] = str(exc)
    return save_model(model, meta, models_dir, documents=documents)
