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
* **n\*.** For an area slice, ``n*`` is the most events a set of units of total
  area at most ``a`` can hold. On equal-area units (a regular grid) it is exact:
  the sum of the ``k`` largest counts. On unequal units it is a 0/1 knapsack; we
  solve it exactly by dynamic programming after rounding each unit's area *up*
  to a grid of ``a / 2000`` (so every set the solver picks truly fits), and take
  the larger of that and the slice's own ``n`` (the slice is itself feasible).
  The rounding can only lose capacity, so ``n*`` is a lower bound on the true
  optimum and PEI* is at most ~1% optimistic on LSOA-sized slices. For a top-N
  slice the resource is places, not area: ``n*`` is the sum of the ``N``
  largest counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

KNAPSACK_STEPS = 2000
"""Resolution of the area grid in the knapsack for ``n*`` on unequal units."""

MEASURES = ("hit_rate", "pai", "pei", "rri")


def _as_series(values, index: pd.Index, name: str) -> pd.Series:
    if isinstance(values, pd.Series):
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
    ids = np.asarray(index.astype(str))
    # np.lexsort sorts by the last key first; negate to get descending.
    order = np.lexsort((ids, -prev, -s))
    return index[order]


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
    if not 0 < coverage <= 1:
        raise ValueError(f"coverage must be in (0, 1], got {coverage!r}")
    areas = _as_series(areas, scores.index, "areas")
    if (areas <= 0).any():
        raise ValueError(f"areas: unit_id {areas.index[areas <= 0][0]!r} has area <= 0")
    order = rank_order(_as_series(scores, scores.index, "scores") / areas, previous)
    a = areas.reindex(order).to_numpy()
    budget = coverage * a.sum()
    fits = np.cumsum(a) <= budget * (1 + 1e-9)
    k = max(1, int(np.argmin(fits)) if not fits.all() else len(a))
    return order[:k]


def best_possible(actual: pd.Series, areas: pd.Series, budget: float) -> float:
    """``n*``: most events any set of units with total area <= ``budget`` holds.

    Exact on equal areas; on unequal areas a knapsack on areas rounded up to a
    grid of ``budget / KNAPSACK_STEPS`` (a lower bound on the true optimum).
    """
    y = actual.to_numpy(dtype=float)
    a = areas.reindex(actual.index).to_numpy(dtype=float)
    if np.allclose(a, a[0], rtol=1e-6):
        k = int(np.floor(budget / a[0] * (1 + 1e-9)))
        return float(np.sort(y)[::-1][:k].sum())
    keep = (y > 0) & (a <= budget * (1 + 1e-9))
    y, a = y[keep], a[keep]
    if len(y) == 0:
        return 0.0
    step = budget / KNAPSACK_STEPS
    w = np.ceil(a / step - 1e-9).astype(int)
    best = np.zeros(KNAPSACK_STEPS + 1)
    for wi, yi in zip(w, y, strict=True):
        # 0/1 knapsack: update from the previous row (right-hand side is a copy).
        best[wi:] = np.maximum(best[wi:], best[: KNAPSACK_STEPS + 1 - wi] + yi)
    return float(best[-1])


def _n_star(y: pd.Series, sel: pd.Index, areas: pd.Series, budget: float | None) -> float:
    """Best possible catch: same number of places (``budget`` None) or same area."""
    if budget is None:
        return float(np.sort(y.to_numpy())[::-1][: len(sel)].sum())
    return max(best_possible(y, areas, budget), float(y.loc[sel].sum()))


def _slice_measures(sel: pd.Index, actual: pd.Series, previous, areas, n_star) -> dict:
    N = actual.sum()
    n = actual.loc[sel].sum()
    a_share = areas.loc[sel].sum() / areas.sum()
    hit = n / N if N > 0 else np.nan
    out = {
        "hit_rate": hit,
        "pai": hit / a_share if N > 0 else np.nan,
        "pei": n / n_star if n_star > 0 else np.nan,
        "rri": np.nan,
    }
    if previous is not None:
        n1, N1 = previous.loc[sel].sum(), previous.sum()
        if n1 > 0 and N1 > 0 and N > 0:
            out["rri"] = (n / n1) / (N / N1)
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

    Returns
    -------
    DataFrame, one row per slice: ``slice`` ("5% area", "top 10"), ``coverage``,
    ``top_n``, ``n_units``, ``area_share``, ``n``, ``N``, ``n_star``,
    ``hit_rate``, ``pai``, ``pei``, ``rri`` and ``harm_*`` versions.
    """
    index = scores.index
    if index.has_duplicates:
        raise ValueError(f"scores: duplicate unit_id {index[index.duplicated()][0]!r}")
    scores = _as_series(scores, index, "scores")
    areas = _as_series(areas, index, "areas")
    actual = _as_series(actual, index, "actual")
    previous = None if previous is None else _as_series(previous, index, "previous")
    harm = None if harm is None else _as_series(harm, index, "harm")
    harm_previous = (
        None if harm_previous is None else _as_series(harm_previous, index, "harm_previous")
    )
    slices = [("area", float(c)) for c in coverages] + [("top", int(n)) for n in top_n]
    rows = []
    for kind, size in slices:
        if kind == "area":
            sel = top_slice(scores, areas, coverage=size, previous=previous)
            budget = areas.loc[sel].sum()
            label = f"{size * 100:g}% area"
        else:
            sel = top_slice(scores, areas, n_places=min(size, len(index)), previous=previous)
            budget = None
            label = f"top {size}"

        row = {
            "slice": label,
            "coverage": size if kind == "area" else np.nan,
            "top_n": size if kind == "top" else pd.NA,
            "n_units": len(sel),
            "area_share": areas.loc[sel].sum() / areas.sum(),
            "n": actual.loc[sel].sum(),
            "N": actual.sum(),
            "n_star": _n_star(actual, sel, areas, budget),
        }
        row.update(_slice_measures(sel, actual, previous, areas, row["n_star"]))
        if harm is not None:
            m = _slice_measures(sel, harm, harm_previous, areas, _n_star(harm, sel, areas, budget))
            row.update({f"harm_{k}": v for k, v in m.items()})
        rows.append(row)
    out = pd.DataFrame(rows)
    out["top_n"] = out["top_n"].astype("Int64")
    return out


def calibration_table(expected: pd.Series, actual: pd.Series, bins: int = 10) -> pd.DataFrame:
    """Forecast against outcome by group of places with similar forecasts.

    Units are split into ``bins`` groups of (nearly) equal size by expected
    count (ties kept in rank order); each row gives the group's units, summed
    expected and observed counts and their ratio. A calibrated model has
    ``observed / expected`` near 1 in every row.
    """
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
    out["ratio"] = out["observed"] / out["expected"].where(out["expected"] > 0)
    return out.reset_index()
