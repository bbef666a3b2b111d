"""An in-memory stand-in for :class:`sources.store.Store`.

Unit builders and the feature builder accept either a store folder or a mapping
of table name -> DataFrame (handy for small hand-made fixtures in tests and
notebooks). Both are read through the same three methods: ``has``, ``table``
and ``units``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.crs import check_crs
from sources.store import Store


class MemoryStore:
    """Tables held in memory, read like a :class:`~sources.store.Store`.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Table name (as in ``sources.schema.TABLES``, e.g. ``"events"``,
        ``"units_lsoa2011"``) to its frame. GeoDataFrames must be in EPSG:27700.
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame]):
        self._tables = dict(tables)
        for name, frame in self._tables.items():
            if isinstance(frame, gpd.GeoDataFrame):
                check_crs(frame.crs, f"table {name!r}")

    def has(self, name: str) -> bool:
        return name in self._tables

    def table(self, name: str) -> pd.DataFrame | gpd.GeoDataFrame:
        if name not in self._tables:
            raise FileNotFoundError(f"in-memory store has no table {name!r}")
        return self._tables[name].copy()

    def units(self, edition: str) -> gpd.GeoDataFrame:
        return self.table(f"units_{edition}")

    def editions(self) -> list[str]:
        return sorted(n.removeprefix("units_") for n in self._tables if n.startswith("units_"))

    def report(self) -> dict:
        return {}


def as_store(source) -> Store | MemoryStore:
    """Return ``source`` as something with ``has``/``table``/``units``.

    Accepts a :class:`Store`, a :class:`MemoryStore`, a path to a store folder
    or a mapping of table name -> DataFrame.
    """
    if isinstance(source, (Store, MemoryStore)):
        return source
    if isinstance(source, (str, Path)):
        return Store(source)
    if isinstance(source, Mapping):
        return MemoryStore(source)
    if hasattr(source, "table") and hasattr(source, "has"):
        return source
    raise TypeError(
        f"expected a Store, a store folder path or a mapping of tables, got {type(source).__name__}"
    )
