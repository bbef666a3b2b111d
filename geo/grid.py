"""Regular square and hexagonal grids in British National Grid, clipped to a study area.

Cells are aligned to the origin of EPSG:27700, so the same cell has the same id in
every run and for every borough that contains it.

Squares of side ``s`` have their lower-left corners on multiples of ``s``.
Hexagons are flat-topped, as ArcGIS's hexagon aggregation draws them: ``s`` is the
flat-to-flat height (the distance between the centres of two hexagons stacked in a
column), the side is ``s / sqrt(3)`` and the vertex-to-vertex width ``2 s / sqrt(3)``.
Column ``i`` has its centres at ``x = 1.5 i s / sqrt(3)``; row ``j`` at ``y = j s``,
shifted up by ``s / 2`` in odd columns. A hexagon of height ``s`` has area
``sqrt(3) / 2 * s**2`` (0.87 of the square of side ``s``).

:func:`auto_cell_size` chooses ``s`` from the event locations when no size is given.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

from geo.crs import WORKING_CRS, check_crs

MIN_CELL_SHARE = 0.10
"""Clipped cells smaller than this share of a full cell are dropped as slivers."""
CELL_SHAPES = ("square", "hexagon")
HEX_AREA_FACTOR = math.sqrt(3.0) / 2.0
"""Area of a hexagon of flat-to-flat height ``s`` is ``HEX_AREA_FACTOR * s**2``."""
LOCATIONS_PER_CELL = 5
"""Rule for a cell size chosen from the data: cells big enough to hold this many distinct
event locations on average (see :func:`auto_cell_size`)."""
MIN_CELLS = 30
"""A study area is cut into at least this many cells (ArcGIS's minimum number of features
for a hot spot analysis)."""
SIZE_STEP_M = 10.0
"""Chosen cell sizes are rounded up to a multiple of this (metres)."""


def grid_cell_id(size_m: float, easting: float, northing: float) -> str:
    """Stable id of the square cell whose lower-left corner is (easting, northing).

    The id is ``g<size>_<easting>_<northing>`` with the corner in whole metres,
    e.g. ``g250_528250_190000`` is the 250 m cell from (528250, 190000) to
    (528500, 190250). Metres (not hundreds of metres) so that any cell size,
    including 250 m, gives an exact integer id.
    """
    return f"g{_fmt(size_m)}_{int(round(easting))}_{int(round(northing))}"


def hex_cell_id(size_m: float, column: int, row: int) -> str:
    """Stable id ``h<size>_<column>_<row>`` of a hexagon by its column and row from the BNG origin.

    ``h250_2441_760`` is the 250 m hexagon centred at ``x = 1.5 * 2441 * 250 / sqrt(3)``,
    ``y = 760 * 250 + 125`` (column 2441 is odd, so shifted up half a cell).
    """
    return f"h{_fmt(size_m)}_{int(column)}_{int(row)}"


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
    shape = _study_area(area, size_m)
    xmin, ymin, xmax, ymax = shape.bounds
    x0 = math.floor(xmin / size_m) * size_m
    y0 = math.floor(ymin / size_m) * size_m
    xs = np.arange(x0, xmax, size_m)
    ys = np.arange(y0, ymax, size_m)
    gx, gy = (a.ravel() for a in np.meshgrid(xs, ys))
    cells = shapely.box(gx, gy, gx + size_m, gy + size_m)
    ids = np.array([grid_cell_id(size_m, x, y) for x, y in zip(gx, gy, strict=True)], dtype=object)
    names = np.array([f"{_fmt(size_m)} m cell {int(x)}, {int(y)}" for x, y in zip(gx, gy, strict=True)],
                     dtype=object)
    return _clip_cells(shape, cells, ids, names, size_m * size_m, min_share)


def make_hex_grid(
    area: gpd.GeoSeries | gpd.GeoDataFrame,
    size_m: float,
    min_share: float = MIN_CELL_SHARE,
) -> gpd.GeoDataFrame:
    """Flat-topped hexagons of flat-to-flat height ``size_m`` covering ``area``, clipped to it.

    Same parameters and columns as :func:`make_grid`; ids are :func:`hex_cell_id`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> sq = gpd.GeoSeries([shapely.box(0, 0, 1000, 1000)], crs="EPSG:27700")
    >>> cells = make_hex_grid(sq, 500)
    >>> round(float(cells.area_m2.max()))  # a whole hexagon: sqrt(3) / 2 * 500**2
    216506
    """
    shape = _study_area(area, size_m)
    side = size_m / math.sqrt(3.0)
    dx = 1.5 * side
    xmin, ymin, xmax, ymax = shape.bounds
    cols = np.arange(math.floor((xmin - side) / dx), math.ceil((xmax + side) / dx) + 1)
    rows = np.arange(math.floor((ymin - size_m) / size_m), math.ceil((ymax + size_m) / size_m) + 1)
    ci, rj = (a.ravel() for a in np.meshgrid(cols, rows))
    cx = ci * dx
    cy = rj * size_m + np.where(ci % 2 == 1, size_m / 2.0, 0.0)
    # vertices counter-clockwise from the east corner; the ring repeats the first point
    ox = np.array([side, side / 2, -side / 2, -side, -side / 2, side / 2, side])
    oy = np.array([0.0, size_m / 2, size_m / 2, 0.0, -size_m / 2, -size_m / 2, 0.0])
    ring = np.stack([cx[:, None] + ox[None, :], cy[:, None] + oy[None, :]], axis=-1)
    cells = shapely.polygons(ring)
    ids = np.array([hex_cell_id(size_m, i, j) for i, j in zip(ci, rj, strict=True)], dtype=object)
    names = np.array([f"{_fmt(size_m)} m hexagon {int(i)}, {int(j)}" for i, j in zip(ci, rj, strict=True)],
                     dtype=object)
    return _clip_cells(shape, cells, ids, names, HEX_AREA_FACTOR * size_m * size_m, min_share)


def cell_area(shape: str, size_m: float) -> float:
    """Area in m² of a whole cell of this shape and size."""
    if shape not in CELL_SHAPES:
        raise ValueError(f"cell shape must be one of {CELL_SHAPES}, got {shape!r}")
    return size_m * size_m * (HEX_AREA_FACTOR if shape == "hexagon" else 1.0)


def auto_cell_size(points_xy, area_m2: float, shape: str = "hexagon",
                   per_cell: float = LOCATIONS_PER_CELL, min_cells: int = MIN_CELLS) -> tuple[float, dict]:
    """Cell size chosen from the data, and how it was chosen.

    Rule: count the distinct event locations ``L`` (police.uk snaps every crime to one of
    a fixed set of anonymised street points, so ``L`` barely changes from month to month
    and using it looks at no counts); give each cell ``A * per_cell / L`` square metres
    of the study area ``A``, so that a cell holds ``per_cell`` distinct locations on
    average; but never fewer than ``min_cells`` cells over the study area (ArcGIS's
    minimum of 30 features). The size (side of a square, flat-to-flat height of a
    hexagon) is that area's, rounded up to a multiple of 10 m.

    ArcGIS's Optimized Hot Spot Analysis also sizes its fishnet and hexagon cells from
    the incident points (from their nearest-neighbour spacing); the density rule here is
    svrisk's own, chosen because it depends only on where events can be recorded.

    Parameters
    ----------
    points_xy : array-like (n, 2)
        Event locations in EPSG:27700 metres (duplicates allowed; rows with NaN are ignored).
    area_m2 : float
        Area of the study area.
    shape : {"hexagon", "square"}
    per_cell : float
        Distinct locations per cell on average.
    min_cells : int

    Returns
    -------
    size_m : float
    info : dict
        ``rule`` (one sentence), ``distinct_locations``, ``area_km2``, ``per_cell``, ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> xy = np.array([(x, y) for x in range(0, 1000, 100) for y in range(0, 1000, 100)], float)
    >>> size, info = auto_cell_size(xy, 1_000_000, shape="square", per_cell=4, min_cells=10)
    >>> size  # 100 locations, 4 per cell: 25 cells of 40,000 m2, side 200 m
    200.0
    """
    if shape not in CELL_SHAPES:
        raise ValueError(f"cell shape must be one of {CELL_SHAPES}, got {shape!r}")
    if not area_m2 > 0:
        raise ValueError(f"study area must have a positive area, got {area_m2!r} m2")
    xy = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    distinct = len(np.unique(np.round(xy, 1), axis=0)) if len(xy) else 0
    if distinct == 0:
        raise ValueError("no event locations to choose a cell size from; give one, e.g. 'hex250'")
    per_area = area_m2 * per_cell / distinct
    capped = per_area > area_m2 / min_cells
    cell = min(per_area, area_m2 / min_cells)
    raw = math.sqrt(cell / (HEX_AREA_FACTOR if shape == "hexagon" else 1.0))
    size = math.ceil(raw / SIZE_STEP_M - 1e-9) * SIZE_STEP_M
    kind = "hexagons" if shape == "hexagon" else "squares"
    rule = (f"{_fmt(size)} m {kind}: {distinct:,} distinct event locations over {area_m2 / 1e6:,.1f} km2, "
            + (f"at least {min_cells} cells over the area" if capped else f"{per_cell:g} locations per cell on average")
            + f", rounded up to {SIZE_STEP_M:g} m")
    return float(size), {"rule": rule, "distinct_locations": int(distinct), "area_km2": area_m2 / 1e6,
                         "per_cell": float(per_cell), "shape": shape, "min_cells": int(min_cells)}


def _study_area(area, size_m):
    if not size_m > 0:
        raise ValueError(f"grid size must be > 0 metres, got {size_m!r}")
    check_crs(area.crs, "grid area")
    geoms = area.geometry if isinstance(area, gpd.GeoDataFrame) else area
    shape = shapely.union_all(geoms.to_numpy())
    if shape.is_empty:
        raise ValueError("grid area is empty")
    return shape


def _clip_cells(shape, cells, ids, names, full_area, min_share):
    shapely.prepare(shape)
    keep = shapely.intersects(shape, cells)
    cells, ids, names = cells[keep], ids[keep], names[keep]
    clipped = shapely.intersection(cells, shape)
    # intersection can return collections with stray lines/points; keep the polygonal part
    clipped = np.array([_polygonal(g) for g in clipped], dtype=object)
    areas = shapely.area(clipped)
    keep = (areas > 0) & (areas >= min_share * full_area)
    frame = gpd.GeoDataFrame(
        {"unit_id": list(ids[keep]), "name": list(names[keep]), "area_m2": areas[keep]},
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
