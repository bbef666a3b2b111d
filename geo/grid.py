"""Regular square grids in British National Grid, clipped to a study area.

Cells are aligned to multiples of the cell size in EPSG:27700, so the same cell
has the same id in every run and for every borough that contains it.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

from geo.crs import WORKING_CRS, check_crs

MIN_CELL_SHARE = 0.10
"""Clipped cells smaller than this share of a full cell are dropped as slivers."""


def grid_cell_id(size_m: float, easting: float, northing: float) -> str:
    """Stable id of the cell whose lower-left corner is (easting, northing).

    The id is ``g<size>_<easting>_<northing>`` with the corner in whole metres,
    e.g. ``g250_528250_190000`` is the 250 m cell from (528250, 190000) to
    (528500, 190250). Metres (not hundreds of metres) so that any cell size,
    including 250 m, gives an exact integer id.
    """
    return f"g{_fmt(size_m)}_{int(round(easting))}_{int(round(northing))}"


def _fmt(size_m: float) -> str:
    return str(int(size_m)) if float(size_m).is_integer() else f"{size_m:g}"


def make_grid(
    area: gpd.GeoSeries | gpd.GeoDataFrame,
    size_m: float,
    min_share: float = MIN_CELL_SHARE,
) -> gpd.GeoDataFrame:
    """Square cells of ``size_m`` metres covering ``area``, clipped to it.

    Parameters
    ----------
    area : GeoSeries or GeoDataFrame
        The study area (one or more polygons) in EPSG:27700; their union is used.
    size_m : float
        Cell side in metres (> 0).
    min_share : float
        Cells whose clipped area is below ``min_share * size_m**2`` are dropped.

    Returns
    -------
    GeoDataFrame
        Columns ``unit_id``, ``name``, ``area_m2``, ``geometry`` (clipped cell),
        index 0..n-1, sorted by ``unit_id``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> sq = gpd.GeoSeries([shapely.box(0, 0, 500, 250)], crs="EPSG:27700")
    >>> make_grid(sq, 250).unit_id.tolist()
    ['g250_0_0', 'g250_250_0']
    """
    if not size_m > 0:
        raise ValueError(f"grid size must be > 0 metres, got {size_m!r}")
    check_crs(area.crs, "grid area")
    geoms = area.geometry if isinstance(area, gpd.GeoDataFrame) else area
    shape = shapely.union_all(geoms.to_numpy())
    if shape.is_empty:
        raise ValueError("grid area is empty")
    xmin, ymin, xmax, ymax = shape.bounds
    x0 = math.floor(xmin / size_m) * size_m
    y0 = math.floor(ymin / size_m) * size_m
    xs = np.arange(x0, xmax, size_m)
    ys = np.arange(y0, ymax, size_m)
    gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
    boxes = shapely.box(gx, gy, gx + size_m, gy + size_m)
    shapely.prepare(shape)
    keep = shapely.intersects(shape, boxes)
    gx, gy, boxes = gx[keep], gy[keep], boxes[keep]
    clipped = shapely.intersection(boxes, shape)
    # intersection can return collections with stray lines/points; keep the polygonal part
    clipped = np.array([_polygonal(g) for g in clipped], dtype=object)
    areas = shapely.area(clipped)
    keep = areas >= min_share * size_m * size_m
    ids = [grid_cell_id(size_m, x, y) for x, y in zip(gx[keep], gy[keep], strict=True)]
    frame = gpd.GeoDataFrame(
        {
            "unit_id": ids,
            "name": [f"{_fmt(size_m)} m cell {int(x)}, {int(y)}" for x, y in zip(gx[keep], gy[keep], strict=True)],
            "area_m2": areas[keep],
        },
        geometry=list(clipped[keep]),
        crs=WORKING_CRS,
    )
    frame["unit_id"] = frame["unit_id"].astype("string")
    frame["name"] = frame["name"].astype("string")
    return frame.sort_values("unit_id", kind="stable").reset_index(drop=True)


def _polygonal(geom):
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()
