"""`svrisk run`: the main job, from data to map, briefing and GIS layers."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import progress, settings_for, user_errors
from service.run import make_run

app = typer.Typer()


@app.command("run")
@user_errors
def run_command(
    data: Path = typer.Option(None, "--data", help="Data folder (default: settings data_dir, else the demo borough)."),
    units: str = typer.Option(None, "--units", help="Unit set (default: settings units.default)."),
    cutoff: str = typer.Option(None, "--cutoff", help="YYYY-MM (default: after the last full 12 months of data)."),
    model: str = typer.Option(None, "--model", help="Saved model version to rank with (default: train one)."),
    store: Path = typer.Option(None, "--store", help="Store folder (default: <out_dir>/store; ingested if missing)."),
) -> None:
    """Ingest (if needed), build features, find hot spots, train and rank, and write every output."""
    settings = settings_for(data)
    run_dir = make_run(settings, units=units, cutoff=cutoff, model_version=model, store_dir=store, progress=progress)
    typer.echo(f"run written to {run_dir}")
    for name in ("map.html", "briefing.html", "layers.gpkg"):
        if (run_dir / name).is_file():
            typer.echo(f"  {name}: {run_dir / name}")
