"""`svrisk train`, `svrisk rank`, `svrisk backtest`: the analyst's model lifecycle."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from features.months import label, months_between
from service.cli.common import UNITS_DEFAULT_HELP, progress, run_options, settings_for, user_errors
from service.cli.run import print_summary
from service.pipeline import backtest_step, train_step
from service.run import make_run

app = typer.Typer()


@app.command("train")
@user_errors
def train_command(
    units: str = typer.Option(None, "--units", help=UNITS_DEFAULT_HELP),
    cutoff: str = typer.Option(None, "--cutoff", help="YYYY-MM: fit on data before it (default: all data)."),
    method: str = typer.Option(None, "--method", help="xgb (default) or glm."),
    data: Path = typer.Option(None, "--data", help="Data folder (default: settings data_dir, else the demo borough)."),
    store: Path = typer.Option(None, "--store", help="Store folder (default: one per data folder under <out_dir>/stores, ingested when the data changed)."),
) -> None:
    """Fit a model on data up to a cutoff and save it as a new version with its model card."""
    settings = settings_for(data)
    units, cutoff = run_options(settings, units, cutoff)
    version, folder = train_step(settings, units, cutoff, method, store, progress)
    typer.echo(f"saved model {version} in {folder}")
    typer.echo(f"  model card: {folder / 'card.html'}")


@app.command("rank")
@user_errors
def rank_command(
    model: str = typer.Option(None, "--model", help="Saved version (default: the latest trained on these units of this data folder)."),
    units: str = typer.Option(None, "--units", help=UNITS_DEFAULT_HELP),
    cutoff: str = typer.Option(None, "--cutoff", help="YYYY-MM (default: after the last full 12 months)."),
    data: Path = typer.Option(None, "--data", help="Data folder (default: settings data_dir, else the demo borough)."),
    store: Path = typer.Option(None, "--store", help="Store folder (default: one per data folder under <out_dir>/stores, ingested when the data changed)."),
) -> None:
    """Rank places with a saved model and write a run (ranking, hot spots, areas, map, briefing, layers)."""
    settings = settings_for(data)
    units, cutoff = run_options(settings, units, cutoff)
    run_dir = make_run(settings, units=units, cutoff=cutoff, model_version=model or "latest", store_dir=store,
                       progress=progress)
    print_summary(run_dir)


@app.command("backtest")
@user_errors
def backtest_command(
    units: str = typer.Option(None, "--units", help=UNITS_DEFAULT_HELP),
    horizon: int = typer.Option(None, "--horizon", help="Months ahead (default: settings model.horizon_months)."),
    origins: str = typer.Option(None, "--origins", help="FIRST:LAST months, e.g. 2017-01:2018-06 (default: last 18)."),
    methods: list[str] = typer.Option(None, "--method", help="Repeat to choose methods (default: all)."),
    json_file: Path = typer.Option(None, "--json", help="Also write the table as JSON records here."),
    data: Path = typer.Option(None, "--data", help="Data folder (default: settings data_dir, else the demo borough)."),
    store: Path = typer.Option(None, "--store", help="Store folder (default: one per data folder under <out_dir>/stores, ingested when the data changed)."),
) -> None:
    """Rolling-origin backtest: hit rate, PAI, PEI* and RRI at 1/5/10% of area and top 10/20 places."""
    import pandas as pd

    settings = settings_for(data)
    units, _ = run_options(settings, units)
    horizon = horizon or settings.model.horizon_months
    origin_list = None
    if origins:
        first, _, last = origins.partition(":")
        try:
            origin_list = [label(m) for m in months_between(first, last or first)]
        except ValueError as exc:
            raise ValueError(f"--origins {origins!r}: expected FIRST:LAST months like 2017-01:2018-06 ({exc})") from None
        if not origin_list:
            raise ValueError(f"--origins {origins!r}: the first month is after the last")
    table, records, used, skipped = backtest_step(settings, units, horizon, origin_list,
                                                  methods or None, store, progress)
    cols = [c for c in ["method", "slice", "hit_rate", "pai", "pei", "rri", "harm_pai", "harm_pei"] if c in table]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 500):
        typer.echo(f"{units}, horizon {horizon}, origins {used[0]}..{used[-1]} ({len(used)})")
        typer.echo(table[cols].round(3).to_string(index=False))
    for origin, why in skipped.items():
        typer.echo(f"skipped origin {origin}: {why}")
    if json_file:
        json_file.write_text(json.dumps(records, indent=1))
        typer.echo(f"records written to {json_file}")
