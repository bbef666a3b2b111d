"""`svrisk ingest`: validate a data folder into a store and print what was accepted, rejected and lost."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import progress, settings_for, user_errors
from service.cli.options import DataOption

app = typer.Typer()


@app.command("ingest")
@user_errors
def ingest_command(
    data: DataOption = None,
    out: Path = typer.Option(None, "--out", help="Store folder to write (default: one per data folder under <out_dir>/stores)."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Load the readable rows of damaged files and "
                                    "report what was lost, instead of stopping with exit code 2."),
) -> None:
    """Load every source in DATA, validate it, and write the store with rejects and ingest_report.json."""
    settings = settings_for(data)
    if keep_going:
        settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"keep_going": True})})
    from service.stores import ingest_step  # import here: pandas and the loaders, after the checks

    report, store_dir = ingest_step(settings, store_dir=out, progress=progress)
    print_report(report)
    typer.echo(f"store written to {store_dir}")


def print_report(report: dict) -> None:
    width = max((len(i["source"]) for i in report["inputs"]), default=10)
    typer.echo(f"{'source':<{width}}  {'read':>8} {'accepted':>9} {'rejected':>9}  top reject reason")
    for item in report["inputs"]:
        reasons = item["rejected_by_reason"]
        top = max(reasons, key=reasons.get) if reasons else ""
        typer.echo(f"{item['source']:<{width}}  {item['rows_read']:>8} {item['accepted']:>9} {item['rejected']:>9}  {top}")
    t = report["totals"]
    typer.echo(f"{'TOTAL':<{width}}  {t['rows_read']:>8} {t['accepted']:>9} {t['rejected']:>9}"
               f"  {'reconciled' if report['reconciled'] else 'NOT RECONCILED'}")
    flags = [f for f in report["quality_flags"] if f.get("severity") in ("warning", "error")]
    if flags:
        typer.echo("\ndata-quality flags:")
        for f in flags:
            typer.echo(f"  [{f['severity']}] {f['message']}")
    accounted = report.get("accounted")
    if accounted:
        typer.echo(f"\nfiles: {accounted['found']} found, {accounted['ingested']} ingested, "
                   f"{accounted['unrecognised']} unrecognised, {accounted['damaged']} damaged")
    for d in report.get("damaged", []):
        where = d["path"] + (f"!{d['member']}" if d.get("member") else "")
        accepted = f" ({d['rows_accepted']:,} accepted)" if "rows_accepted" in d else ""
        typer.echo(f"  DAMAGED (kept going): {where}: {d['why']}; {d['rows_recovered']:,} rows recovered"
                   f"{accepted}, lost: {d['rows_lost']}")
    for u in report.get("unrecognised", []):
        typer.echo(f"  not used: {u['path']} ({u['why']})")
