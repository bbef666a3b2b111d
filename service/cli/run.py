"""`svrisk run`: the main job, from data to map, briefing and GIS layers."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from service.cli.common import progress, run_options, settings_for, user_errors
from service.cli.options import UNITS_HELP, DataOption, StoreOption

app = typer.Typer()


@app.command("run")
@user_errors
def run_command(
    data: DataOption = None,
    units: str = typer.Option(None, "--units", help=UNITS_HELP.removesuffix(".") + " (default: the finest units "
                              "whose data are current: settings units.default, or the units of fresher area tables)."),
    source: str = typer.Option("auto", "--source", help="auto (the freshest data), points (police.uk street-level "
                               "events) or areas (monthly counts by area, e.g. the Met's LSOA and ward tables)."),
    cutoff: str = typer.Option(None, "--cutoff", help="YYYY-MM (default: after the last 12 complete months of data)."),
    model: str = typer.Option(None, "--model", help="Saved model version to rank with (default: train one)."),
    store: StoreOption = None,
    tiles: str = typer.Option(None, "--tiles", help="Base map: none (offline, default), osm, or a tile URL "
                              "template https://.../{z}/{x}/{y}.png (default: settings map.tiles)."),
) -> None:
    """Ingest (if needed), build features, find hot spots, train and rank, and write every output."""
    if tiles is not None:
        from reports.maps import tile_source  # import here: only to check --tiles, before any work

        tile_source(tiles)
    settings = settings_for(data)
    if tiles is not None:
        settings.map.tiles = tiles
    checked, cutoff = run_options(settings, units, cutoff)
    from features.areas import SOURCES  # import here: heavy, after the checks
    from service.run import make_run  # import here: heavy, after the checks

    if source not in SOURCES:
        raise ValueError(f"--source must be one of {', '.join(SOURCES)}, got {source!r}")
    run_dir = make_run(settings, units=checked if units is not None else None, cutoff=cutoff, model_version=model,
                       store_dir=store, source=source, progress=progress)
    print_summary(run_dir)


def print_summary(run_dir: Path) -> None:
    """What a run is about: each analysis with its data period and age, the flags that matter, the files."""
    from features.areas import coverage_note  # import here: heavy, only once a run is written

    meta = json.loads((run_dir / "run.json").read_text())
    typer.echo(f"run written to {run_dir}")
    analyses = [("forecast", meta)]
    if meta.get("current"):
        analyses.append(("beside it", meta["current"]))
    if meta.get("lead"):
        typer.echo(f"  {meta['lead']}")
    for title, a in analyses:
        p = a["data_period"]
        what = "area tables" if p.get("source") == "areas" else "point events"
        typer.echo(f"  {title}: {a['units']} for {a['cutoff']} from {what} {p['start']}..{p['end']} "
                   f"(newest month {p['age_months']} months old), model {a['model_version']}")
        if p.get("warning"):
            typer.echo(f"  warning: {p['warning']}")
        for note in [coverage_note(a["target_coverage"])] if a.get("target_coverage") else []:
            if note:
                typer.echo(f"  note: {note}")
    if meta.get("points"):
        typer.echo(f"  {meta['points']}")
    for flag in meta.get("quality_flags", []):
        typer.echo(f"  data [{flag['severity']}] {flag['message']}")
    for name in ("map.html", "briefing.html", "briefing.pdf", "layers.gpkg"):
        if (run_dir / name).is_file():
            typer.echo(f"  {name}: {run_dir / name}")
