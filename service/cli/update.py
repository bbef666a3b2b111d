"""`svrisk update`: fetch each updatable source's new releases into the data folder, then (--run) run."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import progress, settings_for, user_errors
from service.cli.run import print_summary

app = typer.Typer()


@app.command("update")
@user_errors
def update_command(
    data: Path = typer.Option(None, "--data", help="Data folder whose catalogue.toml marks sources updatable "
                              "(default: settings data_dir)."),
    run: bool = typer.Option(False, "--run", help="When anything new was placed: ingest, train, rank and write "
                             "a run, as `svrisk run`."),
    offline: bool = typer.Option(False, "--offline", help="Ask nobody: say what would be fetched."),
    proxy: str = typer.Option(None, "--proxy", help="HTTP(S) proxy URL (default: settings update.proxy, "
                              "else HTTPS_PROXY from the environment)."),
) -> None:
    """Fetch what is new for every updatable source, check it with the loaders, place it beside the old."""
    settings = settings_for(data)
    if proxy:
        settings.update.proxy = proxy
    from service.update import update_step  # import here: heavy, after the checks

    report = update_step(settings, offline=offline, run=run, progress=progress)
    for item in report["would_fetch"]:
        typer.echo(f"would fetch for {item['source']} ({item['update']}, into {item['folder']}): {item['would']}")
    for entry in report["placed"]:
        typer.echo(f"placed {entry['file']}  ({entry['source']}; {entry['rows_accepted']:,} of {entry['rows_read']:,} "
                   f"rows valid; sha256 {entry['sha256'][:12]}...; {entry['licence']})")
    for item in report["unchanged"]:
        typer.echo(f"nothing new for {item['source']}: {item['why']}")
    if not report["offline"]:
        typer.echo(f"{len(report['placed'])} file(s) placed" + ("" if report["placed"] else "; the folder is unchanged"))
    if report.get("run"):
        print_summary(Path(report["run"]))
    elif run and not report["offline"] and not report["placed"]:
        typer.echo("nothing new, so no new run")
