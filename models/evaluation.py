r"""How good is a ranking of places? Hit rate, PAI, PEI* and RRI on a top slice.

A ranking is a score per unit (higher = riskier). The *top slice* is the set of
highest-ranked units covering a share of the study area (1%, 5%, 10%) or a fixed
number of places (top 10, top 20). With ``n`` of the ``N`` next-period events
falling in the slice, which covers area ``a`` of the total ``A``:

* hit rate ``n / N``
* PAI (Chainey, Tompson & Uhlig 2008) ``(n / N) / (a / A)``
* PEI* (Hunt 2016) ``n / n*`` where ``n*`` is the most events any selection of
  the same size could have caught with perfect hindsight (1.0 is the ceiling)
* RRI (Levine 2008) ``(n2 / n1) / (N2 / N1)``: events in the slice next period
  over events there in the previous period of the same length, normalised by the
  change in the total; about 1 when the hot spots hold their share.

Every measure can be count-weighted or harm-weighted (each event weighted by its
severity): pass harm-weighted actuals as ``harm``.

Rules (deterministic, documented once and used by every ranking in svrisk):

* **Order.** Units are ordered by score descending; equal scores are broken by
  the previous period's count descending (a place that had events outranks an
  equal-scored one that had none), then by ``unit_id`` ascending.
  :func:`rank_order` implements it; :mod:`models.ranking` uses the same function.
* **Area slice.** For a share of the *area*, units are ordered by score per unit
  area (expected events per m², same tie rule): that is what fills an area budget
  best, and on a regular grid it is the score order itself (clipped edge cells
  aside). Units are taken in that order while the cumulative area stays
  within ``coverage * A``; the first unit that would overflow the budget ends the
  slice (units are never split, and the slice is always a prefix of the ranking,
  as a tasking list would be). If even the top unit is larger than the budget the
  slice is that unit alone, so every slice holds at least one place. PAI uses the
  area actually selected, ``a``, not the nominal budget. (open_cp's ``top_slice``
  splits the last grid cell instead; we do not, because a place cannot be
  half-patrolled and LSOAs are far from equal in size.)
* **n\*.** For an area slice, ``n*`` is the most events any set of units of total
  area at most the *nominal* budget ``coverage * A`` can hold, the same denominator
  for every method (a slice that stops short of the budget because the next unit
  would overflow it is not given a smaller target). It is exact: on equal-area
  units the sum of the ``k = floor(budget / unit area)`` largest counts; on unequal
  units a 0/1 knapsack solved exactly, by dynamic programming over the (integer)
  event totals, or by integer programming (``scipy.optimize.milp``, HiGHS) when the
  values are not whole numbers. Only when the top unit alone is larger than the
  budget (the slice is then that unit) is ``n*`` taken at the slice's own area.
  The slice's achieved share of the area is reported beside it (``area_share``).
  For a top-N slice the resource is places, not area: ``n*`` is the sum of the
  ``N`` largest counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DP_MAX_CELLS = 50_000_000
"""Largest knapsack (units x summed value) solved by dynamic programming; larger ones go to milp."""
_AREA_RTOL = 1e-9

MEASURES = ("hit_rate", "pai", "pei", "rri")


def _as_series(values, index: pd.Index, name: str) -> pd.Series:
    if isinstance(values, pd.Series) and values.index.equals(index):
        out = values.set_axis(index)  # already aligned (a backtest passes every series on one index)
    elif isinstance(values, pd.Series):
        missing = index.difference(values.index)
        if len(missing):
            raise ValueError(
                f"{name}: no value for unit_id {missing[0]!r} ({len(missing)} units missing)"
            )
        out = values.reindex(index)
    else:
        arr = np.asarray(values, dtype=float)
        if arr.shape != (len(index),):
            raise ValueError(f"{name}: expected {len(index)} values, got shape {arr.shape}")
        out = pd.Series(arr, index=index)
    out = pd.to_numeric(out, errors="raise").astype(float)
    bad = ~np.isfinite(out.to_numpy())
    if bad.any():
        raise ValueError(
            f"{name}: value {out[bad].iloc[0]!r} at unit_id {out.index[bad][0]!r} is not finite"
        )
    return out


def rank_order(
    scores: pd.Series, previous: pd.Series | None = None
) -> pd.Index:
    """Unit ids from riskiest to least risky, ties broken by the documented rule.

    Parameters
    ----------
    scores : Series indexed by unit_id
        Higher is riskier.
    previous : Series indexed by unit_id, optional
        The previous period's counts, the first tie-breaker (higher first).

    Returns
    -------
    Index of unit_id: score descending, then previous descending, then unit_id
    ascending.

    Examples
    --------
    >>> s = pd.Series({"b": 2.0, "a": 2.0, "c": 5.0})
    >>> list(rank_order(s, pd.Series({"a": 0, "b": 1, "c": 0})))
    ['c', 'b', 'a']
    """
    index = scores.index
    prev = (
        np.zeros(len(index))
        if previous is None
        else _as_series(previous, index, "previous").to_numpy()
    )
    s = _as_series(scores, index, "scores").to_numpy()
    return index[_order(s, prev, index)]


def _order(s: np.ndarray, prev: np.ndarray, index: pd.Index) -> np.ndarray:
    """Positions from riskiest to least risky: ``s`` descending, then ``prev`` descending, then unit_id."""
    ids = np.asarray(index.astype(str))
    # np.lexsort sorts by the last key first; negate to get descending.
    return np.lexsort((ids, -prev, -s))


def top_slice(
    scores: pd.Series,
    areas: pd.Series,
    *,
    coverage: float | None = None,
    n_places: int | None = None,
    previous: pd.Series | None = None,
) -> pd.Index:
    """The unit ids in the top slice of a ranking (see the module rules).

    Give exactly one of ``coverage`` (share of the total area, 0 < c <= 1;
    units ordered by score per area) or ``n_places`` (a number of places;
    units ordered by score).
    """
    if (coverage is None) == (n_places is None):
        raise ValueError("give exactly one of coverage or n_places")
    if n_places is not None:
        if int(n_places) < 1:
            raise ValueError(f"n_places must be >= 1, got {n_places!r}")
        return rank_order(scores, previous)[: int(n_places)]
    return area_slices(scores, areas, (coverage,), previous)[0]


def area_slices(
    scores: pd.Series, areas: pd.Series, coverages: Sequence[float], previous: pd.Series | None = None
) -> list[pd.Index]:
    """The top slice at each share of the area, from one ordering (see :func:`top_slice`)."""
    for c in coverages:
        if not 0 < c <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {c!r}")
    index = scores.index
    a = _as_series(areas, index, "areas").to_numpy()
    prev = np.zeros(len(index)) if previous is None else _as_series(previous, index, "previous").to_numpy()
    return [index[p] for p in _area_positions(_as_series(scores, index, "scores").to_numpy(), a, prev, index,
                                                 coverages)]


def _area_positions(s: np.ndarray, a: np.ndarray, prev: np.ndarray, index: pd.Index,
                    coverages: Sequence[float]) -> list[np.ndarray]:
    """:func:`area_slices` on aligned arrays: the positions of each slice's units, in rank order."""
    if (a <= 0).any():
        raise ValueError(f"areas: unit_id {index[a <= 0][0]!r} has area <= 0")
    order = _order(s / a, prev, index)
    cum = np.cumsum(a[order])
    out = []
    for c in coverages:
        fits = cum <= c * cum[-1] * (1 + _AREA_RTOL)
        k = max(1, int(np.argmin(fits)) if not fits.all() else len(cum))
        out.append(order[:k])
    return out


def area_catch(scores: np.ndarray, areas: np.ndarray, actual: np.ndarray, index: pd.Index,
               coverages: Sequence[float]) -> float:
    """Events of ``actual`` caught in the area slices at ``coverages`` of one ranking, summed over the slices.

    Aligned arrays on ``index`` (no ties broken by a previous period), e.g. to choose a
    bandwidth by catch on many rankings: the same slices as :func:`area_slices`.

    Examples
    --------
    >>> area_catch(np.array([3.0, 1.0, 2.0]), np.ones(3), np.array([5.0, 0.0, 1.0]), pd.Index(["a", "b", "c"]),
    ...            (0.34, 0.67))
    11.0
    """
    return float(sum(actual[pos].sum() for pos in _area_positions(
        np.asarray(scores, dtype=float), np.asarray(areas, dtype=float), np.zeros(len(index)), index, coverages)))


def best_possible(actual: pd.Series, areas: pd.Series, budget: float) -> float:
    """``n*``: the most events any set of units with total area <= ``budget`` holds (exact).

    Equal areas: the sum of the ``floor(budget / area)`` largest values. Unequal
    areas: a 0/1 knapsack, by dynamic programming over the total value when the
    values are whole multiples of a common step (counts; harm weights are whole
    numbers too), else by ``scipy.optimize.milp`` with a zero optimality gap.

    Examples
    --------
    >>> y = pd.Series([9.0, 7.0, 5.0, 5.0]); a = pd.Series([10.0, 6.0, 5.0, 5.0])
    >>> best_possible(y, a, 10.0)  # r + s beat p alone and q alone
    10.0
    """
    y = actual.to_numpy(dtype=float)
    a = areas.reindex(actual.index).to_numpy(dtype=float)
    limit = float(budget) * (1 + _AREA_RTOL)
    keep = (y > 0) & (a <= limit)
    y, a = y[keep], a[keep]
    if len(y) == 0:
        return 0.0
    if np.allclose(a, a[0], rtol=1e-6):
        k = int(np.floor(limit / a.max()))
        return float(np.sort(y)[::-1][:k].sum())
    whole = np.round(y)
    if np.allclose(y, whole, rtol=0, atol=1e-9):
        step = int(np.gcd.reduce(whole.astype(np.int64)))
        v = (whole // step).astype(np.int64)
        if len(v) * int(v.sum()) <= DP_MAX_CELLS:
            return float(step * _knapsack_by_value(v, a, limit))
    return _knapsack_milp(y, a, limit)


def _knapsack_by_value(v: np.ndarray, a: np.ndarray, limit: float) -> int:
    """Largest total of whole values ``v`` whose areas ``a`` sum to at most ``limit``.

    ``least[t]`` is the least area that collects exactly ``t``; each unit updates it
    from the previous row (the right-hand side is computed before assignment, so a
    unit is used at most once).
    """
    total = int(v.sum())
    least = np.full(total + 1, np.inf)
    least[0] = 0.0
    for vi, ai in zip(v, a, strict=True):
        least[vi:] = np.minimum(least[vi:], least[: total + 1 - vi] + ai)
    return int(np.flatnonzero(least <= limit).max())


def _knapsack_milp(y: np.ndarray, a: np.ndarray, limit: float) -> float:
    from scipy.optimize import Bounds, LinearConstraint, milp

    res = milp(-y, constraints=LinearConstraint(a[None, :], -np.inf, limit), integrality=np.ones(len(y)),
               bounds=Bounds(0, 1), options={"mip_rel_gap": 0.0})
    if res.x is None:
        raise RuntimeError(f"n*: the knapsack solver failed ({res.message})")
    return float(y @ np.round(res.x))


def n_star(y: pd.Series, sel: pd.Index, areas: pd.Series, budget: float | None) -> float:
    """Best possible catch: same number of places as ``sel`` (``budget`` None) or within the area ``budget``."""
    if budget is None:
        return float(np.sort(y.to_numpy())[::-1][: len(sel)].sum())
    return best_possible(y, areas, budget)


def _shared_n_star(n_stars: dict | None, kind: str, y: pd.Series, sel: pd.Index, areas: pd.Series,
                   budget: float | None) -> float:
    """:func:`n_star`, read from (and written to) ``n_stars`` when given."""
    if n_stars is None:
        return n_star(y, sel, areas, budget)
    key = (kind, ("places", len(sel)) if budget is None else ("area", float(budget)))
    if key not in n_stars:
        n_stars[key] = n_star(y, sel, areas, budget)
    return n_stars[key]


def _slice_measures(pos: np.ndarray, actual: np.ndarray, previous, areas: np.ndarray, n_star) -> dict:
    """The measures of the slice at positions ``pos`` of aligned arrays (``previous`` may be None)."""
    N = actual.sum()
    n = actual[pos].sum()
    a_share = areas[pos].sum() / areas.sum()
    hit = n / N if N > 0 else np.nan
    out = {
        "hit_rate": hit,
        "pai": hit / a_share if N > 0 else np.nan,
        "pei": n / n_star if n_star > 0 else np.nan,
        "rri": np.nan,
    }
    if previous is not None:
        n1, N1 = previous[pos].sum(), previous.sum()
        if n1 > 0 and N1 > 0 and N > 0:
            out["rri"] = (n / n1) / (N / N1)
    return out


def ranking_slices(
    scores: pd.Series, areas: pd.Series, coverages: Sequence[float] = (0.01, 0.05, 0.10),
    top_n: Sequence[int] = (10, 20), previous: pd.Series | None = None,
) -> list[dict]:
    """The slices of one ranking: ``slice`` label, ``coverage``, ``top_n``, ``units`` and the ``budget`` of n*.

    ``budget`` is the nominal area ``coverage * A`` (or the slice's own area when its
    one unit overflows it) for an area slice and None for a top-N slice (n* is then
    the N largest counts); see the module rules.
    """
    for c in coverages:
        if not 0 < c <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {c!r}")
    index = scores.index
    prev = np.zeros(len(index)) if previous is None else _as_series(previous, index, "previous").to_numpy()
    out = _slice_positions(_as_series(scores, index, "scores").to_numpy(),
                           _as_series(areas, index, "areas").to_numpy(), prev, index, coverages, top_n)
    return [{k: (index[v] if k == "units" else v) for k, v in sl.items()} for sl in out]


def _slice_positions(s: np.ndarray, a: np.ndarray, prev: np.ndarray, index: pd.Index,
                     coverages: Sequence[float], top_n: Sequence[int]) -> list[dict]:
    """:func:`ranking_slices` on aligned arrays, with ``units`` as positions."""
    out = []
    if len(coverages):
        total = float(a.sum())
        for c, pos in zip(coverages, _area_positions(s, a, prev, index, coverages), strict=True):
            out.append({"slice": f"{float(c) * 100:g}% area", "coverage": float(c), "top_n": pd.NA, "units": pos,
                        "budget": max(float(c) * total, float(a[pos].sum()))})
    order = _order(s, prev, index) if len(top_n) else None
    for n in top_n:
        k = min(int(n), len(s))
        if k < 1:
            raise ValueError(f"n_places must be >= 1, got {k!r}")
        out.append({"slice": f"top {int(n)}", "coverage": np.nan, "top_n": int(n), "units": order[:k],
                    "budget": None})
    return out


def evaluate_ranking(
    scores: pd.Series,
    areas: pd.Series,
    actual: pd.Series,
    *,
    previous: pd.Series | None = None,
    harm: pd.Series | None = None,
    harm_previous: pd.Series | None = None,
    coverages: Sequence[float] = (0.01, 0.05, 0.10),
    top_n: Sequence[int] = (10, 20),
    n_stars: dict | None = None,
) -> pd.DataFrame:
    """Hit rate, PAI, PEI* and RRI of one ranking at each slice.

    Parameters
    ----------
    scores : Series indexed by unit_id
        The ranking (higher = riskier). Its index is the set of units evaluated.
    areas : Series indexed by unit_id
        Unit areas (m²).
    actual : Series indexed by unit_id
        Event counts in the evaluated period (e.g. the month after the cutoff).
    previous : Series indexed by unit_id, optional
        Counts in the period of the same length just before the cutoff: the
        first tie-breaker and the base of RRI (RRI is NaN without it).
    harm, harm_previous : Series indexed by unit_id, optional
        Harm-weighted versions of ``actual`` and ``previous``; adds ``harm_*``
        columns.
    coverages, top_n
        The slices: shares of area and numbers of places.
    n_stars : dict, optional
        ``n*`` already computed for these ``actual`` (and ``harm``) counts and ``areas``,
        filled as computed: ``n*`` depends on the period, not on the ranking, so rankings
        of one period (every method at one backtest origin) can share one dict. Keyed by
        (``"count"`` or ``"harm"``, area budget or number of places).

    Returns
    -------
    DataFrame, one row per slice: ``slice`` ("5% area", "top 10"), ``coverage``,
    ``top_n``, ``n_units``, ``area_share``, ``n``, ``N``, ``n_star``,
    ``hit_rate``, ``pai``, ``pei``, ``rri`` and ``harm_*`` versions.
    """
    index = scores.index
    if index.has_duplicates:
        raise ValueError(f"scores: duplicate unit_id {index[index.duplicated()][0]!r}")
    for c in coverages:
        if not 0 < c <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {c!r}")
    scores = _as_series(scores, index, "scores")
    areas = _as_series(areas, index, "areas")
    actual = _as_series(actual, index, "actual")
    previous = None if previous is None else _as_series(previous, index, "previous")
    harm = None if harm is None else _as_series(harm, index, "harm")
    harm_previous = (
        None if harm_previous is None else _as_series(harm_previous, index, "harm_previous")
    )
    # the slices and their sums on aligned arrays: label lookups on a string index cost more than the sums
    a, y = areas.to_numpy(), actual.to_numpy()
    prev = None if previous is None else previous.to_numpy()
    h = None if harm is None else harm.to_numpy()
    hp = None if harm_previous is None else harm_previous.to_numpy()
    rows = []
    for sl in _slice_positions(scores.to_numpy(), a, np.zeros(len(index)) if prev is None else prev, index,
                               coverages, top_n):
        pos, budget = sl["units"], sl["budget"]
        row = {
            "slice": sl["slice"],
            "coverage": sl["coverage"],
            "top_n": sl["top_n"],
            "n_units": len(pos),
            "area_share": a[pos].sum() / a.sum(),
            "n": y[pos].sum(),
            "N": y.sum(),
            "n_star": _shared_n_star(n_stars, "count", actual, pos, areas, budget),
        }
        row.update(_slice_measures(pos, y, prev, a, row["n_star"]))
        if harm is not None:
            m = _slice_measures(pos, h, hp, a, _shared_n_star(n_stars, "harm", harm, pos, areas, budget))
            row.update({f"harm_{k}": v for k, v in m.items()})
        rows.append(row)
    out = pd.DataFrame(rows)
    out["top_n"] = out["top_n"].astype("Int64")
    return out


def calibration_table(expected: pd.Series, actual: pd.Series, bins: int = 10, level: float = 0.95) -> pd.DataFrame:
    """Forecast against outcome by group of places with similar forecasts.

    Units are split into ``bins`` groups of (nearly) equal size by expected
    count (ties kept in rank order); each row gives the group's units, summed
    expected and observed counts, their ratio and an exact Poisson ``level``
    interval of the ratio (``ratio_lo``, ``ratio_hi``: Garwood's interval of the
    observed count over the expected). A calibrated model has ``observed /
    expected`` near 1 in every row; a row whose interval holds 1 is within noise.
    Rows may pool several forecast periods (index entries must then be unique,
    e.g. ``origin/unit``).
    """
    from scipy.stats import chi2

    expected = _as_series(expected, expected.index, "expected")
    actual = _as_series(actual, expected.index, "actual")
    order = rank_order(expected)[::-1]
    group = np.floor(np.arange(len(order)) * bins / len(order)).astype(int) + 1
    frame = pd.DataFrame(
        {"group": group, "expected": expected.reindex(order).to_numpy(),
         "observed": actual.reindex(order).to_numpy()}
    )
    out = frame.groupby("group").agg(
        units=("expected", "size"), expected=("expected", "sum"), observed=("observed", "sum")
    )
    e = out["expected"].where(out["expected"] > 0)
    n = np.round(out["observed"].to_numpy())
    q = (1 - level) / 2
    out["ratio"] = out["observed"] / e
    out["ratio_lo"] = np.where(n > 0, chi2.ppf(q, 2 * np.maximum(n, 1)) / 2, 0.0) / e
    out["ratio_hi"] = chi2.ppf(1 - q, 2 * (n + 1)) / 2 / e
    return out.reset_index()
