"""Shared CLI plumbing: settings from options, and user errors as one clear line.

Every command module imports only what its argument checks need (:mod:`service.inputs`,
the settings); the pipeline, models and geometry libraries are imported inside the command,
after the checks, so a wrong value is refused in a second or two, before any progress line.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from service.inputs import check_data_dir, check_options
from service.settings import Settings, get_settings


def user_errors(func: Callable) -> Callable:
    """Turn user-side failures into ``error: <file>: <what>`` on stderr and exit code 2, no traceback.

    User-side: bad input (``ValueError``, which :class:`sources.readers.DataError`
    is, an unknown key), and what the operating system refuses (missing files, permissions, a full disk, a read-only folder).
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def settings_for(data: Path | None = None, out: Path | None = None) -> Settings:
    """The settings with the command line's folders; a named data folder is checked first."""
    settings = get_settings(data_dir=data, out_dir=out)
    if settings.data_dir is not None:
        check_data_dir(settings.data_dir)
    return settings


def run_options(settings: Settings, units: str | None, cutoff: str | None = None) -> tuple[str, str | None]:
    """``--units`` (default: settings) and ``--cutoff`` checked as the API's jobs check them."""
    out = check_options({"units": units or settings.units.default, "cutoff": cutoff}, settings,
                        ("units", "cutoff"), what="options")
    return out["units"], out.get("cutoff")


def progress(message: str) -> None:
    typer.echo(f"  {message}", err=True)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
