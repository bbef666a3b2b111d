"""`svrisk demo`: write the synthetic demo borough (or many, side by side) in the public formats."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import progress, settings_for, user_errors

app = typer.Typer()


@app.command("demo")
@user_errors
def demo_command(
    out: Path = typer.Option(None, "--out", help="Folder to write (default: <out_dir>/demo-data)."),
    boroughs: int = typer.Option(1, "--boroughs", min=1, max=100, help="Boroughs side by side (32 ~ London)."),
    years: int = typer.Option(3, "--years", min=1, help="Years of monthly crime from 2016-01."),
    seed: int = typer.Option(None, "--seed", help="Generator seed (default: settings demo_seed)."),
) -> None:
    """Generate the deterministic synthetic borough; with --boroughs N a London- or national-scale input."""
    settings = settings_for()
    target = out or settings.demo_dir
    seed = settings.demo_seed if seed is None else seed
    from sources.demo.borough import generate_demo  # import here: heavy, after the checks
    from sources.demo.scale import generate_scaled  # import here: heavy, after the checks

    if boroughs == 1:
        path = generate_demo(target, seed=seed, months=12 * years)
    else:
        path = generate_scaled(target, boroughs=boroughs, years=years, seed=seed, progress=progress)
    typer.echo(f"demo data written to {path}")
