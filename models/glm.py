"""Poisson / negative-binomial regression with a spatial lag: the interpretable model.

Each row is a (unit, origin) pair; the target is the count in the horizon after
the origin. Counts and rates enter on the log scale, so a coefficient reads
"doubling the place's 36-month rate multiplies its forecast by ...", and the model is
a product of powers of them (a place with twice the history gets about twice the
forecast, not ``e`` times more): an event count over a window (``cnt_*_<w>m``, the
spatial lag) as ``log(x + 0.5)`` and a mean monthly count over ``w`` months
(``mean_*_<w>m``, the long-run levels) as ``log(x + 0.5 / w)`` - half an event over
the window keeps places without events finite, whatever the size of the units.
Densities, distances and footfall enter as ``log1p``; scores and shares linearly;
every column is then standardised on the training rows. The spatial-lag term is
the feature builder's ``lag_cnt_sv_12m`` (mean 12-month count of the neighbours),
required when the matrix has named columns.

Feature sets (the candidates of the nested default, :data:`models.ranking.DEFAULT_METHOD`):
:data:`OWN_HISTORY` (the place's own serious violence over 1, 3, 12 and 36 months),
:data:`OTHER_LEVELS` (the long-run levels of other victim-reported crime: anti-social
behaviour, public order, criminal damage, theft, burglary, vehicle crime - markers of
how busy a place is, measured on far more events than serious violence itself) and
:data:`CONTEXT` (deprivation, population density, station footfall, bus stops).
Police-generated counts are never among them unless asked for.

Standard errors are robust (sandwich, ``HC0``) for the Poisson family, which stay
valid under the overdispersion crime counts always show; ``family="negbin"``
fits a negative binomial with its dispersion fixed at the moment estimate.
Missing values (a source a borough lacks for some years) are replaced by the
column's training median.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import cache

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

SPATIAL_LAG = "lag_cnt_sv_12m"
CONSTANT_SD = 1e-9
"""A design column whose standard deviation is below this (relative to its mean) is constant."""

OWN_HISTORY = ("cnt_sv_1m", "cnt_sv_3m", "cnt_sv_12m", "mean_sv_36m")
"""The place's own serious violence: last month, quarter, year and the 36-month mean."""
OTHER_LEVELS = ("mean_asb_36m", "mean_public_order_36m", "mean_damage_36m", "mean_theft_36m",
                "mean_burglary_36m", "mean_vehicle_36m")
"""Long-run (36-month) mean monthly counts of other victim-reported crime types."""
CONTEXT = ("imd_score", "pop_density", "foot_decay", "bus_stop_density")
"""Deprivation, residents per km², station footfall (distance-decayed) and bus stops."""

DEFAULT_GLM_FEATURES = (*OWN_HISTORY, *OTHER_LEVELS, *CONTEXT, SPATIAL_LAG)
"""A short list on purpose: few, well-understood terms travel between boroughs."""

POLICE_GENERATED_PREFIXES = ("cnt_drugs_", "cnt_weapons_", "harm_drugs_", "harm_weapons_", "mean_drugs_", "mean_weapons_",
                             "sas_")
_LINEAR_MARKERS = ("imd_", "_score", "share", "trend_", "_rank", "_decile", "excl_rate")
_COUNT = re.compile(r"^(lag_)?cnt_.+_\d+m$")
_MEAN = re.compile(r"^mean_.+_(\d+)m$")


def is_log_feature(name) -> bool:
    """Counts, rates, densities, distances and footfall enter the GLM on the log scale; scores and shares do not."""
    return isinstance(name, str) and not any(m in name for m in _LINEAR_MARKERS)


def log_offset(name) -> float:
    """What is added before the log: half an event over the feature's window, else 1 (``log1p``).

    Examples
    --------
    >>> log_offset("cnt_sv_12m"), log_offset("mean_sv_36m"), log_offset("foot_decay")
    (0.5, 0.013888888888888888, 1.0)
    """
    name = str(name)
    if _COUNT.match(name):
        return 0.5
    m = _MEAN.match(name)
    if m and int(m.group(1)) > 0:
        return 0.5 / int(m.group(1))
    return 1.0


def select_features(
    columns: Sequence[str],
    wanted: Sequence[str] | None,
    *,
    allow_police_generated: bool = False,
    required: Sequence[str] = (),
) -> list[str]:
    """The model's columns, in ``columns`` order.

    ``wanted`` None means every column except police-generated ones (unless
    allowed) and the 24-month trend. Named columns in ``wanted`` that the
    matrix lacks are skipped (a borough without exclusions data still gets a
    model); a ``required`` column that is missing is an error.
    """
    columns = [str(c) for c in columns]
    for name in required:
        if name not in columns:
            raise ValueError(
                f"feature matrix has no column {name!r}, which this model needs "
                f"(columns: {columns[:12]}{'...' if len(columns) > 12 else ''})"
            )
    if wanted is None:
        chosen = [c for c in columns if not c.startswith("trend_")]
    else:
        chosen = [c for c in columns if c in set(wanted)]
    if not allow_police_generated:
        chosen = [c for c in chosen if not c.startswith(POLICE_GENERATED_PREFIXES)]
    if not chosen:
        raise ValueError(f"none of the features {list(wanted or [])} is in the matrix {columns[:12]}")
    return chosen


def _frame_input(X, features, allow_police_generated, required=()):
    """Select named columns from a DataFrame; pass arrays through."""
    if isinstance(X, pd.DataFrame):
        cols = select_features(
            X.columns, features, allow_police_generated=allow_police_generated, required=required
        )
        keep = set(cols)
        return X.loc[:, [c for c in X.columns if str(c) in keep]]
    return X


def moment_dispersion(y: np.ndarray, mu: np.ndarray) -> float:
    """Negative-binomial ``alpha`` from ``Var = mu + alpha mu^2`` by moments (0 if underdispersed)."""
    denom = float(np.sum(mu**2))
    if denom <= 0:
        return 0.0
    return max(0.0, float(np.sum((y - mu) ** 2 - y)) / denom)


@cache
def _threadpools() -> ThreadpoolController:
    """The process's thread pools, found once (looking them up again for every fit cost more than a small fit)."""
    return ThreadpoolController()


class PoissonGLM(RegressorMixin, BaseEstimator):
    """Poisson or negative-binomial GLM with a spatial-lag term and rate ratios.

    Parameters
    ----------
    features : sequence of str, "all" or None, default None
        Columns to use when fitted on a DataFrame; None means
        :data:`DEFAULT_GLM_FEATURES` (those present), "all" every column but
        police-generated ones and trends. Ignored for arrays.
    family : {"poisson", "negbin"}, default "poisson"
    spatial_lag : bool, default True
        Require and include :data:`SPATIAL_LAG` (DataFrame input only).
    allow_police_generated : bool, default False
        Keep police-generated columns (stop and search, drugs, weapons).

    Attributes
    ----------
    coef_ : ndarray
        Coefficients on the standardised transformed columns.
    intercept_ : float
    bse_ : ndarray
        Standard errors of ``coef_``.
    dispersion_ : float
        Negative-binomial alpha by moments on the training rows (0 = Poisson).
    center_, scale_ : ndarray
        Standardisation of the transformed columns.
    used_ : ndarray of bool
        Columns that vary on the training rows (the others get coefficient 0).
    log_ : ndarray of bool
        Which columns enter on the log scale.
    offset_ : ndarray
        What is added before the log (:func:`log_offset`; 1 means ``log1p``).
    fill_ : ndarray
        Training medians that replace missing values.
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        family: str = "poisson",
        spatial_lag: bool = True,
        allow_police_generated: bool = False,
    ):
        self.features = features
        self.family = family
        self.spatial_lag = spatial_lag
        self.allow_police_generated = allow_police_generated

    def _select(self, X):
        if isinstance(self.features, str):
            if self.features != "all":
                raise ValueError(f"features must be a list of columns, None or 'all', got {self.features!r}")
            wanted = None
        else:
            wanted = DEFAULT_GLM_FEATURES if self.features is None else tuple(self.features)
        required = (SPATIAL_LAG,) if self.spatial_lag else ()
        if self.spatial_lag and wanted is not None and SPATIAL_LAG not in wanted:
            wanted = (*wanted, SPATIAL_LAG)
        return _frame_input(X, wanted, self.allow_police_generated, required)

    def used_columns(self, X: pd.DataFrame) -> list[str]:
        """The columns of the matrix ``X`` this model reads (its feature list, those present)."""
        return [str(c) for c in self._select(X).columns]

    def _fill(self, X: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(X), self.fill_, X)

    def _design(self, X: np.ndarray) -> np.ndarray:
        T = np.where(self.log_, np.log(np.where(self.log_, np.maximum(X, 0), 0) + self.offset_), X)
        return (T - self.center_) / self.scale_

    def fit(self, X, y):
        import statsmodels.api as sm

        if self.family not in ("poisson", "negbin"):
            raise ValueError(f"family must be 'poisson' or 'negbin', got {self.family!r}")
        X = self._select(X)
        X, y = validate_data(self, X, y, y_numeric=True, dtype=float, ensure_all_finite="allow-nan")
        if (y < 0).any():
            raise ValueError(f"y: counts must be >= 0, found {y[y < 0][0]!r}")
        if X.shape[0] < 2:
            raise ValueError(f"PoissonGLM needs at least 2 rows, got {X.shape[0]} sample")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-NaN columns
            med = np.nanmedian(X, axis=0)
        self.fill_ = np.where(np.isfinite(med), med, 0.0)
        X = self._fill(X)
        names = getattr(self, "feature_names_in_", [None] * X.shape[1])
        self.log_ = np.array([is_log_feature(n) and X[:, i].min() >= 0 for i, n in enumerate(names)])
        self.offset_ = np.array([log_offset(n) if lg else 1.0 for n, lg in zip(names, self.log_, strict=True)])
        self.center_ = np.zeros(X.shape[1])
        self.scale_ = np.ones(X.shape[1])
        T = self._design(X)
        self.center_ = T.mean(axis=0)
        sd = T.std(axis=0)
        # constant columns (a crime group with no events yet, e.g. one an area table does not publish)
        # carry no information: coefficient 0. Rounding leaves such a column a standard deviation of
        # ~1e-17 on the log scale, which must not count as variation (it made rate ratios overflow).
        varies = sd > CONSTANT_SD * np.maximum(1.0, np.abs(self.center_))
        self.scale_ = np.where(varies, sd, 1.0)
        self.used_ = varies
        Z = sm.add_constant(self._design(X)[:, self.used_], has_constant="add")
        # IRLS solves many small least-squares problems: BLAS threads only add overhead there
        # (on a busy 2-core machine a 2,500 x 40 lstsq took 0.13 s threaded, 0.003 s on one thread)
        with warnings.catch_warnings(), _threadpools().limit(limits=1, user_api="blas"):
            warnings.simplefilter("ignore")  # perfect fits on toy data warn; results still usable
            try:
                res = sm.GLM(y, Z, family=sm.families.Poisson()).fit(cov_type="HC0")
            except np.linalg.LinAlgError:  # collinear columns: sandwich needs an inverse
                res = sm.GLM(y, Z, family=sm.families.Poisson()).fit()
            self.dispersion_ = moment_dispersion(y, res.fittedvalues)
            if self.family == "negbin":
                family = sm.families.NegativeBinomial(alpha=max(self.dispersion_, 1e-8))
                res = sm.GLM(y, Z, family=family).fit()
        params = np.asarray(res.params, dtype=float)
        self.intercept_ = float(params[0])
        self.coef_ = np.zeros(X.shape[1])
        self.coef_[self.used_] = params[1:]
        self.bse_ = np.full(X.shape[1], np.nan)
        self.bse_[self.used_] = np.asarray(res.bse, dtype=float)[1:]
        return self

    def predict(self, X):
        """Expected count per row."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, self._select(X), reset=False, dtype=float, ensure_all_finite="allow-nan")
        eta = self.intercept_ + self._design(self._fill(X)) @ self.coef_
        return np.exp(np.clip(eta, -50, 50))

    @property
    def feature_names_(self) -> list[str]:
        check_is_fitted(self, "coef_")
        if hasattr(self, "feature_names_in_"):
            return [str(n) for n in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def contributions(self, X) -> pd.DataFrame:
        """Signed contribution of each feature to each row's log rate, vs the average training row.

        ``exp`` of a value is that feature's rate ratio for the place; the
        values sum (with the intercept) to the log of the prediction.
        """
        check_is_fitted(self, "coef_")
        index = X.index if isinstance(X, pd.DataFrame) else None
        Xa = validate_data(self, self._select(X), reset=False, dtype=float, ensure_all_finite="allow-nan")
        return pd.DataFrame(self._design(self._fill(Xa)) * self.coef_, index=index, columns=self.feature_names_)

    def rate_ratios(self, level: float = 0.95) -> pd.DataFrame:
        """Coefficients as rate ratios with ``level`` intervals.

        For log-scale columns the ratio is per doubling of ``value + offset``
        (:func:`log_offset`: about a doubling of the count or rate itself); for
        the others, per one standard deviation (given in ``sd``) of the raw value.
        """
        from scipy.stats import norm

        check_is_fitted(self, "coef_")
        z = norm.ppf(0.5 + level / 2)
        per_unit = np.where(self.log_, np.log(2.0) / self.scale_, 1.0)
        beta = self.coef_ * per_unit
        half = z * self.bse_ * per_unit
        return pd.DataFrame(
            {
                "feature": self.feature_names_,
                "per": np.where(self.log_, "doubling", "+1 SD"),
                "sd": np.where(self.log_, np.nan, self.scale_),
                "rate_ratio": np.exp(beta),
                "lo": np.exp(beta - half),
                "hi": np.exp(beta + half),
            }
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.input_tags.allow_nan = True
        return tags
