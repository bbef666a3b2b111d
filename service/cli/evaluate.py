"""`svrisk evaluate`: did an intervention in an area work, and did violence move next door?"""

from __future__ import annotations

from pathlib import Path

import typer

from features.months import label
from service.cli.common import progress, settings_for, user_errors
from service.inputs import check_units

app = typer.Typer()


@app.command("evaluate")
@user_errors
def evaluate_command(
    area: str = typer.Option(..., "--area", help="A polygon file (any OGR format), a run's area (A1, or "
                             "<run_id>/A1), or comma-separated unit ids."),
    start: str = typer.Option(..., "--start", help="YYYY-MM: the first month of the intervention."),
    end: str = typer.Option(None, "--end", help="YYYY-MM: the last month evaluated (default: the last "
                            "month before the data's next gap)."),
    run: str = typer.Option(None, "--run", help="Run whose area --area names: a run id, or latest (default: the "
                            "published run, the one GIS, the map and the briefing show; the latest if none is)."),
    units: str = typer.Option(None, "--units", help="Unit set for a polygon or unit ids (default: "
                              "settings units.default; a run's area uses the run's)."),
    # Defaults None: the evaluation's own (models.interventions.DEFAULT_*), not loaded for --help.
    buffer_m: float = typer.Option(None, "--buffer", help="Width of the buffer ring in metres (default: 400)."),
    pre_months: int = typer.Option(None, "--pre-months", help="Months before the start to compare with "
                                   "(default: 24)."),
    placebos: int = typer.Option(None, "--placebos", help="Placebo areas for the synthetic control's test "
                                 "(default: 99)."),
    data: Path = typer.Option(None, "--data", help="Data folder to ingest if the store does not exist yet."),
    store: Path = typer.Option(None, "--store", help="Store folder (default: <out_dir>/store)."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: <out_dir>/evaluations/<id>)."),
) -> None:
    """Before/after with comparison places, a synthetic control, and displacement to a buffer ring."""
    settings = settings_for(data)
    start, end = label(start), label(end) if end is not None else None
    if units is not None:
        check_units(units, settings)
    from service.pipeline import evaluate_step  # import here: heavy, after the checks

    given = {k: v for k, v in {"buffer_m": buffer_m, "pre_months": pre_months, "placebos": placebos}.items()
             if v is not None}
    ev, written = evaluate_step(settings, area, start, end, run=run, units=units, store_dir=store, out_dir=out,
                                progress=progress, **given)
    typer.echo(ev.estimates["verdict"])
    for w in ev.warnings:
        typer.echo(f"warning: {w}", err=True)
    for problem in written.problems:
        typer.echo(f"warning: {problem}", err=True)
    typer.echo(f"evaluation written to {written.folder}")
    for name, path in written.paths.items():
        typer.echo(f"  {name}: {path}")
