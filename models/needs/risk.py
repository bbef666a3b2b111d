"""Risk and protective factors: an area-level model of serious-violence rates.

Each area (ward or LSOA) contributes its serious-violence count over a 12-month window and its
residents. The model is a negative binomial regression of the count with the residents as
exposure (``log E[y] = log(residents) + b0 + sum_k b_k x_k``), fitted by maximum likelihood
(statsmodels ``NegativeBinomial``, NB2); when it does not converge, a Poisson GLM with robust
(HC0) standard errors. Each factor enters standardised, on the scale the GLM uses
(:func:`models.glm.is_log_feature`: counts, densities and distances as ``log(1 + x)``, scores
and shares as they are), and is reported as a rate ratio with its interval: per doubling of
``1 + x`` for log factors, per one standard deviation for the others.

These are associations between places, not causes: a factor with a rate ratio above 1 marks
areas where recorded serious violence is higher, other factors held equal; it does not say
that changing it would change violence, nor anything about any person (ecological fallacy).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.glm import is_log_feature

RISK_FACTORS = {
    "imd_score": "Deprivation (IMD 2019 score)",
    "share_10_24": "Share of residents aged 10-24",
    "pop_density": "Residents per km²",
    "foot_decay": "Station footfall nearby (distance-weighted)",
    "sec_school_prox": "Proximity to a secondary school",
    "excl_rate": "School suspensions and exclusions nearby (per 100 pupils)",
    "light_density": "Street lights per km²",
    "park_share": "Share of the area that is park or open space",
    "parks_500": "Parks and open spaces within 500 m",
    "bus_stop_density": "Bus stops per km² (a footfall proxy)",
}
"""Factors the model uses when the store has them, with the words the pack prints."""
FEW_AREAS_FACTORS = ("imd_score", "share_10_24", "foot_decay")
"""With few areas (under :data:`MIN_AREAS_FULL`), only these: about one factor per eight areas."""
MIN_AREAS_FULL = 60
DOMAINS = {
    "income_score": "Income", "employment_score": "Employment", "education_score": "Education, skills and training",
    "health_score": "Health and disability", "housing_score": "Barriers to housing and services",
    "living_env_score": "Living environment", "idaci_score": "Income deprivation affecting children",
}
"""IoD 2019 domains tried one at a time in place of the IMD score (the crime domain is left out:
it is built from recorded crime, the outcome itself)."""
PROTECTIVE = ("park_share", "parks_500", "light_density")
"""Assets usually discussed as protective (guardianship, places for young people)."""


def choose_factors(X: pd.DataFrame, n_areas: int) -> list[str]:
    """The factors to use: those in :data:`RISK_FACTORS` present and varying (a shorter list for few areas)."""
    wanted = RISK_FACTORS if n_areas >= MIN_AREAS_FULL else {k: RISK_FACTORS[k] for k in FEW_AREAS_FACTORS}
    out = []
    for f in wanted:
        if f in X and X[f].notna().mean() >= 0.8 and X[f].nunique(dropna=True) > 2:
            out.append(f)
    if "park_share" in out and "parks_500" in out:
        out.remove("parks_500")
    return out


def _design(X: pd.DataFrame, factors: Sequence[str]) -> tuple[np.ndarray, dict]:
    cols, info = [], {}
    for f in factors:
        v = X[f].astype(float)
        v = v.fillna(v.median())
        # bounded indices (proximity 0..1) read better per SD than per doubling of 1 + value
        log = is_log_feature(f) and v.min() >= 0 and v.max() > 1
        t = np.log1p(v) if log else v
        sd = float(t.std(ddof=0))
        cols.append(((t - t.mean()) / (sd if sd > 0 else 1.0)).to_numpy())
        info[f] = {"log": log, "scale": sd if sd > 0 else 1.0, "raw_sd": float(v.std(ddof=0))}
    return np.column_stack(cols) if cols else np.zeros((len(X), 0)), info


def fit_rate_model(y, population, X: pd.DataFrame, factors: Sequence[str], level: float = 0.95) -> dict:
    """Fit the area model and return its rate ratios and fit statistics.

    Parameters
    ----------
    y : array (n,)
        Serious-violence count per area over the window.
    population : array (n,)
        Residents per area; areas with none are left out.
    X : DataFrame (n rows)
        Candidate factors per area.
    factors : sequence of str
        Columns of ``X`` to use.

    Returns
    -------
    dict with ``table`` (DataFrame: ``factor``, ``label``, ``per``, ``rate_ratio``, ``lo``, ``hi``,
    ``p_value``, ``direction``), ``family``, ``n``, ``dispersion``, ``pseudo_r2``, ``residuals``
    (Pearson, per area kept) and ``kept`` (boolean mask over the input areas).
    """
    import statsmodels.api as sm
    from scipy.stats import norm

    y = np.asarray(y, dtype=float)
    pop = np.asarray(population, dtype=float)
    kept = (pop > 0) & np.isfinite(y)
    Z, info = _design(X.loc[kept], factors)
    exog = sm.add_constant(Z, has_constant="add")
    offset = np.log(pop[kept])
    yk = y[kept]
    family, alpha = "negative binomial (NB2)", np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = sm.NegativeBinomial(yk, exog, offset=offset).fit(disp=0, maxiter=200)
            ok = bool(res.mle_retvals.get("converged", False)) and np.all(np.isfinite(res.bse))
            params, bse = np.asarray(res.params)[:-1], np.asarray(res.bse)[:-1]
            alpha = float(np.asarray(res.params)[-1])
            mu = np.exp(exog @ params + offset)
            llf, llnull = float(res.llf), float(res.llnull)
        except (np.linalg.LinAlgError, ValueError):
            ok = False
        if not ok:
            res = sm.GLM(yk, exog, family=sm.families.Poisson(), offset=offset).fit(cov_type="HC0")
            family = "Poisson with robust (HC0) errors"
            params, bse = np.asarray(res.params), np.asarray(res.bse)
            mu = res.fittedvalues
            llf, llnull = float(res.llf), float(res.llnull)
    z = norm.ppf(0.5 + level / 2)
    rows = []
    for k, f in enumerate(factors, start=1):
        per_unit = np.log(2.0) / info[f]["scale"] if info[f]["log"] else 1.0
        b, h = params[k] * per_unit, z * bse[k] * per_unit
        p = float(2 * norm.sf(abs(params[k] / bse[k]))) if bse[k] > 0 else np.nan
        lo, hi = np.exp(b - h), np.exp(b + h)
        rows.append({
            "factor": f, "label": RISK_FACTORS.get(f, DOMAINS.get(f, f)),
            "per": "doubling of 1 + value" if info[f]["log"] else f"+1 SD ({info[f]['raw_sd']:.3g})",
            "rate_ratio": float(np.exp(b)), "lo": float(lo), "hi": float(hi), "p_value": p,
            "direction": "higher" if lo > 1 else "lower" if hi < 1 else "unclear",
        })
    var = mu + (alpha if np.isfinite(alpha) else 0.0) * mu**2
    resid = (yk - mu) / np.sqrt(np.maximum(var, 1e-12))
    return {"table": pd.DataFrame(rows), "family": family, "n": int(kept.sum()), "dispersion": alpha,
            "pseudo_r2": float(1 - llf / llnull) if llnull else np.nan, "residuals": resid, "kept": kept,
            "level": level}


def domain_table(y, population, X: pd.DataFrame, factors: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """Each deprivation domain in place of the IMD score, one model per domain (domains are collinear)."""
    base = [f for f in factors if f != "imd_score"]
    rows = []
    for d, name in DOMAINS.items():
        if d not in X or X[d].nunique(dropna=True) <= 2:
            continue
        fit = fit_rate_model(y, population, X, [d, *base], level)
        row = fit["table"].iloc[0].to_dict()
        row.update({"label": f"{name} domain", "family": fit["family"]})
        rows.append(row)
    return pd.DataFrame(rows)


def morans_i(values, graph, permutations: int = 999, seed: int = 0) -> tuple[float, float]:
    """Global Moran's I of ``values`` on a row-standardised ``graph`` and its permutation pseudo p-value.

    Used on the model's residuals: a clearly positive I means neighbouring areas share
    unexplained violence (a factor the model lacks, or spill-over), and intervals are too narrow.
    """
    W = graph.transform("r").sparse.tocsr()
    z = np.asarray(values, dtype=float)
    z = z - z.mean()
    den = float(z @ z)
    if den == 0:
        return float("nan"), float("nan")
    n = len(z)
    obs = n / W.sum() * float(z @ (W @ z)) / den
    rng = np.random.default_rng(seed)
    sims = np.array([float((p := rng.permutation(z)) @ (W @ p)) for _ in range(permutations)]) * n / W.sum() / den
    larger = int((sims >= obs).sum()) if obs >= sims.mean() else int((sims <= obs).sum())
    return float(obs), (larger + 1) / (permutations + 1)
