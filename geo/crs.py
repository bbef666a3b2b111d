"""The one working CRS, British National Grid, and its check.

Everything svrisk stores and computes is in EPSG:27700 (metres); a copy goes to
EPSG:4326 only for web maps, GeoJSON and KML.
"""

from __future__ import annotations

WORKING_CRS = "EPSG:27700"
WEB_CRS = "EPSG:4326"


def is_working_crs(crs) -> bool:
    """True when ``crs`` (a pyproj CRS, or None) is British National Grid."""
    return crs is not None and crs.to_epsg() == 27700


def check_crs(crs, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` unless ``crs`` (a pyproj CRS or None) is EPSG:27700.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> check_crs(gpd.GeoSeries([shapely.Point(0, 0)], crs="EPSG:4326").crs, "points")
    Traceback (most recent call last):
    ...
    ValueError: points must be in EPSG:27700 (British National Grid, metres), got CRS EPSG:4326
    """
    if not is_working_crs(crs):
        shown = crs.to_string() if crs is not None else None
        raise ValueError(f"{what} must be in {WORKING_CRS} (British National Grid, metres), got CRS {shown}")
