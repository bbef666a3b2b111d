"""Gradient boosting with a Poisson objective, monotone where the direction is known.

Trees see the raw feature values (no transform needed). Features describing the
target's own past (counts, harm, near-repeat intensity, KDE, the spatial lag,
the smoothed rate) are constrained to raise risk monotonically: more serious
violence here or next door never *lowers* the forecast, which keeps reasons
sensible and guards against overfitting noise. SHAP values (``shap``'s
TreeExplainer, on the log-rate margin) explain each place's forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from models.glm import _frame_input, moment_dispersion

INCREASING_PREFIXES = ("cnt_sv_", "harm_sv_", "lag_cnt_sv_", "nr_sv", "kde_sv_", "sv_rate_eb")
"""Features whose effect on the forecast is constrained to be non-negative."""


def monotone_direction(name) -> int:
    """+1 for the target's own past (and its spatial lag), else 0 (unconstrained)."""
    return int(isinstance(name, str) and name.startswith(INCREASING_PREFIXES))


class PoissonBoost(RegressorMixin, BaseEstimator):
    """XGBoost regressor, ``objective="count:poisson"``, with monotone constraints.

    Parameters
    ----------
    features : sequence of str, "all" or None, default "all"
        Columns to use when fitted on a DataFrame ("all": every column except
        police-generated ones and trends). Ignored for arrays.
    n_estimators, learning_rate, max_depth, min_child_weight, subsample, reg_lambda
        Passed to :class:`xgboost.XGBRegressor`. The defaults are deliberately
        conservative (shallow trees, slow learning). No row subsampling by
        default: the fit is then deterministic, so the backtest does not
        depend on the seed (with ``subsample=0.8`` PEI* at 5% moved by +-0.005
        between seeds on Barnet, as much as the gain over the plain count).
    monotone : bool, default True
        Apply :func:`monotone_direction` constraints.
    seed : int, default 0
        ``random_state`` for the subsampling.
    allow_police_generated : bool, default False

    Attributes
    ----------
    booster_ : xgboost.XGBRegressor
    dispersion_ : float
        Negative-binomial alpha by moments on the training rows (in-sample, so
        intervals built from it are if anything too narrow).
    """

    def __init__(
        self,
        features: Sequence[str] | str | None = "all",
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_child_weight: float = 5.0,
        subsample: float = 1.0,
        reg_lambda: float = 1.0,
        monotone: bool = True,
        seed: int = 0,
        allow_police_generated: bool = False,
    ):
        self.features = features
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.monotone = monotone
        self.seed = seed
        self.allow_police_generated = allow_police_generated

    def _select(self, X):
        wanted = None if self.features in (None, "all") else tuple(self.features)
        return _frame_input(X, wanted, self.allow_police_generated)

    def fit(self, X, y):
        from xgboost import XGBRegressor

        X = self._select(X)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=float, ensure_all_finite="allow-nan")
        if (y < 0).any():
            raise ValueError(f"y: counts must be >= 0, found {y[y < 0][0]!r}")
        names = getattr(self, "feature_names_in_", [None] * X.shape[1])
        constraints = tuple(monotone_direction(n) if self.monotone else 0 for n in names)
        self.booster_ = XGBRegressor(
            objective="count:poisson",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            reg_lambda=self.reg_lambda,
            monotone_constraints=constraints,
            tree_method="hist",
            random_state=self.seed,
            n_jobs=1,
        )
        self.booster_.fit(X, y)
        self.dispersion_ = moment_dispersion(y, self.booster_.predict(X))
        return self

    def predict(self, X):
        """Expected count per row."""
        check_is_fitted(self, "booster_")
        X = validate_data(self, self._select(X), reset=False, dtype=float, ensure_all_finite="allow-nan")
        return self.booster_.predict(X).astype(float)

    @property
    def feature_names_(self) -> list[str]:
        check_is_fitted(self, "booster_")
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def contributions(self, X) -> pd.DataFrame:
        """SHAP values per row and feature on the log-rate scale (shap TreeExplainer).

        With the explainer's expected value they sum to the log of the prediction.
        """
        import shap

        check_is_fitted(self, "booster_")
        index = X.index if isinstance(X, pd.DataFrame) else None
        Xa = validate_data(self, self._select(X), reset=False, dtype=float, ensure_all_finite="allow-nan")
        explainer = shap.TreeExplainer(self.booster_, model_output="raw")
        values = np.asarray(explainer.shap_values(Xa), dtype=float)
        return pd.DataFrame(values, index=index, columns=self.feature_names_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.input_tags.allow_nan = True
        return tags
