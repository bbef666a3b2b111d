"""`svrisk serve`, `svrisk publish` and `svrisk keys`: the HTTP API, what it shows, who may use it."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import settings_for, user_errors
from service.keys import ROLE_SCOPES, KeyStore
from service.publish import publish

app = typer.Typer()
keys_app = typer.Typer(help="Create, list and revoke API keys (stored hashed in settings.service.keys_file).")


@app.command("serve")
@user_errors
def serve_command(
    data: Path = typer.Option(None, "--data", help="The one data folder jobs read (default: settings "
                              "data_dir, else the demo borough). Ingest jobs never switch folders."),
    host: str = typer.Option(None, "--host", help="Address to listen on (default from settings: 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default from settings: 8000)."),
    public_url: str = typer.Option(None, "--public-url", help="URL clients use, e.g. https://gis.example.org/svrisk "
                                   "(default: settings service.public_url, else http://HOST:PORT)."),
    workers: int = typer.Option(None, "--workers", min=1, max=32,
                                help="Processes serving requests (default from settings: 1). Sessions and "
                                "login throttling are shared by all of them (service.state_file)."),
) -> None:
    """Serve the published run (OGC API - Features for QGIS/ArcGIS, map, briefing) and analysts' jobs."""
    if data is not None and not data.is_dir():
        raise FileNotFoundError(f"--data {data}: no such folder")
    base = settings_for(data)
    service = base.service.model_copy(update={k: v for k, v in
                                              {"host": host, "port": port, "public_url": public_url,
                                               "workers": workers}.items()
                                              if v is not None})
    settings = base.model_copy(update={"service": type(base.service).model_validate(service.model_dump())})
    if settings.service.public_url is None and settings.service.host in ("0.0.0.0", "::"):
        typer.echo("warning: listening on all addresses without --public-url: links will say "
                   f"{settings.service.base_url}; set service.public_url to the address clients use", err=True)
    typer.echo(f"serving {settings.runs_dir} at {settings.service.base_url} (data: "
               f"{settings.data_dir or 'the demo borough'})", err=True)
    from service.api.server import serve  # import here: uvicorn, after the checks

    if settings.service.workers > 1:
        serve(None, settings)  # each worker process builds its own app (service.api.server)
    else:
        from service.api.app import create_app  # import here: FastAPI, after the checks
        from service.jobs import job_runners  # import here: the pipeline, after the checks

        serve(create_app(settings, jobs=job_runners(settings)), settings)


@app.command("publish")
@user_errors
def publish_command(run: str = typer.Argument(..., help="The run id to publish (see GET /runs).")) -> None:
    """Publish a run: GIS clients at /ogc and the pages /map and /briefing serve it from now on."""
    record = publish(settings_for().runs_dir, run, by="cli")
    typer.echo(f"published {record['run_id']}" + (" (a demo run)" if record["demo"] else ""))


@keys_app.command("create")
@user_errors
def keys_create(name: str = typer.Argument(..., help="Who the key is for."),
                role: str = typer.Option("viewer", "--role", help="viewer (read outputs) or analyst (also run jobs and publish)."),
                scopes: list[str] = typer.Option(None, "--scope", help="Limit the key to these scopes (repeat): "
                                                 f"viewer {list(ROLE_SCOPES['viewer'])}, analyst {list(ROLE_SCOPES['analyst'])}."),
                days: float = typer.Option(None, "--days", help="Days until it expires (default: settings service.key_days)."),
                expires: str = typer.Option(None, "--expires", help="Expiry date YYYY-MM-DD instead of --days.")) -> None:
    """Create a key and print it once; only its salted hash is stored."""
    settings = settings_for()
    key = KeyStore(settings.service.keys_file).create(name, role, scopes=scopes or None,
                                                      days=days or settings.service.key_days, expires=expires)
    typer.echo(key)


@keys_app.command("list")
@user_errors
def keys_list() -> None:
    """List keys (ids, names, roles, scopes, expiry; never the secrets)."""
    for record in KeyStore(settings_for().service.keys_file).list():
        typer.echo("  ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in record.items()))


@keys_app.command("revoke")
@user_errors
def keys_revoke(key_id: str = typer.Argument(..., help="The key id shown by `svrisk keys list`.")) -> None:
    """Revoke a key."""
    KeyStore(settings_for().service.keys_file).revoke(key_id)
    typer.echo(f"revoked {key_id}")
