"""API keys: create, list, revoke and verify; only salted hashes are stored.

A key reads ``svk_<key_id>_<secret>``: the ``key_id`` finds the record, the secret (32
random bytes, URL-safe base64) is checked against ``sha256(salt + secret)``. A slow
password hash is not needed because the secret is random and long, not chosen by a
person; SHA-256 keeps verification cheap under load. The plain key is shown once, at
creation, and never written anywhere.

Roles: ``viewer`` reads outputs; ``analyst`` also triggers ingest, train and rank.

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

    def public(self) -> dict:
        """The record without salt and hash (what ``list`` shows)."""
        return {"key_id": self.key_id, "name": self.name, "role": self.role,
                "created": self.created, "revoked": self.revoked}


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
                records = {r["key_id"]: KeyRecord(**r) for r in raw.get("keys", [])}
            except (json.JSONDecodeError, TypeError, KeyError) as err:
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
    def create(self, name: str, role: str) -> str:
        """Create a key and return it in plain text (the only time it is visible)."""
        if role not in ROLES:
            raise ValueError(f"role={role!r} is not one of {ROLES}")
        if not name or not str(name).strip():
            raise ValueError("a key needs a non-empty name (who or what uses it)")
        with self._lock:
            records = dict(self._load())
            key_id = secrets.token_hex(6)
            while key_id in records:
                key_id = secrets.token_hex(6)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_hex(16)
            records[key_id] = KeyRecord(
                key_id, str(name), role, salt, _digest(salt, secret),
                dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
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

    def verify(self, key: str | None) -> KeyRecord | None:
        """The record of a valid, unrevoked key, else None (never raises on bad input)."""
        if not key or not isinstance(key, str):
            return None
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        _, key_id, secret = parts
        with self._lock:
            rec = self._load().get(key_id)
        if rec is None or rec.revoked is not None:
            return None
        return rec if hmac.compare_digest(rec.hash, _digest(rec.salt, secret)) else None


__all__ = ["ROLES", "KeyRecord", "KeyStore", "UnknownKeyError", "role_allows"]
