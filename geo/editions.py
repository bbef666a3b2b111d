"""Unit-set names (editions), read without any geometry.

An edition is a boundary edition of the store (``lsoa2011``, ``ward2022``, ``borough``) or
cells: ``grid<metres>`` (squares), ``hex<metres>`` (hexagons), ``grid`` / ``hex`` alone (size
chosen from the data). Parsing a name needs only the standard library, so the command line
can refuse a wrong name before it loads the geometry libraries (:mod:`geo.units` builds them).
"""

from __future__ import annotations

import re

LSOA_EDITIONS = ("lsoa2011", "lsoa2021")
"""The LSOA boundary editions the public sources publish (ONS), oldest first."""
WARD_EDITIONS = ("ward2018", "ward2022")
"""The ward boundary editions the public sources publish (London Datastore), oldest first."""
BOUNDARY_EDITIONS = LSOA_EDITIONS + WARD_EDITIONS
"""Every published boundary edition, LSOAs then wards, each oldest first; ``borough`` aside."""

_CELLS = re.compile(r"^(grid|hex)(\d+(?:\.\d+)?)?$")
CELL_PREFIXES = {"grid": "square", "hex": "hexagon"}
_BOUNDARY = re.compile(r"^(lsoa|ward)(\d{4})$")
"""Boundary editions read from files are a family and a year (``sources.loaders.areas.boundary_edition``)."""


def cell_edition(edition: str) -> tuple[str, float | None] | None:
    """``(shape, size_m)`` of a cell edition (size None when chosen from the data), None otherwise.

    >>> cell_edition("grid250"), cell_edition("hex"), cell_edition("lsoa2011")
    (('square', 250.0), ('hexagon', None), None)
    """
    m = _CELLS.match(edition)
    if not m:
        return None
    size = float(m.group(2)) if m.group(2) else None
    if size is not None and size <= 0:
        raise ValueError(f"{edition!r}: a grid's cells must be more than 0 m wide, e.g. {m.group(1)}250")
    return CELL_PREFIXES[m.group(1)], size


def grid_size(edition: str) -> float | None:
    """Cell size in metres of a ``grid<metres>`` or ``hex<metres>`` edition, None otherwise."""
    cell = cell_edition(edition)
    return cell[1] if cell else None


def boundary_year(edition: str) -> int | None:
    """The year of an LSOA or ward edition (``lsoa2011`` -> 2011), None for any other name.

    >>> boundary_year("ward2022"), boundary_year("borough"), boundary_year("grid250")
    (2022, None, None)
    """
    m = _BOUNDARY.match(edition)
    return int(m.group(2)) if m else None
