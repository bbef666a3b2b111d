"""The service's front door: a pure ASGI middleware that runs before any route.

For every HTTP request, in this order:

1. a request head over ``max_header_bytes`` is refused (431), and a key in the URL (400):
   keys belong in headers, where logs do not keep them;
2. the caller is identified from the headers alone (:func:`service.api.auth.identify`); a
   route that is not public answers 401 (or, for a browser asking for a page, redirects to
   ``/login``) *before a byte of the body is read*, and closes the connection so an
   unauthenticated upload is not read either;
3. a body is read only for an identified caller (or a public form such as ``/login``), at
   most ``max_body_bytes`` whatever the framing (``Content-Length`` or chunked) and within
   ``body_timeout_s``: larger is 413, slower is 408, and the route is handed the body from
   memory;
4. a change made with a session cookie needs the session's CSRF token and must not come
   from another site.

Before any of that, requests a front end could read differently from this server are
refused with 400 and the connection closed: both ``Content-Length`` and
``Transfer-Encoding`` (request smuggling), more than one ``X-API-Key`` or ``Authorization``
header (which one counts?), an API key in the path. A JSON body nested deeper than
``max_json_depth`` or with a number longer than ``max_number_digits`` is refused with 422
before any parser sees it. ``HEAD`` is answered as ``GET`` without the body, and a path
with a trailing slash is redirected to the path without it, from the configured public URL
(never from the ``Host`` header). No error repeats the path or a header it was sent.

Slow or oversized request heads never reach this far: see :mod:`service.api.server`.
"""

from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import parse_qs, quote

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse

from service.api.auth import (
    CHALLENGE,
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    SCOPE_KEY,
    Sessions,
    identify,
)
from service.keys import PREFIX, KeyStore

PUBLIC = frozenset({"/", "/health", "/login", "/docs", "/docs/oauth2-redirect", "/redoc",
                    "/openapi.json", "/favicon.ico"})
PUBLIC_PREFIXES = ("/docs/assets/",)
PUBLIC_FORM_BYTES = 4096  # the login form: a key and a few fields


class BodyTooLarge(Exception):
    pass


STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
BRACKET = re.compile(r"[\[\]{}]")
NUMBER = re.compile(r"-?[0-9][0-9.eE+\-]*")


def json_body_problem(body: bytes, max_depth: int, max_digits: int) -> str | None:
    """Why a JSON body must be refused before it is parsed (too deep, too long a number), or None.

    Python's parser recurses once per level (30,000 levels is a ``RecursionError``) and
    refuses integers of more than 4,300 digits with a ``ValueError``: both are caught here,
    by scanning the text outside its strings, in time linear in the body's size.
    """
    text = STRING.sub('""', body.decode("utf-8", "replace"))
    depth = deepest = 0
    for m in BRACKET.finditer(text):
        depth += 1 if m.group() in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > max_depth:
            return f"the JSON body is nested more than {max_depth} levels deep"
    longest = max((len(m.group()) for m in NUMBER.finditer(text)), default=0)
    if longest > max_digits:
        return f"the JSON body holds a number of {longest} characters; at most {max_digits} are accepted"
    return None


def is_public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def wants_page(headers: Headers, method: str) -> bool:
    """A browser navigating to a page (not a script, not a GIS client)."""
    return method in ("GET", "HEAD") and "text/html" in headers.get("accept", "")


class Guard:
    """ASGI middleware: identify, then cap and read the body, then check CSRF."""

    def __init__(self, app, *, keys: KeyStore, sessions: Sessions, base_url: str,
                 max_body_bytes: int = 64 * 1024, body_timeout_s: float = 30.0,
                 max_header_bytes: int = 16 * 1024, max_json_depth: int = 32, max_number_digits: int = 32):
        self.app = app
        self.max_json_depth = int(max_json_depth)
        self.max_number_digits = int(max_number_digits)
        self.max_header = int(max_header_bytes)
        self.keys = keys
        self.sessions = sessions
        self.base_url = base_url.rstrip("/")
        self.max_body = int(max_body_bytes)
        self.body_timeout = float(body_timeout_s)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        method = scope["method"]
        path = scope["path"]
        has_body = ("transfer-encoding" in headers
                    or headers.get("content-length", "0").strip() not in ("", "0"))

        head = (len(scope.get("raw_path") or b"") + len(scope.get("query_string", b""))
                + sum(len(k) + len(v) + 4 for k, v in scope["headers"]))
        if head > self.max_header:
            # uvicorn's own limit only sees heads that arrive in several reads
            return await self._refuse(scope, receive, send, 431, True,
                                      f"request head larger than {self.max_header} bytes")

        names = [k for k, _ in scope["headers"]]
        if b"transfer-encoding" in names and b"content-length" in names:
            return await self._refuse(scope, receive, send, 400, True,
                                      "a request may not carry both Content-Length and Transfer-Encoding")
        for name in (b"x-api-key", b"authorization"):
            if names.count(name) > 1:
                return await self._refuse(scope, receive, send, 400, True,
                                          f"more than one {name.decode()} header: send one credential")
        if PREFIX.encode() + b"_" in (scope.get("raw_path") or path.encode("utf-8", "replace")):
            return await self._refuse(scope, receive, send, 400, has_body,
                                      "API keys are never accepted in URLs: send them in the "
                                      "X-API-Key header or with HTTP Basic")

        if PREFIX.encode() + b"_" in scope.get("query_string", b""):
            return await self._refuse(scope, receive, send, 400, has_body,
                                      "API keys are never accepted in URLs (they end up in logs "
                                      "and browser history): send them in the X-API-Key header "
                                      "or with HTTP Basic")

        identity, why = identify(headers, method, self.keys, self.sessions)
        scope[SCOPE_KEY] = identity
        scope["svrisk.why"] = why
        public = is_public(path)
        if identity is None and not public:
            if wants_page(headers, method) and not has_body:
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                response = RedirectResponse(f"{self.base_url}/login?next={quote(target, safe='')}",
                                            status_code=303)
                return await response(scope, receive, send)
            return await self._refuse(scope, receive, send, 401, has_body, why, CHALLENGE)

        if identity is not None and identity.via == "session":
            scope["svrisk.csrf"] = self.sessions.csrf(identity.session)

        if method in ("GET", "HEAD") and len(path) > 1 and path.endswith("/"):
            # Starlette would build this from the Host header; the public URL is ours
            raw = (scope.get("raw_path") or path.encode()).decode("latin-1").rstrip("/")
            query = scope.get("query_string") or b""
            target = self.base_url + raw + ("?" + query.decode("latin-1") if query else "")
            return await RedirectResponse(target, status_code=307)(scope, receive, send)

        if has_body:
            cap = self.max_body if identity is not None else min(self.max_body, PUBLIC_FORM_BYTES)
            length = headers.get("content-length")
            if length is not None and (not length.strip().isdigit() or int(length) > cap):
                return await self._refuse(scope, receive, send, 413, True,
                                          f"request body larger than {cap} bytes")
            try:
                body = await self._read(receive, cap)
            except BodyTooLarge:
                return await self._refuse(scope, receive, send, 413, True,
                                          f"request body larger than {cap} bytes")
            except TimeoutError:
                return await self._refuse(scope, receive, send, 408, True,
                                          f"request body not received within {self.body_timeout:g} s")
            except ConnectionError:
                return None  # the client went away
            receive = _replay(body, receive)
            ctype = headers.get("content-type", "")
            if "json" in ctype or (not ctype and body.lstrip()[:1] in (b"{", b"[")):
                problem = json_body_problem(body, self.max_json_depth, self.max_number_digits)
                if problem:
                    return await self._refuse(scope, receive, send, 422, False, problem)
        else:
            body = b""

        if method not in SAFE_METHODS and (identity is None or identity.via == "session"):
            problem = self._cross_site(headers, identity, body)
            if problem:
                return await self._refuse(scope, receive, send, 403, False, problem)
        if method == "HEAD":
            return await self.app({**scope, "method": "GET"}, receive, _without_body(send))
        return await self.app(scope, receive, send)

    def _cross_site(self, headers: Headers, identity, body: bytes) -> str | None:
        """Why a cookie-authenticated (or login) change must be refused, or None."""
        if headers.get("sec-fetch-site") == "cross-site":
            return "refused: this request came from another site"
        if identity is None:  # the login form itself: nothing to forge yet
            return None
        token = headers.get(CSRF_HEADER.lower())
        if token is None and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            token = (parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD) or [None])[0]
        if not self.sessions.check_csrf(identity.session, token):
            return (f"refused: a change made with a browser session needs its CSRF token "
                    f"(form field {CSRF_FIELD} or header {CSRF_HEADER}); reload the form")
        return None

    async def _read(self, receive, cap: int) -> bytes:
        chunks, size = [], 0
        deadline = time.monotonic() + self.body_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            message = await asyncio.wait_for(receive(), remaining)
            if message["type"] == "http.disconnect":
                raise ConnectionError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope, receive, send, status: int, close: bool, detail: str,
                      headers: dict | None = None):
        """Answer without reading further; close the connection if a body may still be coming."""
        extra = dict(headers or {})
        if close:
            extra["Connection"] = "close"
        response = JSONResponse({"detail": detail}, status_code=status, headers=extra)
        await response(scope, receive, send)


def _without_body(send):
    """``send`` for a HEAD request answered by a GET route: the head, an empty body."""
    done = False

    async def head_only(message):
        nonlocal done
        if message["type"] != "http.response.body":
            return await send(message)
        if not done:
            done = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return head_only


def _replay(body: bytes, receive):
    done = False

    async def replay():
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # only a disconnect can come now

    return replay


__all__ = ["Guard", "is_public", "json_body_problem"]
