"""Browser login: ``GET /login`` shows a form, ``POST /login`` checks the key and sets the
session cookie (Secure, HttpOnly, SameSite=Strict), ``POST /logout`` ends it.

The key itself never goes into the cookie, a URL or a log: the cookie holds the key id, an
expiry, a nonce the server's session table must hold, and a signature (see
:class:`service.api.auth.Sessions`). Attempts to log in are throttled per client address
and per key id (after ``login_attempts`` failures within ``login_window_s``: 429 with
``Retry-After``, whether the next key is right or not).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service.api.auth import COOKIE, Identity, reader
from service.api.deps import AppSettings, BaseUrl, Keys, SessionStore, Shared, app_settings
from service.api.html import page
from service.keys import split_key

router = APIRouter(tags=["auth"])


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path on this service only (no other site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/map"
    return value


def _form(request: Request, status: int = 200, error: str = "", next_: str = "/map") -> HTMLResponse:
    hours = app_settings(request).service.session_hours
    return HTMLResponse(page(request, "login.html.j2", title="Log in", error=error,
                             next=safe_next(next_), hours=f"{hours:g}"), status_code=status)


@router.get("/login", response_class=HTMLResponse, summary="Log in with an API key (browsers)")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002 - the form's field
    return _form(request, next_=next or "/map")


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login(request: Request, settings: AppSettings, shared: Shared, keys: Keys, sessions: SessionStore,
                base_url: BaseUrl):
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (fields.get("key") or [""])[-1].strip()
    target = safe_next((fields.get("next") or ["/map"])[-1])
    parts = split_key(key)
    service = settings.service
    # per client address and per key id, shared by every worker process (service.api.state)
    buckets = [f"client:{request.client.host if request.client else '-'}"]
    if parts:
        buckets.append(f"key:{parts[0][:64]}")
    wait = shared.blocked(buckets, service.login_attempts, service.login_window_s)
    if wait:
        response = _form(request, 429, f"Too many failed attempts to log in: try again in {wait} s.", target)
        response.headers["Retry-After"] = str(wait)
        return response
    record, why = keys.lookup(*parts) if parts else (None, "not recognised")
    if record is None:
        shared.failed(buckets, service.login_window_s)
        return _form(request, 401, f"That key was {why}. Check you pasted the whole key.", target)
    if not record.allows("read"):
        return _form(request, 403, "That key may not read results.", target)
    value, max_age = sessions.make(record)
    response = RedirectResponse(base_url + target, status_code=303)
    response.set_cookie(COOKIE, value, max_age=max_age, path="/", secure=service.cookie_secure,
                        httponly=True, samesite="strict")
    return response


@router.post("/logout", include_in_schema=False, dependencies=[Depends(reader)])
def logout(request: Request, settings: AppSettings, sessions: SessionStore, base_url: BaseUrl):
    identity: Identity = request.scope["svrisk.identity"]
    if identity.via == "session":
        sessions.log_out(identity.session)
    response = RedirectResponse(base_url + "/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=settings.service.cookie_secure,
                           httponly=True, samesite="strict")
    return response
