"""Months and windows: the one month parser, window sums and the usable-cutoff rule.

A month is one type inside the packages, :data:`Month`: a ``pandas.Timestamp`` at midnight
on the first day of the month. Text becomes a Month once, where it enters (the command line,
the API, settings, a file read back: :func:`month`), and becomes text again only where it
leaves (file names, JSON, messages: :func:`label` or ``f"{m:%Y-%m}"``). A cutoff ``"2018-01"``
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
from dataclasses import dataclass, field

import pandas as pd

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_WINDOW = re.compile(r"^(cnt_.+|harm_.+|lag_cnt_.+|kde_.+|sas)_(\d+)m$")
_RATE_12M = ("sv_rate_eb",)

LONG_WINDOW = 36
"""Months the long-window mean looks back (at most; fewer when the data is shorter)."""
LONG_MEAN_COLUMN = f"mean_sv_{LONG_WINDOW}m"
"""Mean monthly serious violence count over the long window (see :func:`long_window_mean`)."""


Month = pd.Timestamp
"""The month type: a Timestamp at midnight on the month's first day (what :func:`month` returns)."""


def month(value) -> Month:
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
    if isinstance(value, pd.Timestamp) and value.tz is None and value == value.normalize() and value.day == 1:
        return value  # already a Month
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


def months_apart(first, last) -> int:
    """Whole months from ``first`` to ``last`` (negative when ``last`` is earlier).

    >>> months_apart("2025-07", "2026-03")
    8
    """
    a, b = month(first), month(last)
    return (b.year - a.year) * 12 + (b.month - a.month)


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


def panel_months(panel: pd.DataFrame) -> pd.DatetimeIndex:
    """The month of each column of a units x months panel (Timestamps or ``YYYY-MM-DD`` texts).

    >>> panel_months(pd.DataFrame(columns=["2018-07-01", "2018-08-01"])).strftime("%Y-%m").tolist()
    ['2018-07', '2018-08']
    """
    return pd.DatetimeIndex(pd.to_datetime(panel.columns))


def window_sum(panel: pd.DataFrame, start, months: int) -> pd.Series:
    """Sum of a units x months panel over the months ``[start, start + months)``, per unit."""
    s = month(start)
    cols = panel_months(panel)
    keep = (cols >= s) & (cols < shift(s, months))
    return panel.loc[:, keep].sum(axis=1).astype(float)


def usable_cutoffs(complete: Iterable, history: int, horizon: int = 0, *,
                   min_history: int | None = None) -> list[pd.Timestamp]:
    """Cutoffs whose ``history`` months before and ``horizon`` months from them are all complete.

    ``complete`` are the months with complete data (no gap, not thin). A cutoff may lie
    one month past a complete month when ``horizon`` is 0 (a forecast of the month after
    the data). With ``min_history``, a history reaching back before the first complete
    month is shortened to the months since it, but never below ``min_history`` months
    (see :func:`unusable_months`): no cutoff stands on a month or two of data. Sorted,
    oldest first.

    Examples
    --------
    >>> ms = pd.date_range("2016-01-01", "2016-12-01", freq="MS")
    >>> [f"{c:%Y-%m}" for c in usable_cutoffs(ms, history=12)]
    ['2017-01']
    >>> [f"{c:%Y-%m}" for c in usable_cutoffs(ms, history=6, horizon=3)]
    ['2016-07', '2016-08', '2016-09', '2016-10']
    >>> [f"{c:%Y-%m}" for c in usable_cutoffs(ms, history=12, horizon=1, min_history=9)]
    ['2016-10', '2016-11', '2016-12']
    """
    have = {month(m) for m in complete}
    if not have:
        return []
    candidates = sorted(have | {shift(m, 1) for m in have})
    return [c for c in candidates if not unusable_months(have, c, history, horizon, min_history=min_history)]


def unusable_months(complete: Iterable, cutoff, history: int, horizon: int = 0, *,
                    min_history: int | None = None) -> list[pd.Timestamp]:
    """The months of ``[cutoff - history, cutoff + horizon)`` that are not complete.

    With ``min_history`` (at most ``history``), months before the first complete month
    do not count against a cutoff that has at least ``min_history`` months since it (a
    short history at the start of the data is shortened, not refused); a cutoff with
    fewer gets the months of ``[cutoff - min_history, cutoff)`` before the first complete
    month as its missing months.
    """
    have = {month(m) for m in complete}
    c = month(cutoff)
    first = min(have) if have else None
    span = [shift(c, k) for k in range(-int(history), int(horizon))]
    if min_history is not None and first is not None and shift(c, -int(history)) < first:
        floor = min(int(min_history), int(history))
        if shift(c, -floor) >= first:
            span = [m for m in span if m >= first]
        else:
            span = [shift(c, k) for k in range(-floor, int(horizon))]
    return [m for m in span if m not in have]


@dataclass(frozen=True)
class OriginPlan:
    """Backtest origins chosen by the usable-cutoff rule, and what the data cost them.

    Attributes
    ----------
    origins : list of Timestamp
        The origins, oldest first.
    history, horizon, min_history : int
        The rule they were chosen by.
    short : list of Timestamp
        Origins whose history is shortened (fewer than ``history`` months since the data begin).
    removed : dict
        Month that is missing or thin -> the origins it removed (those that would have been
        chosen had that month been complete).
    """

    origins: list
    history: int
    horizon: int
    min_history: int
    short: list = field(default_factory=list)
    removed: dict = field(default_factory=dict)

    def history_of(self, origin, first) -> int:
        """Months of history ``origin`` has when the data begin at ``first``."""
        o, f = month(origin), month(first)
        return min(self.history, (o.year - f.year) * 12 + o.month - f.month)


def backtest_origins(complete: Iterable, history: int, horizon: int = 1, *, min_history: int | None = None,
                     count: int = 18, max_gap: int = 3) -> OriginPlan:
    """The last ``count`` usable cutoffs (:func:`usable_cutoffs`) as backtest origins, with what removed others.

    A month between the first and last complete month that is not complete (missing or
    thin) removes every origin whose history or horizon it falls in; ``removed`` names,
    per such month in a run of at most ``max_gap`` of them, the origins that the last
    ``count`` would otherwise have held (a longer gap is the data's span, not a hole).

    Raises
    ------
    ValueError
        When no origin is usable: one line naming the complete months there are and
        the run of complete months an origin needs.

    Examples
    --------
    >>> ms = [m for m in pd.date_range("2016-01-01", "2018-06-01", freq="MS") if m != pd.Timestamp("2016-03-01")]
    >>> plan = backtest_origins(ms, 12, 1, min_history=7)
    >>> ranges(plan.origins), {f"{m:%Y-%m}": ranges(o) for m, o in plan.removed.items()}
    ('2017-04..2018-06', {'2016-03': '2017-01..2017-03'})
    """
    have = sorted({month(m) for m in complete})
    floor = int(history if min_history is None else min(min_history, history))
    need = f"{floor} complete months of history and {horizon} complete month(s) after it"
    if not have:
        raise ValueError(f"no backtest origin has {need}: there is no complete month of data")
    usable = usable_cutoffs(have, history, horizon, min_history=min_history)[-int(count):]
    if not usable:
        raise ValueError(f"no backtest origin has {need} (at least {floor + horizon} complete months in a row); "
                         f"the complete months are {ranges(have)}")
    # a short run of missing or thin months is a hole in the data: name what it removed; a long
    # gap (years between a series and a later extract) is the data's span, said elsewhere
    every = set(have)
    span = months_between(have[0], have[-1])
    run: list[pd.Timestamp] = []
    for m in span:
        if m in every:
            if len(run) <= max_gap:
                every.update(run)
            run = []
        else:
            run.append(m)
    ideal = usable_cutoffs(every, history, horizon, min_history=min_history)[-int(count):]
    removed: dict[pd.Timestamp, list[pd.Timestamp]] = {}
    for o in ideal:
        if o in usable:
            continue
        for m in unusable_months(have, o, history, horizon, min_history=min_history):
            removed.setdefault(m, []).append(o)
    short = [o for o in usable if shift(o, -int(history)) < have[0]]
    return OriginPlan(usable, int(history), int(horizon), floor, short, dict(sorted(removed.items())))


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
    cols = panel_months(panel)
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
