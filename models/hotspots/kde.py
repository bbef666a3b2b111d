"""Kernel density surfaces of events (quartic or Gaussian) and GeoTIFF export.

Coordinates are metres in EPSG:27700. Densities are events per square kilometre:
``density(x) = 1e6 * sum_i w_i K_h(|x - x_i|)`` with a 2-D kernel ``K_h`` that
integrates to 1 over the plane, so the surface integrates to the total weight.
"""

from __future__ import annotations

import math

import numpy as np

KERNELS = ("quartic", "gaussian")
#: Default clip for the automatic bandwidth, metres.
BANDWIDTH_RANGE = (100.0, 2000.0)
# Gaussian kernel support is cut at this many bandwidths (mass beyond: exp(-12.5) ~ 4e-6).
_GAUSS_CUTOFF = 5.0


def _check_xy(xy, name):
    arr = np.asarray(xy, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be an (n, 2) array of x, y metres, got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} row {i} is not finite: {arr[i].tolist()}")
    return arr


def _check_weights(weights, n):
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        i = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
        raise ValueError(f"weights must be finite and >= 0; weights[{i}] = {w[i]!r}")
    return w


def default_bandwidth(points_xy, weights=None, clip=BANDWIDTH_RANGE):
    """ArcGIS's default search radius, clipped to ``clip`` metres.

    ``h = 0.9 * min(SD, sqrt(1 / ln 2) * Dm) * n ** -0.2`` where ``SD`` is the
    (weighted) standard distance of the points from their mean centre, ``Dm`` the
    (weighted) median distance from it and ``n`` the total weight (a Silverman-type
    rule, robust to outliers through ``Dm``).
    """
    xy = _check_xy(points_xy, "points_xy")
    w = _check_weights(weights, len(xy))
    total = w.sum()
    if total <= 0:
        raise ValueError("default bandwidth needs at least one point with positive weight")
    centre = (xy * w[:, None]).sum(axis=0) / total
    d = np.hypot(*(xy - centre).T)
    sd = math.sqrt((w * d**2).sum() / total)
    order = np.argsort(d)
    cw = np.cumsum(w[order])
    dm = d[order][np.searchsorted(cw, total / 2.0)]
    h = 0.9 * min(sd, math.sqrt(1.0 / math.log(2.0)) * dm) * total**-0.2
    return float(np.clip(h, *clip))


def _kernel(d2, h, kernel):
    if kernel == "quartic":
        u = 1.0 - d2 / (h * h)
        return np.where(u > 0, 3.0 / (math.pi * h * h) * u * u, 0.0)
    return np.exp(-0.5 * d2 / (h * h)) / (2.0 * math.pi * h * h)


def kde_at(points_xy, targets_xy, bandwidth, kernel="quartic", weights=None):
    """Kernel density of ``points_xy`` evaluated at ``targets_xy`` (events per km2).

    Parameters
    ----------
    points_xy : array-like (n, 2)
        Event coordinates, metres (EPSG:27700).
    targets_xy : array-like (m, 2)
        Where to evaluate, e.g. unit centroids.
    bandwidth : float
        Metres: the quartic kernel's radius, or the Gaussian's standard deviation.
    kernel : {"quartic", "gaussian"}
        Quartic ``3 / (pi h^2) (1 - d^2/h^2)^2`` for ``d < h``; Gaussian
        ``exp(-d^2 / 2h^2) / (2 pi h^2)`` (cut at 5 h).
    weights : array-like (n,), optional
        Per-event weight (e.g. harm); default 1.

    Returns
    -------
    numpy.ndarray (m,)
    """
    from scipy.spatial import cKDTree

    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    h = float(bandwidth)
    if not h > 0 or not math.isfinite(h):
        raise ValueError(f"bandwidth must be a positive number of metres, got {bandwidth!r}")
    pts = _check_xy(points_xy, "points_xy")
    tgt = _check_xy(targets_xy, "targets_xy")
    w = _check_weights(weights, len(pts))
    out = np.zeros(len(tgt))
    if len(pts) == 0 or len(tgt) == 0:
        return out
    radius = h if kernel == "quartic" else _GAUSS_CUTOFF * h
    pairs = cKDTree(tgt).sparse_distance_matrix(cKDTree(pts), radius, output_type="ndarray")
    k = _kernel(pairs["v"] ** 2, h, kernel) * w[pairs["j"]]
    out += np.bincount(pairs["i"], weights=k, minlength=len(tgt))
    return out * 1e6


def kde_surface(points_xy, cell_size, bounds, bandwidth=None, kernel="quartic", weights=None):
    """Kernel density surface on a north-up grid (events per km2).

    Parameters
    ----------
    points_xy : array-like (n, 2)
        Event coordinates, metres (EPSG:27700).
    cell_size : float
        Cell side, metres.
    bounds : tuple (xmin, ymin, xmax, ymax)
        Area to cover; the grid starts at (xmin, ymax) and extends to cover xmax, ymin.
    bandwidth : float, optional
        Metres; default :func:`default_bandwidth` (ArcGIS's rule, clipped to
        100-2,000 m).
    kernel : {"quartic", "gaussian"}
    weights : array-like (n,), optional

    Returns
    -------
    array : numpy.ndarray (rows, cols)
        Density at cell centres, row 0 at the north edge.
    transform : affine.Affine
        Maps (col, row) to (x, y) of the cell's upper-left corner.
    """
    from affine import Affine

    cell = float(cell_size)
    if not cell > 0:
        raise ValueError(f"cell_size must be a positive number of metres, got {cell_size!r}")
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    if not (xmax > xmin and ymax > ymin):
        raise ValueError(f"bounds must be (xmin, ymin, xmax, ymax) with max > min, got {bounds!r}")
    if bandwidth is None:
        bandwidth = default_bandwidth(points_xy, weights)
    cols = max(1, math.ceil((xmax - xmin) / cell - 1e-9))
    rows = max(1, math.ceil((ymax - ymin) / cell - 1e-9))
    xs = xmin + (np.arange(cols) + 0.5) * cell
    ys = ymax - (np.arange(rows) + 0.5) * cell
    gx, gy = np.meshgrid(xs, ys)
    dens = kde_at(points_xy, np.column_stack([gx.ravel(), gy.ravel()]), bandwidth, kernel, weights)
    transform = Affine(cell, 0.0, xmin, 0.0, -cell, ymax)
    return dens.reshape(rows, cols), transform


def write_geotiff(array, transform, path, nodata=None):
    """Write a 2-D array as a single-band GeoTIFF in EPSG:27700.

    Parameters
    ----------
    array : numpy.ndarray (rows, cols)
    transform : affine.Affine
        As returned by :func:`kde_surface`.
    path : str or os.PathLike
    nodata : float, optional

    Returns
    -------
    pathlib.Path
    """
    from pathlib import Path

    import rasterio

    arr = np.asarray(array)
    if arr.ndim != 2:
        raise ValueError(f"array must be 2-D, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        raise TypeError(f"array must be numeric, got dtype {arr.dtype}")
    path = Path(path)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=arr.shape[0],
        width=arr.shape[1],
        count=1,
        dtype=arr.dtype,
        crs="EPSG:27700",
        transform=transform,
        nodata=nodata,
        compress="deflate",
    ) as dst:
        dst.write(arr, 1)
    return path
