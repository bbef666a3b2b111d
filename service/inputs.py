"""Checks on what a person asks a run for: data folder, unit set, cutoff, model version, method.

The CLI, the API's jobs and its evaluations all call :func:`check_options` before any work
starts or anything is queued, so a value the command line refuses is refused over HTTP too
(422), with the same words. Each check returns the clean value or raises ``ValueError``
naming the option, the value (shortened to 40 characters) and what it accepts; none of
them names a server path (but :func:`check_data_dir`, whose folder the caller named). They
import nothing heavy, so the command line refuses a wrong value in about the time of
``svrisk --help`` (``benchmarks/cli_start.py``), before the pipeline is loaded.

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

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from geo.editions import boundary_year, cell_edition, grid_size
from service.settings import Settings
from sources.fingerprint import data_files

#: Unit set names: a boundary edition of the store (``lsoa2011``, ``ward2022``, ...) or cells
#: (``grid250``, ``hex300``, ``grid62.5``, ``grid``): letters and digits, nothing a path could use.
UNITS_NAME = re.compile(r"[a-z][a-z0-9]{0,31}(\.[0-9]{1,3})?")


#: The earliest month a cutoff or an evaluation may name: street-level police data starts in
#: December 2010, so anything before 2000 is a typing mistake, not a request.
EARLIEST_MONTH = "2000-01"
#: Years after the current month a month may name before it is refused outright (``9999-12``);
#: a nearer future month reaches the data, whose check names the latest usable cutoff.
FUTURE_YEARS = 5


def shown(value, width: int = 40) -> str:
    """``repr(value)``, cut to ``width`` characters: messages name a value, never echo a body."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 5] + "...'" + f"({len(text)} chars)"


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
        raise ValueError(f"units: {shown(value)} is not a unit set name (a boundary edition such as "
                         "lsoa2011 or ward2022, or cells such as grid250 or hex300)")
    year, this_year = boundary_year(value), dt.date.today().year
    if (cell_edition(value) is None and value != "borough") and (year is None or year > this_year):
        raise ValueError(f"units: {shown(value)} is not a unit set: a boundary edition is lsoa or ward and its "
                         f"year (no later than {this_year}, e.g. lsoa2011, ward2022) or borough; cells are "
                         "grid<metres> or hex<metres> (e.g. grid250, hex300), or grid / hex alone")
    size = grid_size(value)
    if size is not None and size < settings.units.grid_min_m:
        raise ValueError(f"units: {value!r} asks for {size:g} m cells; grids may be no finer than "
                         f"{settings.units.grid_min_m:g} m (settings units.grid_min_m)")
    return value


def check_month(value, option: str = "cutoff", today: dt.date | None = None) -> str:
    """A month as exactly ``YYYY-MM`` (the one parser, :func:`features.months.month`),
    from :data:`EARLIEST_MONTH` to :data:`FUTURE_YEARS` years after the current month."""
    if not isinstance(value, str):
        raise ValueError(f"{option}: {shown(value)} is not a month string (expected 'YYYY-MM')")
    if len(value) > 7:
        raise ValueError(f"{option}: not a month: {shown(value)} (expected 'YYYY-MM', e.g. '2018-07')")
    from features.months import label, month  # import here: pandas, only when a month is checked

    try:
        clean = label(month(value))
    except ValueError:
        raise ValueError(f"{option}: not a month: {shown(value)} (expected 'YYYY-MM', e.g. '2018-07')") from None
    today = today or dt.date.today()
    latest = f"{today.year + FUTURE_YEARS:04d}-{today.month:02d}"
    if not EARLIEST_MONTH <= clean <= latest:
        raise ValueError(f"{option}: {clean!r} is outside {EARLIEST_MONTH} to {latest} "
                         f"({FUTURE_YEARS} years after the current month): no data can exist for it")
    return clean


def check_cutoff(value) -> str:
    """A cutoff month: see :func:`check_month`."""
    return check_month(value, "cutoff")


def check_model(value, settings: Settings) -> str:
    """A saved model version (``v0001``, ...) that exists."""
    from models.registry import list_versions  # import here: pandas, only when a model is named

    versions = list_versions(settings.out_dir / "models")
    if not isinstance(value, str) or value not in versions:
        latest = versions[-5:]
        raise ValueError(f"model: {shown(value)} is not a saved model version"
                         + (f"; the latest are {latest}" if latest else "; none is saved yet"))
    return value


def check_method(value, settings: Settings) -> str:
    """A method that can be trained (see :func:`models.backtest.default_methods`)."""
    from models.backtest import default_methods  # import here: heavy (sklearn, xgboost)

    fittable = sorted(k for k, v in default_methods(seed=settings.model.seed).items() if hasattr(v, "fit"))
    if not isinstance(value, str) or value not in fittable:
        raise ValueError(f"method: {shown(value)} cannot be trained; choose one of {fittable}")
    return value


#: option -> its check (each takes the value and the settings)
CHECKS = {
    "units": check_units,
    "cutoff": lambda v, s: check_month(v, "cutoff"),
    "start": lambda v, s: check_month(v, "start"),
    "end": lambda v, s: check_month(v, "end"),
    "model": check_model,
    "method": check_method,
}


def check_options(options: Mapping | None, settings: Settings, allowed: Iterable[str],
                  what: str = "request") -> dict:
    """The one check of what a person asks for (CLI options, a job's or an evaluation's body).

    Parameters
    ----------
    options : mapping
        Option name -> value; None values are left out (the default applies).
    settings : Settings
    allowed : iterable of str
        The options this request takes; any other is refused.
    what : str
        Names the request in messages ("rank job", "evaluation", ...).

    Returns
    -------
    dict
        The options with checked, clean values.

    Raises
    ------
    ValueError
        Naming the first bad option and its value.
    """
    allowed = list(allowed)
    if options is not None and not isinstance(options, Mapping):
        raise ValueError(f"{what}: the options must be an object of names and values")
    out = {k: v for k, v in dict(options or {}).items() if v is not None}
    unknown = sorted(str(k)[:40] for k in set(out) - set(allowed))
    if unknown:
        raise ValueError(f"{what}: unknown option(s) {unknown[:5]}; it takes "
                         f"{allowed or 'none (the server reads the data folder it was started with)'}")
    for name, value in out.items():
        if name in CHECKS:
            out[name] = CHECKS[name](value, settings)
    if "start" in out and "end" in out and out["end"] < out["start"]:
        raise ValueError(f"end: {out['end']!r} is before start {out['start']!r}")
    return out


__all__ = ["CHECKS", "check_cutoff", "check_data_dir", "check_method", "check_model", "check_month", "check_options",
           "check_units", "shown"]
