"""Prior incidents per unit, arranged so any cutoff is a cheap slice.

The geometry work (which unit holds each event, which events lie near each unit)
is done once when a :class:`MonthlyCube` or :class:`KernelSums` is built; a
cutoff then only selects months.

Months are a continuous calendar axis from the first to the last month with any
event; a month inside that span with no event at all is a real zero only if the
source covered it, so :attr:`MonthlyCube.present` records which months had data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

WEEKS_PER_MONTH = 365.25 / 12 / 7  # 4.35

NEAR_REPEAT_DISTANCE_M = 200.0
"""Distance decay of near-repeat intensity: weight exp(-d / 200 m)."""
NEAR_REPEAT_WEEKS = 4.0
"""Time decay of near-repeat intensity: weight exp(-age / 4 weeks)."""
NEAR_REPEAT_MONTHS = 2
"""Near-repeat intensity looks at events in the last 2 months only."""
NEAR_REPEAT_MAX_M = 1000.0
"""Events further than this from a unit's point add nothing (exp(-5) < 0.7%)."""
KDE_BANDWIDTH_M = 300.0
"""Gaussian bandwidth of the retrospective KDE."""
KDE_MAX_M = 3 * KDE_BANDWIDTH_M


def month_start(value) -> pd.Timestamp:
    """Parse ``"YYYY-MM"`` (or a date) to the first day of that month."""
    if isinstance(value, str):
        try:
            ts = pd.Timestamp(f"{value}-01") if len(value) == 7 else pd.Timestamp(value)
        except ValueError as exc:
            raise ValueError(f"cutoff {value!r} is not a month 'YYYY-MM'") from exc
    else:
        ts = pd.Timestamp(value)
    if pd.isna(ts):
        raise ValueError(f"cutoff {value!r} is not a month 'YYYY-MM'")
    return ts.to_period("M").to_timestamp()


def month_index(month: pd.Timestamp, origin: pd.Timestamp) -> int:
    return (month.year - origin.year) * 12 + (month.month - origin.month)


class MonthlyCube:
    """Counts and harm per unit, month and group: arrays of shape (units, months, groups).

    Parameters
    ----------
    unit : int array
        Row position of each event's unit (-1: outside every unit, ignored).
    month : datetime64 array-like
        Each event's month (first day).
    group : array-like of str
        Each event's group; groups not in ``groups`` are ignored.
    harm : float array
    n_units : int
    groups : list of str
    """

    def __init__(self, unit, month, group, harm, n_units: int, groups: list[str]):
        self.groups = list(groups)
        months = pd.DatetimeIndex(pd.to_datetime(month)).to_period("M").to_timestamp()
        self.n_units = n_units
        if len(months) == 0 or months.isna().all():
            self.origin = pd.Timestamp("2000-01-01")
            self.months = pd.DatetimeIndex([])
        else:
            self.origin = months.min()
            self.months = pd.date_range(self.origin, months.max(), freq="MS")
        m = self._mindex(months) if len(months) else np.zeros(0, dtype=np.int64)
        gpos = pd.Index(self.groups).get_indexer(pd.Index(pd.array(group, dtype="string")))
        unit = np.asarray(unit)
        ok = (unit >= 0) & (gpos >= 0) & (m >= 0)
        shape = (n_units, len(self.months), len(self.groups))
        self.counts = np.zeros(shape)
        self.harm = np.zeros(shape)
        np.add.at(self.counts, (unit[ok], m[ok], gpos[ok]), 1.0)
        np.add.at(self.harm, (unit[ok], m[ok], gpos[ok]), np.nan_to_num(np.asarray(harm, dtype=float)[ok]))
        present = np.zeros(len(self.months), dtype=bool)
        present[np.unique(m[m >= 0])] = True
        self.present = present
        # cumulative sums over months: window [a, b) = cum[:, b] - cum[:, a]
        self._cum_counts = np.concatenate([np.zeros((n_units, 1, len(self.groups))), self.counts.cumsum(axis=1)], axis=1)
        self._cum_harm = np.concatenate([np.zeros((n_units, 1, len(self.groups))), self.harm.cumsum(axis=1)], axis=1)

    def _mindex(self, months: pd.DatetimeIndex) -> np.ndarray:
        out = (months.year - self.origin.year) * 12 + (months.month - self.origin.month)
        return np.where(months.isna(), -1, np.asarray(out, dtype=float)).astype(np.int64)

    def index(self, month: pd.Timestamp) -> int:
        """Position of ``month`` on the month axis (may be < 0 or >= number of months)."""
        return month_index(month, self.origin)

    def _clip(self, a: int, b: int) -> tuple[int, int]:
        n = len(self.months)
        return min(max(a, 0), n), min(max(b, 0), n)

    def window(self, start: int, stop: int, what: str = "counts") -> np.ndarray:
        """Sum over months [start, stop) (month-axis positions): array (units, groups)."""
        a, b = self._clip(start, stop)
        cum = self._cum_counts if what == "counts" else self._cum_harm
        return cum[:, b, :] - cum[:, a, :]

    def missing_months(self, start: int, stop: int) -> list[pd.Timestamp]:
        """Months in [start, stop) with no event at all in the source (outside the data or a gap)."""
        out = []
        for k in range(start, stop):
            if k < 0 or k >= len(self.months) or not self.present[k]:
                out.append(self.origin + pd.DateOffset(months=k))
        return out


class KernelSums:
    """Distance kernels between unit points and event points, computed once.

    Holds two sparse (units x events) matrices: near-repeat weights
    ``exp(-d / 200 m)`` (d <= 1 km) and a Gaussian density kernel
    ``exp(-d² / 2h²) / (2πh²)`` with h = 300 m (d <= 3h), per km².
    """

    def __init__(self, unit_xy: np.ndarray, event_xy: np.ndarray, event_month: np.ndarray, origin: pd.Timestamp):
        self.origin = origin
        months = pd.DatetimeIndex(pd.to_datetime(event_month)).to_period("M").to_timestamp()
        self.event_month = np.asarray(
            (months.year - origin.year) * 12 + (months.month - origin.month), dtype=np.int64
        ) if len(months) else np.zeros(0, dtype=np.int64)
        n_u, n_e = len(unit_xy), len(event_xy)
        if n_e == 0:
            self.near = sp.csr_matrix((n_u, 0))
            self.kde = sp.csr_matrix((n_u, 0))
            return
        tree_u, tree_e = cKDTree(unit_xy), cKDTree(event_xy)
        pairs = tree_u.sparse_distance_matrix(tree_e, NEAR_REPEAT_MAX_M, output_type="ndarray")
        i, j, d = pairs["i"], pairs["j"], pairs["v"]
        self.near = sp.csr_matrix((np.exp(-d / NEAR_REPEAT_DISTANCE_M), (i, j)), shape=(n_u, n_e))
        h = KDE_BANDWIDTH_M
        k = d <= KDE_MAX_M
        dens = np.exp(-(d[k] ** 2) / (2 * h * h)) / (2 * np.pi * h * h) * 1e6
        self.kde = sp.csr_matrix((dens, (i[k], j[k])), shape=(n_u, n_e))

    def near_repeat(self, cutoff_index: int) -> np.ndarray:
        """Sum of exp(-d/200 m) * exp(-age/4 weeks) over events in the 2 months before the cutoff.

        Police.uk gives months, not days, so an event's age is taken from the
        middle of its month: (cutoff - month - 0.5) months.
        """
        age = cutoff_index - self.event_month  # 1 = last month
        use = (age >= 1) & (age <= NEAR_REPEAT_MONTHS)
        w = np.where(use, np.exp(-(age - 0.5) * WEEKS_PER_MONTH / NEAR_REPEAT_WEEKS), 0.0)
        return np.asarray(self.near @ w).ravel()

    def density(self, cutoff_index: int, months: int = 12) -> np.ndarray:
        """Gaussian KDE (events per km²) of events in the ``months`` months before the cutoff."""
        age = cutoff_index - self.event_month
        w = ((age >= 1) & (age <= months)).astype(float)
        return np.asarray(self.kde @ w).ravel()
