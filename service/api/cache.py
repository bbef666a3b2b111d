"""Finished responses of the runs' data, kept per run with an ETag and a gzip copy.

A run never changes once written (:mod:`service.publish`), so a page of its ranking, a layer
or an OGC API page is the same bytes for every caller until another run is published. The
middleware :class:`ResponseCache` (inside the guard: every request is still identified and
checked first) keeps the body of each successful ``GET`` under ``/runs/`` and ``/ogc`` by
path, query and ``Accept``, stamped with what it was made from (the publication record and
the run's files, see :meth:`RunRepository.stamp`): a new publication or a changed run makes
a new entry. A hit costs a few ``stat`` calls, no serialisation:

- ``ETag`` on every cached answer; ``If-None-Match`` with it answers 304 without a body;
- ``Content-Encoding: gzip`` for clients that accept it (compressed once, kept);
- least recently used entries leave first beyond ``response_cache_mb``;
- many clients asking at once for an answer not yet kept wait for the one being made.

HTML pages (they carry the session's CSRF token) and file downloads are never kept.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from starlette.datastructures import Headers

from service.api.repository import NotFound, RunRepository, Unavailable
from service.publish import PUBLISHED

CACHED_PREFIXES = ("/runs/", "/ogc")
NEVER = ("/download/",)  # files: streamed from disk, never held
MIN_GZIP_BYTES = 1024
DROPPED_HEADERS = {b"content-length", b"date", b"etag", b"content-encoding", b"vary"}


@dataclass
class Entry:
    stamp: tuple
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    gz: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gz or b"")


def run_ref(path: str) -> str:
    """The run a cached path is about: its id, ``published`` or ``latest``."""
    if path.startswith("/ogc/runs/"):
        return path.split("/")[3]
    if path.startswith("/ogc"):
        return "published"
    return path.split("/")[2]


class ResponseCache:
    """ASGI middleware: serve repeated ``GET`` answers about a run from memory (see module)."""

    def __init__(self, app, *, repo: RunRepository, max_bytes: int):
        self.app = app
        self.repo = repo
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self._pending: dict[tuple, asyncio.Future] = {}  # answers being made (one per key at a time)

    def _cacheable(self, scope) -> bool:
        if scope["type"] != "http":
            return False
        path = scope["path"]
        return (self.max_bytes > 0 and scope["method"] == "GET"
                and path.startswith(CACHED_PREFIXES) and not any(n in path for n in NEVER)
                and scope.get("svrisk.identity") is not None)

    async def __call__(self, scope, receive, send):
        if not self._cacheable(scope):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        try:
            # answers about any run say whether it is the published one: a publication renews them all
            published = (self.repo.runs_dir / PUBLISHED).stat().st_mtime_ns
        except OSError:
            published = 0
        try:
            stamp = (published, *self.repo.stamp(run_ref(scope["path"])))
        except (NotFound, Unavailable, IndexError):
            return await self.app(scope, receive, send)  # the route answers the 404 or 503
        key = (scope["path"], scope.get("query_string", b""), headers.get("accept", ""))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.stamp == stamp:
                self._entries.move_to_end(key)
                self.hits += 1
            else:
                entry = None
        if entry is None:
            pending = self._pending.get(key)
            if pending is not None:
                # the same answer is being made for another client: wait for it, do not make it twice
                entry = await asyncio.shield(pending)
                if entry is None or entry.stamp != stamp:
                    return await self.app(scope, receive, send)
                return await self._answer(entry, headers, send)
            self.misses += 1
            entry = None
            future = self._pending[key] = asyncio.get_running_loop().create_future()
            try:
                entry = await self._fill(scope, receive, send, key, stamp)
            finally:
                del self._pending[key]
                if not future.done():
                    future.set_result(entry)
            if entry is None:
                return None  # answered as it came (not cacheable)
        return await self._answer(entry, headers, send)

    async def _fill(self, scope, receive, send, key, stamp) -> Entry | None:
        """Run the route, keep a 200 that is not HTML; else pass the answer through."""
        start: dict | None = None
        chunks: list[bytes] = []
        passing = False

        async def capture(message):
            nonlocal start, passing
            if message["type"] == "http.response.start":
                ctype = Headers(raw=message.get("headers", [])).get("content-type", "")
                if message["status"] != 200 or ctype.startswith("text/html") or \
                        any(k.lower() == b"set-cookie" for k, _ in message.get("headers", [])):
                    passing = True
                    return await send(message)
                start = message
                return None
            if passing:
                return await send(message)
            chunks.append(message.get("body", b""))
            return None

        await self.app(scope, receive, capture)
        if passing or start is None:
            return None
        body = b"".join(chunks)
        kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in DROPPED_HEADERS]
        etag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
        entry = Entry(stamp, kept, body, etag)
        if entry.size <= self.max_bytes // 4:
            with self._lock:
                old = self._entries.pop(key, None)
                self._size -= old.size if old else 0
                self._entries[key] = entry
                self._size += entry.size
                self._trim()
        return entry

    def _trim(self) -> None:
        while self._size > self.max_bytes and self._entries:
            _, old = self._entries.popitem(last=False)
            self._size -= old.size

    async def _answer(self, entry: Entry, headers: Headers, send) -> None:
        out = [*entry.headers, (b"etag", entry.etag), (b"vary", b"Accept, Accept-Encoding")]
        match = headers.get("if-none-match")
        if match and (match.strip() == "*" or entry.etag.decode() in [t.strip().removeprefix("W/")
                                                                        for t in match.split(",")]):
            out = [(k, v) for k, v in out if k.lower() != b"content-type"]
            await send({"type": "http.response.start", "status": 304, "headers": out})
            return await send({"type": "http.response.body", "body": b""})
        body = entry.body
        if len(body) >= MIN_GZIP_BYTES and "gzip" in headers.get("accept-encoding", "").lower():
            if entry.gz is None:
                gz = gzip.compress(body, compresslevel=5, mtime=0)
                with self._lock:
                    if entry.gz is None:
                        entry.gz = gz
                        self._size += len(gz)
                        self._trim()
            body = entry.gz
            out.append((b"content-encoding", b"gzip"))
        out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body})


__all__ = ["ResponseCache", "run_ref"]
