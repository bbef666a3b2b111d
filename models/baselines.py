"""The rankings analysts already use, as estimators a model has to beat.

* :class:`ColumnRanker` ranks by one column of the feature matrix, scaled so its
  mean matches the training target (so it also gives an expected count):
  last-period counts (``cnt_sv_12m``, ``cnt_sv_1m``), the retrospective KDE
  (``kde_sv_12m``) and prospective hotspotting (``nr_sv``, Bowers, Johnson &
  Pease 2004 weights, computed by the feature builder).
* :class:`PanelMean` is the long-window and seasonal mean. It needs more months
  than the feature matrix's 12-month windows hold, so it reads the unit x month
  panel directly rather than the matrix.

:func:`baseline_methods` names the standard set for a backtest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

BASELINE_COLUMNS = {
    "count_12m": "cnt_sv_12m",
    "count_1m": "cnt_sv_1m",
    "kde_300m": "kde_sv_12m",
    "prospective": "nr_sv",
}
"""Backtest name -> feature column of each column baseline."""


class ColumnRanker(RegressorMixin, BaseEstimator):
    """Rank by one feature column; predict ``scale_ * column``.

    Parameters
    ----------
    column : str or int, default 0
        Feature name (when fitted on a DataFrame) or position.

    Attributes
    ----------
    column_index_ : int
        Position of the column in the fitted matrix.
    scale_ : float
        ``mean(y) / mean(column)`` on the training rows (1 when the column's
        mean is not positive), so predictions are on the target's scale. It is
        positive, so it never changes the ranking.

    Examples
    --------
    >>> X = pd.DataFrame({"cnt_sv_12m": [12.0, 0.0, 24.0]})
    >>> ColumnRanker("cnt_sv_12m").fit(X, [1.0, 0.0, 2.0]).predict(X)
    array([1., 0., 2.])
    """

    def __init__(self, column: str | int = 0):
        self.column = column

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True, ensure_all_finite=True)
        self.column_index_ = self._locate()
        x = X[:, self.column_index_]
        mx, my = float(np.mean(x)), float(np.mean(y))
        self.scale_ = my / mx if mx > 0 and my > 0 else 1.0
        return self

    def _locate(self) -> int:
        if isinstance(self.column, str):
            names = list(getattr(self, "feature_names_in_", []))
            if self.column not in names:
                raise ValueError(
                    f"ColumnRanker: column {self.column!r} is not in the feature matrix "
                    f"(columns: {names[:12]}{'...' if len(names) > 12 else ''})"
                )
            return names.index(self.column)
        index = int(self.column)
        if not 0 <= index < self.n_features_in_:
            raise ValueError(
                f"ColumnRanker: column position {index} outside 0..{self.n_features_in_ - 1}"
            )
        return index

    def predict(self, X):
        check_is_fitted(self, "scale_")
        X = validate_data(self, X, reset=False, ensure_all_finite=True)
        return self.scale_ * X[:, self.column_index_].astype(float)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.regressor_tags.poor_score = True  # one column, by design
        return tags


class PanelMean:
    """Mean monthly count over a long window before the cutoff, or the same season last year.

    Not a feature-matrix estimator: it reads the unit x month panel, because it
    looks further back than the matrix's windows.

    Parameters
    ----------
    window : int or None, default None
        Months before the cutoff to average over; None means every month in
        the panel before the cutoff.
    seasonal : bool, default False
        If True, score by the counts in ``[cutoff - 12, cutoff - 12 + horizon)``
        (the same calendar months a year earlier) instead.
    """

    def __init__(self, window: int | None = None, seasonal: bool = False):
        self.window = window
        self.seasonal = seasonal

    def scores(self, panel: pd.DataFrame, cutoff: pd.Timestamp, horizon: int) -> pd.Series:
        """Expected count in ``[cutoff, cutoff + horizon)`` per unit (panel index)."""
        months = pd.DatetimeIndex(pd.to_datetime(panel.columns))
        cutoff = pd.Timestamp(cutoff)
        if self.seasonal:
            start = cutoff - pd.DateOffset(months=12)
            end = start + pd.DateOffset(months=horizon)
            cols = (months >= start) & (months < end)
            if cols.sum() < horizon:
                raise ValueError(
                    f"PanelMean(seasonal): the panel has no months {start:%Y-%m}..{end:%Y-%m} "
                    f"before cutoff {cutoff:%Y-%m}"
                )
            return panel.loc[:, cols].sum(axis=1).astype(float)
        before = months < cutoff
        if self.window is not None:
            before &= months >= cutoff - pd.DateOffset(months=int(self.window))
        if not before.any():
            raise ValueError(f"PanelMean: the panel has no months before cutoff {cutoff:%Y-%m}")
        return panel.loc[:, before].mean(axis=1).astype(float) * horizon

    def __repr__(self) -> str:
        return f"PanelMean(window={self.window!r}, seasonal={self.seasonal!r})"


def baseline_methods() -> dict:
    """The standard baselines, by backtest name (column rankers + long-window mean)."""
    methods: dict = {name: ColumnRanker(col) for name, col in BASELINE_COLUMNS.items()}
    methods["long_mean"] = PanelMean(window=None)
    return methods
