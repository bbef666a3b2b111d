"""Local Moran's I (LISA) clusters and outliers, with a rate version for small populations."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse, stats
from sklearn.base import BaseEstimator

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

#: esda's quadrant codes (``geoda_quads=False``) and the labels we write.
QUADRANT_LABELS = {1: "High-High", 2: "Low-High", 3: "Low-Low", 4: "High-Low"}
NOT_SIGNIFICANT = "Not Significant"


def assuncao_reis_rates(events, population):
    """Empirical-Bayes standardised rates (Assuncao & Reis 1999), as esda's ``assuncao_rate``.

    ``z_i = (r_i - b) / sqrt(v_i)`` with raw rate ``r_i = e_i / p_i``, global rate
    ``b = sum e / sum p``, ``s2 = sum p_i (r_i - b)^2 / sum p``, ``a = s2 - b / mean(p)``
    and ``v_i = a + b / p_i`` (or ``b / p_i`` where that is negative). Small populations
    get a large ``v_i`` and so a rate pulled towards zero.
    """
    e = check_values(events, name="events")
    p = check_values(population, name="population")
    if e.size != p.size:
        raise ValueError(f"events has {e.size} units but population has {p.size}")
    if (p <= 0).any():
        i = int(np.flatnonzero(p <= 0)[0])
        raise ValueError(f"population must be > 0 for a rate; population[{i}] = {p[i]!r}")
    if (e < 0).any():
        i = int(np.flatnonzero(e < 0)[0])
        raise ValueError(f"events must be >= 0; events[{i}] = {e[i]!r}")
    r = e / p
    b = e.sum() / p.sum()
    s2 = (p * (r - b) ** 2).sum() / p.sum()
    a = s2 - b / (p.sum() / p.size)
    v = a + b / p
    v = np.where(v < 0, b / p, v)
    return (r - b) / np.sqrt(v)


class LocalMoran(BaseEstimator):
    """Local Moran's I with normal-theory or conditional-permutation p-values and BH FDR.

    ``Is_``, ``q_`` and the analytical moments ``EI_``, ``VI_`` equal esda's
    ``Moran_Local(y, w, transformation="r")`` (``EI``, ``VI``: total randomisation,
    Anselin 1995 in Sokal et al.'s 1998 form). By default a unit's significance is the
    two-sided normal-theory p-value of ``z_I_ = (Is_ - EI_) / sqrt(VI_)``, as ArcGIS's
    Cluster and Outlier Analysis reports without permutations; ``inference=
    "permutation"`` uses conditional-permutation pseudo p-values (our own numpy
    implementation, statistically equivalent to esda's).

    Parameters
    ----------
    permutations : int, default 999
        0 runs none (permutation inference needs >= 99).
    seed : int or None, default 0
    fdr : bool, default True
        Benjamini-Hochberg over all non-island units before labelling.
    alpha : float, default 0.05
    transform : {"R", "B"}, default "R"
    inference : {"normal", "permutation"}, default "normal"

    Attributes
    ----------
    z_ : ndarray (n,)
        Standardised values ``(y - mean) / std`` (population std, as esda).
    Is_ : ndarray (n,)
        Local Moran ``(n - 1) z_i sum_j w_ij z_j / sum_j z_j^2``.
    q_ : ndarray of int (n,)
        Quadrant as esda: 1 High-High, 2 Low-High, 3 Low-Low, 4 High-Low
        (``z_i > 0`` is High, spatial lag ``> 0`` is a High neighbourhood).
    EI_, VI_, z_I_ : ndarray (n,)
        Analytical expectation, variance and z-score of ``Is_`` (NaN z for islands).
    p_sim_ : ndarray (n,)
        esda's directed pseudo p-value; NaN for islands (all NaN with no permutations).
    EI_sim_, seI_sim_, z_sim_, p_z_sim_ : ndarray (n,)
    p_value_ : ndarray (n,)
        Two-sided p-value of the chosen inference: ``2 (1 - Phi(|z_I_|))`` or
        ``min(1, 2 p_sim_)``.
    q_value_ : ndarray (n,)
        BH q-values of ``p_value_``.
    significant_ : ndarray of bool (n,)
        ``q_value_ <= alpha`` if ``fdr`` else ``p_value_ <= alpha``. (GeoDa and ArcGIS
        compare the one-sided ``p_sim_`` without FDR, which calls more clusters.)
    labels_ : ndarray of str (n,)
        The quadrant label where significant, else "Not Significant".
    islands_ : ndarray of int
    """

    def __init__(self, permutations=999, seed=0, fdr=True, alpha=0.05, transform="R", inference="normal"):
        self.permutations = permutations
        self.seed = seed
        self.fdr = fdr
        self.alpha = alpha
        self.transform = transform
        self.inference = inference

    def fit(self, y, graph, population=None):
        """Fit on values ``y`` (or on event counts ``y`` and ``population`` for rates).

        Parameters
        ----------
        y : array-like (n,)
            Values, or event counts when ``population`` is given.
        graph : libpysal.graph.Graph or libpysal.weights.W
        population : array-like (n,), optional
            Population at risk; when given, ``y`` is replaced by the Assuncao-Reis
            empirical-Bayes standardised rate (esda ``Moran_Local_Rate``).

        Returns
        -------
        self
        """
        inference = check_inference(self.inference)
        permutations = check_permutations(self.permutations, inference)
        alpha = check_alpha(self.alpha)
        y = check_values(y)
        if population is not None:
            y = assuncao_reis_rates(y, population)
        check_not_constant(y)
        n = y.size
        mat, _ = as_weights_matrix(graph, n)
        wmat = transform_rows(mat, self.transform)
        self.n_ = n
        z = (y - y.mean()) / y.std()
        self.z_ = z
        den = (z * z).sum()
        lag = wmat @ z
        self.Is_ = (n - 1) * z * lag / den
        hi, lhi = z > 0, lag > 0
        self.q_ = np.select([hi & lhi, ~hi & lhi, ~hi & ~lhi], [1, 2, 3], 4).astype(int)

        self_w = wmat.diagonal()
        offdiag = sparse.csr_matrix(wmat - sparse.diags(self_w))
        offdiag.eliminate_zeros()
        self.islands_ = np.flatnonzero(np.diff(offdiag.indptr) == 0)
        if self.islands_.size:
            warnings.warn(
                f"{self.islands_.size} unit(s) have no neighbours (positions "
                f"{self.islands_[:10].tolist()}...); they are labelled 'Not Significant' "
                "with p_value = NaN",
                UserWarning,
                stacklevel=2,
            )
        # analytical moments under total randomisation, as esda.Moran_Local
        wi = np.asarray(wmat.sum(axis=1)).ravel()
        wi2 = np.asarray(wmat.multiply(wmat).sum(axis=1)).ravel()
        b2 = n * (z**4).sum() / den**2
        self.EI_ = -wi / (n - 1)
        self.VI_ = (wi2 * (n - b2) / (n - 1) + (wi**2 - wi2) * (2 * b2 - n) / ((n - 1) * (n - 2))
                    - self.EI_**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.z_I_ = (self.Is_ - self.EI_) / np.sqrt(self.VI_)
        self.z_I_[self.islands_] = np.nan

        scale = (n - 1) / den
        if permutations:
            sims = conditional_randomisation(
                z,
                offdiag,
                self.Is_,
                mult=z * scale,
                add=self_w * z * z * scale,
                permutations=permutations,
                seed=self.seed,
            )
        else:
            sims = no_simulation(n)
        self.p_sim_ = sims["p_sim"]
        self.EI_sim_ = sims["EG_sim"]
        self.seI_sim_ = sims["seG_sim"]
        with np.errstate(divide="ignore", invalid="ignore"):
            self.z_sim_ = (self.Is_ - self.EI_sim_) / self.seI_sim_
        self.p_z_sim_ = stats.norm.sf(np.abs(self.z_sim_))
        if inference == "permutation":
            self.p_value_ = np.minimum(1.0, 2.0 * self.p_sim_)
        else:
            self.p_value_ = 2.0 * stats.norm.sf(np.abs(self.z_I_))
        _, self.q_value_ = benjamini_hochberg(self.p_value_, alpha)
        s = self.q_value_ if self.fdr else self.p_value_
        with np.errstate(invalid="ignore"):
            self.significant_ = s <= alpha
        self.labels_ = np.where(
            self.significant_,
            np.array([QUADRANT_LABELS[k] for k in self.q_], dtype=object),
            NOT_SIGNIFICANT,
        ).astype(object)
        return self


class LocalMoranRate(LocalMoran):
    """Local Moran's I on Assuncao-Reis empirical-Bayes rates (esda ``Moran_Local_Rate``).

    ``fit(events, graph, population)``; see :class:`LocalMoran` for parameters and
    attributes.
    """

    def fit(self, y, graph, population=None):
        if population is None:
            raise ValueError("LocalMoranRate needs population (the population at risk per unit)")
        return super().fit(y, graph, population=population)
