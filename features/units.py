"""Units of a store: its boundary editions and grids (squares or hexagons) over its study area.

The geometry work (weights, assignment, grids) is :mod:`geo.units`; this module only
reads the store's boundary tables (and, for a cell size chosen from the data, the
event locations) and hands them over.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

from geo.crs import WORKING_CRS
from geo.editions import LSOA_EDITIONS
from geo.grid import auto_cell_size, cell_area
from geo.units import UnitSet, boundary_units, cell_edition, grid_units
from sources.memstore import as_store

DEFAULT_KNN = 8
DEFAULT_BAND_M = 500.0


def borough_area(store) -> gpd.GeoSeries:
    """The study area: ``units_borough`` if the store has it, else the union of LSOA units."""
    store = as_store(store)
    for name in ("units_borough", *(f"units_{edition}" for edition in LSOA_EDITIONS)):
        if store.has(name):
            geoms = store.table(name).geometry
            return gpd.GeoSeries([shapely.union_all(shapely.make_valid(geoms.to_numpy()))], crs=WORKING_CRS)
    raise FileNotFoundError("the store has neither units_borough nor LSOA units to clip a grid to")


def grid_cells_estimate(area: gpd.GeoSeries, size_m: float, shape: str = "square") -> int:
    """About how many ``size_m`` cells cover ``area``: its area over a cell's, plus the edge cells."""
    total = float(area.area.sum())
    perimeter = float(area.length.sum())
    return int(total / cell_area(shape, size_m) + perimeter / size_m)


def event_locations(store) -> np.ndarray:
    """(n, 2) easting/northing of every located event in the store (all groups and months)."""
    store = as_store(store)
    if not store.has("events"):
        raise ValueError("the store has no events table to choose a cell size from; give one, e.g. 'hex250'")
    geoms = store.table("events").geometry
    located = ~(geoms.isna() | geoms.is_empty)
    return np.column_stack([geoms[located].x.to_numpy(), geoms[located].y.to_numpy()])


def build_units(store, edition: str, *, knn: int = DEFAULT_KNN, distance_band_m: float = DEFAULT_BAND_M,
                max_units: int | None = None) -> UnitSet:
    """Build the units of one edition from a store.

    Parameters
    ----------
    store : Store, path or mapping of table name -> DataFrame
    edition : str
        A boundary edition in the store (``lsoa2011``, ``lsoa2021``, ``ward2018``,
        ``ward2022``), ``grid<metres>`` (squares, e.g. ``grid250``), ``hex<metres>``
        (hexagons, e.g. ``hex300``), or ``grid`` / ``hex`` alone: cells sized from the
        store's event locations by :func:`geo.grid.auto_cell_size` (the size and the
        rule are in ``UnitSet.meta``).
    knn, distance_band_m
        Parameters of the ``"knn"`` and ``"band"`` graphs (see :class:`geo.units.UnitSet`).
    max_units : int, optional
        Refuse a grid whose estimated cell count is above this, before making it (the
        cells x months x groups arrays of a too-fine grid exhaust memory).

    Examples
    --------
    >>> units = build_units(store, "grid250")          # doctest: +SKIP
    >>> units = build_units(store, "hex")              # doctest: +SKIP
    >>> units.meta["cell_size_rule"]                   # doctest: +SKIP
    """
    store = as_store(store)
    cell = cell_edition(edition)
    if cell is not None:
        shape, size = cell
        area = borough_area(store)
        meta = {}
        if size is None:
            size, info = auto_cell_size(event_locations(store), float(area.area.sum()), shape=shape)
            meta = {"cell_size_rule": info["rule"], "cell_size_chosen_from_data": True}
        estimate = grid_cells_estimate(area, size, shape)
        if max_units is not None and estimate > max_units:
            smallest = math.ceil(math.sqrt(float(area.area.sum()) / max_units / cell_area(shape, 1.0)))
            raise ValueError(f"{edition} would make about {estimate:,} cells over {float(area.area.sum()) / 1e6:,.0f} km², "
                             f"more than the limit of {max_units:,} (settings units.max_units); use cells of "
                             f"{smallest} m or more, or raise the limit")
        return grid_units(area, edition, knn=knn, distance_band_m=distance_band_m, size_m=size, meta=meta)
    if not store.has(f"units_{edition}"):
        raise ValueError(
            f"unknown unit edition {edition!r}: the store has no table units_{edition} "
            f"(it has {getattr(store, 'editions', lambda: [])()}); grids are 'grid<metres>' or 'hex<metres>' "
            "('grid' or 'hex' alone: size chosen from the data)"
        )
    return boundary_units(store.units(edition), edition, knn=knn, distance_band_m=distance_band_m)
