"""Move area statistics from one set of polygons to another (areal interpolation).

The same arithmetic as PySAL tobler's ``area_interpolate``: an overlap table
``A[i, j] = area(source_i ∩ target_j)`` built once, then

* extensive variables (counts, e.g. residents):
  ``v_j = sum_i v_i * A_ij / area_i`` (uniform density within each source);
* intensive variables (scores, rates), area-weighted:
  ``v_j = sum_i v_i * A_ij / sum_i A_ij``;
* intensive variables, population-weighted: as above with ``A_ij`` replaced by
  the residents the source puts in the overlap, ``pop_i * A_ij / area_i``.

The table is kept as a sparse matrix so every variable and every cutoff reuses it.
A target that overlaps no source (a sliver outside the source coverage) takes the
values of the nearest source polygon.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import shapely


def overlap_matrix(source, target) -> sp.csr_matrix:
    """Sparse ``(n_source, n_target)`` matrix of intersection areas in m².

    Parameters
    ----------
    source, target : GeoSeries or array of polygons in the same (metric) CRS.

    Examples
    --------
    >>> import shapely
    >>> src = [shapely.box(0, 0, 2, 1)]
    >>> tgt = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]
    >>> overlap_matrix(src, tgt).toarray().tolist()
    [[1.0, 1.0]]
    """
    src = shapely.make_valid(np.asarray(getattr(source, "geometry", source), dtype=object))
    tgt = shapely.make_valid(np.asarray(getattr(target, "geometry", target), dtype=object))
    tree = shapely.STRtree(src)
    tidx, sidx = tree.query(tgt, predicate="intersects")
    areas = shapely.area(shapely.intersection(src[sidx], tgt[tidx]))
    keep = areas > 0
    tidx, sidx, areas = tidx[keep], sidx[keep], areas[keep]
    covered = np.zeros(len(tgt), dtype=bool)
    covered[tidx] = True
    lonely = np.flatnonzero(~covered)
    if len(lonely):
        near = tree.nearest(tgt[lonely])
        # weight 1 m² is arbitrary: it only needs to be positive, the row is alone
        sidx = np.r_[sidx, near]
        tidx = np.r_[tidx, lonely]
        areas = np.r_[areas, np.ones(len(lonely))]
    return sp.csr_matrix((areas, (sidx, tidx)), shape=(len(src), len(tgt)))


def extensive(values: np.ndarray, overlap: sp.spmatrix, source_area: np.ndarray) -> np.ndarray:
    """Counts moved to targets, assuming uniform density within each source."""
    share = sp.diags(1.0 / np.where(source_area > 0, source_area, np.inf)) @ overlap
    return np.asarray(share.T @ np.nan_to_num(np.asarray(values, dtype=float)))


def intensive(values: np.ndarray, overlap: sp.spmatrix, weight: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of source values over each target.

    ``weight`` is a per-source weight per unit area (e.g. residents / area for
    population weighting); None weights by area alone. Sources with a missing
    value are left out of the mean; a target whose weights are all zero falls
    back to area weighting.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    ok = ~np.isnan(values)
    filled = np.where(ok, values, 0.0)
    area_w = overlap.T  # (n_target, n_source)
    out = _wmean(area_w, filled, ok)
    if weight is not None:
        w = overlap.multiply(np.asarray(weight, dtype=float)[:, None]).T.tocsr()
        pw = _wmean(w, filled, ok)
        out = np.where(np.isnan(pw), out, pw)
    return out.squeeze(axis=1) if out.shape[1] == 1 else out


def _wmean(w, filled, ok):
    num = np.asarray(w @ filled)
    den = np.asarray(w @ ok.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
