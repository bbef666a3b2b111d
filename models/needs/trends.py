"""Serious violence over time: monthly series, rolling 12-month totals, trend and seasonality."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.figures import ALL_MEASURE, CORE_MEASURE, MEASURE_NAMES, SV_MEASURE
from features.months import month, shift

MEASURE_ORDER = (CORE_MEASURE, SV_MEASURE, "violence", "robbery", "sexual", "weapons", "drugs")
"""Measures the needs assessment reports first, in this order; other groups follow, then all offences."""
MEASURE_LABELS = {
    **MEASURE_NAMES, "violence": "Violence against the person", "robbery": "Robbery",
    "sexual": "Sexual offences", "weapons": "Possession of weapons", "drugs": "Drug offences",
    "burglary": "Burglary", "theft": "Theft", "vehicle": "Vehicle offences", "damage": "Arson and criminal damage",
    "public_order": "Public order offences", "other": "Other offences", "asb": "Anti-social behaviour",
    ALL_MEASURE: "All offences",
}

OPEN_DATA_GAPS = (
    ("Knife-related offences", "open data has no knife or weapon-enabled flag on offences; possession of "
     "weapons counts only weapons found, mostly on search", "MPS knife crime dashboard / CRIS extract via the "
     "partnership's data-sharing agreement"),
    ("Gun-related offences", "no firearm flag in open data", "MPS firearms discharges and gun crime dashboard"),
    ("Domestic abuse-related offences", "open data has no domestic abuse flag", "MPS domestic abuse dashboard; "
     "MARAC and IDVA service data"),
    ("Victims and suspects under 25", "open data has no victim or suspect age", "MPS CRIS extract; Youth Justice "
     "Service; ambulance service and hospital A&E (ISTV) data"),
    ("Offence sub-types in police.uk points", "police.uk combines violence with sexual offences and has no "
     "offence sub-type, day or hour", "Met ward/LSOA tables (categories by month) or CRIS extracts"),
    ("Unreported violence", "recorded crime counts what is reported and recorded", "victim surveys (CSEW), "
     "health data, community intelligence"),
)
"""(measure, why open data cannot show it, where it lives): stated in the pack, never a silent gap."""


def ordered_measures(groups: Sequence[str]) -> list[str]:
    """Offence groups in reporting order (:data:`MEASURE_ORDER` first, the rest sorted)."""
    first = [g for g in MEASURE_ORDER if g in groups and g not in (SV_MEASURE, CORE_MEASURE)]
    return first + sorted(g for g in groups if g not in first and g not in (SV_MEASURE, CORE_MEASURE))


def label(measure: str) -> str:
    return MEASURE_LABELS.get(measure, measure.replace("_", " ").capitalize())


def sort_measures(frame: pd.DataFrame, column: str = "measure") -> pd.DataFrame:
    names = list(dict.fromkeys([*MEASURE_ORDER, *sorted(m for m in MEASURE_LABELS if m != ALL_MEASURE), ALL_MEASURE]))
    order = {m: i for i, m in enumerate(names)}
    return frame.sort_values(column, key=lambda s: s.map(lambda m: order.get(m, len(order))), kind="stable")


def monthly_series(monthly: pd.DataFrame, months: Sequence[pd.Timestamp], measures: Sequence[str]) -> pd.DataFrame:
    """Borough counts per month and measure over ``months`` (complete months), with rolling 12-month sums.

    ``monthly`` has ``month``, ``group``, ``serious_violence``, ``count`` (as
    :func:`features.needs.borough_monthly`). The rolling sum at a month is the 12 months ending
    there, NA until 12 consecutive complete months exist.

    Returns
    -------
    DataFrame with columns ``month``, ``measure``, ``count``, ``rolling_12m``.
    """
    idx = pd.DatetimeIndex(sorted(months), name="month")
    parts = []
    for m in measures:
        if m == SV_MEASURE:
            sel = monthly["serious_violence"].to_numpy(dtype=bool)
        elif m == CORE_MEASURE:
            sel = monthly["core"].to_numpy(dtype=bool)
        elif m == ALL_MEASURE:
            sel = (monthly["group"] != "asb").to_numpy()
        else:
            sel = (monthly["group"] == m).to_numpy()
        s = monthly[sel].groupby("month")["count"].sum().reindex(idx, fill_value=0.0)
        # a rolling window only over consecutive complete months
        consecutive = pd.Series(idx, index=idx).diff().dt.days.fillna(31).between(28, 31)
        run = (~consecutive).cumsum()
        roll = s.groupby(run.to_numpy()).transform(lambda x: x.rolling(12, min_periods=12).sum())
        parts.append(pd.DataFrame({"month": idx, "measure": m, "count": s.to_numpy(), "rolling_12m": roll.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def decompose(series: pd.Series, period: int = 12, robust: bool = True, seasonal: int = 13) -> pd.DataFrame:
    """STL decomposition (statsmodels) of a monthly series into trend, seasonal and remainder.

    ``series`` is indexed by consecutive months; it needs at least two full periods. Returns
    a frame with ``month``, ``observed``, ``trend``, ``seasonal``, ``resid``; ``attrs`` holds the
    seasonal peak and trough months (by mean seasonal effect) and the strength of trend and
    seasonality (Wang, Smith & Hyndman 2006: 1 - Var(R) / Var(component + R), floored at 0).

    Raises
    ------
    ValueError
        Fewer than ``2 * period`` months, or months not consecutive.
    """
    from statsmodels.tsa.seasonal import STL

    s = series.sort_index().astype(float)
    idx = pd.DatetimeIndex(s.index)
    if len(s) < 2 * period:
        raise ValueError(f"a trend and seasonality decomposition needs at least {2 * period} consecutive months, "
                         f"got {len(s)}")
    expected = pd.date_range(idx[0], periods=len(idx), freq="MS")
    if not idx.equals(expected):
        raise ValueError("the months of the series are not consecutive; decompose a run of consecutive months")
    res = STL(s.to_numpy(), period=period, seasonal=seasonal, robust=robust).fit()
    out = pd.DataFrame({"month": idx, "observed": s.to_numpy(), "trend": res.trend, "seasonal": res.seasonal,
                        "resid": res.resid})
    by_month = out.groupby(out["month"].dt.month)["seasonal"].mean()
    var = lambda x: float(np.var(x))  # noqa: E731
    out.attrs = {
        "peak_month": int(by_month.idxmax()), "trough_month": int(by_month.idxmin()),
        "seasonal_range": float(by_month.max() - by_month.min()),
        "trend_strength": max(0.0, 1 - var(res.resid) / max(var(res.trend + res.resid), 1e-12)),
        "seasonal_strength": max(0.0, 1 - var(res.resid) / max(var(res.seasonal + res.resid), 1e-12)),
        "trend_change": float(res.trend[-1] - res.trend[max(0, len(s) - 13)]),
        "period": period, "robust": robust, "seasonal_smoother": seasonal, "first": f"{idx[0]:%Y-%m}", "last": f"{idx[-1]:%Y-%m}",
    }
    return out


def robust_trend(series: pd.Series, months: int = 36, confidence: float = 0.95) -> dict:
    """Theil-Sen trend of a monthly series over its last ``months`` months, with an interval.

    The slope is the median of all pairwise slopes (scipy ``theilslopes``), so one unusual
    month at either end cannot swing it the way an end-point difference of a smoothed trend
    can; 36 months hold three whole seasonal cycles, so the season does not tilt it. The
    interval ignores autocorrelation between months: read it as a lower bound on the
    uncertainty.

    Returns
    -------
    dict
        ``per_month`` (change in offences a month, per month), ``per_year`` (12 x it: how much
        the monthly level changes in a year), ``lo``/``hi`` (``per_year`` interval), ``first``,
        ``last``, ``months``, ``method``.

    Raises
    ------
    ValueError
        Fewer than 12 months.
    """
    from scipy.stats import theilslopes

    s = series.sort_index().astype(float).iloc[-months:]
    if len(s) < 12:
        raise ValueError(f"a robust trend needs at least 12 months, got {len(s)}")
    slope, _, lo, hi = theilslopes(s.to_numpy(), np.arange(len(s), dtype=float), alpha=confidence)
    idx = pd.DatetimeIndex(s.index)
    return {"per_month": float(slope), "per_year": 12.0 * float(slope), "lo": 12.0 * float(lo),
            "hi": 12.0 * float(hi), "first": f"{idx[0]:%Y-%m}", "last": f"{idx[-1]:%Y-%m}", "months": len(s),
            "confidence": confidence, "method": f"Theil-Sen slope over {len(s)} months"}


def consecutive_run(months: Sequence[pd.Timestamp], end) -> list[pd.Timestamp]:
    """The longest run of consecutive months in ``months`` that ends at ``end``."""
    have = {month(m) for m in months}
    end = month(end)
    run = []
    m = end
    while m in have:
        run.append(m)
        m = shift(m, -1)
    return run[::-1]
