"""`svrisk serve` and `svrisk keys`: the HTTP API and its access keys."""

from __future__ import annotations

import typer

from service.api.app import create_app
from service.cli.common import settings_for, user_errors
from service.jobs import job_runners
from service.keys import KeyStore

app = typer.Typer()
keys_app = typer.Typer(help="Create, list and revoke API keys (stored hashed in settings.service.keys_file).")


@app.command("serve")
@user_errors
def serve_command(
    host: str = typer.Option(None, "--host", help="Address to listen on (default from settings: 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default from settings: 8000)."),
) -> None:
    """Serve rankings, layers (OGC API - Features), maps and briefings over HTTP."""
    import uvicorn

    settings = settings_for()
    uvicorn.run(create_app(settings, jobs=job_runners(settings)), host=host or settings.service.host,
                port=port or settings.service.port)


@keys_app.command("create")
@user_errors
def keys_create(name: str = typer.Argument(..., help="Who the key is for."),
                role: str = typer.Option("viewer", "--role", help="viewer (read outputs) or analyst (also run jobs).")) -> None:
    """Create a key and print it once; only its salted hash is stored."""
    key = KeyStore(settings_for().service.keys_file).create(name, role)
    typer.echo(key)


@keys_app.command("list")
@user_errors
def keys_list() -> None:
    """List keys (ids, names, roles; never the secrets)."""
    for record in KeyStore(settings_for().service.keys_file).list():
        typer.echo("  ".join(f"{k}={v}" for k, v in record.items()))


@keys_app.command("revoke")
@user_errors
def keys_revoke(key_id: str = typer.Argument(..., help="The key id shown by `svrisk keys list`.")) -> None:
    """Revoke a key."""
    KeyStore(settings_for().service.keys_file).revoke(key_id)
    typer.echo(f"revoked {key_id}")
