"""Who is calling: API keys in a header, HTTP Basic for GIS clients, a session cookie for browsers.

Credentials, checked in this order (:func:`identify`):

- ``X-API-Key: svk_<id>_<secret>`` (or ``Authorization: Bearer svk_...``): any route;
- ``Authorization: Basic`` with user = key id and password = secret (or the whole key as
  password): read routes only (GET/HEAD), which is what QGIS's Basic authentication
  configuration and GDAL's ``GDAL_HTTP_AUTH=BASIC`` send; a browser replays Basic
  credentials to any form, so they never start a job;
- the ``svrisk_session`` cookie set by ``POST /login``: Secure, HttpOnly, SameSite=Strict,
  signed, and valid only while the server's session table holds it (logging out deletes it;
  a restart logs everyone out). A request
  that changes something with it also needs the session's CSRF token (form field
  ``csrf_token`` or header ``X-CSRF-Token``), see :class:`service.api.guard.Guard`.

The guard middleware identifies the caller before the body is read and keeps the result in
the request scope; routes then ask for a scope (``read``, ``rank``, ...) with
:func:`require`. Keys are never accepted in URLs, and no message repeats a key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPBasic

from service.api import schemas
from service.api.state import SharedState
from service.keys import KeyRecord, KeyStore, split_key

HEADER = "X-API-Key"
COOKIE = "svrisk_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCOPE_KEY = "svrisk.identity"
CHALLENGE = {"WWW-Authenticate": 'Basic realm="svrisk", charset="UTF-8"'}
MISSING = (f"missing credentials: send an API key in the {HEADER} header, or HTTP Basic "
           "(user = key id, password = secret) for reading, or log in at /login")

# documentation only (the guard has already identified the caller): shown in /docs
api_key_header = APIKeyHeader(name=HEADER, auto_error=False,
                              description="An API key made with `svrisk keys create`.")
http_basic = HTTPBasic(auto_error=False, realm="svrisk",
                       description="User = key id, password = secret (read routes; QGIS, GDAL).")


@dataclass(frozen=True)
class Identity:
    """A caller the guard recognised: their key's record and how they sent it."""

    record: KeyRecord
    via: str  # "header", "basic" or "session"
    session: str | None = None  # the cookie value, for the CSRF token

    @property
    def key_id(self) -> str:
        return self.record.key_id


class Sessions:
    """Signed, expiring session cookies ``v1.<key_id>.<expires>.<nonce>.<signature>``, each
    valid only while the server's session table holds its nonce.

    The table and the signing secret live in :class:`service.api.state.SharedState`, so every
    worker process of ``svrisk serve --workers N`` agrees. Logging out deletes the row: the
    cookie is dead for good, however many sessions are made later (past ``max_sessions`` the
    oldest sessions are ended, never the other way round).
    """

    def __init__(self, hours: float = 8.0, state: SharedState | None = None, max_sessions: int = 10_000):
        self.seconds = int(hours * 3600)
        self.state = state if state is not None else SharedState(max_sessions=max_sessions)
        self._secret = self.state.secret

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def make(self, record: KeyRecord, now: float | None = None) -> tuple[str, int]:
        """(cookie value, max-age seconds): no longer than the key itself is valid."""
        now = int(now or time.time())
        until = now + self.seconds
        if record.expires:
            until = min(until, int(dt.datetime.fromisoformat(record.expires).timestamp()))
        nonce = secrets.token_hex(16)
        payload = f"v1.{record.key_id}.{until}.{nonce}"
        self.state.add_session(nonce, record.key_id, until)
        return f"{payload}.{self._sign(payload)}", max(until - now, 0)

    def _parts(self, value: str | None) -> list[str] | None:
        if not value or len(value) > 200:
            return None
        payload, _, sig = value.rpartition(".")
        parts = payload.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not hmac.compare_digest(sig, self._sign(payload)):
            return None
        return parts

    def key_id(self, value: str | None, now: float | None = None) -> str | None:
        """The key id of a valid, unexpired session that has not been ended, else None."""
        parts = self._parts(value)
        if parts is None or not parts[2].isdigit() or int(parts[2]) <= (now or time.time()):
            return None
        key_id = self.state.session_key_id(parts[3])
        return key_id if key_id == parts[1] else None

    def csrf(self, value: str) -> str:
        """The CSRF token of a session: forms carry it, the guard compares it."""
        return self._sign(f"csrf.{value}")[:32]

    def check_csrf(self, value: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(value), str(token))

    def log_out(self, value: str) -> None:
        """End a session: its row is deleted, so its cookie is refused from now on."""
        parts = self._parts(value)
        if parts is not None:
            self.state.drop_session(parts[3])


def _basic(value: str) -> tuple[str, str] | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


def cookie_value(headers: Mapping[str, str]) -> str | None:
    """The session cookie from a Cookie header (the last one wins, as browsers order them)."""
    raw = headers.get("cookie")
    if not raw:
        return None
    found = None
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            found = value
    return found


def identify(headers: Mapping[str, str], method: str, keys: KeyStore,
             sessions: Sessions) -> tuple[Identity | None, str]:
    """(identity, "") for valid credentials in ``headers``, else (None, why).

    A credential that is present but wrong is refused even if a valid cookie is also sent.
    """
    key = headers.get(HEADER.lower())
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if key is None and scheme.lower() == "bearer":
        key = value.strip()
    if key is not None:
        record, why = keys.check(key.strip())
        return (Identity(record, "header"), "") if record else (None, f"API key {why}")
    if scheme.lower() == "basic":
        if method not in SAFE_METHODS:
            return None, ("HTTP Basic is accepted for reading only; send the key in the "
                          f"{HEADER} header to change anything")
        pair = _basic(value)
        if pair is None:
            return None, "HTTP Basic credentials are not valid base64 'user:password'"
        user, password = pair
        whole = split_key(password)
        record, why = keys.lookup(*whole) if whole else keys.lookup(user, password)
        return (Identity(record, "basic"), "") if record else (None, f"API key {why}")
    cookie = cookie_value(headers)
    if cookie is not None:
        key_id = sessions.key_id(cookie)
        record = keys.record(key_id) if key_id else None
        if record is None:
            return None, "your session has ended: log in again at /login"
        return Identity(record, "session", cookie), ""
    return None, MISSING


def require(scope: str):
    """A dependency that returns the caller's key record if it holds ``scope``."""

    def check(request: Request,
              _key: Annotated[str | None, Security(api_key_header)] = None,
              _basic_auth: Annotated[object, Security(http_basic)] = None) -> KeyRecord:
        identity: Identity | None = request.scope.get(SCOPE_KEY)
        if identity is None:
            raise HTTPException(401, request.scope.get("svrisk.why", MISSING), headers=CHALLENGE)
        record = identity.record
        if not record.allows(scope):
            raise HTTPException(403, f"this needs the {scope!r} scope; key {record.key_id!r} "
                                     f"({record.role}) has {list(record.granted())}")
        return record

    return check


viewer = reader = require("read")
analyst = require("rank")
publisher = require("publish")

router = APIRouter(tags=["auth"])


@router.get("/auth/whoami", summary="The key you are calling with (no secret)",
            response_model=schemas.WhoAmI, response_model_exclude_unset=True)
def whoami(record: Annotated[KeyRecord, Depends(reader)]) -> dict:
    return {"key_id": record.key_id, "name": record.name, "role": record.role,
            "scopes": list(record.granted()), "expires": record.expires}
