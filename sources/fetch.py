"""A well-behaved HTTP client for public data publishers: timeouts, retries, rate limits, resumable downloads.

Used by :mod:`sources.update`. Every request has a timeout; a connection error,
a timeout, a 5xx answer or a body cut short is retried with exponential backoff
(``backoff_s * 2**attempt``); a 429 waits what its ``Retry-After`` says (capped at
``max_wait_s``). A publisher's rate limit (police.uk: 15 requests a second, bursts of
30) is a token bucket every request of that publisher's client takes a token from.
Downloads go to a ``.part`` file the caller names (outside the data folder) and resume
from its length with an HTTP ``Range`` request, with ``If-Range`` naming the ETag (or
Last-Modified) the download began with: a file that changed meanwhile, or a server that
ignores ranges, sends the whole file again, which restarts it.

Nothing here reads settings: the caller passes :class:`FetchOptions`.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from sources.fingerprint import sha256

RETRY_STATUS = (500, 502, 503, 504)
USER_AGENT = "svrisk-update (+https://github.com/; open-data client)"


class FetchError(Exception):
    """A request that failed for good: ``url`` and ``why`` (after the retries)."""

    def __init__(self, url: str, why: str, status: int | None = None):
        self.url, self.why, self.status = url, why, status
        super().__init__(f"{url}: {why}")


@dataclass(frozen=True)
class FetchOptions:
    """How to talk to a publisher (``service.settings.UpdateSettings`` carries the configured values)."""

    timeout_s: float = 30.0
    """Connect and read timeout of one request."""
    retries: int = 4
    """Further attempts after a failed one (connection error, timeout, 5xx, a cut body, 429)."""
    backoff_s: float = 1.0
    """Wait before retry n: backoff_s * 2**(n-1)."""
    max_wait_s: float = 120.0
    """Longest wait a Retry-After may ask for; a longer one fails the request."""
    proxy: str | None = None
    """An HTTP(S) proxy URL; None: the environment's HTTPS_PROXY/HTTP_PROXY if any."""
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    """How to wait (tests pass a recorder)."""
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)


class RateLimiter:
    """A token bucket: ``rate`` requests a second on average, at most ``burst`` at once.

    >>> waits = []
    >>> limiter = RateLimiter(15, 30, clock=lambda: 0.0, sleep=waits.append)
    >>> for _ in range(31):
    ...     limiter.acquire()
    >>> round(waits[-1], 4)  # the 31st request of one instant waits one token's time
    0.0667
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate limit must be positive with a burst of at least 1 (got {rate}/s, burst {burst})")
        self.rate, self.burst, self.clock, self.sleep = float(rate), int(burst), clock, sleep
        self._tokens, self._last = float(burst), None
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a token, waiting for one if the bucket is empty; return the wait."""
        with self._lock:
            now = self.clock()
            if self._last is not None:
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            if wait:
                self.sleep(wait)
            return wait


def retry_after(value: str | None, default: float) -> float:
    """Seconds a ``Retry-After`` header asks for (seconds or an HTTP date); ``default`` if absent or unreadable."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Client:
    """One publisher's HTTP client (its own rate limit, if it has one)."""

    def __init__(self, options: FetchOptions | None = None, limiter: RateLimiter | None = None,
                 transport: httpx.BaseTransport | None = None):
        self.options, self.limiter = options or FetchOptions(), limiter
        options = self.options
        self.requests = 0
        self._http = httpx.Client(timeout=options.timeout_s, proxy=options.proxy, follow_redirects=True,
                                  headers={"User-Agent": USER_AGENT}, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _wait_backoff(self, attempt: int) -> None:
        self.options.sleep(self.options.backoff_s * 2 ** attempt)

    def get(self, url: str, params: dict | None = None, passthrough: tuple[int, ...] = ()) -> httpx.Response:
        """GET with retries; a status in ``passthrough`` is returned to the caller as it is."""
        last = "no attempt made"
        for attempt in range(self.options.retries + 1):
            if self.limiter:
                self.limiter.acquire()
            self.requests += 1
            try:
                response = self._http.get(url, params=params)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                if attempt < self.options.retries:
                    self._wait_backoff(attempt)
                continue
            if response.status_code in passthrough or response.is_success:
                return response
            last = f"HTTP {response.status_code}"
            if response.status_code == 429:
                wait = retry_after(response.headers.get("Retry-After"), self.options.backoff_s * 2 ** attempt)
                if wait > self.options.max_wait_s:
                    raise FetchError(url, f"rate limited (429) and asked to wait {wait:.0f} s, more than "
                                     f"max_wait_s = {self.options.max_wait_s:.0f}", 429)
                if attempt < self.options.retries:
                    self.options.sleep(wait)
                continue
            if response.status_code in RETRY_STATUS:
                if attempt < self.options.retries:
                    self._wait_backoff(attempt)
                continue
            raise FetchError(url, f"HTTP {response.status_code} {response.reason_phrase}".rstrip(),
                             response.status_code)
        raise FetchError(url, f"failed after {self.options.retries + 1} attempts (last: {last})")

    def get_json(self, url: str, params: dict | None = None):
        """The JSON body of a GET; a body that is not JSON is a :class:`FetchError` saying so."""
        response = self.get(url, params)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FetchError(str(response.url), f"answered malformed JSON ({exc})") from None

    def download(self, url: str, part: Path) -> tuple[Path, str, int]:
        """Fetch ``url`` into ``part`` (resuming what it holds); return (part, sha256, bytes).

        The length is checked against ``Content-Length``/``Content-Range``; a body cut
        short is resumed with a ``Range`` request on the next attempt.
        """
        part.parent.mkdir(parents=True, exist_ok=True)
        last = "no attempt made"
        for attempt in range(self.options.retries + 1):
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            validator = part.with_name(part.name + ".validator")
            if have and validator.is_file():  # the rest only if the file is still the one we began
                headers["If-Range"] = validator.read_text(encoding="utf-8").strip()
            if self.limiter:
                self.limiter.acquire()
            self.requests += 1
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    status = response.status_code
                    if status == 416 and have:  # nothing left to send: what we hold may be stale; start again
                        part.unlink()
                        last = "HTTP 416 on resume"
                        continue
                    if status == 429 or status in RETRY_STATUS:
                        last = f"HTTP {status}"
                        wait = (retry_after(response.headers.get("Retry-After"), self.options.backoff_s * 2 ** attempt)
                                if status == 429 else self.options.backoff_s * 2 ** attempt)
                        if wait > self.options.max_wait_s:
                            raise FetchError(url, f"asked to wait {wait:.0f} s (HTTP {status})", status)
                        if attempt < self.options.retries:
                            self.options.sleep(wait)
                        continue
                    if not response.is_success:
                        raise FetchError(url, f"HTTP {status} {response.reason_phrase}".rstrip(), status)
                    total = _expected_total(response, have)
                    if status == 206 and total is not None and _range_start(response) == have:
                        mode = "ab"
                    else:  # a full answer (the server ignored the range, or the file changed): start again
                        mode, total = "wb", _length(response)
                        tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
                        if tag and not tag.startswith("W/"):
                            validator.write_text(tag, encoding="utf-8")
                        else:
                            validator.unlink(missing_ok=True)
                    with part.open(mode) as fh:
                        for chunk in response.iter_bytes():
                            fh.write(chunk)
                            fh.flush()  # a killed update keeps what it received, to resume from
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                if attempt < self.options.retries:
                    self._wait_backoff(attempt)
                continue
            size = part.stat().st_size
            if total is not None and size != total:
                last = f"received {size:,} of {total:,} bytes"
                if attempt < self.options.retries:
                    self._wait_backoff(attempt)
                continue
            validator.unlink(missing_ok=True)
            return part, sha256(part), size
        raise FetchError(url, f"download failed after {self.options.retries + 1} attempts (last: {last})")


def _length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() and "Content-Encoding" not in response.headers else None


def _range_start(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _expected_total(response: httpx.Response, have: int) -> int | None:
    value = response.headers.get("Content-Range", "")
    total = value.rsplit("/", 1)[-1] if "/" in value else ""
    if total.isdigit():
        return int(total)
    length = _length(response)
    return have + length if length is not None else None

