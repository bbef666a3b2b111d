r"""The expected PEI* of a long-run-rate oracle: a yardstick for a forecast, not an upper bound.

PEI* compares a ranking with perfect hindsight, which no forecast can have: even a
forecaster that knew every place's true rate would miss, because next month's events
are a random draw around those rates. This module estimates what such a forecaster
would score (:data:`LABEL`), with its simulation interval, so a backtest can say
"0.70 against 0.72 expected of the oracle" instead of "0.70 of 1".

It is not a ceiling any forecast must stay under: in a given month a forecast is
scored on one draw, and draws above the oracle's mean are common (its interval is
wide on few events); a forecast that follows a place's real change beats it too.
Backtests report how often methods score above it (``models.backtest.ceiling_exceedance``).

Model (stated so it can be checked):

* **True rates.** Each unit's long-run monthly rate is its mean count over the
  months given, shrunk toward the mean of all units by a gamma-Poisson empirical
  Bayes rule (method of moments, Marshall 1991): with raw means ``r_u`` over ``T``
  months, mean ``m`` and variance ``s²`` across units, the between-unit variance
  is ``v = s² - m / T`` and ``lambda_u = m + w (r_u - m)`` with
  ``w = v / (v + m / T)`` (``w = 0`` when ``v <= 0``). The shrinkage only removes
  the Poisson noise of the raw means; it keeps their order.
* **Overdispersion.** Counts of one place vary from period to period more than
  Poisson. The negative-binomial ``alpha`` (``Var = mu + alpha mu²``) is measured by
  moments on non-overlapping windows of ``horizon`` months, around each unit's raw
  mean times the window's borough total (so a borough-wide busy month, which moves
  every place together and does not change a ranking, is not counted as noise),
  with the ``K / (K - 1)`` correction for means estimated from the same ``K`` windows.
* **Simulation.** Each draw gives every unit ``y_u ~ Poisson(lambda_u h g_u)`` with
  ``g_u ~ Gamma(1 / alpha, alpha)`` independently (negative binomial; Poisson when
  ``alpha = 0``). The oracle ranks by ``lambda_u`` (the slices of
  :func:`models.evaluation.ranking_slices`) and is scored with exact ``n*``. The ceiling is the
  mean over draws, with the 2.5% and 97.5% quantiles.

Small slices of unequal units. An area slice is a prefix of the ranking that stops at the
first unit that would overflow the budget, while ``n*`` may pack any units into the whole
budget. At 1% of a borough's LSOAs the slice holds four or five units, so the oracle's
expected PEI* there measures how well its densest units happen to pack the budget as much
as what it knows: on Barnet's LSOAs its 1% slice covers 0.73% of the area and holds a
long-run rate of 29.1 events a month, where the best whole-unit selection within 1% holds
36.1. Where the oracle's second unit is a large one, its slice is one small unit and its
expected PEI* collapses, while a forecast ordered differently fills the budget and scores
far above it. ``oracle_area_share`` in each row says how much of the budget the oracle's
slice covers; read the 1% figures on areas with it.

What it is not: a bound on forecasters that know more than each place's long-run
rate (a real change in a place, known ahead, could beat it), and, like any
estimate of true rates from a few years of data, it is approximate (a few
hundredths). Seeds and draws are explicit and written into the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.months import month, panel_months, shift
from models.evaluation import n_star, ranking_slices

N_SIMS = 200
"""Default number of simulated periods."""
LABEL = "expected PEI* of a long-run-rate oracle"
"""What :func:`oracle_ceiling` estimates, in the words every output uses."""


def _months_of(panel: pd.DataFrame, months) -> pd.DataFrame:
    cols = panel_months(panel)
    if months is None:
        return panel
    want = pd.DatetimeIndex([month(m) for m in months])
    missing = want.difference(cols)
    if len(missing):
        raise ValueError(f"ceiling: the panel has no month {missing[0]:%Y-%m} ({len(missing)} months missing)")
    return panel.loc[:, cols.isin(want)]


def long_run_rates(panel: pd.DataFrame, months: Sequence | None = None) -> tuple[pd.Series, dict]:
    """Empirical-Bayes smoothed long-run monthly rate per unit (see the module notes).

    Returns
    -------
    rates : Series indexed like ``panel``
    info : dict with ``n_months``, ``mean`` (m), ``between_var`` (v) and ``weight`` (w)

    Examples
    --------
    >>> panel = pd.DataFrame([[4.0, 6.0], [0.0, 0.0]], index=["a", "b"],
    ...                      columns=pd.date_range("2016-01-01", periods=2, freq="MS"))
    >>> rates, info = long_run_rates(panel)
    >>> round(info["weight"], 3), rates.round(3).tolist()  # m = 2.5, s2 = 6.25, v = 5.0
    (0.8, [4.5, 0.5])
    """
    p = _months_of(panel, months)
    T = p.shape[1]
    if T == 0:
        raise ValueError("ceiling: no months to estimate long-run rates from")
    raw = p.mean(axis=1).astype(float)
    m = float(raw.mean())
    v = float(raw.var(ddof=0)) - m / T
    w = v / (v + m / T) if v > 0 and m > 0 else 0.0
    rates = m + w * (raw - m)
    return rates, {"n_months": int(T), "mean": m, "between_var": max(v, 0.0), "weight": float(w)}


def window_sums(panel: pd.DataFrame, horizon: int, months: Sequence | None = None) -> pd.DataFrame:
    """Units x windows: sums over consecutive, non-overlapping runs of ``horizon`` months.

    Windows are taken from the first month on; a window with a month missing from
    the panel is skipped (it would hold a false zero).
    """
    p = _months_of(panel, months)
    cols = panel_months(p)
    have = set(cols)
    out = {}
    start = cols.min() if len(cols) else None
    while start is not None and start <= cols.max():
        span = [shift(start, k) for k in range(int(horizon))]
        if all(s in have for s in span):
            out[start] = p.loc[:, cols.isin(span)].sum(axis=1)
            start = shift(start, int(horizon))
        else:
            later = cols[cols > start]
            start = later.min() if len(later) else None
    return pd.DataFrame(out, index=p.index)


def overdispersion(panel: pd.DataFrame, horizon: int = 1, months: Sequence | None = None) -> float:
    """Negative-binomial ``alpha`` of ``horizon``-month counts per unit (see the module notes)."""
    S = window_sums(panel, horizon, months).to_numpy(dtype=float)
    K = S.shape[1]
    if K < 2:
        raise ValueError(f"ceiling: overdispersion needs at least 2 windows of {horizon} months, got {K}")
    share = S.sum(axis=1) / max(S.sum(), 1e-12)
    E = share[:, None] * S.sum(axis=0)[None, :]
    denom = float((E**2).sum())
    if denom <= 0:
        return 0.0
    return max(0.0, float(((S - E) ** 2 * K / (K - 1) - S).sum()) / denom)


def oracle_ceiling(
    panel: pd.DataFrame,
    areas: pd.Series,
    horizon: int = 1,
    *,
    months: Sequence | None = None,
    coverages: Sequence[float] = (0.01, 0.05, 0.10),
    top_n: Sequence[int] = (10, 20),
    n_sims: int = N_SIMS,
    seed: int = 0,
    alpha: float | None = None,
) -> dict:
    """PEI* and hit rate an oracle knowing every unit's long-run rate would score (see the module notes).

    Parameters
    ----------
    panel : DataFrame, units x months
        The target's counts (``FeatureBuilder.panel``).
    areas : Series indexed by unit_id
        Unit areas, m².
    horizon : int
        Months in the forecast period.
    months : sequence, optional
        Months to estimate rates and overdispersion from (default: every column).
    coverages, top_n
        The slices, as in :func:`models.evaluation.evaluate_ranking`.
    n_sims, seed
        Simulated periods and the random seed.
    alpha : float, optional
        Overdispersion to simulate with; default measured by :func:`overdispersion`.

    Returns
    -------
    dict: ``label`` (:data:`LABEL`), ``rows`` (one per slice: ``slice``, ``oracle_area_share`` (the
    share of the area the oracle's slice covers: an area slice stops at the first unit that would
    overflow it, see :mod:`models.evaluation`), ``ceiling_pei``, ``ceiling_pei_lo``,
    ``ceiling_pei_hi``, ``ceiling_hit_rate``, ``ceiling_hit_rate_lo``,
    ``ceiling_hit_rate_hi``), ``alpha``, ``rates`` (the shrinkage info),
    ``events_per_period``, ``horizon``, ``n_sims``, ``seed``, ``months`` (first, last, n).
    """
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a whole number of months >= 1, got {horizon!r}")
    if int(n_sims) < 1:
        raise ValueError(f"n_sims must be >= 1, got {n_sims!r}")
    p = _months_of(panel, months)
    p = p.set_axis(p.index.astype(str))
    rates, info = long_run_rates(p)
    a = float(overdispersion(p, horizon) if alpha is None else alpha)
    if a < 0:
        raise ValueError(f"alpha must be >= 0, got {a!r}")
    areas = areas.set_axis(areas.index.astype(str)).reindex(p.index)
    mu = rates.to_numpy() * int(horizon)
    rng = np.random.default_rng(seed)
    slices = ranking_slices(rates, areas, coverages, top_n)  # the oracle's ranking is the same every draw
    pos = [p.index.get_indexer(sl["units"]) for sl in slices]
    sims = {sl["slice"]: {"pei": [], "hit_rate": []} for sl in slices}
    for _ in range(int(n_sims)):
        lam = mu * rng.gamma(1.0 / a, a, size=len(mu)) if a > 0 else mu
        y = rng.poisson(lam).astype(float)
        ys = pd.Series(y, index=p.index)
        N = y.sum()
        for sl, idx in zip(slices, pos, strict=True):
            n = y[idx].sum()
            best = n_star(ys, sl["units"], areas, sl["budget"])
            sims[sl["slice"]]["pei"].append(n / best if best > 0 else np.nan)
            sims[sl["slice"]]["hit_rate"].append(n / N if N > 0 else np.nan)
    rows = []
    shares = {sl["slice"]: float(areas.loc[sl["units"]].sum() / areas.sum()) for sl in slices}
    for label, g in sims.items():
        row = {"slice": label, "oracle_area_share": shares[label]}
        for m in ("pei", "hit_rate"):
            v = np.asarray(g[m], dtype=float)
            v = v[np.isfinite(v)]
            row[f"ceiling_{m}"] = float(v.mean()) if len(v) else float("nan")
            row[f"ceiling_{m}_lo"] = float(np.quantile(v, 0.025)) if len(v) else float("nan")
            row[f"ceiling_{m}_hi"] = float(np.quantile(v, 0.975)) if len(v) else float("nan")
        rows.append(row)
    cols = panel_months(p)
    return {
        "label": LABEL, "rows": rows, "alpha": a, "rates": info, "events_per_period": float(mu.sum()),
        "horizon": int(horizon), "n_sims": int(n_sims), "seed": int(seed),
        "months": [f"{cols.min():%Y-%m}", f"{cols.max():%Y-%m}", int(len(cols))],
    }
