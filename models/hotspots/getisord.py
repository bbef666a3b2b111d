"""Getis-Ord local Gi* hot spot statistic: normal-theory or permutation inference, FDR, ArcGIS-style classes."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse, stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._crand import (
    as_weights_matrix,
    check_alpha,
    check_inference,
    check_not_constant,
    check_permutations,
    check_values,
    conditional_randomisation,
    no_simulation,
    transform_rows,
)
from .fdr import benjamini_hochberg

#: Gi_Bin -> class label, as ArcGIS Pro's Hot Spot Analysis writes them.
GI_CLASSES = {
    3: "Hot Spot - 99% Confidence",
    2: "Hot Spot - 95% Confidence",
    1: "Hot Spot - 90% Confidence",
    0: "Not Significant",
    -1: "Cold Spot - 90% Confidence",
    -2: "Cold Spot - 95% Confidence",
    -3: "Cold Spot - 99% Confidence",
}


def gi_weights(graph, n, star=True, transform="R"):
    """Weights matrix for Gi/Gi*, built exactly as esda's ``G_Local`` builds it.

    With ``star=True`` and no self-weights in ``graph``, each unit gets a self-weight
    equal to the largest weight in its row (1 for binary weights; 1 for an island),
    then the ``transform`` is applied: ``"R"`` divides each row by its sum (so a unit
    with ``k`` binary neighbours weighs itself and each neighbour ``1 / (k + 1)``);
    ``"B"`` sets every weight to 1. With ``star=False`` the diagonal is cleared.
    """
    mat, _ = as_weights_matrix(graph, n)
    diag = mat.diagonal()
    mat = mat.tolil()
    if not star:
        mat.setdiag(0.0)
    elif (diag == 0).all():
        rowmax = np.asarray(mat.tocsr().max(axis=1).todense()).ravel()
        mat.setdiag(np.where(rowmax > 0, rowmax, 1.0))
    mat = sparse.csr_matrix(mat)
    mat.eliminate_zeros()
    return transform_rows(mat, transform)


def gi_bins(z, p, alpha, levels=(0.01, 0.05, 0.10)):
    """ArcGIS-style ``Gi_Bin`` from a direction and a (two-sided) significance value.

    ``|bin| = 3`` if ``p <= 0.01``, ``2`` if ``p <= 0.05``, ``1`` if ``p <= 0.10``;
    the sign is the sign of ``z``; units with ``p > alpha`` (or NaN) get 0.
    """
    p = np.asarray(p, dtype=float)
    with np.errstate(invalid="ignore"):
        mag = np.select([p <= levels[0], p <= levels[1], p <= levels[2]], [3, 2, 1], 0)
        mag = np.where(p <= alpha, mag, 0)
    sign = np.sign(np.nan_to_num(np.asarray(z, dtype=float), nan=0.0))
    return (sign * mag).astype(int)


class GetisOrdGStar(BaseEstimator):
    """Local Getis-Ord Gi* with normal-theory or conditional-permutation p-values and BH FDR.

    z-scores are identical to ``esda.G_Local(y, w, transform=transform, star=star)``
    (and, with binary weights, to ArcGIS's Hot Spot Analysis ``GiZScore``). By default
    the significance of each unit is the two-sided normal-theory p-value of that z, as
    ArcGIS reports it; ``inference="permutation"`` uses conditional-permutation pseudo
    p-values instead (our own vectorised numpy implementation, no numba compilation,
    statistically equivalent to esda's).

    Parameters
    ----------
    permutations : int, default 999
        Conditional permutations per unit (>= 99, or 0 to run none; permutation
        inference needs them). They are run whenever > 0, so ``p_sim_`` is there to
        compare with even under normal inference.
    seed : int or None, default 0
        Seed of the permutation draws; same seed, same p-values.
    star : bool, default True
        Include the unit itself in its neighbourhood (Gi*); False gives Gi.
    alpha : float, default 0.05
        Significance level for calling a hot or cold spot (after FDR if ``fdr``).
    fdr : bool, default True
        Control the false discovery rate with Benjamini-Hochberg over all non-island
        units before assigning classes.
    transform : {"B", "R"}, default "B"
        ``"B"``: binary weights, self-weight 1 (ArcGIS's Hot Spot Analysis on a fixed
        distance band: its ``GiZScore``). ``"R"``: esda's default, row-standardised
        (self-weight ``1/(k+1)`` with ``k`` binary neighbours); esda's variance formula
        assumes binary weights, so its row-standardised z is smaller (e.g. 2.83 instead
        of 8.94 for a 3x3 block of tens among ones on a queen lattice) and normal-theory
        p-values on it are not ArcGIS's. The permutation p-values, and hence the classes
        under permutation inference, do not depend on this choice when a unit's
        neighbour weights are all equal.
    inference : {"normal", "permutation"}, default "normal"
        Which p-value makes ``p_value_`` (and so ``q_value_`` and the classes):
        ``"normal"``, ``2 * (1 - Phi(|Zs_|))`` (ArcGIS's default); ``"permutation"``,
        ``min(1, 2 * p_sim_)``.

    Attributes
    ----------
    Gs_ : ndarray (n,)
        Gi* statistic ``sum_j w_ij y_j / sum_j y_j`` (esda ``Gs``).
    EGs_, VGs_ : ndarray (n,)
        Expectation and variance of ``Gs_`` under the normality assumption.
    Zs_ : ndarray (n,)
        ``(Gs_ - EGs_) / sqrt(VGs_)``, equal to esda's ``Zs``.
    p_norm_ : ndarray (n,)
        One-sided normal p-value of ``|Zs_|`` (esda ``p_norm``).
    n_neighbours_ : ndarray of int (n,)
        Neighbours of each unit, itself not counted.
    p_sim_ : ndarray (n,)
        Directed (one-tailed towards the observed side) pseudo p-value, esda's rule
        ``(min(#sim >= G, #sim < G) + 1) / (permutations + 1)``; NaN for islands and
        for units whose simulations are all equal (e.g. a neighbourhood covering
        every unit, where ``Zs_`` is NaN too, as in esda). All NaN with ``permutations=0``.
    EG_sim_, seG_sim_, VG_sim_, z_sim_, p_z_sim_ : ndarray (n,)
        Moments of the simulated statistics and the normal approximation from them.
    p_value_ : ndarray (n,)
        Two-sided p-value of the chosen ``inference``: a unit is tested for being hot
        *or* cold, as ArcGIS's confidence levels are two-sided. NaN for islands and
        where ``Zs_`` is NaN.
    q_value_ : ndarray (n,)
        Benjamini-Hochberg q-values of ``p_value_`` (NaN for islands).
    Gi_Bin_ : ndarray of int (n,)
        -3..3 as ArcGIS writes it. Rule: let ``s = q_value_`` if ``fdr`` else
        ``p_value_``. A unit is significant if ``s <= alpha``; a significant unit gets
        ``|Gi_Bin_| = 3`` if ``s <= 0.01``, 2 if ``s <= 0.05``, 1 if ``s <= 0.10``, with
        the sign of ``Zs_``; everything else is 0. So with ``fdr=True`` only
        FDR-surviving units are non-zero, and with ``alpha=0.05`` the 90% classes stay
        empty (set ``alpha=0.10`` for ArcGIS's three levels). Under permutation
        inference with 999 permutations the smallest ``p_value_`` is 0.002, so reaching
        the 99% class after FDR over many units may need more permutations.
    gi_class_ : ndarray of str (n,)
        Label of ``Gi_Bin_`` (see ``GI_CLASSES``).
    islands_ : ndarray of int
        Positions of units without neighbours: their ``Zs_`` follows esda (it reduces
        to the unit's own standardised value), but they are not tested (``p_sim_`` NaN,
        ``Gi_Bin_`` 0).
    n_ : int
        Number of units.

    Examples
    --------
    >>> from libpysal.graph import Graph
    >>> from libpysal.weights import lat2W
    >>> g = Graph.from_W(lat2W(3, 3, rook=False))
    >>> est = GetisOrdGStar(seed=1).fit([0, 0, 0, 0, 9, 0, 0, 0, 0], g)
    >>> round(float(est.Zs_[0]), 3)  # corner: (9 - 4) / sqrt(20), by hand
    1.118
    """

    def __init__(self, permutations=999, seed=0, star=True, alpha=0.05, fdr=True, transform="B",
                 inference="normal"):
        self.permutations = permutations
        self.seed = seed
        self.star = star
        self.alpha = alpha
        self.fdr = fdr
        self.transform = transform
        self.inference = inference

    def fit(self, y, graph):
        """Compute Gi*, its permutation p-values, q-values and classes.

        Parameters
        ----------
        y : array-like (n,)
            Non-negative values (counts, harm, rates) in the order of ``graph``'s units.
        graph : libpysal.graph.Graph or libpysal.weights.W
            Spatial weights over the same ``n`` units.

        Returns
        -------
        self
        """
        inference = check_inference(self.inference)
        permutations = check_permutations(self.permutations, inference)
        alpha = check_alpha(self.alpha)
        y = check_values(y, nonnegative=True)
        check_not_constant(y)
        n = y.size
        wmat = gi_weights(graph, n, star=bool(self.star), transform=self.transform)
        self.n_ = n

        self_w = wmat.diagonal()
        offdiag = sparse.csr_matrix(wmat - sparse.diags(self_w))
        offdiag.eliminate_zeros()
        card = np.diff(offdiag.indptr)
        self.n_neighbours_ = card.astype(int)
        self.islands_ = np.flatnonzero(card == 0)
        if self.islands_.size:
            warnings.warn(
                f"{self.islands_.size} unit(s) have no neighbours (positions "
                f"{self.islands_[:10].tolist()}...); they are reported as 'Not Significant' "
                "with p_value = NaN",
                UserWarning,
                stacklevel=2,
            )

        # analytical moments, as esda.G_Local.calc
        remove_self = not self.star
        big_n = n - remove_self
        total = y.sum()
        denom = total - y * remove_self
        self.Gs_ = (wmat @ y) / denom
        mean = denom / big_n
        var = ((y**2).sum() - (y**2) * remove_self) / big_n - mean**2
        rowsum = np.asarray(wmat.sum(axis=1)).ravel()
        self.EGs_ = rowsum / big_n
        vgs = rowsum * (big_n - rowsum) / (big_n - 1) / big_n**2
        self.VGs_ = vgs * var / mean**2
        with np.errstate(divide="ignore", invalid="ignore"):
            self.Zs_ = (self.Gs_ - self.EGs_) / np.sqrt(self.VGs_)
        self.p_norm_ = stats.norm.sf(np.abs(self.Zs_))

        if permutations:
            sims = conditional_randomisation(
                y,
                offdiag,
                self.Gs_,
                mult=1.0 / denom,
                add=self_w * y / denom,
                permutations=permutations,
                seed=self.seed,
            )
        else:
            sims = no_simulation(n)
        self.p_sim_ = sims["p_sim"]
        self.EG_sim_ = sims["EG_sim"]
        self.seG_sim_ = sims["seG_sim"]
        self.VG_sim_ = self.seG_sim_**2
        with np.errstate(divide="ignore", invalid="ignore"):
            self.z_sim_ = (self.Gs_ - self.EG_sim_) / self.seG_sim_
        self.p_z_sim_ = stats.norm.sf(np.abs(self.z_sim_))

        if inference == "permutation":
            self.p_value_ = np.minimum(1.0, 2.0 * self.p_sim_)
        else:
            self.p_value_ = np.minimum(1.0, 2.0 * self.p_norm_)
            self.p_value_[card == 0] = np.nan  # islands are not tested
        _, self.q_value_ = benjamini_hochberg(self.p_value_, alpha)
        s = self.q_value_ if self.fdr else self.p_value_
        self.Gi_Bin_ = gi_bins(self.Zs_, s, alpha)
        self.gi_class_ = np.array([GI_CLASSES[b] for b in self.Gi_Bin_], dtype=object)
        return self

    def summary(self):
        """Counts of units per class, hottest first (a ``pandas.Series``)."""
        import pandas as pd

        check_is_fitted(self, "Gi_Bin_")
        counts = pd.Series(self.gi_class_).value_counts()
        return counts.reindex([GI_CLASSES[b] for b in range(3, -4, -1)], fill_value=0)
