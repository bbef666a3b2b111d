"""Months and windows: the one month parser, window sums and the usable-cutoff rule.

Months are ``pandas.Timestamp`` at the first day of the month. A cutoff ``"2018-01"``
means "as of the start of January 2018": features use months strictly before it, and
a target with horizon h counts months ``[cutoff, cutoff + h)``.

A cutoff is *usable* for a window of ``history`` months and a ``horizon`` when every
month of ``[cutoff - history, cutoff + horizon)`` has complete data
(:func:`usable_cutoffs`). Everything that picks a default cutoff or a backtest origin
uses that one rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pandas as pd

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WINDOW = re.compile(r"^(cnt_.+|harm_.+|lag_cnt_.+|kde_.+|sas)_(\d+)m$")
_RATE_12M = ("sv_rate_eb",)

LONG_WINDOW = 36
"""Months the long-window mean looks back (at most; fewer when the data is shorter)."""
LONG_MEAN_COLUMN = f"mean_sv_{LONG_WINDOW}m"
"""Mean monthly serious violence count over the long window (see :func:`long_window_mean`)."""


def month(value) -> pd.Timestamp:
    """First day of the month of ``value``: a ``"YYYY-MM"`` string, a date or a Timestamp.

    Strings must be exactly ``YYYY-MM`` (no spaces, days or other separators), so a
    value that reaches a file name or a URL is always a plain month.

    Examples
    --------
    >>> month("2018-07")
    Timestamp('2018-07-01 00:00:00')
    >>> month("2018/07")
    Traceback (most recent call last):
    ...
    ValueError: not a month: '2018/07' (expected 'YYYY-MM', e.g. '2018-07')
    """
    if isinstance(value, str):
        m = _MONTH.fullmatch(value)
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ValueError(f"not a month: {value!r} (expected 'YYYY-MM', e.g. '2018-07')")
        return pd.Timestamp(year=int(m.group(1)), month=int(m.group(2)), day=1)
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a month: {value!r} (expected 'YYYY-MM', e.g. '2018-07')") from exc
    if pd.isna(ts):
        raise ValueError(f"not a month: {value!r} (expected 'YYYY-MM', e.g. '2018-07')")
    return ts.to_period("M").to_timestamp()


def label(value) -> str:
    """``"YYYY-MM"`` of a month."""
    return f"{month(value):%Y-%m}"


def shift(m: pd.Timestamp, k: int) -> pd.Timestamp:
    """``m`` moved by ``k`` months (negative: earlier)."""
    return m + pd.DateOffset(months=int(k))


def months_between(first, last) -> list[pd.Timestamp]:
    """Every month from ``first`` to ``last`` inclusive."""
    return list(pd.date_range(month(first), month(last), freq="MS"))


def ranges(months: Iterable) -> str:
    """Months as compact ranges: ``"2018-07..2024-03, 2024-05"``.

    Examples
    --------
    >>> ranges(pd.to_datetime(["2018-07-01", "2018-08-01", "2018-09-01", "2019-01-01"]))
    '2018-07..2018-09, 2019-01'
    """
    ms = sorted({month(m) for m in months})
    out, start, prev = [], None, None
    for m in ms:
        if prev is not None and m == shift(prev, 1):
            prev = m
            continue
        if start is not None:
            out.append(f"{start:%Y-%m}" if start == prev else f"{start:%Y-%m}..{prev:%Y-%m}")
        start = prev = m
    if start is not None:
        out.append(f"{start:%Y-%m}" if start == prev else f"{start:%Y-%m}..{prev:%Y-%m}")
    return ", ".join(out)


def window_months(cutoff, months: int) -> list[pd.Timestamp]:
    """The ``months`` months before ``cutoff``, oldest first (``cutoff`` itself excluded)."""
    c = month(cutoff)
    return [shift(c, -k) for k in range(int(months), 0, -1)]


def window_sum(panel: pd.DataFrame, start, months: int) -> pd.Series:
    """Sum of a units x months panel over the months ``[start, start + months)``, per unit."""
    s = month(start)
    cols = pd.DatetimeIndex(pd.to_datetime(panel.columns))
    keep = (cols >= s) & (cols < shift(s, months))
    return panel.loc[:, keep].sum(axis=1).astype(float)


def usable_cutoffs(complete: Iterable, history: int, horizon: int = 0, *,
                   from_start: bool = False) -> list[pd.Timestamp]:
    """Cutoffs whose ``history`` months before and ``horizon`` months from them are all complete.

    ``complete`` are the months with complete data (no gap, not thin). A cutoff may lie
    one month past a complete month when ``horizon`` is 0 (a forecast of the month after
    the data). With ``from_start``, a history reaching back before the first complete
    month is shortened to the months since it (see :func:`unusable_months`). Sorted,
    oldest first.

    Examples
    --------
    >>> ms = pd.date_range("2016-01-01", "2016-12-01", freq="MS")
    >>> [f"{c:%Y-%m}" for c in usable_cutoffs(ms, history=12)]
    ['2017-01']
    >>> [f"{c:%Y-%m}" for c in usable_cutoffs(ms, history=6, horizon=3)]
    ['2016-07', '2016-08', '2016-09', '2016-10']
    """
    have = {month(m) for m in complete}
    if not have:
        return []
    candidates = sorted(have | {shift(m, 1) for m in have})
    return [c for c in candidates if not unusable_months(have, c, history, horizon, from_start=from_start)]


def unusable_months(complete: Iterable, cutoff, history: int, horizon: int = 0, *,
                    from_start: bool = False) -> list[pd.Timestamp]:
    """The months of ``[cutoff - history, cutoff + horizon)`` that are not complete.

    With ``from_start``, months before the first complete month do not count against a
    cutoff after it (a short history is shortened, not refused); a cutoff at or before
    the first complete month is still refused.
    """
    have = {month(m) for m in complete}
    c = month(cutoff)
    first = min(have) if have else None
    span = [shift(c, k) for k in range(-int(history), int(horizon))]
    if from_start and first is not None and c > first:
        span = [m for m in span if m >= first]
    return [m for m in span if m not in have]


def complete_windows(X: pd.DataFrame, data_months: Sequence, cutoff) -> pd.DataFrame:
    """Scale ``<w>m`` window features by ``w / (months with data in the window)``.

    The feature builder counts what there is when a window reaches before the first
    month of data (or over a month without data), so a 12-month count at an origin
    with 7 months of history is 7 months' worth; this scales it to a full window.
    ``sv_rate_eb`` is treated as a 12-month window. Windows with no data at all are
    left as they are (zero); a no-op once history is complete.
    """
    c = month(cutoff)
    have = {month(m) for m in data_months}
    out = X.copy()
    for col in X.columns:
        m = _WINDOW.match(str(col))
        w = int(m.group(2)) if m else (12 if col in _RATE_12M else 0)
        if not w:
            continue
        n = sum(shift(c, -k) in have for k in range(1, w + 1))
        if 0 < n < w:
            out[col] = X[col] * (w / n)
    return out


def long_window_mean(panel: pd.DataFrame, cutoff, window: int = LONG_WINDOW) -> pd.Series:
    """Mean monthly count per unit over the months with data in ``[cutoff - window, cutoff)``.

    ``panel`` is units x months with data (``FeatureBuilder.panel``): a month
    absent from it has no data and is left out of the mean rather than counted
    as zero. Units get 0 when no month of the window has data.

    Examples
    --------
    >>> months = pd.date_range("2016-01-01", periods=4, freq="MS")
    >>> panel = pd.DataFrame([[1.0, 2.0, 3.0, 9.0]], index=["a"], columns=months)
    >>> long_window_mean(panel, "2016-04", window=36).tolist()  # 2016-04 itself is not used
    [2.0]
    """
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a whole number of months >= 1, got {window!r}")
    c = month(cutoff)
    cols = pd.DatetimeIndex(pd.to_datetime(panel.columns))
    keep = (cols < c) & (cols >= shift(c, -int(window)))
    if not keep.any():
        return pd.Series(0.0, index=panel.index, name=LONG_MEAN_COLUMN)
    return panel.loc[:, keep].mean(axis=1).astype(float).rename(LONG_MEAN_COLUMN)


def with_long_window(X: pd.DataFrame, panel: pd.DataFrame, cutoff) -> pd.DataFrame:
    """``X`` with :data:`LONG_MEAN_COLUMN` (from the serious violence ``panel``) as its last column."""
    mean = long_window_mean(panel, cutoff)
    index = X.index.astype(str)
    values = mean.set_axis(mean.index.astype(str)).reindex(index)
    if values.isna().any():
        raise ValueError(
            f"panel has no row for unit_id {index[values.isna().to_numpy()][0]!r} of the feature matrix"
        )
    return X.assign(**{LONG_MEAN_COLUMN: values.to_numpy()})
