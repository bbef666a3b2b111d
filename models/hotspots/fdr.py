"""Benjamini-Hochberg false discovery rate control."""

from __future__ import annotations

import numpy as np


def benjamini_hochberg(p, alpha=0.05):
    """Benjamini-Hochberg step-up procedure with adjusted p-values (q-values).

    Parameters
    ----------
    p : array-like of float
        p-values in [0, 1]. NaN marks a unit that was not tested (e.g. an island):
        it is left out of the count of tests ``m``, gets a NaN q-value and is never
        rejected.
    alpha : float, default 0.05
        False discovery rate to control, in (0, 1).

    Returns
    -------
    reject : numpy.ndarray of bool
        True where the null is rejected at FDR ``alpha``, i.e. ``q <= alpha``.
    q : numpy.ndarray of float
        BH-adjusted p-values: ``q_(j) = min_{k >= j} min(1, m p_(k) / k)`` over the
        ascending order of the tested p-values.

    Examples
    --------
    >>> reject, q = benjamini_hochberg([0.010, 0.040, 0.030, 0.002, 0.300, 0.045], 0.05)
    >>> reject.tolist()
    [True, False, False, True, False, False]
    >>> q.round(3).tolist()
    [0.03, 0.054, 0.054, 0.012, 0.3, 0.054]
    """
    p = np.asarray(p, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p must be one-dimensional, got shape {p.shape}")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    tested = ~np.isnan(p)
    bad = tested & ((p < 0.0) | (p > 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"p-values must lie in [0, 1]; p[{i}] = {p[i]!r}")
    q = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    pt = p[tested]
    m = pt.size
    if m == 0:
        return reject, q
    order = np.argsort(pt, kind="stable")
    ranked = pt[order] * m / np.arange(1, m + 1)
    # step-up: each q is the smallest adjusted value at its rank or above
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    qt = np.empty(m)
    qt[order] = np.minimum(ranked, 1.0)
    q[tested] = qt
    reject[tested] = qt <= alpha
    return reject, q
