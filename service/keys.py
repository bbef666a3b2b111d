"""API keys: create, list, revoke and verify; only salted hashes are stored.

A key reads ``svk_<key_id>_<secret>``: the ``key_id`` finds the record, the secret (32
random bytes, URL-safe base64) is checked against ``sha256(salt + secret)``. A slow
password hash is not needed because the secret is random and long, not chosen by a
person; SHA-256 keeps verification cheap under load. The plain key is shown once, at
creation, and never written anywhere.

Roles: ``viewer`` reads outputs; ``analyst`` also triggers ingest, train and rank and
publishes runs. A key's *scopes* are what it may do (``read``, ``ingest``, ``train``,
``rank``, ``evaluate``, ``publish``): by default every scope of its role, or fewer when it is made for one
job (a key that only reads for QGIS, a key that only ranks for a scheduler). Every key has an
expiry date (``settings.service.key_days`` from creation unless told otherwise); an expired
or revoked key is refused like an unknown one.

Clients send a key in the ``X-API-Key`` header, or with HTTP Basic as user = key id and
password = secret (or the whole key as password): QGIS's Basic authentication.

Examples
--------
>>> store = KeyStore("out/api_keys.json")     # doctest: +SKIP
>>> key = store.create("qgis-team", "viewer")  # doctest: +SKIP
>>> store.verify(key).role                     # doctest: +SKIP
'viewer'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

ROLES = ("viewer", "analyst")
#: What each role may do; a role holds every permission of the roles before it.
ROLE_RANK = {"viewer": 0, "analyst": 1}
SCOPES = ("read", "ingest", "train", "rank", "evaluate", "publish")
#: The scopes a role may hold (and a key of that role holds by default).
ROLE_SCOPES = {"viewer": ("read",), "analyst": SCOPES}
PREFIX = "svk"


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: no secret, only its salt and hash."""

    key_id: str
    name: str
    role: str
    salt: str
    hash: str
    created: str
    revoked: str | None = None
    expires: str | None = None  # ISO date-time (UTC); None only on keys made before expiry existed
    scopes: tuple[str, ...] | None = None  # None: every scope of the role

    def public(self) -> dict:
        """The record without salt and hash (what ``list`` shows)."""
        return {"key_id": self.key_id, "name": self.name, "role": self.role,
                "scopes": list(self.granted()), "created": self.created,
                "expires": self.expires, "revoked": self.revoked}

    def granted(self) -> tuple[str, ...]:
        """The scopes this key may use: its own, never beyond its role's."""
        allowed = ROLE_SCOPES.get(self.role, ())
        return tuple(s for s in (self.scopes or allowed) if s in allowed)

    def allows(self, scope: str) -> bool:
        return scope in self.granted()

    def expired(self, now: dt.datetime | None = None) -> bool:
        if self.expires is None:
            return False
        now = now or dt.datetime.now(dt.UTC)
        return dt.datetime.fromisoformat(self.expires) <= now


class UnknownKeyError(KeyError, ValueError):
    """No key with that id: a user error (the CLI prints one line), and a ``KeyError`` for callers."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown API key"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()


def role_allows(role: str, needed: str) -> bool:
    """True if ``role`` may do what ``needed`` may (analyst >= viewer)."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


class KeyStore:
    """API keys in one JSON file (``settings.service.keys_file``), written atomically.

    The file is re-read when it changes on disk, so keys created or revoked by the CLI
    take effect in a running server.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._records: dict[str, KeyRecord] = {}

    # -- file
    def _load(self) -> dict[str, KeyRecord]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._mtime, self._records = None, {}
            return self._records
        if mtime != self._mtime:
            try:
                raw = json.loads(self.path.read_text())
                records = {r["key_id"]: _record(r) for r in raw.get("keys", [])}
            except (json.JSONDecodeError, TypeError, KeyError, ValueError) as err:
                raise ValueError(f"API keys file {self.path} is not valid: {err}") from err
            self._mtime, self._records = mtime, records
        return self._records

    def _save(self, records: dict[str, KeyRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"keys": [asdict(r) for r in records.values()]}, indent=2))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._mtime = None  # force a re-read next time

    # -- API
    def create(self, name: str, role: str, *, scopes=None, days: float | None = 365,
               expires: str | dt.datetime | None = None) -> str:
        """Create a key and return it in plain text (the only time it is visible).

        Parameters
        ----------
        name : str
            Who or what uses the key.
        role : {"viewer", "analyst"}
        scopes : iterable of str, optional
            What the key may do; a subset of the role's scopes (default: all of them).
        days : float, optional
            Days until the key expires (default 365), used when ``expires`` is None.
        expires : str or datetime, optional
            The expiry itself (``YYYY-MM-DD`` means the start of that day, UTC).
        """
        if role not in ROLES:
            raise ValueError(f"role={role!r} is not one of {ROLES}")
        if not name or not str(name).strip():
            raise ValueError("a key needs a non-empty name (who or what uses it)")
        chosen = None
        if scopes:
            chosen = tuple(dict.fromkeys(scopes))
            beyond = [sc for sc in chosen if sc not in ROLE_SCOPES[role]]
            if beyond:
                raise ValueError(f"scope(s) {beyond} are not open to the {role!r} role; "
                                 f"it may have {list(ROLE_SCOPES[role])}")
        now = dt.datetime.now(dt.UTC)
        until = _expiry(expires, now) if expires is not None else None
        if until is None:
            if days is None or days <= 0:
                raise ValueError(f"days={days!r}: a key must expire (give days > 0 or an expiry date)")
            until = now + dt.timedelta(days=days)
        if until <= now:
            raise ValueError(f"expiry {until.isoformat(timespec='seconds')} is not in the future")
        with self._lock:
            records = dict(self._load())
            key_id = secrets.token_hex(6)
            while key_id in records:
                key_id = secrets.token_hex(6)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_hex(16)
            records[key_id] = KeyRecord(
                key_id, str(name), role, salt, _digest(salt, secret),
                now.isoformat(timespec="seconds"), None, until.isoformat(timespec="seconds"), chosen)
            self._save(records)
        return f"{PREFIX}_{key_id}_{secret}"

    def list(self) -> list[dict]:
        """Every key (revoked ones too) without salt or hash, oldest first."""
        with self._lock:
            return [r.public() for r in sorted(self._load().values(), key=lambda r: r.created)]

    def revoke(self, key_id: str) -> dict:
        """Revoke a key by id; it stays listed with the time it was revoked."""
        with self._lock:
            records = dict(self._load())
            if key_id not in records:
                known = ", ".join(sorted(records)) or "none yet"
                raise UnknownKeyError(f"no API key with key_id={key_id!r} in {self.path} (known ids: {known}; "
                                      "`svrisk keys list` shows them)")
            rec = records[key_id]
            if rec.revoked is None:
                records[key_id] = KeyRecord(**{**asdict(rec), "revoked": dt.datetime.now(
                    dt.UTC).isoformat(timespec="seconds")})
                self._save(records)
            return records[key_id].public()

    def lookup(self, key_id: str, secret: str) -> tuple[KeyRecord | None, str]:
        """(record, "") for a valid key, else (None, why): unknown, revoked or expired.

        The reason never contains the secret; an unknown id and a wrong secret read the same.
        """
        if not key_id or not secret or not isinstance(key_id, str) or not isinstance(secret, str):
            return None, "not recognised"
        with self._lock:
            rec = self._load().get(key_id)
        if rec is None or not hmac.compare_digest(rec.hash, _digest(rec.salt, secret)):
            return None, "not recognised"
        if rec.revoked is not None:
            return None, "revoked"
        if rec.expired():
            return None, f"expired on {rec.expires}"
        return rec, ""

    def check(self, key: str | None) -> tuple[KeyRecord | None, str]:
        """:meth:`lookup` of a whole key ``svk_<key_id>_<secret>``."""
        parts = split_key(key)
        if parts is None:
            return None, "not recognised"
        return self.lookup(*parts)

    def verify(self, key: str | None) -> KeyRecord | None:
        """The record of a valid, unrevoked, unexpired key, else None (never raises on bad input)."""
        return self.check(key)[0]

    def record(self, key_id: str) -> KeyRecord | None:
        """The current record of a key id if it is still usable (not revoked or expired)."""
        with self._lock:
            rec = self._load().get(key_id)
        if rec is None or rec.revoked is not None or rec.expired():
            return None
        return rec


def split_key(key) -> tuple[str, str] | None:
    """(key_id, secret) of ``svk_<key_id>_<secret>``, else None."""
    if not key or not isinstance(key, str):
        return None
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _expiry(value, now: dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        out = value
    else:
        try:
            out = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"expiry {value!r} is not a date (YYYY-MM-DD) or date-time") from None
    return out.replace(tzinfo=dt.UTC) if out.tzinfo is None else out.astimezone(dt.UTC)


def _record(raw: dict) -> KeyRecord:
    raw = dict(raw)
    if raw.get("scopes") is not None:
        raw["scopes"] = tuple(raw["scopes"])
    return KeyRecord(**raw)


__all__ = ["ROLES", "ROLE_SCOPES", "SCOPES", "KeyRecord", "KeyStore", "UnknownKeyError", "role_allows",
           "split_key"]
