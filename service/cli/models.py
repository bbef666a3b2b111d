"""`svrisk train`, `svrisk rank`, `svrisk backtest`: the analyst's model lifecycle."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from service.cli.common import progress, run_options, settings_for, user_errors
from service.cli.options import DataOption, HorizonOption, StoreOption, UnitsOption
from service.cli.run import print_summary

app = typer.Typer()


@app.command("train")
@user_errors
def train_command(
    units: UnitsOption = None,
    cutoff: str = typer.Option(None, "--cutoff", help="YYYY-MM: fit on data before it (default: all data)."),
    method: str = typer.Option(None, "--method", help="nested (default: the best transparent candidate on earlier "
                               "origins), glm, glm_levels, glm_own, xgb, blend, count_12m, ..."),
    horizon: HorizonOption = None,
    data: DataOption = None,
    store: StoreOption = None,
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
    units: UnitsOption = None,
    cutoff: str = typer.Option(None, "--cutoff", help="YYYY-MM (default: after the last full 12 months)."),
    data: DataOption = None,
    store: StoreOption = None,
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
    units: UnitsOption = None,
    horizon: HorizonOption = None,
    origins: str = typer.Option(None, "--origins", help="FIRST:LAST months, e.g. 2017-01:2018-06 (default: the last 18 with complete history and horizon; "
                                 "fewer, or a shortened history, on short data, said so)."),
    methods: list[str] = typer.Option(None, "--method", help="Repeat to choose methods (default: all; count_12m always)."),
    json_file: Path = typer.Option(None, "--json", help="Also write per-origin rows, summary, paired differences and ceiling here."),
    data: DataOption = None,
    store: StoreOption = None,
    fresh: bool = typer.Option(False, "--fresh", help="Empty the store's prediction cache first and refit every method."),
) -> None:
    """Rolling-origin backtest: PEI*, hit rate, PAI and RRI, each method against last year's counts, and the ceiling."""
    settings = settings_for(data)
    units, _ = run_options(settings, units)
    horizon = horizon or settings.model.horizon_months
    origin_list = None
    if origins:
        from features.months import months_between  # import here: pandas

        first, _, last = origins.partition(":")
        try:
            origin_list = months_between(first, last or first)  # parsed here, Months from now on
        except ValueError as exc:
            raise ValueError(f"--origins {origins!r}: expected FIRST:LAST months like 2017-01:2018-06 ({exc})") from None
        if not origin_list:
            raise ValueError(f"--origins {origins!r}: the first month is after the last")
    from reports.model_card import backtest_text  # import here: heavy, after the checks
    from service.pipeline import backtest_step  # import here: heavy, after the checks

    report = backtest_step(settings, units, horizon, origin_list, methods or None, store,
                           progress, fresh=fresh)
    for line in backtest_text(report):
        typer.echo(line)
    for note in report.get("origin_notes") or []:
        typer.echo(f"origins: {note}")
    for origin, why in (report.get("skipped") or {}).items():
        typer.echo(f"skipped origin {origin}: {why}")
    if json_file:
        json_file.write_text(json.dumps(report, indent=1))
        typer.echo(f"per-origin rows, summary, paired differences and ceiling written to {json_file}")
