"""Shared machinery: weights normalisation, input checks and fast conditional randomisation.

Conditional randomisation (Anselin 1995) holds unit ``i``'s own value fixed and
re-draws its ``k_i`` neighbours' values, without replacement, from the other
``n - 1`` units. esda does this in numba; compiling it costs ~30 s in a fresh
process. This module does the same in plain numpy and is fast from the first call:

* one table ``ids`` of shape ``(permutations, k_max + 1)`` holds, per permutation, a
  random ordered sample of ``k_max + 1`` distinct units drawn from all ``n`` units;
* unit ``i`` with ``k_i`` neighbours takes the first ``k_i`` entries of each row; if
  ``i`` itself is among them it is dropped and the ``(k_i + 1)``-th entry moves up.
  The procedure treats every unit other than ``i`` alike, so the ordered sample is a
  uniform draw of ``k_i`` distinct other units, exactly as conditional randomisation
  requires;
* the random spatial lags of all units are then one dense matrix product
  ``values[ids[:, :k_max]] @ W_padded.T`` plus a sparse correction for the (few)
  rows in which a unit drew itself.

As in esda, every unit uses the same table of draws (its reference distributions
are therefore correlated across units, which does not affect each unit's p-value).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

# Simulated statistics within this relative distance of the observed one count as
# ties (">=") so that float summation order cannot flip a tie on integer counts.
_TIE_RTOL = 1e-10
# Units per block, so that a block of simulated statistics stays below ~32 MB.
_BLOCK_CELLS = 4_000_000


def as_weights_matrix(graph, n, name="graph"):
    """Return ``(csr_matrix, ids)`` for a libpysal ``Graph`` or ``W`` aligned with ``n`` values.

    A scipy sparse matrix is accepted too (used internally for space-time weights).

    Rows and columns follow ``Graph.unique_ids`` (or ``W.id_order``), which must be
    the order of the values passed alongside.
    """
    from libpysal.graph import Graph
    from libpysal.weights import W

    if isinstance(graph, Graph):
        mat = graph.sparse
        ids = np.asarray(graph.unique_ids)
    elif isinstance(graph, W):
        mat = graph.sparse
        ids = np.asarray(graph.id_order)
    elif sparse.issparse(graph):
        mat = graph
        ids = np.arange(graph.shape[0])
    else:
        raise TypeError(
            f"{name} must be a libpysal.graph.Graph, libpysal.weights.W or scipy sparse matrix, "
            f"got {type(graph).__name__}"
        )
    mat = sparse.csr_matrix(mat, dtype=float, copy=True)
    if mat.shape != (n, n):
        raise ValueError(
            f"{name} has {mat.shape[0]} units but the values have {n}; "
            "they must describe the same units in the same order"
        )
    mat.eliminate_zeros()
    if mat.nnz and (mat.data < 0).any():
        raise ValueError(f"{name} has negative weights; spatial weights must be >= 0")
    return mat, ids


def transform_rows(mat, transform):
    """Apply a libpysal-style transform: ``"R"`` row-standardised, ``"B"`` binary."""
    t = str(transform).upper()
    mat = mat.tocsr(copy=True)
    if t == "B":
        mat.data[:] = 1.0
    elif t == "R":
        rs = np.asarray(mat.sum(axis=1)).ravel()
        scale = np.divide(1.0, rs, out=np.zeros_like(rs), where=rs > 0)
        mat = sparse.csr_matrix(sparse.diags(scale) @ mat)
    else:
        raise ValueError(
            f"transform must be 'R' (row-standardised) or 'B' (binary), got {transform!r}"
        )
    return mat


def check_values(y, name="y", nonnegative=False):
    """Return ``y`` as a finite 1-D float array (integer counts are cast to float)."""
    arr = np.asarray(y)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == object):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(float)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be finite; {name}[{i}] = {arr[i]!r} ({int(bad.sum())} bad value(s))"
        )
    if nonnegative and (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise ValueError(f"{name} must be non-negative for Getis-Ord G; {name}[{i}] = {arr[i]!r}")
    if arr.size < 3:
        raise ValueError(f"{name} needs at least 3 units, got {arr.size}")
    return arr


def check_not_constant(y, name="y"):
    if np.ptp(y) == 0:
        raise ValueError(
            f"{name} is constant (every unit = {y[0]!r}); local statistics are undefined "
            "because the variance is zero"
        )


def draw_ids(n, m, permutations, rng):
    """Rows of ``m`` distinct unit positions drawn uniformly from ``range(n)``."""
    if m > n:
        raise ValueError(f"cannot draw {m} distinct units from {n}")
    if m == 0:
        return np.empty((permutations, 0), dtype=np.intp)
    if n <= 4 * m or n <= 64:
        keys = rng.random((permutations, n))
        return np.argsort(keys, axis=1)[:, :m].astype(np.intp)
    ids = rng.integers(0, n, size=(permutations, m))
    while True:
        s = np.sort(ids, axis=1)
        dup = (s[:, 1:] == s[:, :-1]).any(axis=1)
        if not dup.any():
            return ids.astype(np.intp)
        # redraw only the rows with a repeated unit (rejection sampling)
        ids[dup] = rng.integers(0, n, size=(int(dup.sum()), m))


def conditional_randomisation(values, offdiag, observed, mult, add, permutations, seed, keep=False):
    """Directed pseudo p-values by conditional randomisation.

    The simulated statistic of unit ``i`` is ``mult[i] * lag_i + add[i]``, where
    ``lag_i = sum_j w_ij values[draw_j]`` over ``k_i`` draws from the other units.

    Parameters
    ----------
    values : ndarray (n,)
        Values that are permuted.
    offdiag : scipy.sparse matrix (n, n)
        Weights without the diagonal (the self-weight belongs in ``add``).
    observed : ndarray (n,)
        Observed statistics.
    mult, add : ndarray (n,)
        Affine map from a random lag to a random statistic.
    permutations : int
    seed : int, numpy.random.Generator or None
    keep : bool
        Return the simulated statistics, shape (n, permutations).

    Returns
    -------
    dict with ``p_sim`` (esda's directed rule: ``(min(#sim >= obs, #sim < obs) + 1) /
    (permutations + 1)``; NaN for islands and for units whose simulations are all equal), ``EG_sim``, ``seG_sim`` (per-unit mean and
    population standard deviation of the simulations) and, if ``keep``, ``sim``.
    """
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    offdiag = sparse.csr_matrix(offdiag)
    offdiag.eliminate_zeros()
    card = np.diff(offdiag.indptr)
    kmax = int(card.max()) if n else 0
    if kmax > n - 1:
        raise ValueError(f"a unit has {kmax} neighbours but only {n - 1} other units exist")
    ids = draw_ids(n, min(kmax + 1, n), permutations, rng)
    # padded weights: row i holds its k_i weights in CSR order, zeros after
    wpad = np.zeros((n, kmax))
    if kmax:
        col = np.arange(offdiag.nnz) - np.repeat(offdiag.indptr[:-1], card)
        wpad[np.repeat(np.arange(n), card), col] = offdiag.data
    yd = values[ids]  # (P, kmax + 1) drawn values
    ya = yd[:, :kmax]

    # rows where unit u drew itself within its first k_u draws: shift the tail left
    pos = np.arange(kmax)[None, :]
    first = ids[:, :kmax]
    hit_p, hit_m = np.nonzero(pos < card[first])
    hit_u = first[hit_p, hit_m]
    if hit_u.size:
        diff = np.diff(yd, axis=1)[:, :kmax]  # Y[:, j+1] - Y[:, j]
        tail = pos >= hit_m[:, None]
        corr = (wpad[hit_u] * diff[hit_p] * tail).sum(axis=1)
    else:
        corr = np.empty(0)

    larger = np.zeros(n)
    mean = np.zeros(n)
    sd = np.zeros(n)
    sim = np.empty((n, permutations)) if keep else None
    block = max(1, _BLOCK_CELLS // max(permutations, 1))
    order = np.argsort(hit_u, kind="stable")
    hit_u_s, hit_p_s, corr_s = hit_u[order], hit_p[order], corr[order]
    for start in range(0, n, block):
        stop = min(n, start + block)
        lag = ya @ wpad[start:stop].T  # (P, b)
        lo, hi = np.searchsorted(hit_u_s, [start, stop])
        if hi > lo:
            np.add.at(lag, (hit_p_s[lo:hi], hit_u_s[lo:hi] - start), corr_s[lo:hi])
        stat = lag * mult[start:stop] + add[start:stop]
        obs = observed[start:stop]
        tol = _TIE_RTOL * np.maximum(np.abs(obs), 1e-300)
        larger[start:stop] = (stat >= obs - tol).sum(axis=0)
        mean[start:stop] = stat.mean(axis=0)
        sd[start:stop] = stat.std(axis=0)
        if keep:
            sim[start:stop] = stat.T
    low = (permutations - larger) < larger
    larger[low] = permutations - larger[low]
    p_sim = (larger + 1.0) / (permutations + 1.0)
    # islands, and units whose every simulation equals one value (e.g. a neighbourhood
    # that covers all other units), cannot be tested
    p_sim[(card == 0) | (sd == 0)] = np.nan
    out = {"p_sim": p_sim, "EG_sim": mean, "seG_sim": sd}
    if keep:
        out["sim"] = sim
    return out


INFERENCE = ("normal", "permutation")
"""How local statistics are tested: normal-theory p-values of the analytical z-scores
(ArcGIS's Hot Spot Analysis default) or conditional-permutation pseudo p-values."""


def check_permutations(permutations, inference="permutation"):
    """``permutations`` as an int: 0 (none) or >= 99; permutation inference needs >= 99."""
    if isinstance(permutations, bool) or not isinstance(permutations, (int, np.integer)):
        raise TypeError(f"permutations must be an int, got {permutations!r}")
    if permutations == 0 and inference != "permutation":
        return 0
    if permutations < 99:
        raise ValueError(
            f"permutations must be >= 99 for a usable pseudo p-value, got {permutations}"
            + ("" if inference == "permutation" else " (or 0 for none)")
        )
    return int(permutations)


def check_inference(inference):
    if inference not in INFERENCE:
        raise ValueError(f"inference must be one of {INFERENCE}, got {inference!r}")
    return inference


def no_simulation(n):
    """What :func:`conditional_randomisation` returns when no permutations are run: all NaN."""
    nan = np.full(n, np.nan)
    return {"p_sim": nan, "EG_sim": nan.copy(), "seG_sim": nan.copy()}


def check_alpha(alpha):
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)
