"""`svrisk train`, `svrisk rank`, `svrisk backtest`: the analyst's model lifecycle."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from service.cli.common import UNITS_DEFAULT_HELP, progress, run_options, settings_for, user_errors
from service.cli.run import print_summary

app = typer.Typer()


@app.command("train")
@user_errors
def train_command(
    units: str = typer.Option(None, "--units", help=UNITS_DEFAULT_HELP),
    cutoff: str = typer.Option(None, "--cutoff", help="YYYY-MM: fit on data before it (default: all data)."),
    method: str = typer.Option(None, "--method", help="nested (default: the best transparent candidate on earlier "
                               "origins), glm, glm_levels, glm_own, xgb, blend, count_12m, ..."),
    horizon: int = typer.Option(None, "--horizon", min=1,
                                help="Months ahead: 1 (next month) or 3 (next quarter) (default: settings model.horizon_months)."),
    data: Path = typer.Option(None, "--data", help="Data folder (default: settings data_dir, else the demo borough)."),
    store: Path = typer.Option(None, "--store", help="Store folder (default: one per data folder under <out_dir>/stores, ingested when the data changed)."),
) -> None:
    """Fit a model on data up to a cutoff and save it as a new version with its model card."""
    settings = settings_for(data)
    units, cutoff = run_options(settings, units, cutoff)
    from service.pipeline import train_step  # import here: heavy, after the checks

    version, folder = train_step(settings, units, cutoff, method, store, progress, horizon=horizon)
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
    from service.run import make_run  # import here: heavy, after the checks

    run_dir = make_run(settings, units=units, cutoff=cutoff, model_version=model or "latest", store_dir=store,
                       progress=progress)
    print_summary(run_dir)


@app.command("backtest")
@user_errors
def backtest_command(
    units: str = typer.Option(None, "--units", help=UNITS_DEFAULT_HELP),
    horizon: int = typer.Option(None, "--horizon", min=1,
                                help="Months ahead: 1 (next month) or 3 (next quarter) (default: settings model.horizon_months)."),
    origins: str = typer.Option(None, "--origins", help="FIRST:LAST months, e.g. 2017-01:2018-06 (default: the last 18 with complete history and horizon; "
                                 "fewer, or a shortened history, on short data, said so)."),
    methods: list[str] = typer.Option(None, "--method", help="Repeat to choose methods (default: all; count_12m always)."),
    json_file: Path = typer.Option(None, "--json", help="Also write per-origin rows, summary, paired differences and ceiling here."),
    data: Path = typer.Option(None, "--data", help="Data folder (default: settings data_dir, else the demo borough)."),
    store: Path = typer.Option(None, "--store", help="Store folder (default: one per data folder under <out_dir>/stores, ingested when the data changed)."),
) -> None:
    """Rolling-origin backtest: PEI*, hit rate, PAI and RRI, each method against last year's counts, and the ceiling."""
    settings = settings_for(data)
    units, _ = run_options(settings, units)
    horizon = horizon or settings.model.horizon_months
    origin_list = None
    if origins:
        from features.months import label, months_between  # import here: pandas

        first, _, last = origins.partition(":")
        try:
            origin_list = [label(m) for m in months_between(first, last or first)]
        except ValueError as exc:
            raise ValueError(f"--origins {origins!r}: expected FIRST:LAST months like 2017-01:2018-06 ({exc})") from None
        if not origin_list:
            raise ValueError(f"--origins {origins!r}: the first month is after the last")
    from reports.model_card import backtest_text  # import here: heavy, after the checks
    from service.pipeline import backtest_step  # import here: heavy, after the checks

    report = backtest_step(settings, units, horizon, origin_list, methods or None, store,
                           progress)
    for line in backtest_text(report):
        typer.echo(line)
    for note in report.get("origin_notes") or []:
        typer.echo(f"origins: {note}")
    for origin, why in (report.get("skipped") or {}).items():
        typer.echo(f"skipped origin {origin}: {why}")
    if json_file:
        json_file.write_text(json.dumps(report, indent=1))
        typer.echo(f"per-origin rows, summary, paired differences and ceiling written to {json_file}")
