"""Scale of analysis: incremental spatial autocorrelation and the neighbourhood Gi* uses.

ArcGIS Pro's Optimized Hot Spot Analysis chooses the fixed distance band of its Gi*
from the data; svrisk follows the same rules (described in ArcGIS's "How Incremental
Spatial Autocorrelation works", "How Optimized Hot Spot Analysis works" and "Best
practices for selecting a fixed distance band value"), on the units' representative
points:

1. **Locational outliers.** A unit whose nearest-neighbour distance is more than
   ``OUTLIER_SD`` (3) standard deviations above the mean nearest-neighbour distance is
   a locational outlier; it does not set the beginning distance.
2. **Distances.** The series starts at the *beginning distance*, the smallest distance
   at which every other unit has at least one neighbour (the largest nearest-neighbour
   distance among non-outliers), and grows by the *increment*, the mean nearest-
   neighbour distance of the non-outliers, over ``N_BANDS`` (10) bands. If that would
   pass the points' standard distance (``sqrt(mean((x - x̄)² + (y - ȳ)²))``), the 10
   bands are spread evenly from the beginning distance up to it instead. Bands at
   which some unit would have more than ``MAX_NEIGHBOURS`` (500) neighbours are not
   evaluated.
3. **Global Moran's I at each band**, binary band weights row-standardised, with its
   z-score under the randomisation assumption (the kurtosis-corrected variance ArcGIS
   and esda's ``Moran.z_rand`` use); units without a neighbour at a band are left out
   of that band's statistic.
4. **Peak.** A band is a peak when the z-score rose into it (the last change before it
   was a rise), falls at the next band, and exceeds ``PEAK_Z`` (1.65, ArcGIS's filter for a
   statistically significant peak). The first peak is the band; the highest peak is
   reported beside it. The last band is never a peak: a z-score still rising there has
   not peaked.
5. **Fallback.** With no peak (z rising over the whole series, never above 1.65, or fewer
   than ``MIN_UNITS`` (30) units, ArcGIS's minimum for the analysis) the band is the
   average distance from each unit to its ``K``-th nearest neighbour, ``K = 5%`` of the
   units, at least 3 and at most 30; if that exceeds the standard distance, the
   standard distance.
6. **Minimum neighbours.** The Gi* weights then give every unit at least
   ``MIN_NEIGHBOURS`` (8) neighbours: a unit with fewer inside the band takes its 8
   nearest (ArcGIS's best practice for a fixed distance band: Gi* z-scores stay reliable,
   even on skewed counts, when every feature has several neighbours, about eight). The
   incremental series itself uses the pure bands.

Fixed distance band is the default conceptualisation for areas and grids; queen
contiguity and k nearest neighbours remain options (:func:`select_neighbourhood`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse, stats

from geo.units import kth_neighbour_distance, neighbour_pairs

N_BANDS = 10
PEAK_Z = 1.65
OUTLIER_SD = 3.0
MAX_NEIGHBOURS = 500
MIN_UNITS = 30
MIN_NEIGHBOURS = 8
FALLBACK_SHARE, FALLBACK_MIN_K, FALLBACK_MAX_K = 0.05, 3, 30
CONCEPTUALISATIONS = ("auto", "band", "knn", "queen")
_LABELS = {"band": "fixed distance band", "knn": "k nearest neighbours", "queen": "queen contiguity"}


def global_moran(y, wmat) -> dict:
    """Global Moran's I of ``y`` on the weights matrix ``wmat`` (used as given), randomisation z.

    ``I = n / S0 * sum_ij w_ij z_i z_j / sum_i z_i²``, ``E[I] = -1 / (n - 1)`` and the
    variance under randomisation (Cliff and Ord; esda ``Moran.VI_rand``, ArcGIS's
    Spatial Autocorrelation tool), p two-sided from the normal distribution.

    Returns
    -------
    dict with ``I``, ``EI``, ``VI``, ``z``, ``p``, ``n``.
    """
    y = np.asarray(y, dtype=float)
    w = sparse.csr_matrix(wmat, dtype=float)
    n = y.size
    z = y - y.mean()
    z2 = (z * z).sum()
    s0 = w.sum()
    if n < 4 or z2 == 0 or s0 == 0:
        return {"I": math.nan, "EI": math.nan, "VI": math.nan, "z": math.nan, "p": math.nan, "n": int(n)}
    sym = w + w.T
    s1 = 0.5 * sym.multiply(sym).sum()
    s2 = float(((np.asarray(w.sum(axis=1)).ravel() + np.asarray(w.sum(axis=0)).ravel()) ** 2).sum())
    moran_i = n / s0 * float(z @ (w @ z)) / z2
    ei = -1.0 / (n - 1)
    b2 = n * (z**4).sum() / z2**2
    a = n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s0 * s0)
    b = b2 * ((n * n - n) * s1 - 2 * n * s2 + 6 * s0 * s0)
    vi = (a - b) / ((n - 1) * (n - 2) * (n - 3) * s0 * s0) - ei * ei
    zz = (moran_i - ei) / math.sqrt(vi) if vi > 0 else math.nan
    p = 2.0 * stats.norm.sf(abs(zz)) if np.isfinite(zz) else math.nan
    return {"I": float(moran_i), "EI": ei, "VI": float(vi), "z": float(zz), "p": float(p), "n": int(n)}


def standard_distance(coords) -> float:
    """Unweighted standard distance ``sqrt(mean((x - x̄)²) + mean((y - ȳ)²))`` of points."""
    c = np.asarray(coords, dtype=float)
    return float(math.sqrt(((c - c.mean(axis=0)) ** 2).mean(axis=0).sum()))


def locational_outliers(coords, sd: float = OUTLIER_SD) -> np.ndarray:
    """Boolean mask of units whose nearest-neighbour distance exceeds mean + ``sd`` standard deviations."""
    nn = kth_neighbour_distance(coords, 1)
    return nn > nn.mean() + sd * nn.std()


def isa_distances(coords, *, n_bands: int = N_BANDS, begin_m: float | None = None,
                  increment_m: float | None = None) -> np.ndarray:
    """The distance bands of the series (rule 2 of the module docstring)."""
    if n_bands < 2:
        raise ValueError(f"n_bands must be >= 2 to find a peak, got {n_bands}")
    coords = np.asarray(coords, dtype=float)
    nn = kth_neighbour_distance(coords, 1)
    inliers = ~locational_outliers(coords)
    begin = float(nn[inliers].max()) if begin_m is None else float(begin_m)
    step = float(nn[inliers].mean()) if increment_m is None else float(increment_m)
    if not begin > 0 or not step > 0:
        raise ValueError(f"beginning distance and increment must be > 0 m, got {begin!r} and {step!r}")
    bands = begin + step * np.arange(n_bands)
    top = standard_distance(coords)
    if begin_m is None and increment_m is None and bands[-1] > top and top > begin:
        bands = begin + (top - begin) / n_bands * np.arange(n_bands)
    return bands


def incremental_spatial_autocorrelation(y, coords, distances=None, *, n_bands: int = N_BANDS,
                                        max_neighbours: int = MAX_NEIGHBOURS) -> pd.DataFrame:
    """Global Moran's I over increasing distance bands (ArcGIS's Incremental Spatial Autocorrelation).

    Parameters
    ----------
    y : array-like (n,)
        Values per unit (e.g. event counts).
    coords : array-like (n, 2)
        Unit points in EPSG:27700 metres.
    distances : array-like, optional
        Bands to evaluate, increasing; default :func:`isa_distances`.
    n_bands : int
    max_neighbours : int
        Bands at which some unit has more neighbours than this are left out.

    Returns
    -------
    DataFrame
        One row per evaluated band: ``distance_m``, ``I``, ``EI``, ``VI``, ``z``, ``p``
        (two-sided), ``n`` (units with a neighbour, the ones the statistic uses),
        ``neighbours_min``, ``neighbours_mean``, ``neighbours_max`` (over those units),
        ``peak`` (rule 4: True at every peak).

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.array([(x, 0.0) for x in range(8)]) * 100
    >>> t = incremental_spatial_autocorrelation([0, 0, 0, 0, 9, 9, 9, 9], xy, [100, 200, 300])
    >>> t["n"].tolist()
    [8, 8, 8]
    """
    y = np.asarray(y, dtype=float)
    coords = np.asarray(coords, dtype=float)
    if coords.shape != (y.size, 2):
        raise ValueError(f"coords must have shape ({y.size}, 2) to match y, got {coords.shape}")
    bands = isa_distances(coords, n_bands=n_bands) if distances is None else np.asarray(distances, dtype=float)
    if bands.size == 0 or (np.diff(bands) <= 0).any():
        raise ValueError(f"distances must be increasing, got {bands.tolist()}")
    n = y.size
    if n > max_neighbours + 1:
        crowded = float(kth_neighbour_distance(coords, max_neighbours + 1).min())
        bands = bands[bands < crowded]
    rows = []
    if bands.size:
        i, j, d = neighbour_pairs(coords, float(bands[-1]))
        for band in bands:
            inside = d <= band + 1e-6
            bi, bj = i[inside], j[inside]
            card = np.bincount(bi, minlength=n)
            keep = np.flatnonzero(card > 0)
            pos = np.full(n, -1)
            pos[keep] = np.arange(keep.size)
            w = sparse.csr_matrix((1.0 / card[bi], (pos[bi], pos[bj])), shape=(keep.size, keep.size))
            res = global_moran(y[keep], w)
            rows.append({"distance_m": float(band), **{k: res[k] for k in ("I", "EI", "VI", "z", "p", "n")},
                         "neighbours_min": int(card[keep].min()) if keep.size else 0,
                         "neighbours_mean": float(card[keep].mean()) if keep.size else 0.0,
                         "neighbours_max": int(card[keep].max()) if keep.size else 0})
    table = pd.DataFrame(rows, columns=["distance_m", "I", "EI", "VI", "z", "p", "n", "neighbours_min",
                                        "neighbours_mean", "neighbours_max"])
    first, _ = find_peaks(table["z"].to_numpy())
    table["peak"] = False
    if first is not None:
        table.loc[peak_positions(table["z"].to_numpy()), "peak"] = True
    return table


def peak_positions(z, level: float = PEAK_Z) -> list[int]:
    """Positions of the peaks of a z-score series (rule 4 of the module docstring)."""
    z = np.asarray(z, dtype=float)
    peaks, rising = [], False
    for c, step in enumerate(np.diff(z)):
        if step > 0:
            rising = True
        elif step < 0:
            if rising and z[c] > level:
                peaks.append(c)
            rising = False
    return peaks


def find_peaks(z, level: float = PEAK_Z) -> tuple[int | None, int | None]:
    """``(first, highest)`` peak positions of a z-score series, ``(None, None)`` without one.

    >>> find_peaks([1.0, 2.0, 3.0, 2.5, 4.0, 3.0])
    (2, 4)
    >>> find_peaks([3.0, 2.0, 1.0])  # never rose: no peak
    (None, None)
    """
    peaks = peak_positions(z, level)
    if not peaks:
        return None, None
    z = np.asarray(z, dtype=float)
    return peaks[0], peaks[int(np.argmax(z[peaks]))]


def fallback_band(coords) -> tuple[float, str]:
    """Rule 5: the average distance to the K-th nearest neighbour, capped at the standard distance."""
    coords = np.asarray(coords, dtype=float)
    n = len(coords)
    k = int(min(max(int(FALLBACK_SHARE * n), FALLBACK_MIN_K), FALLBACK_MAX_K, n - 1))
    mean_k = float(kth_neighbour_distance(coords, k).mean())
    top = standard_distance(coords)
    if mean_k > top:
        return top, (f"the average distance to each unit's {k} nearest neighbours ({mean_k:,.0f} m) exceeds "
                     f"the standard distance of the units, so the standard distance ({top:,.0f} m) is used")
    return mean_k, f"the average distance from each unit to its {k} nearest neighbours ({mean_k:,.0f} m) is used"


@dataclass
class Neighbourhood:
    """The neighbourhood every local statistic of one analysis uses, and why.

    Attributes
    ----------
    graph : libpysal.graph.Graph
        Binary weights over the units (row order of the unit set).
    conceptualisation : str
        ``"band"``, ``"knn"`` or ``"queen"``.
    band_m : float or None
        The distance band (metres) for ``"band"``.
    rule : str
        ``"first peak"``, ``"fallback"`` or ``"given"`` (asked for by the analyst: a band,
        contiguity or k nearest).
    reason : str
        One sentence saying how the neighbourhood was chosen.
    min_neighbours : int
        The minimum-neighbours rule applied (0: none).
    topped_up : int
        Units that had fewer than ``min_neighbours`` inside the band.
    isa : DataFrame or None
        The incremental spatial autocorrelation series when it was run.
    """

    graph: object
    conceptualisation: str
    band_m: float | None
    rule: str
    reason: str
    min_neighbours: int = 0
    topped_up: int = 0
    isa: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        text = _LABELS[self.conceptualisation]
        return f"{text} {self.band_m:,.0f} m" if self.band_m is not None else text

    def neighbour_counts(self) -> dict:
        card = np.asarray(self.graph.cardinalities, dtype=float)
        return {"min": int(card.min()), "mean": round(float(card.mean()), 2), "max": int(card.max())}

    def to_meta(self) -> dict:
        """JSON-ready description (band, rule, reason, neighbour counts, the series)."""
        first = max_peak = None
        if self.isa is not None and self.isa["peak"].any():
            f, m = find_peaks(self.isa["z"].to_numpy())
            first, max_peak = float(self.isa["distance_m"].iloc[f]), float(self.isa["distance_m"].iloc[m])
        return {
            "conceptualisation": _LABELS[self.conceptualisation], "band_m": self.band_m, "rule": self.rule,
            "reason": self.reason, "min_neighbours": self.min_neighbours, "units_topped_up": self.topped_up,
            "neighbours": self.neighbour_counts(), "first_peak_m": first, "max_peak_m": max_peak,
            "incremental_spatial_autocorrelation": None if self.isa is None else [
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in self.isa.round(6).to_dict("records")],
        }


def choose_band(y, coords) -> tuple[float, str, str, pd.DataFrame | None]:
    """``(band_m, rule, reason, isa_table)`` by rules 1-5 of the module docstring."""
    coords = np.asarray(coords, dtype=float)
    n = len(coords)
    if n < MIN_UNITS:
        band, how = fallback_band(coords)
        return band, "fallback", (f"only {n} units, fewer than the {MIN_UNITS} incremental spatial "
                                  f"autocorrelation needs: {how}"), None
    isa = incremental_spatial_autocorrelation(y, coords)
    first, best = find_peaks(isa["z"].to_numpy())
    if first is not None:
        row = isa.iloc[first]
        also = "" if best == first else (f"; the highest peak is at {isa['distance_m'].iloc[best]:,.0f} m "
                                         f"(z {isa['z'].iloc[best]:.2f})")
        return float(row["distance_m"]), "first peak", (
            f"first peak of incremental spatial autocorrelation: global Moran's I z {row['z']:.2f} at "
            f"{row['distance_m']:,.0f} m over {len(isa)} bands from {isa['distance_m'].iloc[0]:,.0f} to "
            f"{isa['distance_m'].iloc[-1]:,.0f} m{also}"), isa
    band, how = fallback_band(coords)
    if len(isa):
        zmax = isa["z"].max()
        span = f"{len(isa)} bands from {isa['distance_m'].iloc[0]:,.0f} to {isa['distance_m'].iloc[-1]:,.0f} m"
        if zmax > PEAK_Z:
            at = isa["distance_m"].iloc[int(isa["z"].to_numpy().argmax())]
            why = (f"incremental spatial autocorrelation found no peak over {span}: global Moran's I z kept "
                   f"rising without falling back (highest z {zmax:.2f}, at {at:,.0f} m), so no band stands out")
        else:
            why = (f"incremental spatial autocorrelation never passed z {PEAK_Z} over {span} "
                   f"(highest z {zmax:.2f})")
    else:
        why = f"every band would give some unit more than {MAX_NEIGHBOURS} neighbours"
    return band, "fallback", f"{why}, so {how}", isa


def select_neighbourhood(units, y, conceptualisation: str = "auto", *, band_m: float | None = None,
                         min_neighbours: int = MIN_NEIGHBOURS) -> Neighbourhood:
    """The neighbourhood of an analysis on ``units`` with values ``y``.

    Parameters
    ----------
    units : geo.units.UnitSet
    y : array-like (n,)
        Values in the unit set's row order (the incremental series is computed on them).
    conceptualisation : {"auto", "band", "knn", "queen"}
        ``"auto"``: a fixed distance band chosen by incremental spatial autocorrelation
        (``band_m`` given: that band); ``"band"``: the band ``band_m`` (required);
        ``"knn"``: the unit set's k nearest neighbours; ``"queen"``: contiguity.
    band_m : float, optional
    min_neighbours : int
        Minimum neighbours for band neighbourhoods (rule 6); 0 turns the rule off.

    Returns
    -------
    Neighbourhood
    """
    if conceptualisation not in CONCEPTUALISATIONS:
        raise ValueError(f"neighbourhood must be one of {CONCEPTUALISATIONS}, got {conceptualisation!r}")
    if isinstance(min_neighbours, bool) or int(min_neighbours) != min_neighbours or min_neighbours < 0:
        raise ValueError(f"min_neighbours must be an int >= 0, got {min_neighbours!r}")
    y = np.asarray(y, dtype=float)
    if y.size != len(units):
        raise ValueError(f"y has {y.size} values but {units!r} has {len(units)} units")
    if conceptualisation == "queen":
        return Neighbourhood(units.graph("queen"), "queen", None, "given",
                             "asked for: polygons sharing a point (or within 1 m) are neighbours")
    if conceptualisation == "knn":
        return Neighbourhood(units.graph("knn"), "knn", None, "given",
                             f"asked for: each unit's {min(units.knn, len(units) - 1)} nearest units are its neighbours")
    isa = None
    if band_m is not None:
        if not float(band_m) > 0:
            raise ValueError(f"band_m must be > 0 metres, got {band_m!r}")
        band, rule, reason = float(band_m), "given", f"a {float(band_m):,.0f} m band was given"
    elif conceptualisation == "band":
        raise ValueError("neighbourhood 'band' needs band_m (metres); use 'auto' to choose it from the data")
    else:
        band, rule, reason, isa = choose_band(y, units.centroids)
    k = min(int(min_neighbours), len(units) - 1)
    pure = units.band_graph(band, 0)
    short = int((np.asarray(pure.cardinalities) < k).sum()) if k else 0
    graph = units.band_graph(band, k)
    if short:
        reason += f"; {short} unit(s) with fewer than {k} neighbours inside it take their {k} nearest"
    return Neighbourhood(graph, "band", band, rule, reason, min_neighbours=k, topped_up=short, isa=isa)
