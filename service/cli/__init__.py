"""The `svrisk` command line: one command group per file, each calling one package function."""

from __future__ import annotations

import typer

from service.cli import (
    assess,
    demo,
    evaluate,
    features,
    hotspots,
    ingest,
    ledger,
    models,
    run,
    serve,
    update,
)

app = typer.Typer(
    name="svrisk",
    help="Serious-violence risk modelling: ingest, features, hotspots, models, outputs.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def root() -> None:
    """svrisk: ranks places, never people. Settings come from svrisk.toml and SVRISK_* variables."""


for module in (run, demo, ingest, update, features, hotspots, models, assess, evaluate, ledger, serve):
    app.registered_commands.extend(module.app.registered_commands)
app.add_typer(serve.keys_app, name="keys")


def main() -> None:
    app()
