"""`svrisk hotspots`: Gi*, LISA and emerging hot spots for a unit set; prints a summary, writes layers."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import progress, run_options, settings_for, user_errors
from service.cli.options import DataOption, StoreOption, UnitsOption

app = typer.Typer()


@app.command("hotspots")
@user_errors
def hotspots_command(
    units: UnitsOption = None,
    cutoff: str = typer.Option(None, "--cutoff", help="YYYY-MM (default: the month after the last data)."),
    data: DataOption = None,
    store: StoreOption = None,
    out: Path = typer.Option(None, "--out", help="Output folder (default: <out_dir>/hotspots/<units>_<cutoff>)."),
    neighbourhood: str = typer.Option(
        None, "--neighbourhood",
        help="auto (fixed distance band chosen by incremental spatial autocorrelation), band, knn or queen "
        "(default: settings hotspots.neighbourhood)."),
    band: float = typer.Option(None, "--band", help="Fixed distance band in metres instead of the chosen one."),
    min_neighbours: int = typer.Option(None, "--min-neighbours", help="Every unit gets at least this many neighbours."),
    inference: str = typer.Option(
        None, "--inference", help="normal (ArcGIS's default) or permutation (default: settings hotspots.inference)."),
) -> None:
    """Where serious violence concentrates beyond chance, and whether it is new, persistent or fading."""
    settings = settings_for(data)
    units, cutoff = run_options(settings, units, cutoff)
    from models.hotspots.analysis import summary_lines  # import here: heavy, after the checks
    from service.pipeline import hotspots_step  # import here: heavy, after the checks

    result, paths = hotspots_step(settings, units, cutoff, store_dir=store, out_dir=out, progress=progress,
                                  neighbourhood=neighbourhood, band_m=band, min_neighbours=min_neighbours,
                                  inference=inference)
    for line in summary_lines(result):
        typer.echo(line)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
