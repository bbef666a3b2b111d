"""`svrisk assess`: the Strategic Needs Assessment evidence pack (HTML, PDF, figures, CSV tables)."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import progress, settings_for, user_errors
from service.cli.options import DataOption, StoreOption

app = typer.Typer()


@app.command("assess")
@user_errors
def assess_command(
    data: DataOption = None,
    compare: Path = typer.Option(None, "--compare", help="Comparison folder of the region's authorities "
                                 "(default: settings compare_dir; none: no comparison section)."),
    period_end: str = typer.Option(None, "--period-end", help="YYYY-MM, last month of the rolling 12 months "
                                   "(default: the latest with 12 complete months)."),
    baseline: Path = typer.Option(None, "--baseline", help="A previous pack (folder or its kpi_baseline.csv) "
                                  "to compare the KPIs against."),
    out: Path = typer.Option(None, "--out", help="Pack folder (default: <out_dir>/assess/<area>-<period end>)."),
    store: StoreOption = None,
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Print the PDF with headless Chromium."),
) -> None:
    """Write the needs assessment's evidence pack: profile, trends, spatial distribution, comparison,
    risk and protective factors, monitoring KPIs."""
    settings = settings_for(data)
    from service.assess import assess_step  # import here: heavy, after the checks

    a, paths = assess_step(settings, compare_dir=compare, period_end=period_end, baseline=baseline, out_dir=out,
                           store_dir=store, pdf=pdf, progress=progress)
    typer.echo(f"{a.area_name}: 12 months to {a.period_end} ({a.meta['period']}), source {a.meta['trend_source']}")
    for p in a.parts:
        typer.echo(f"  {p['section'][:2]} {p['what']}: {p['period']}, {p['units']}, {p['residents']}")
    for section, notes in a.meta.get("notes", {}).items():
        for n in notes:
            typer.echo(f"  note ({section}): {n}")
    if "pdf_error" in paths:
        typer.echo(f"warning: {paths.pop('pdf_error')}", err=True)
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
