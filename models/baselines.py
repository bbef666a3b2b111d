"""The rankings analysts already use, as forecasters a model has to beat.

Every baseline gives an *expected count* per unit for the horizon, so the area slice
(which orders by expected count per m²) treats it like any model:

* :class:`ColumnRanker` ranks by one count column of the feature matrix, scaled so
  its mean matches the training target: last-period counts (``cnt_sv_12m``,
  ``cnt_sv_1m``).
* :class:`PanelMean` is the long-window and seasonal mean. It needs more months
  than the feature matrix's 12-month windows hold, so it reads the unit x month
  panel directly rather than the matrix.
* :class:`KernelBaseline` is the retrospective KDE (``kind="kde"``, a Gaussian
  kernel over the last 12 months) or prospective hotspotting (``kind="prospective"``,
  Bowers, Johnson & Pease 2004: an exponential distance decay and a time decay
  over recent months). A density is not a count: each event's kernel is spread
  over a fine raster (:class:`EventSurface`) and the mass falling in each unit is
  summed, so the score is the kernel's expected count in the unit (density x area,
  integrated). The bandwidth (and the time decay) is chosen at each cutoff by a
  backtest on earlier origins only (targets that end before the cutoff): the
  candidate that caught most events in the area slices there.

:func:`baseline_methods` names the standard set for a backtest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from features.incidents import WEEKS_PER_MONTH, month_ordinal, ordinal_month
from features.months import month, panel_months, shift, window_sum
from features.scale import iter_events
from models.evaluation import area_catch

BASELINE_COLUMNS = {
    "count_12m": "cnt_sv_12m",
    "count_1m": "cnt_sv_1m",
}
"""Backtest name -> feature column of each column baseline."""

KDE_BANDWIDTHS_M = (300.0, 50.0, 100.0, 150.0, 200.0, 400.0, 600.0, 800.0)
"""Candidate Gaussian bandwidths of the KDE baseline (the first wins ties: the old fixed 300 m)."""
PROSPECTIVE_DISTANCES_M = (200.0, 50.0, 100.0, 400.0)
"""Candidate distance decays (``exp(-d / scale)``) of prospective hotspotting (first wins ties)."""
PROSPECTIVE_WEEKS = (4.0, 2.0, 8.0, 16.0)
"""Candidate time decays (``exp(-age / weeks)``) of prospective hotspotting (first wins ties)."""
SELECTION_COVERAGES = (0.01, 0.05, 0.10)
"""Area slices whose catch chooses a kernel baseline's bandwidth."""


class ColumnRanker(RegressorMixin, BaseEstimator):
    """Rank by one feature column; predict ``scale_ * column``.

    Parameters
    ----------
    column : str or int, default 0
        Feature name (when fitted on a DataFrame) or position.

    Attributes
    ----------
    column_index_ : int
        Position of the column in the fitted matrix.
    scale_ : float
        ``mean(y) / mean(column)`` on the training rows (1 when the column's
        mean is not positive), so predictions are on the target's scale. It is
        positive, so it never changes the ranking.

    Examples
    --------
    >>> X = pd.DataFrame({"cnt_sv_12m": [12.0, 0.0, 24.0]})
    >>> ColumnRanker("cnt_sv_12m").fit(X, [1.0, 0.0, 2.0]).predict(X)
    array([1., 0., 2.])
    """

    def __init__(self, column: str | int = 0):
        self.column = column

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True, ensure_all_finite=True)
        self.column_index_ = self._locate()
        x = X[:, self.column_index_]
        mx, my = float(np.mean(x)), float(np.mean(y))
        self.scale_ = my / mx if mx > 0 and my > 0 else 1.0
        return self

    def _locate(self) -> int:
        if isinstance(self.column, str):
            names = list(getattr(self, "feature_names_in_", []))
            if self.column not in names:
                raise ValueError(
                    f"ColumnRanker: column {self.column!r} is not in the feature matrix "
                    f"(columns: {names[:12]}{'...' if len(names) > 12 else ''})"
                )
            return names.index(self.column)
        index = int(self.column)
        if not 0 <= index < self.n_features_in_:
            raise ValueError(
                f"ColumnRanker: column position {index} outside 0..{self.n_features_in_ - 1}"
            )
        return index

    def predict(self, X):
        check_is_fitted(self, "scale_")
        X = validate_data(self, X, reset=False, ensure_all_finite=True)
        return self.scale_ * X[:, self.column_index_].astype(float)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.regressor_tags.poor_score = True  # one column, by design
        return tags


class PanelMean:
    """Mean monthly count over a long window before the cutoff, or the same season last year.

    Not a feature-matrix estimator: it reads the unit x month panel, because it
    looks further back than the matrix's windows.

    Parameters
    ----------
    window : int or None, default None
        Months before the cutoff to average over; None means every month in
        the panel before the cutoff.
    seasonal : bool, default False
        If True, score by the counts in ``[cutoff - 12, cutoff - 12 + horizon)``
        (the same calendar months a year earlier) instead.
    """

    def __init__(self, window: int | None = None, seasonal: bool = False):
        self.window = window
        self.seasonal = seasonal

    def scores(self, panel: pd.DataFrame, cutoff: pd.Timestamp, horizon: int) -> pd.Series:
        """Expected count in ``[cutoff, cutoff + horizon)`` per unit (panel index)."""
        months = panel_months(panel)
        cutoff = pd.Timestamp(cutoff)
        if self.seasonal:
            start = cutoff - pd.DateOffset(months=12)
            end = start + pd.DateOffset(months=horizon)
            cols = (months >= start) & (months < end)
            if cols.sum() < horizon:
                raise ValueError(
                    f"PanelMean(seasonal): the panel has no months {start:%Y-%m}..{end:%Y-%m} "
                    f"before cutoff {cutoff:%Y-%m}"
                )
            return panel.loc[:, cols].sum(axis=1).astype(float)
        before = months < cutoff
        if self.window is not None:
            before &= months >= cutoff - pd.DateOffset(months=int(self.window))
        if not before.any():
            raise ValueError(f"PanelMean: the panel has no months before cutoff {cutoff:%Y-%m}")
        return panel.loc[:, before].mean(axis=1).astype(float) * horizon

    def __repr__(self) -> str:
        return f"PanelMean(window={self.window!r}, seasonal={self.seasonal!r})"


class EventSurface:
    """Target events binned per month on a fine raster over the units, and the unit of each raster cell.

    Kernels are applied by convolving each month's raster (FFT) and summing the
    smoothed mass over the raster cells whose centres lie in each unit: the
    kernel's expected count in the unit. Mass spread outside every unit is lost,
    as it should be (the study area ends there).

    Parameters
    ----------
    xy : array (n, 2)
        Event points, metres (EPSG:27700).
    m : int array (n,)
        Month ordinal of each event (:func:`features.incidents.month_ordinal`).
    units : geo.units.UnitSet
    cell_m : float
        Raster cell size; made coarser when the extent would need more than
        ``max_cells`` cells.
    pad_m : float
        Margin around the units (events kept within the ingest tolerance lie outside them).
    """

    def __init__(self, xy, m, units, cell_m: float = 50.0, pad_m: float = 500.0, max_cells: int = 4_000_000):
        import geopandas as gpd
        from scipy import sparse

        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        m = np.asarray(m, dtype=np.int64)
        xmin, ymin, xmax, ymax = units.frame.total_bounds
        xmin, ymin, xmax, ymax = xmin - pad_m, ymin - pad_m, xmax + pad_m, ymax + pad_m
        cell = max(float(cell_m), float(np.sqrt((xmax - xmin) * (ymax - ymin) / max_cells)))
        self.cell_m = cell
        self.x0, self.y0 = np.floor(xmin / cell) * cell, np.floor(ymin / cell) * cell
        self.nx = int(np.ceil((xmax - self.x0) / cell))
        self.ny = int(np.ceil((ymax - self.y0) / cell))
        ok = (m >= 0) & np.isfinite(xy).all(axis=1)
        col = np.floor((xy[ok, 0] - self.x0) / cell).astype(np.int64)
        row = np.floor((xy[ok, 1] - self.y0) / cell).astype(np.int64)
        inside = (col >= 0) & (col < self.nx) & (row >= 0) & (row < self.ny)
        self.outside_raster = int((~inside).sum())
        months = np.unique(m[ok])
        self.months = pd.DatetimeIndex([ordinal_month(v) for v in months])
        pos = np.searchsorted(months, m[ok][inside])
        self.counts = np.zeros((len(months), self.ny, self.nx), dtype=np.float32)
        np.add.at(self.counts, (pos, row[inside], col[inside]), 1.0)
        cx = self.x0 + (np.arange(self.nx) + 0.5) * cell
        cy = self.y0 + (np.arange(self.ny) + 0.5) * cell
        gx, gy = np.meshgrid(cx, cy)
        centres = gpd.GeoSeries(gpd.points_from_xy(gx.ravel(), gy.ravel()), crs=units.frame.crs)
        unit = units.locate(centres)[0]
        cells = np.flatnonzero(unit >= 0)
        self.n_units = len(units)
        self.ids = units.ids
        self._to_units = sparse.csr_matrix((np.ones(len(cells)), (cells, unit[cells])),
                                           shape=(self.ny * self.nx, self.n_units))
        self._sums: dict[tuple, np.ndarray] = {}
        self.memo: dict[tuple, object] = {}
        """Results of the kernel baselines on this surface (they depend only on it and their arguments)."""

    @classmethod
    def from_store(cls, store, units, target_groups: Sequence[str], **kwargs) -> EventSurface:
        """The surface of a store's events of ``target_groups`` (streamed in chunks)."""
        xs, ms = [], []
        groups = set(target_groups)
        for chunk in iter_events(store):
            keep = chunk["group"].astype("string").isin(groups).fillna(False).to_numpy(dtype=bool)
            part = chunk[keep]
            pts = part.geometry
            xs.append(np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()]) if len(part) else np.zeros((0, 2)))
            ms.append(month_ordinal(part["month"]))
        return cls(np.concatenate(xs) if xs else np.zeros((0, 2)), np.concatenate(ms) if ms else [], units, **kwargs)

    def _kernel(self, kind: str, scale_m: float) -> np.ndarray:
        """The 2-D kernel on the raster, summing to 1: Gaussian (sd ``scale_m``) or ``exp(-d / scale_m)``."""
        reach = (4.0 if kind == "gaussian" else 6.0) * scale_m
        r = int(np.ceil(reach / self.cell_m))
        d = np.hypot(*np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1))) * self.cell_m
        k = np.exp(-0.5 * (d / scale_m) ** 2) if kind == "gaussian" else np.exp(-d / scale_m)
        k[d > reach] = 0.0
        return k / k.sum()

    def unit_sums(self, kind: str, scale_m: float) -> pd.DataFrame:
        """Units x months: each month's events spread by the kernel, summed per unit (cached)."""
        from scipy.signal import fftconvolve

        key = (kind, float(scale_m))
        if key not in self._sums:
            if len(self.months):
                smooth = fftconvolve(self.counts, self._kernel(kind, scale_m)[None], mode="same", axes=(1, 2))
                flat = np.maximum(smooth.reshape(len(self.months), -1), 0.0)
                self._sums[key] = np.asarray(self._to_units.T @ flat.T.astype(float))
            else:
                self._sums[key] = np.zeros((self.n_units, 0))
        return pd.DataFrame(self._sums[key], index=self.ids, columns=self.months)


class KernelBaseline:
    """Retrospective KDE or prospective hotspotting as an expected count, its bandwidth chosen on earlier origins.

    ``kind="kde"``: Gaussian kernel over the events of the ``months`` before the
    cutoff, as a mean monthly count x horizon. ``kind="prospective"``: exponential
    distance decay ``exp(-d / scale)`` and time decay ``exp(-age / weeks)`` (age
    from mid-month, as police.uk gives months) over the ``months`` before the
    cutoff, as a decay-weighted mean monthly count x horizon.

    Parameters
    ----------
    kind : {"kde", "prospective"}
    scales : sequence of float, optional
        Candidate bandwidths (kde) or distance decays (prospective), metres;
        default :data:`KDE_BANDWIDTHS_M` / :data:`PROSPECTIVE_DISTANCES_M`.
    weeks : sequence of float, optional
        Candidate time decays (prospective only); default :data:`PROSPECTIVE_WEEKS`.
    months : int, optional
        Months looked back (default 12).
    coverages : sequence of float
        Area slices whose catch on earlier origins chooses the candidate.

    Attributes
    ----------
    choices_ : dict
        Cutoff ("YYYY-MM") -> the chosen ``(scale, weeks)`` (weeks None for kde).
    """

    def __init__(self, kind: str = "kde", scales: Sequence[float] | None = None,
                 weeks: Sequence[float] | None = None, months: int | None = None,
                 coverages: Sequence[float] = SELECTION_COVERAGES):
        if kind not in ("kde", "prospective"):
            raise ValueError(f"KernelBaseline: kind must be 'kde' or 'prospective', got {kind!r}")
        self.kind = kind
        self.scales = tuple(scales) if scales is not None else (
            KDE_BANDWIDTHS_M if kind == "kde" else PROSPECTIVE_DISTANCES_M)
        self.weeks = (None,) if kind == "kde" else tuple(weeks if weeks is not None else PROSPECTIVE_WEEKS)
        self.months = int(months if months is not None else 12)
        self.coverages = tuple(coverages)
        self.choices_: dict[str, tuple] = {}

    @property
    def candidates(self) -> list[tuple]:
        """(scale, weeks) pairs in tie-break order (the first listed wins a tie)."""
        return [(s, w) for s in self.scales for w in self.weeks]

    def table(self, surface: EventSurface, horizon: int, scale: float, weeks=None) -> pd.DataFrame:
        """Units x cutoffs: the expected count for ``horizon`` months at every cutoff the data allows.

        Months without data are left out of the window and the weights renormalised.
        """
        key = ("table", self.kind, scale, weeks, self.months, int(horizon))
        if key not in surface.memo:
            sums = surface.unit_sums("gaussian" if self.kind == "kde" else "exponential", scale)
            months = pd.DatetimeIndex(sums.columns)
            if not len(months):
                raise ValueError("KernelBaseline: the events have no months")
            cutoffs = pd.date_range(months[0], shift(months[-1], self.months), freq="MS")
            age = month_ordinal(cutoffs)[None, :] - month_ordinal(months)[:, None]
            inside = (age >= 1) & (age <= self.months)
            decay = np.ones(age.shape) if weeks is None else np.exp(-(age - 0.5) * WEEKS_PER_MONTH / float(weeks))
            w = np.where(inside, decay, 0.0)
            norm = w.sum(axis=0)
            values = sums.to_numpy() @ (w / np.where(norm > 0, norm, 1.0)) * int(horizon)
            surface.memo[key] = pd.DataFrame(values, index=sums.index, columns=cutoffs)
        return surface.memo[key]

    def expected(self, surface: EventSurface, cutoff, horizon: int, scale: float, weeks=None) -> pd.Series:
        """Expected count in ``[cutoff, cutoff + horizon)`` per unit with one candidate's parameters."""
        table = self.table(surface, horizon, scale, weeks)
        c = month(cutoff)
        if c not in table.columns:
            return pd.Series(0.0, index=table.index)  # no event within the window before the cutoff
        return table[c].rename(None)

    def _caught(self, surface, panel, areas, horizon, t, scale, weeks) -> float:
        key = ("caught", self.kind, scale, weeks, self.months, int(horizon), month(t), self.coverages)
        if key not in surface.memo:
            # the target window and areas once per origin, as arrays: every candidate is scored on them
            target = ("target", month(t), int(horizon), id(areas))
            if target not in surface.memo:
                index = panel.index.astype(str)
                surface.memo[target] = (index, window_sum(panel, t, horizon).to_numpy(dtype=float),
                                        areas.reindex(index).to_numpy(dtype=float))
            index, actual, a = surface.memo[target]
            s = self.expected(surface, t, horizon, scale, weeks).to_numpy(dtype=float)
            surface.memo[key] = area_catch(s, a, actual, index, self.coverages)
        return surface.memo[key]

    def choose(self, surface: EventSurface, panel: pd.DataFrame, areas: pd.Series, horizon: int,
               select_origins: Sequence) -> tuple:
        """The candidate that caught most events in the area slices at ``select_origins`` (first wins ties).

        ``panel`` must be the counts of the surface's events (the target), units x months.
        """
        candidates = self.candidates
        if len(candidates) == 1 or not len(select_origins):
            return candidates[0]
        caught = [sum(self._caught(surface, panel, areas, horizon, t, scale, weeks) for t in select_origins)
                  for scale, weeks in candidates]
        return candidates[int(np.argmax(caught))]

    def scores(self, surface: EventSurface, panel: pd.DataFrame, areas: pd.Series, cutoff, horizon: int,
               select_origins: Sequence = ()) -> pd.Series:
        """Expected count per unit at ``cutoff``, with the candidate chosen on ``select_origins``.

        ``select_origins`` must be origins whose targets end before ``cutoff``
        (:func:`models.backtest.training_origins`); ``panel`` the target's units x
        months counts (only months before ``cutoff`` are read).
        """
        c = month(cutoff)
        for t in select_origins:
            if shift(month(t), int(horizon)) > c:
                raise ValueError(f"KernelBaseline: selection origin {month(t):%Y-%m} with horizon {horizon} "
                                 f"ends after the cutoff {c:%Y-%m}")
        before = panel.loc[:, panel_months(panel) < c]
        scale, weeks = self.choose(surface, before, areas, horizon, select_origins)
        self.choices_[f"{c:%Y-%m}"] = (scale, weeks)
        return self.expected(surface, c, horizon, scale, weeks)

    def __repr__(self) -> str:
        return f"KernelBaseline(kind={self.kind!r}, scales={self.scales!r}, weeks={self.weeks!r}, months={self.months})"


def baseline_methods() -> dict:
    """The standard baselines, by backtest name (counts, long-window mean, KDE, prospective)."""
    methods: dict = {name: ColumnRanker(col) for name, col in BASELINE_COLUMNS.items()}
    methods["long_mean"] = PanelMean(window=None)
    methods["kde"] = KernelBaseline("kde")
    methods["prospective"] = KernelBaseline("prospective")
    return methods
