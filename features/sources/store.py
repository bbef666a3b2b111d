"""The data store: validated tables on disk, one (Geo)Parquet file per table.

``svrisk ingest`` writes a store; everything downstream reads it through
:class:`Store`, never the raw files. Layout::

    <store>/
      ingest_report.json        per input file: sha256, rows read/accepted/rejected, flags
      rejects.parquet           every rejected row with file, row number and reason
      events.parquet            GeoParquet, EPSG:27700 (see features.sources.schema)
      units_lsoa2011.parquet    one per boundary edition present
      ...
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.crs import check_crs

REPORT_NAME = "ingest_report.json"
STORE_VERSION = 3
"""Bumped whenever ingest writes different tables from the same files; an older store is ingested again."""


class Store:
    """Read access to an ingested store folder.

    Parameters
    ----------
    root : path
        A folder written by ``svrisk ingest`` (it holds ``ingest_report.json``).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / REPORT_NAME).is_file():
            raise FileNotFoundError(
                f"{self.root}: not an svrisk store (no {REPORT_NAME}); run `svrisk ingest` first"
            )

    def path(self, name: str) -> Path:
        return self.root / f"{name}.parquet"

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    def table(self, name: str) -> pd.DataFrame | gpd.GeoDataFrame:
        """Read one table; point and polygon tables come back as GeoDataFrames in EPSG:27700."""
        path = self.path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{self.root}: the store has no table {name!r}")
        try:
            frame = gpd.read_parquet(path)
        except ValueError:  # plain Parquet, no geometry column metadata
            return pd.read_parquet(path)
        check_crs(frame.crs, str(path))
        return frame

    def units(self, edition: str) -> gpd.GeoDataFrame:
        return self.table(f"units_{edition}")

    def editions(self) -> list[str]:
        return sorted(p.stem.removeprefix("units_") for p in self.root.glob("units_*.parquet"))

    def report(self) -> dict:
        return json.loads((self.root / REPORT_NAME).read_text())
