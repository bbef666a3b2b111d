"""The options several commands share, each written once (``Annotated`` aliases for Typer).

A command names the option by its alias (``data: DataOption = None``); its flag, help text and
type then read the same in every command's ``--help``. Options whose help says something
particular to one command stay written in that command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geo.editions import BOUNDARY_EDITIONS

UNITS_HELP = (f"{', '.join(BOUNDARY_EDITIONS)}, grid<metres> (squares), hex<metres> (hexagons), "
              "or grid / hex alone (cell size chosen from the event locations).")
UNITS_DEFAULT_HELP = UNITS_HELP.removesuffix(".") + " (default: settings units.default)."

DataOption = Annotated[Path | None, typer.Option(
    "--data", help="Data folder (default: settings data_dir, else the demo borough).")]
StoreOption = Annotated[Path | None, typer.Option(
    "--store", help="Store folder (default: one per data folder under <out_dir>/stores, ingested when the data "
    "changed).")]
UnitsOption = Annotated[str | None, typer.Option("--units", help=UNITS_DEFAULT_HELP)]
"""``--units``, None when not given: :func:`service.cli.common.run_options` puts in ``units.default``."""
HorizonOption = Annotated[int | None, typer.Option(
    "--horizon", min=1, help="Months ahead: 1 (next month) or 3 (next quarter) (default: settings "
    "model.horizon_months).")]
