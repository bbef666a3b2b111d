"""`svrisk evaluate`: did an intervention in an area work, and did violence move next door?"""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import progress, settings_for, user_errors
from service.cli.options import DataOption, StoreOption
from service.inputs import check_options

app = typer.Typer()


@app.command("evaluate")
@user_errors
def evaluate_command(
    area: str = typer.Option(..., "--area", help="A polygon file (any OGR format), a run's area (A1, or "
                             "<run_id>/A1), or comma-separated unit ids."),
    start: str = typer.Option(None, "--start", help="YYYY-MM: the first month of the intervention (with --plan: "
                              "plan from the months before it; default the end of the data)."),
    plan: bool = typer.Option(False, "--plan", help="Before it starts: the smallest effect the evaluation could "
                              "detect, and its power, over --months months; writes a one-page plan."),
    months: int = typer.Option(12, "--months", help="With --plan: how many months the intervention will run."),
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
    groups: str = typer.Option(None, "--groups", help="Comma-separated offence groups of the taxonomy to count "
                               "(default: the serious violence groups), e.g. robbery."),
    weight: str = typer.Option("count", "--weight", help="count, or harm (each event weighted by its harm)."),
    also: list[str] = typer.Option(None, "--also", help="Another area that started at another month, "
                                   "AREA@YYYY-MM (repeat): the areas are also judged together as a staggered "
                                   "adoption (Callaway & Sant'Anna)."),
    data: DataOption = None,
    store: StoreOption = None,
    out: Path = typer.Option(None, "--out", help="Output folder (default: <out_dir>/evaluations/<id>)."),
) -> None:
    """Before/after with comparison places, a synthetic control, and displacement to a buffer ring.

    With --plan, before the intervention starts: could an effect be detected at all?
    """
    settings = settings_for(data)
    checked = check_options({"units": units, "start": start, "end": end}, settings, ("units", "start", "end"),
                            what="options")
    start, end, units = checked.get("start"), checked.get("end"), checked.get("units")
    from service.pipeline import evaluate_step, plan_step  # import here: heavy, after the checks

    given = {k: v for k, v in {"buffer_m": buffer_m, "pre_months": pre_months}.items() if v is not None}
    if plan:
        planned, written = plan_step(settings, area, months, before=start, run=run, units=units, store_dir=store,
                                     out_dir=out, progress=progress, groups=groups, weight=weight, **given)
        power = ", ".join(f"{k}: {100 * v:.0f}%" for k, v in planned["power"].items())
        typer.echo(f"minimum detectable effect over {months} months: {100 * planned['mde']:.0f}% "
                   f"(power {power}; {planned['area_per_month']:.1f} events a month in the area)")
        typer.echo(f"plan written to {written.folder}")
        for name, path in written.paths.items():
            typer.echo(f"  {name}: {path}")
        return
    if start is None:
        raise typer.BadParameter("give --start YYYY-MM (the first month of the intervention), or --plan",
                                 param_hint="--start")
    if placebos is not None:
        given["placebos"] = placebos
    ev, written = evaluate_step(settings, area, start, end, run=run, units=units, store_dir=store, out_dir=out,
                                progress=progress, groups=groups, weight=weight, also=also, **given)
    typer.echo(ev.estimates["verdict"])
    st = ev.estimates.get("staggered")
    if st:
        lo, hi = st["interval_pct"]
        typer.echo(f"All {len(st['areas'])} areas together (staggered starts, Callaway & Sant'Anna): "
                   f"{st['overall_pct']:+.0f}% ({100 * st['level']:.0f}% interval {lo:+.0f}% to {hi:+.0f}%)")
    for w in ev.warnings:
        typer.echo(f"warning: {w}", err=True)
    for problem in written.problems:
        typer.echo(f"warning: {problem}", err=True)
    typer.echo(f"evaluation written to {written.folder}")
    for name, path in written.paths.items():
        typer.echo(f"  {name}: {path}")
