"""HTML pages of the service (login, jobs, OGC API ``f=html``): Jinja templates shipped as package data."""

from __future__ import annotations

import functools

import jinja2
from fastapi import Request

from service.api.deps import base_url


@functools.cache
def environment() -> jinja2.Environment:
    """Templates from ``service/api/templates``; autoescaped and strict like the reports'."""
    return jinja2.Environment(loader=jinja2.PackageLoader("service.api", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              undefined=jinja2.StrictUndefined)


def page(request: Request, template: str, **context) -> str:
    """Render ``template`` with the service's base URL and the caller (if any)."""
    identity = request.scope.get("svrisk.identity")
    return environment().get_template(template).render(
        base=base_url(request), who=identity.record if identity else None,
        csrf=request.scope.get("svrisk.csrf", ""), **context)


def wants_html(request: Request) -> bool:
    """``f=html``, or a browser's Accept header preferring HTML (and no ``f``)."""
    f = request.query_params.get("f")
    if f is not None:
        return f == "html"
    accept = request.headers.get("accept", "")
    html = accept.find("text/html")
    if html < 0:
        return False
    js = min((i for i in (accept.find("application/json"), accept.find("application/geo+json")) if i >= 0),
             default=-1)
    return js < 0 or html < js
