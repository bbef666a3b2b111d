"""Names people use for a unit: its ward and the nearest station, not an LSOA code or a cell id.

A tasking meeting says "West Hendon, by Hendon station", not "Barnet 024D" or "grid250-17-42".
:func:`place_names` gives every unit (cell, LSOA or ward) such a name from the store's
ward boundaries and station points, computed once per unit set; the ranking carries it as
its ``place`` column, and the map, briefing, layers and API show it.

Examples
--------
>>> place_names(units.frame, wards, stations)          # doctest: +SKIP
unit_id
E01000115    West Hendon, 450 m from Hendon station
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import check_crs

AT_M = 100.0
"""A station this close (metres, to the unit's edge) is "by" the unit rather than a distance from it."""
NEAR_M = 2000.0
"""Stations further than this (metres) are not used to name a place."""


def station_label(name: str) -> str:
    """``"Hendon"`` -> ``"Hendon station"``; a name that already says station is kept."""
    text = " ".join(str(name).split())
    return text if "station" in text.lower() else f"{text} station"


def _distance_text(metres: float) -> str:
    rounded = int(round(metres / 50.0) * 50)
    if rounded < 1000:
        return f"{rounded:d} m"
    return f"{metres / 1000:.1f} km"


def place_names(
    units: gpd.GeoDataFrame,
    wards: gpd.GeoDataFrame | None = None,
    stations: gpd.GeoDataFrame | None = None,
    *,
    at_m: float = AT_M,
    near_m: float = NEAR_M,
) -> pd.Series:
    """A human place name for every unit: ``"<ward>, <d> m from <station>"``.

    Parameters
    ----------
    units : GeoDataFrame
        ``unit_id`` and polygons in EPSG:27700.
    wards : GeoDataFrame, optional
        Ward polygons with ``name`` (EPSG:27700). A unit takes the ward holding its
        representative point (the nearest ward if none holds it).
    stations : GeoDataFrame, optional
        Station points with ``name`` (EPSG:27700). The nearest one within ``near_m`` of the
        unit's edge is named: "by X station" within ``at_m``, else "<d> m from X station"
        (to the nearest 50 m; km beyond 1 km).

    Returns
    -------
    Series of str indexed by ``unit_id`` (the unit's own name, else its id, when neither
    a ward nor a station is at hand).

    >>> from shapely.geometry import Point, box
    >>> u = gpd.GeoDataFrame({"unit_id": ["a"], "name": ["X 001A"]}, geometry=[box(0, 0, 100, 100)], crs=27700)
    >>> w = gpd.GeoDataFrame({"name": ["Hale"]}, geometry=[box(-50, -50, 500, 500)], crs=27700)
    >>> s = gpd.GeoDataFrame({"name": ["Edgware"]}, geometry=[Point(420, 100)], crs=27700)
    >>> place_names(u, w, s).tolist()
    ['Hale, 300 m from Edgware station']
    """
    check_crs(units.crs, "units")
    ids = units["unit_id"].astype(str).to_numpy()
    fallback = (units["name"] if "name" in units.columns else units["unit_id"]).astype(str).to_numpy()
    pts = gpd.GeoDataFrame({"i": np.arange(len(units))}, geometry=units.geometry.representative_point(),
                           crs=units.crs)
    ward = np.full(len(units), "", dtype=object)
    if wards is not None and len(wards):
        check_crs(wards.crs, "wards")
        if "name" not in wards.columns:
            raise ValueError(f"wards: needs a name column, has {list(wards.columns)}")
        w = wards[["name", wards.geometry.name]].reset_index(drop=True)
        hit = gpd.sjoin_nearest(pts, w, how="left").drop_duplicates("i").sort_values("i")
        ward = hit["name"].fillna("").astype(str).to_numpy()
    near = np.full(len(units), "", dtype=object)
    if stations is not None and len(stations):
        check_crs(stations.crs, "stations")
        if "name" not in stations.columns:
            raise ValueError(f"stations: needs a name column, has {list(stations.columns)}")
        st = stations[stations["name"].notna()]
        st = gpd.GeoDataFrame({"station": st["name"].astype(str).to_numpy()},
                              geometry=st.geometry.to_numpy(), crs=stations.crs)
        poly = gpd.GeoDataFrame({"i": np.arange(len(units))}, geometry=units.geometry.to_numpy(), crs=units.crs)
        hit = gpd.sjoin_nearest(poly, st, how="left", max_distance=near_m, distance_col="d")
        # ties (two stations at one distance): the name first in alphabetical order, for determinism
        hit = hit.sort_values(["i", "d", "station"], na_position="last").drop_duplicates("i").sort_values("i")
        for i, (name, d) in enumerate(zip(hit["station"], hit["d"], strict=True)):
            if isinstance(name, str) and pd.notna(d):
                label = station_label(name)
                near[i] = f"by {label}" if d <= at_m else f"{_distance_text(float(d))} from {label}"
    names = []
    for w_, n_, fb in zip(ward, near, fallback, strict=True):
        if w_ and n_:
            names.append(f"{w_}, {n_}")
        elif w_ or n_:
            names.append((w_ or n_)[:1].upper() + (w_ or n_)[1:])
        else:
            names.append(fb)
    return pd.Series(names, index=pd.Index(ids, name="unit_id"), name="place", dtype="string")
