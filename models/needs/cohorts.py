"""Cohorts the strategy names: stop and search disproportionality and ward funnel limits.

* :func:`disproportionality`: searches per 1,000 residents of each ethnic group (Census 2021
  usual residents) and the rate ratio to a reference group, with a 95% interval. Stop and
  search is police-generated: its counts measure police activity, not harm.
* :func:`funnel_limits`: Poisson control limits for ward counts around the borough rate
  (Spiegelhalter 2005): a ward outside the 99.8% limits differs from the borough by more than
  chance at its size would give.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CENSUS_GROUPS = {
    "asian": "Asian, Asian British or Asian Welsh",
    "black": "Black, Black British, Black Welsh, Caribbean or African",
    "mixed": "Mixed or Multiple ethnic groups",
    "other": "Other ethnic group",
    "white": "White",
}
"""Census 2021 TS021 broad groups, keyed by the first word police.uk writes for each (self- and
officer-defined ethnicity both start with it: "Black/African/Caribbean/Black British - African",
"Black")."""
NOT_STATED = ("not stated",)


def census_group(ethnicity: pd.Series) -> pd.Series:
    """police.uk ethnicity -> Census 2021 broad group (NA when missing or not stated).

    >>> census_group(pd.Series(["White - Any other White background", "Black", "Other ethnic group - Not stated",
    ...                         None])).tolist()
    ['White', 'Black, Black British, Black Welsh, Caribbean or African', <NA>, <NA>]
    """
    text = ethnicity.astype("string").str.strip().str.casefold()
    first = text.str.extract(r"^([a-z]+)", expand=False)
    out = first.map(CENSUS_GROUPS).astype("string")
    stated = ~text.fillna("").str.contains("|".join(NOT_STATED))
    return out.where(stated & text.notna())


def disproportionality(groups: pd.Series, residents: pd.Series, reference: str = "White",
                       alpha: float = 0.05) -> pd.DataFrame:
    """Searches per 1,000 residents by group and the rate ratio to ``reference`` with its interval.

    Parameters
    ----------
    groups : Series
        One Census group per search (NA: ethnicity not recorded; left out and counted).
    residents : Series
        Residents per group (indexed by the Census group names).
    reference : str
        The group every rate is compared with.

    Returns
    -------
    DataFrame
        ``group``, ``searches``, ``residents``, ``rate_per_1000``, ``rate_ratio``, ``lo``, ``hi``
        (Poisson rate ratio, Wald interval on the log scale, statsmodels
        ``confint_poisson_2indep``); ``attrs["unrecorded"]`` counts searches without a group.

    Raises
    ------
    ValueError
        ``reference`` has no residents.
    """
    from statsmodels.stats.rates import confint_poisson_2indep

    if float(residents.get(reference, 0.0)) <= 0:
        raise ValueError(f"reference group {reference!r} has no residents; groups: {list(residents.index)}")
    n = groups.dropna().value_counts().reindex(residents.index, fill_value=0).astype(float)
    out = pd.DataFrame({"group": residents.index, "searches": n.to_numpy(), "residents": residents.to_numpy(dtype=float)})
    out["rate_per_1000"] = 1000.0 * out["searches"] / out["residents"]
    ref = out.set_index("group").loc[reference]
    out["rate_ratio"] = out["rate_per_1000"] / ref["rate_per_1000"]
    ok = (out["searches"] > 0).to_numpy() & (ref["searches"] > 0)
    out["lo"], out["hi"] = np.nan, np.nan
    if ok.any():
        lo, hi = confint_poisson_2indep(out.loc[ok, "searches"].to_numpy(), out.loc[ok, "residents"].to_numpy(),
                                        float(ref["searches"]), float(ref["residents"]), method="wald-log",
                                        compare="ratio", alpha=alpha)
        out.loc[ok, "lo"], out.loc[ok, "hi"] = lo, hi
    out.attrs["unrecorded"] = int(groups.isna().sum())
    out.attrs["reference"] = reference
    return out


def funnel_limits(count, population, rate_per_1000: float, levels=(0.95, 0.998)) -> pd.DataFrame:
    """Poisson funnel limits around the borough rate for each area's count.

    The expected count of an area is ``rate_per_1000 * population / 1000``; its limits are the
    Poisson quantiles of that mean at the two tails of each level (scipy ``poisson.ppf``), and
    the same as rates per 1,000.

    Returns
    -------
    DataFrame
        ``count``, ``population``, ``expected``, ``rate_per_1000`` and for each level ``L``
        (e.g. 95, 99.8) ``lo_L``/``hi_L`` (rates) and ``outside`` (the widest level the count
        is outside: "above 99.8%", "below 95%", ...; "" inside all).
    """
    from scipy.stats import poisson

    n = np.asarray(count, dtype=float)
    pop = np.asarray(population, dtype=float)
    expected = rate_per_1000 * pop / 1000.0
    out = pd.DataFrame({"count": n, "population": pop, "expected": expected})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate_per_1000"] = np.where(pop > 0, 1000.0 * n / pop, np.nan)
    out["outside"] = ""
    for level in sorted(levels):
        tail = (1.0 - level) / 2.0
        lo, hi = poisson.ppf(tail, expected), poisson.ppf(1.0 - tail, expected)
        name = f"{100 * level:g}"
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"lo_{name}"] = np.where(pop > 0, 1000.0 * lo / pop, np.nan)
            out[f"hi_{name}"] = np.where(pop > 0, 1000.0 * hi / pop, np.nan)
        out.loc[n > hi, "outside"] = f"above {name}%"
        out.loc[n < lo, "outside"] = f"below {name}%"
    return out
