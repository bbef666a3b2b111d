"""Small hand-made inputs for ingest tests: two 1 km LSOA squares and police.uk CSV rows."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
from pyproj import Transformer
from shapely.geometry import box

STREET_HEADER = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
                 "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context"]
TO_WGS = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)
# Two LSOAs side by side: E01900001 covers x 530000-531000, E01900002 covers 531000-532000; y 180000-181000.
LSOAS = {"E01900001": box(530000, 180000, 531000, 181000), "E01900002": box(531000, 180000, 532000, 181000)}


def write_boundaries(folder: Path, crs: str = "EPSG:27700", edition_col: str = "LSOA11CD") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    gdf = gpd.GeoDataFrame({edition_col: list(LSOAS), "LSOA11NM": ["Fixture 001A", "Fixture 001B"]},
                           geometry=list(LSOAS.values()), crs="EPSG:27700")
    path = folder / "lsoa2011.gpkg"
    if crs != "EPSG:27700":
        gdf = gdf.set_crs(crs, allow_override=True)  # deliberately wrong label
    gdf.to_file(path, driver="GPKG")
    return path


def lonlat(x: float, y: float) -> tuple[str, str]:
    lon, lat = TO_WGS.transform(x, y)
    return f"{lon:.6f}", f"{lat:.6f}"


def street_row(crime_id: str, month: str, x: float, y: float, crime_type="Violence and sexual offences",
               lsoa="E01900001") -> list[str]:
    lon, lat = lonlat(x, y)
    return [crime_id, month, "Fixture Police", "Fixture Police", lon, lat, "On or near Fixture Street", lsoa,
            "Fixture 001A", crime_type, "Under investigation", ""]


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path
