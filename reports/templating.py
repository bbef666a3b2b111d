"""The Jinja environment of every HTML report; templates ship as package data in ``reports/templates``."""

from __future__ import annotations

from pathlib import Path

import jinja2


def environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """Templates from ``reports/templates`` (package data), or from ``template_dir`` when given.

    Autoescaped, and strict: a name the template uses but the context lacks is an
    error, not an empty string.
    """
    if template_dir is not None:
        folder = Path(template_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"template folder {folder} not found")
        loader: jinja2.BaseLoader = jinja2.FileSystemLoader(folder)
    else:
        loader = jinja2.PackageLoader("reports", "templates")
    return jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape(["html", "j2"]),
                              undefined=jinja2.StrictUndefined)
