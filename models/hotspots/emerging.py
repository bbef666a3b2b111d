"""Emerging hot spot analysis: space-time Gi* plus a Mann-Kendall trend per unit."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import sparse, stats
from sklearn.base import BaseEstimator

from ._crand import as_weights_matrix, check_alpha, check_inference, check_permutations
from .getisord import GetisOrdGStar

NO_PATTERN = "No Pattern Detected"
PATTERNS = [
    f"{kind} {side} Spot"
    for side in ("Hot", "Cold")
    for kind in (
        "New",
        "Consecutive",
        "Intensifying",
        "Persistent",
        "Diminishing",
        "Sporadic",
        "Oscillating",
        "Historical",
    )
] + [NO_PATTERN]


def mann_kendall(x):
    """Two-sided Mann-Kendall trend test with the ties correction.

    ``S = sum_{i<j} sign(x_j - x_i)``;
    ``Var(S) = [n(n-1)(2n+5) - sum_t t(t-1)(2t+5)] / 18`` over groups of ``t`` tied
    values; ``Z = (S - sign(S)) / sqrt(Var(S))`` (continuity correction);
    ``p = 2 (1 - Phi(|Z|))``.

    Parameters
    ----------
    x : array-like (T,)

    Returns
    -------
    S : float
    z : float
    p : float
        NaN ``z``/``p`` if the series is constant or shorter than 3.

    Examples
    --------
    >>> S, z, p = mann_kendall([1, 2, 3, 4])
    >>> S, round(z, 4), round(p, 4)
    (6.0, 1.6984, 0.0894)
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    s = float(np.sign(x[None, :] - x[:, None])[np.triu_indices(n, 1)].sum())
    _, counts = np.unique(x, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - (counts * (counts - 1) * (2 * counts + 5)).sum()) / 18.0
    if n < 3 or var <= 0:
        return s, math.nan, math.nan
    z = (s - np.sign(s)) / math.sqrt(var)
    return s, float(z), float(2.0 * stats.norm.sf(abs(z)))


def classify_pattern(bins, trend, threshold=0.9):
    """ArcGIS Pro emerging hot spot category of one unit.

    Parameters
    ----------
    bins : array-like of int (T,)
        Significance of each period, oldest first: > 0 hot, < 0 cold, 0 neither.
    trend : int
        Sign of a significant Mann-Kendall trend in the unit's Gi* z-scores
        (+1 rising, -1 falling, 0 none).
    threshold : float, default 0.9
        Share of periods that makes a location a "mostly" hot (cold) spot.

    Returns
    -------
    str
        One of ``PATTERNS``. See :class:`EmergingHotSpots` for the rules.
    """
    b = np.sign(np.asarray(bins, dtype=int))
    T = b.size
    need = math.ceil(threshold * T - 1e-9)
    for side, name in ((1, "Hot"), (-1, "Cold")):
        same = b == side
        other = b == -side
        if not same[-1]:
            continue
        if same.sum() >= need:
            rising = trend == side  # stronger clustering of this kind
            falling = trend == -side
            kind = "Intensifying" if rising else "Diminishing" if falling else "Persistent"
        elif other[:-1].any():
            kind = "Oscillating"
        elif not same[:-1].any():
            kind = "New"
        else:
            run = T - np.flatnonzero(~same)[-1] - 1  # length of the final run
            kind = "Consecutive" if run >= 2 and same.sum() == run else "Sporadic"
        return f"{kind} {name} Spot"
    for side, name in ((1, "Hot"), (-1, "Cold")):
        if (b == side).sum() >= need:
            return f"Historical {name} Spot"
    return NO_PATTERN


def space_time_weights(spatial, n, periods, time_window=1):
    """Binary space-time weights over ``n * periods`` bins, bin ``(i, t)`` at ``t * n + i``.

    Bin ``(i, t)`` neighbours ``(j, t)`` for spatial neighbours ``j``, and ``(j, s)``
    for ``j`` = ``i`` or a spatial neighbour and ``t - time_window <= s < t`` (ArcGIS's
    "neighbourhood time step": same and previous periods only, never later ones).
    The diagonal is left empty; Gi* adds the self-weight.
    """
    a, _ = as_weights_matrix(spatial, n)
    a = a.tolil()
    a.setdiag(0.0)
    a = sparse.csr_matrix(a)
    a.eliminate_zeros()
    a.data[:] = 1.0
    with_self = sparse.csr_matrix(a + sparse.identity(n))
    st = sparse.kron(sparse.identity(periods), a, format="csr")
    for lag in range(1, time_window + 1):
        shift = sparse.eye(periods, k=-lag, format="csr")  # row t, column t - lag
        st = st + sparse.kron(shift, with_self, format="csr")
    return sparse.csr_matrix(st)


class EmergingHotSpots(BaseEstimator):
    """Emerging hot spot analysis on a (units x periods) cube, after ArcGIS Pro.

    1. Gi* is computed on every bin of the cube at once (global mean and variance over
       all bins) with a space-time neighbourhood: the unit's spatial neighbours in the
       same period, and the unit and its spatial neighbours in each of the previous
       ``time_window`` periods (binary weights by default, as ArcGIS). Each bin gets a
       p-value by the chosen ``inference`` (the normal-theory p of its z by default, as
       ArcGIS; or a conditional-permutation pseudo p-value) and, with ``fdr``, a BH
       q-value over all bins; a bin is hot (cold) if significant at ``alpha`` with
       ``Zs > 0`` (``< 0``). Pass the spatial neighbourhood the Gi* of the same analysis
       uses, so that both speak of the same scale.
    2. A Mann-Kendall test (ties-corrected, two-sided, level ``trend_alpha``) on each
       unit's series of Gi* z-scores gives its trend: rising, falling or none.
    3. Categories, with "mostly" meaning at least ``threshold`` (90%) of the periods,
       checked for hot spots first, then identically for cold spots:

       * **Intensifying**: hot in the final period, mostly hot, and a significant
         rising trend in z.
       * **Diminishing**: hot in the final period, mostly hot, significant falling trend.
       * **Persistent**: hot in the final period, mostly hot, no significant trend.
       * **Oscillating**: hot in the final period, less than mostly hot, and cold in
         some earlier period.
       * **New**: hot in the final period and never before (and never cold).
       * **Consecutive**: hot in an uninterrupted final run of at least two periods,
         never hot before that run, less than mostly hot (and never cold).
       * **Sporadic**: hot in the final period, less than mostly hot, on-and-off
         before, never cold.
       * **Historical**: not hot in the final period but mostly hot.
       * **No Pattern Detected**: none of the above.

       A unit hot in the final period is classed among the hot patterns before any
       cold pattern is considered; "Oscillating" takes precedence over "New" and
       "Consecutive" when the unit was once a cold spot (ArcGIS's definitions overlap
       there).

    Parameters
    ----------
    permutations : int, default 999
        0 runs none (permutation inference needs >= 99).
    seed : int or None, default 0
    alpha : float, default 0.05
        Significance level for a hot/cold bin (on q-values when ``fdr``).
    time_window : int, default 1
        Previous periods in the neighbourhood (ArcGIS "Neighborhood Time Step").
    fdr : bool, default True
    trend_alpha : float, default 0.05
        Level of the Mann-Kendall trend test.
    threshold : float, default 0.9
        Share of periods for "mostly hot/cold".
    transform : {"B", "R"}, default "B"
        Binary weights as ArcGIS (z-scores then match ArcGIS's Gi*).
    inference : {"normal", "permutation"}, default "normal"
        How each bin is tested (see :class:`GetisOrdGStar`).

    Attributes
    ----------
    Zs_, p_sim_, q_value_, Gi_Bin_ : ndarray (n, T)
        Gi* results per bin (``Gi_Bin_`` -3..3, as :class:`GetisOrdGStar`).
    mk_S_, mk_z_, mk_p_ : ndarray (n,)
        Mann-Kendall statistic, z and p on each unit's ``Zs_`` series.
    trend_ : ndarray of int (n,)
        +1 / -1 for a significant rising / falling trend, else 0.
    pattern_ : ndarray of str (n,)
        Category per unit (see ``PATTERNS``).
    """

    def __init__(
        self,
        permutations=999,
        seed=0,
        alpha=0.05,
        time_window=1,
        fdr=True,
        trend_alpha=0.05,
        threshold=0.9,
        transform="B",
        inference="normal",
    ):
        self.permutations = permutations
        self.seed = seed
        self.alpha = alpha
        self.time_window = time_window
        self.fdr = fdr
        self.trend_alpha = trend_alpha
        self.threshold = threshold
        self.transform = transform
        self.inference = inference

    def fit(self, Y, graph):
        """Fit on a cube ``Y`` of shape (units, periods), periods oldest first.

        Parameters
        ----------
        Y : array-like (n, T)
            Non-negative values per unit and period, units in ``graph`` order.
        graph : libpysal.graph.Graph or libpysal.weights.W
            Spatial weights over the ``n`` units.

        Returns
        -------
        self
        """
        check_permutations(self.permutations, check_inference(self.inference))
        check_alpha(self.alpha)
        trend_alpha = check_alpha(self.trend_alpha)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim != 2:
            raise ValueError(f"Y must be a (units x periods) array, got shape {Y.shape}")
        n, T = Y.shape
        if T < 4:
            raise ValueError(
                f"Y has {T} periods; the trend test needs at least 4 (ArcGIS asks for 10)"
            )
        if T < 10:
            warnings.warn(
                f"only {T} periods: the Mann-Kendall trend test has little power below 10",
                UserWarning,
                stacklevel=2,
            )
        tw = self.time_window
        if isinstance(tw, bool) or not isinstance(tw, (int, np.integer)) or not 0 <= tw < T:
            raise ValueError(f"time_window must be an int in [0, {T - 1}], got {tw!r}")
        st = space_time_weights(graph, n, T, int(tw))
        gi = GetisOrdGStar(
            permutations=self.permutations,
            seed=self.seed,
            alpha=self.alpha,
            fdr=self.fdr,
            transform=self.transform,
            inference=self.inference,
        )
        # bins in period-major order: position t * n + i
        gi.fit(Y.T.ravel(), st)
        shape = (T, n)
        self.Zs_ = gi.Zs_.reshape(shape).T
        self.p_sim_ = gi.p_sim_.reshape(shape).T
        self.q_value_ = gi.q_value_.reshape(shape).T
        self.Gi_Bin_ = gi.Gi_Bin_.reshape(shape).T
        mk = np.array([mann_kendall(z) for z in self.Zs_])
        self.mk_S_, self.mk_z_, self.mk_p_ = mk[:, 0], mk[:, 1], mk[:, 2]
        with np.errstate(invalid="ignore"):
            sig = self.mk_p_ <= trend_alpha
        self.trend_ = np.where(sig, np.sign(self.mk_S_), 0).astype(int)
        self.pattern_ = np.array(
            [
                classify_pattern(b, t, self.threshold)
                for b, t in zip(self.Gi_Bin_, self.trend_, strict=True)
            ],
            dtype=object,
        )
        self.n_periods_ = T
        return self
