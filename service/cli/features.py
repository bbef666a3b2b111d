"""`svrisk features`: write the feature matrix and data dictionary for one unit set and cutoff."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import progress, run_options, settings_for, user_errors
from service.cli.options import DataOption, StoreOption, UnitsOption

app = typer.Typer()


@app.command("features")
@user_errors
def features_command(
    units: UnitsOption = None,
    cutoff: str = typer.Option(..., "--cutoff", help="YYYY-MM: features use only months before it."),
    data: DataOption = None,
    store: StoreOption = None,
    out: Path = typer.Option(None, "--out", help="Output folder (default: <out_dir>/features)."),
) -> None:
    """Build the feature matrix for UNITS as of CUTOFF and write it (GeoParquet) with its dictionary."""
    settings = settings_for(data)
    units, cutoff = run_options(settings, units, cutoff)
    from service.pipeline import features_step  # import here: heavy, after the checks

    paths = features_step(settings, units, cutoff, store_dir=store, out_dir=out, progress=progress)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
