"""Checks on what a person asks a run for: data folder, unit set, cutoff, model version, method.

The CLI and the API's jobs call these same functions before any work starts, so a value
the command line refuses is refused over HTTP too, with the same words. Each returns the
clean value or raises ``ValueError`` naming the option and what it accepts; none of them
names a server path (but :func:`check_data_dir`, whose folder the caller named). They import
nothing heavy, so a wrong value is refused in well under the time the pipeline takes to load.

Examples
--------
>>> check_cutoff("2018-07")
'2018-07'
>>> check_cutoff("2018-07\\n")
Traceback (most recent call last):
...
ValueError: cutoff: not a month: '2018-07\\n' (expected 'YYYY-MM', e.g. '2018-07')
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from features.months import label, month
from features.sources.fingerprint import data_files
from geo.editions import boundary_year, cell_edition, grid_size
from models.registry import list_versions
from service.settings import Settings

#: Unit set names: a boundary edition of the store (``lsoa2011``, ``ward2022``, ...) or cells
#: (``grid250``, ``hex300``, ``grid62.5``, ``grid``): letters and digits, nothing a path could use.
UNITS_NAME = re.compile(r"[a-z][a-z0-9]{0,31}(\.[0-9]{1,3})?")


def check_data_dir(data) -> Path:
    """``data`` if it is a folder that holds files; else one clear error."""
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"data folder {data} not found")
    if not data.is_dir():
        raise ValueError(f"{data} is not a folder: --data takes the folder holding the input files")
    if not data_files(data):
        raise ValueError(f"data folder {data} is empty: it holds no input files")
    return data


def check_units(value, settings: Settings) -> str:
    """A unit-set name: a boundary edition (``lsoa``/``ward`` and a year not in the future, or
    ``borough``) or cells (:mod:`geo.editions`); a grid no finer than ``units.grid_min_m``.

    This is the check made before any data is read (a job is refused with 422 before it is
    queued); building the units then bounds a grid's cells over the study area
    (``units.max_units``, see :func:`features.units.build_units`).
    """
    if not isinstance(value, str) or not UNITS_NAME.fullmatch(value):
        raise ValueError(f"units: {value!r} is not a unit set name (a boundary edition such as "
                         "lsoa2011 or ward2022, or cells such as grid250 or hex300)")
    year = boundary_year(value)
    this_year = datetime.date.today().year
    if (cell_edition(value) is None and value != "borough") and (year is None or year > this_year):
        raise ValueError(f"units: {value!r} is not a unit set: a boundary edition is lsoa or ward and its year "
                         f"(no later than {this_year}, e.g. lsoa2011, ward2022) or borough; cells are "
                         "grid<metres> or hex<metres> (e.g. grid250, hex300), or grid / hex alone")
    size = grid_size(value)
    if size is not None and size < settings.units.grid_min_m:
        raise ValueError(f"units: {value!r} asks for {size:g} m cells; grids may be no finer than "
                         f"{settings.units.grid_min_m:g} m (settings units.grid_min_m)")
    return value


def check_cutoff(value) -> str:
    """A month as exactly ``YYYY-MM`` (the one parser, :func:`features.months.month`)."""
    if not isinstance(value, str):
        raise ValueError(f"cutoff: {value!r} is not a month string (expected 'YYYY-MM')")
    try:
        return label(month(value))
    except ValueError as err:
        raise ValueError(f"cutoff: {err}") from None


def check_model(value, settings: Settings) -> str:
    """A saved model version (``v0001``, ...) that exists."""
    versions = list_versions(settings.out_dir / "models")
    if not isinstance(value, str) or value not in versions:
        shown = versions[-5:]
        raise ValueError(f"model: {value!r} is not a saved model version"
                         + (f"; the latest are {shown}" if shown else "; none is saved yet"))
    return value


def check_method(value, settings: Settings) -> str:
    """A method that can be trained (see :func:`models.backtest.default_methods`)."""
    from models.backtest import default_methods  # import here: heavy (sklearn, xgboost)

    fittable = sorted(k for k, v in default_methods(seed=settings.model.seed).items() if hasattr(v, "fit"))
    if not isinstance(value, str) or value not in fittable:
        raise ValueError(f"method: {value!r} cannot be trained; choose one of {fittable}")
    return value


__all__ = ["check_cutoff", "check_data_dir", "check_method", "check_model", "check_units"]
