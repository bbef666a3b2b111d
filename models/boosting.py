"""Gradient boosting with a Poisson objective, monotone where the direction is known.

Trees see the raw feature values (no transform needed). Features describing the
target's own past (counts, harm, near-repeat intensity, KDE, the spatial lag,
the smoothed rate) are constrained to raise risk monotonically: more serious
violence here or next door never *lowers* the forecast, which keeps reasons
sensible and guards against overfitting noise. SHAP values (``shap``'s
TreeExplainer, on the log-rate margin) explain each place's forecast.

:class:`BlendedBoost` blends the boosting's forecast on the log scale with the
long-window mean (:data:`features.months.LONG_MEAN_COLUMN`). It was the default
model until the exact scoring of issue 14 showed it tied with the plain 12-month
count; both remain options (``--method xgb`` / ``blend``) beside the transparent
default (:data:`models.ranking.DEFAULT_METHOD`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from features.months import LONG_MEAN_COLUMN
from models.glm import _frame_input, moment_dispersion

INCREASING_PREFIXES = ("cnt_sv_", "harm_sv_", "lag_cnt_sv_", "nr_sv", "kde_sv_", "sv_rate_eb", "mean_sv_")
"""Features whose effect on the forecast is constrained to be non-negative."""


CELLS_PER_THREAD = 10_000_000
"""Training-matrix cells (rows x features) each XGBoost thread of a local fit needs to pay for itself.

XGBoost's threads meet at every level of every tree, so on a small matrix waiting costs more than
splitting the work saves. On 2 idle cores (``benchmarks/scale.py``, issue 34), the training step of
8 boroughs (61,320 rows x 91 features, 5.6M cells) took 4.2 s on 2 threads against 3.1 s on 1,
London's (245,460 x 91, 22M cells) 11.5-13.8 s against 17.9-20.3 s. On a busy machine a second
thread is far worse: 5.6M cells took 41-66 s on 2 threads against 4.7-8.6 s on 1 at load 6-7."""


def boost_threads(n_jobs: int | None, cells: int, cores: int | None = None,
                  cells_per_thread: int | None = None) -> int:
    """Threads for a local XGBoost fit of a ``cells``-cell matrix: one per :data:`CELLS_PER_THREAD`
    cells, at least 1, at most ``n_jobs`` (None or < 1: the ``cores``, default ``os.cpu_count()``).

    >>> boost_threads(2, 5_580_120), boost_threads(2, 22_336_860), boost_threads(None, 45_000_000, cores=8)
    (1, 2, 4)
    """
    per = CELLS_PER_THREAD if cells_per_thread is None else int(cells_per_thread)
    most = int(n_jobs) if n_jobs is not None and int(n_jobs) >= 1 else int(cores or os.cpu_count() or 1)
    return max(1, min(most, int(cells) // max(per, 1)))


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
    n_jobs : int or None, default None
        Most XGBoost threads (None: every core); a fit uses fewer on a small matrix, one per
        :data:`CELLS_PER_THREAD` cells (:func:`boost_threads`). The fit is the same whatever
        the number of threads (``tests/models/test_estimators.py``).

    Attributes
    ----------
    booster_ : xgboost.XGBRegressor
    n_threads_ : int
        The threads the local fit ran on.
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
        n_jobs: int | None = None,
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
        self.n_jobs = n_jobs

    def _select(self, X):
        wanted = None if self.features in (None, "all") else tuple(self.features)
        return _frame_input(X, wanted, self.allow_police_generated)

    def used_columns(self, X: pd.DataFrame) -> list[str]:
        """The columns of the matrix ``X`` this model reads (its feature list, those present)."""
        return [str(c) for c in self._select(X).columns]

    def _training_data(self, X, y):
        """Validated (X, y) and the monotone constraints for their columns."""
        X = self._select(X)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=float, ensure_all_finite="allow-nan")
        if (y < 0).any():
            raise ValueError(f"y: counts must be >= 0, found {y[y < 0][0]!r}")
        names = getattr(self, "feature_names_in_", [None] * X.shape[1])
        return X, y, tuple(monotone_direction(n) if self.monotone else 0 for n in names)

    def _booster_kwargs(self, constraints, n_jobs: int | None = None) -> dict:
        """XGBoost arguments shared by the local fit and the Dask fit (service.engine); ``n_jobs``
        (None: the parameter) the threads."""
        return dict(objective="count:poisson", n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                    max_depth=self.max_depth, min_child_weight=self.min_child_weight, subsample=self.subsample,
                    reg_lambda=self.reg_lambda, monotone_constraints=constraints, tree_method="hist",
                    random_state=self.seed, n_jobs=self.n_jobs if n_jobs is None else n_jobs)

    def fit(self, X, y):
        from xgboost import XGBRegressor

        X, y, constraints = self._training_data(X, y)
        self.n_threads_ = boost_threads(self.n_jobs, X.size)
        self.booster_ = XGBRegressor(**self._booster_kwargs(constraints, self.n_threads_))
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


class BlendedBoost(RegressorMixin, BaseEstimator):
    """A boosted forecast blended on the log scale with the long-window mean.

    ``log mu = weight * log(boost) + (1 - weight) * log(anchor + floor_) + intercept_``

    where ``boost`` is the fitted ``estimator``'s forecast, ``anchor`` the long-window
    mean monthly count of the place (a column of ``X``), ``floor_`` a small
    pseudo-rate that keeps places without any past event finite, and
    ``intercept_`` makes the forecasts add up to the training total (so they are
    expected counts for the training horizon). ``weight=1`` is the boosting alone
    (rescaled), ``weight=0`` the long-window mean alone.

    Why: the boosting reads recent change, neighbours and context; the long mean
    is the steadiest estimate of a place's rate. Each wins on some unit sets and
    loses on others; their geometric mean averages out the two kinds of error.

    Parameters
    ----------
    estimator : regressor, default None
        Fitted on the whole of ``X``; needs ``contributions`` for
        :meth:`contributions`. None means ``PoissonBoost()`` (deterministic).
    anchor : str or int, default :data:`features.months.LONG_MEAN_COLUMN`
        Column of ``X`` with the long-window mean (name, or position for arrays).
        A mean count cannot be negative: negative values are taken as 0. A
        missing value leaves that place to the boosting alone (anchor term 0,
        as the GLM fills missing values with a typical one).
    weight : float in [0, 1], default 0.5
        Weight of the boosted forecast on the log scale.
    floor : float > 0, default 0.05
        Pseudo-rate added to the anchor, as a share of its training mean.

    Attributes
    ----------
    estimator_ : the fitted ``estimator``
    anchor_index_ : int
        Position of the anchor column.
    floor_ : float
        ``floor`` times the training mean of the anchor.
    anchor_center_ : float
        Training mean of ``log(anchor + floor_)`` (the anchor term's zero in
        :meth:`contributions`).
    intercept_ : float
    dispersion_ : float
        Negative-binomial alpha by moments on the training rows (in-sample).

    Examples
    --------
    >>> X = pd.DataFrame({"cnt_sv_12m": [0.0, 12.0, 24.0, 36.0] * 10,
    ...                   "mean_sv_36m": [0.0, 1.0, 2.0, 3.0] * 10})
    >>> y = np.array([0.0, 1.0, 2.0, 3.0] * 10)
    >>> model = BlendedBoost(PoissonBoost(n_estimators=50)).fit(X, y)
    >>> bool(np.all(np.diff(model.predict(X.iloc[:4])) > 0))
    True
    """

    def __init__(
        self,
        estimator=None,
        anchor: str | int = LONG_MEAN_COLUMN,
        weight: float = 0.5,
        floor: float = 0.05,
    ):
        self.estimator = estimator
        self.anchor = anchor
        self.weight = weight
        self.floor = floor

    def _locate(self) -> int:
        if isinstance(self.anchor, str):
            names = [str(n) for n in getattr(self, "feature_names_in_", [])]
            if self.anchor not in names:
                raise ValueError(
                    f"BlendedBoost: anchor column {self.anchor!r} is not in the feature matrix "
                    f"(columns: {names[:12]}{'...' if len(names) > 12 else ''}); "
                    "models.backtest.training_set and forecast_matrix add it"
                )
            return names.index(self.anchor)
        index = int(self.anchor)
        if not 0 <= index < self.n_features_in_:
            raise ValueError(f"BlendedBoost: anchor position {index} outside 0..{self.n_features_in_ - 1}")
        return index

    def _log_anchor(self, Xa: np.ndarray) -> np.ndarray:
        a = Xa[:, self.anchor_index_]
        known = ~np.isnan(a)
        log_a = np.log(np.maximum(np.where(known, a, 0.0), 0.0) + self.floor_)
        # a place without a long-run value is left to the boosting: its anchor term is 0
        return np.where(known, log_a, getattr(self, "anchor_center_", 0.0))

    def _log_boost(self, X) -> np.ndarray:
        return np.log(np.maximum(np.asarray(self.estimator_.predict(X), dtype=float), 1e-12))

    def fit(self, X, y):
        if not 0.0 <= float(self.weight) <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {self.weight!r}")
        if not float(self.floor) > 0.0:
            raise ValueError(f"floor must be > 0 (it keeps log(anchor) finite), got {self.floor!r}")
        Xa, y = validate_data(self, X, y, y_numeric=True, dtype=float, ensure_all_finite="allow-nan")
        if (y < 0).any():
            raise ValueError(f"y: counts must be >= 0, found {y[y < 0][0]!r}")
        self.anchor_index_ = self._locate()
        a = Xa[:, self.anchor_index_]
        known = ~np.isnan(a)
        self.floor_ = float(self.floor) * (max(float(np.maximum(a[known], 0.0).mean()), 1e-9) if known.any() else 1.0)
        self.anchor_center_ = 0.0
        log_a = self._log_anchor(Xa)
        self.anchor_center_ = float(log_a[known].mean()) if known.any() else 0.0
        log_a = np.where(known, log_a, self.anchor_center_)
        self.estimator_ = clone(PoissonBoost() if self.estimator is None else self.estimator).fit(X, y)
        w = float(self.weight)
        eta = w * self._log_boost(X) + (1.0 - w) * (log_a - self.anchor_center_)
        total = float(np.exp(eta).sum())
        self.intercept_ = float(np.log(y.sum() / total)) if y.sum() > 0 and total > 0 else 0.0
        self.dispersion_ = moment_dispersion(y, np.exp(eta + self.intercept_))
        return self

    def predict(self, X):
        """Expected count per row."""
        check_is_fitted(self, "estimator_")
        Xa = validate_data(self, X, reset=False, dtype=float, ensure_all_finite="allow-nan")
        w = float(self.weight)
        eta = w * self._log_boost(X) + (1.0 - w) * (self._log_anchor(Xa) - self.anchor_center_)
        return np.exp(np.clip(eta + self.intercept_, -50, 50))

    @property
    def feature_names_(self) -> list[str]:
        check_is_fitted(self, "estimator_")
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def contributions(self, X) -> pd.DataFrame:
        """Signed contributions to each row's log rate: ``weight`` x the estimator's, plus the anchor's.

        The anchor's is ``(1 - weight) * (log(anchor + floor_) - anchor_center_)``,
        added to its column. Per row the values sum to the log of the prediction
        minus a constant (the same for every row).
        """
        check_is_fitted(self, "estimator_")
        if not hasattr(self.estimator_, "contributions"):
            raise TypeError(f"{type(self.estimator_).__name__} has no contributions(); reasons need them")
        Xa = validate_data(self, X, reset=False, dtype=float, ensure_all_finite="allow-nan")
        w = float(self.weight)
        out = self.estimator_.contributions(X) * w
        name = self.feature_names_[self.anchor_index_]
        term = (1.0 - w) * (self._log_anchor(Xa) - self.anchor_center_)
        out[name] = (out[name].to_numpy() if name in out.columns else 0.0) + term
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.input_tags.allow_nan = True
        tags.regressor_tags.poor_score = True  # half the forecast is one given column, by design
        return tags


class DaskPoissonBoost(PoissonBoost):
    """:class:`~models.boosting.PoissonBoost` trained with ``xgboost.dask`` on the current Dask client.

    Same parameters, constraints and objective; the training rows are split into
    one chunk per worker and the histogram sums are all-reduced across workers.
    The fitted booster is copied into a local ``xgboost.XGBRegressor``
    (``booster_``), so ``predict``, ``contributions`` (SHAP) and saving work as
    for :class:`PoissonBoost`. Quantile sketches merged across workers choose
    slightly different split candidates, so forecasts agree with the local fit
    to within a small tolerance, not exactly (see ``tests/service/test_engine.py``).

    Parameters
    ----------
    (as :class:`~models.boosting.PoissonBoost`)
    """

    def __init__(self, features="all", n_estimators: int = 300, learning_rate: float = 0.05, max_depth: int = 3,
                 min_child_weight: float = 5.0, subsample: float = 1.0, reg_lambda: float = 1.0,
                 monotone: bool = True, seed: int = 0, allow_police_generated: bool = False,
                 n_jobs: int | None = None):
        super().__init__(features=features, n_estimators=n_estimators, learning_rate=learning_rate,
                         max_depth=max_depth, min_child_weight=min_child_weight, subsample=subsample,
                         reg_lambda=reg_lambda, monotone=monotone, seed=seed,
                         allow_police_generated=allow_police_generated, n_jobs=n_jobs)

    def fit(self, X, y):
        import dask.array as da
        from distributed import get_client
        from xgboost import XGBRegressor
        from xgboost.dask import DaskXGBRegressor

        X, y, constraints = self._training_data(X, y)
        client = get_client()
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        rows = max(math.ceil(len(X) / workers), 1)
        kwargs = self._booster_kwargs(constraints)
        dask_model = DaskXGBRegressor(**kwargs)
        dask_model.client = client
        dask_model.fit(da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows))
        local = XGBRegressor(**kwargs)
        local.load_model(bytearray(dask_model.get_booster().save_raw(raw_format="ubj")))
        self.booster_ = local
        self.dispersion_ = moment_dispersion(y, np.asarray(self.booster_.predict(X), dtype=float))
        return self
