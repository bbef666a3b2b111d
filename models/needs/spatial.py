"""Where harm falls: rate bands, smoothed rates, concentration, and hot spots on a count panel."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.context import eb_rate
from geo.units import UnitSet
from models.hotspots.analysis import HotspotResult, analyse_hotspots

NEEDS_ASSESSMENT_BANDS = (1.0, 1.5, 2.0, 3.0, 5.0)
"""The needs assessment's published ward bands for drug offences, per 1,000 residents:
<1, 1-1.5, 1.5-2, 2-3, 3-5, >5."""
PUBLISHED_BANDS = {"drugs": NEEDS_ASSESSMENT_BANDS}
"""Measures whose bands the needs assessment published; others follow :data:`RELATIVE_BANDS`."""
RELATIVE_BANDS = (0.4, 0.6, 0.8, 1.2, 2.0)
"""Band bounds as multiples of the borough rate, for measures without published bands: the
published drug bands have this shape around the borough's drug rate (about 2.5 per 1,000):
well below, below, a little below, around, above and well above the borough rate."""
TOP_SHARE = 0.05
"""Concentration: the share of harm in the top 5% of places."""


def _round_sig(x: float, digits: int = 2) -> float:
    if not np.isfinite(x) or x <= 0:
        return float(x)
    return round(x, -int(math.floor(math.log10(abs(x)))) + digits - 1)


def rate_bands(measure: str, borough_rate: float) -> tuple[float, ...]:
    """Upper bounds (per 1,000) of the map bands of one measure.

    Published bands when the needs assessment has them (:data:`PUBLISHED_BANDS`), else
    :data:`RELATIVE_BANDS` times the borough rate, rounded to two significant figures.

    >>> rate_bands("drugs", 2.4)
    (1.0, 1.5, 2.0, 3.0, 5.0)
    >>> rate_bands("robbery", 1.0)
    (0.4, 0.6, 0.8, 1.2, 2.0)
    """
    if measure in PUBLISHED_BANDS:
        return tuple(PUBLISHED_BANDS[measure])
    if not np.isfinite(borough_rate) or borough_rate <= 0:
        return ()
    bounds = [_round_sig(r * borough_rate) for r in RELATIVE_BANDS]
    return tuple(dict.fromkeys(bounds))


def band_labels(bounds: Sequence[float]) -> list[str]:
    """``["< 1", "1 - 1.5", ..., "> 5"]`` for bounds ``(1, 1.5, ..., 5)``."""
    if not len(bounds):
        return ["all"]
    f = lambda v: f"{v:g}"  # noqa: E731
    return [f"< {f(bounds[0])}", *[f"{f(a)} - {f(b)}" for a, b in zip(bounds, bounds[1:], strict=False)],
            f"> {f(bounds[-1])}"]


def band_of(values, bounds: Sequence[float]) -> np.ndarray:
    """Band index of each value (a value on a bound goes to the lower band); -1 for NaN.

    >>> band_of([0.5, 1.0, 2.5, 7.0, float("nan")], (1.0, 1.5, 2.0, 3.0, 5.0)).tolist()
    [0, 0, 3, 5, -1]
    """
    v = np.asarray(values, dtype=float)
    idx = np.searchsorted(np.asarray(bounds, dtype=float), v, side="left")
    return np.where(np.isfinite(v), idx, -1)


def smoothed_rates(counts, population) -> np.ndarray:
    """Empirical-Bayes rates per 1,000 (global Marshall estimator, :func:`features.context.eb_rate`)."""
    return eb_rate(np.asarray(counts, dtype=float), np.asarray(population, dtype=float))


def lorenz(values) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve: cumulative share of places (x) and of harm (y), places sorted from most harm.

    Sorted from the highest value, so ``y`` at ``x = 0.05`` is the share of harm in the top 5%
    of places (the curve lies above the diagonal). Both start at 0 and end at 1.
    """
    v = np.sort(np.clip(np.asarray(values, dtype=float), 0, None))[::-1]
    n = len(v)
    total = v.sum()
    x = np.arange(n + 1) / max(n, 1)
    y = np.r_[0.0, np.cumsum(v) / total] if total > 0 else x.copy()
    return x, y


def gini(values) -> float:
    """Gini coefficient of harm across places (0: spread evenly, 1: all in one place).

    >>> gini([1, 1, 1, 1])
    0.0
    >>> round(gini([0, 0, 0, 4]), 2)
    0.75
    """
    v = np.sort(np.clip(np.asarray(values, dtype=float), 0, None))
    n = len(v)
    if n == 0 or v.sum() == 0:
        return float("nan")
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * v).sum()) / (n * v.sum()) - (n + 1) / n)


def top_share(values, share: float = TOP_SHARE) -> tuple[float, int]:
    """(share of the total in the top ``ceil(share * n)`` places, that number of places)."""
    v = np.sort(np.clip(np.asarray(values, dtype=float), 0, None))[::-1]
    k = max(1, math.ceil(share * len(v)))
    total = v.sum()
    return (float(v[:k].sum() / total) if total > 0 else float("nan")), k


def concentration(values: Mapping[str, np.ndarray] | pd.DataFrame, share: float = TOP_SHARE) -> pd.DataFrame:
    """Top-share and Gini of each column of values per place (e.g. ``count`` and ``harm``)."""
    rows = []
    for name, v in dict(values).items():
        s, k = top_share(v, share)
        rows.append({"value": name, "places": len(np.asarray(v)), "top_places": k,
                     "top_share": s, "gini": gini(v)})
    return pd.DataFrame(rows)


@dataclass
class CountPanel:
    """Units and a units x months panel of counts: what the hotspot analysis reads.

    It stands where a :class:`features.build.FeatureBuilder` would (``units`` and
    ``panel()``), for counts that do not come from point events (e.g. the Met ward tables).
    """

    units: UnitSet
    counts: pd.DataFrame  # index unit_id (every unit), columns months (every complete month)

    def panel(self) -> pd.DataFrame:
        return self.counts


def count_panel(units: UnitSet, counts: pd.DataFrame, months: Sequence[pd.Timestamp]) -> CountPanel:
    """A :class:`CountPanel` from long counts (``unit_id``, ``month``, ``count``) over ``months``.

    Units and months without a row count 0; months outside ``months`` are dropped.
    """
    months = pd.DatetimeIndex(sorted(months), name="month")
    wide = counts.pivot_table(index="unit_id", columns="month", values="count", aggfunc="sum", fill_value=0.0)
    wide.columns = pd.DatetimeIndex(wide.columns)
    wide = wide.reindex(index=units.ids, columns=months, fill_value=0.0).astype(float)
    return CountPanel(units, wide)


def hotspots(panel: CountPanel, cutoff, options: dict | None = None, window_months: int = 12) -> HotspotResult:
    """The hotspot analysis (Gi*, LISA, emerging hot spots, operational areas) on a count panel.

    ``options`` are :func:`models.hotspots.analysis.analyse_hotspots`'s keyword arguments
    (neighbourhood, inference, permutations, seed, FDR level, ...).
    """
    return analyse_hotspots(panel, cutoff, window_months=window_months, areas=True, **(options or {}))


def base_label(year: int) -> str:
    """How a residents year is named: a census (1991, 2001, 2011, 2021, ...) or a mid-year estimate."""
    return f"Census {year}" if year % 10 == 1 else f"mid-{year} estimate"


def rank_sensitivity(counts: pd.Series, populations: dict[str, pd.Series], base: str) -> pd.DataFrame:
    """Rates per 1,000 and ranks of the same counts under each population base, and each rank's move.

    Parameters
    ----------
    counts : Series
        Offences per unit (index: unit id).
    populations : dict of label -> Series
        Residents per unit under each base.
    base : str
        The base the pack uses (a key of ``populations``): ``rank_change`` is against it.

    Returns
    -------
    DataFrame
        ``unit_id, base, population, rate_per_1000, rank, rank_change``; rank 1 is the highest rate,
        ties share the lower rank (``method="min"``). A negative ``rank_change`` moves up.

    Examples
    --------
    >>> c = pd.Series([10.0, 10.0], index=["a", "b"])
    >>> t = rank_sensitivity(c, {"x": pd.Series([100.0, 200.0], index=["a", "b"]),
    ...                          "y": pd.Series([300.0, 200.0], index=["a", "b"])}, "x")
    >>> t[t["base"] == "y"]["rank_change"].tolist()
    [1, -1]
    """
    parts = []
    for name, pop in populations.items():
        pop = pop.reindex(counts.index).astype(float)
        rate = 1000.0 * counts / pop.where(pop > 0)
        parts.append(pd.DataFrame({"unit_id": counts.index, "base": name, "population": pop.to_numpy(),
                                   "rate_per_1000": rate.to_numpy(),
                                   "rank": rate.rank(ascending=False, method="min").to_numpy()}))
    out = pd.concat(parts, ignore_index=True)
    ref = out[out["base"] == base].set_index("unit_id")["rank"]
    out["rank_change"] = (out["rank"] - out["unit_id"].map(ref)).astype("Int64")
    out["rank"] = out["rank"].astype("Int64")
    return out
