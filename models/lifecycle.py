"""Training a version: fit on data before a cutoff, check it, save it with its card data.

The checks go into the version's metadata (see :func:`models.registry.save_model`):
rate ratios (GLM), a calibration table, the fairness profile of the ranking at the
cutoff and, when origins are given, a backtest against the plain 12-month count.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.months import month, window_sum
from models.backtest import backtest, backtest_records, default_methods, fit_at, forecast_matrix
from models.baselines import ColumnRanker
from models.evaluation import calibration_table
from models.fairness import fairness_profile
from models.ranking import DEFAULT_METHOD, rank_from_model
from models.registry import save_model


def train(
    fb,
    cutoff,
    models_dir: str | Path,
    *,
    method: str | None = None,
    horizon: int = 1,
    seed: int = 0,
    train_origins: int = 12,
    backtest_origins: list[str] | None = None,
    data_hashes: dict | None = None,
    data_dir: str | None = None,
    top_n: int = 20,
    estimator_for=None,
    documents=None,
) -> str:
    """Fit ``method`` on data before ``cutoff``, check it, and save it as a new version.

    The card gets: rate ratios (GLM), a calibration table (a model fitted before
    ``cutoff - horizon`` forecasting ``[cutoff - horizon, cutoff)``, compared with
    what happened), the fairness profile of the ranking at ``cutoff``, and, when
    ``backtest_origins`` are given, the backtest of this method and the plain
    12-month count on them.

    ``estimator_for`` maps the chosen estimator to the one actually trained (the Dask
    engine's :meth:`service.engine.Engine.estimator` sends the boosting to a cluster).
    ``documents`` renders files saved beside the model (the model card; see
    :func:`models.registry.save_model`).

    Returns
    -------
    str, the version saved.
    """
    method = method or DEFAULT_METHOD
    methods = default_methods(seed)
    if method not in methods or not hasattr(methods[method], "fit"):
        fittable = [k for k, v in methods.items() if hasattr(v, "fit")]
        raise ValueError(f"method {method!r} cannot be trained; choose one of {fittable}")
    estimator = methods[method] if estimator_for is None else estimator_for(methods[method])
    c = month(cutoff)
    model = fit_at(fb, estimator, c, horizon, train_origins=train_origins)
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
    if hasattr(model, "rate_ratios"):
        meta["rate_ratios"] = model.rate_ratios()
    prior = c - pd.DateOffset(months=int(horizon))
    try:
        check = fit_at(fb, estimator, prior, horizon, train_origins=train_origins)
        Xp = forecast_matrix(fb, prior)
        actual = window_sum(fb.panel(), prior, horizon).set_axis(fb.panel().index.astype(str))
        pred = pd.Series(check.predict(Xp), index=Xp.index.astype(str))
        meta["calibration"] = calibration_table(pred, actual.reindex(pred.index), bins=10)
    except ValueError as exc:  # too little history before the cutoff for a separate check
        meta["calibration_note"] = str(exc)
    if backtest_origins:
        table = backtest(fb, {method: estimator, "count_12m": ColumnRanker("cnt_sv_12m")},
                         origins=backtest_origins, horizon=horizon, train_origins=train_origins)
        meta["backtest"] = backtest_records(table, fb.units.edition)
    return save_model(model, meta, models_dir, documents=documents)
