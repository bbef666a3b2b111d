"""What every worker process of ``svrisk serve`` must agree on, in one small SQLite file.

With ``--workers N`` each request may land on any of N processes, so nothing that decides
who is logged in or who is throttled may live in one process's memory. :class:`SharedState`
keeps, in the file ``settings.service.state_file`` (default: a fresh file per server start,
so a restart logs everyone out):

- the secret that signs session cookies and CSRF tokens (made once, read by every worker);
- the sessions themselves: a cookie is valid only while its row exists. Logging out deletes
  the row; past ``max_sessions`` the oldest rows are deleted (those browsers log in again).
  A deleted row never comes back, however many sessions are made after it, so a logged-out
  cookie can never be "resurrected" by evicting the record of its logout;
- failed logins per client address and per key id in a sliding window, for throttling;
- the records of jobs (queued, running, done, failed), so ``GET /jobs/{id}`` and
  ``GET /evaluations/{id}`` answer on every worker, whichever one queued the job.

SQLite in WAL mode with a busy timeout serialises the few writes (log in, log out, login
attempts); reads (a session check per request) take a few tens of microseconds.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, key_id TEXT NOT NULL,
                                     expires INTEGER NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_created ON sessions (created);
CREATE TABLE IF NOT EXISTS attempts (bucket TEXT NOT NULL, ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, ref TEXT, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_seq ON jobs (seq);
CREATE INDEX IF NOT EXISTS jobs_ref ON jobs (ref);
CREATE INDEX IF NOT EXISTS attempts_bucket ON attempts (bucket, ts);
"""


def fresh_state_file() -> Path:
    """A new state file in a new temporary folder (one per server start)."""
    return Path(tempfile.mkdtemp(prefix="svrisk-state-")) / "state.sqlite"


class SharedState:
    """Sessions, the signing secret and login attempts shared by the processes of one server.

    Parameters
    ----------
    path : path-like, optional
        The SQLite file (made if absent). None: a fresh file (this process only).
    max_sessions : int
        Sessions kept; making one more deletes the oldest.
    """

    def __init__(self, path=None, max_sessions: int = 10_000):
        self.path = Path(path) if path is not None else fresh_state_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if path is None:  # ours alone: gone with this object (or at exit)
            weakref.finalize(self, shutil.rmtree, self.path.parent, True)
        self.max_sessions = int(max_sessions)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (secrets.token_bytes(32),))
            self.secret = bytes(self._db.execute("SELECT value FROM meta WHERE name = 'secret'").fetchone()[0])

    def _write(self, statements) -> list:
        """Run ``[(sql, args), ...]`` in one immediate transaction; the rows of each."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = [self._db.execute(sql, args).fetchall() for sql, args in statements]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    # sessions -----------------------------------------------------------------------------
    def add_session(self, sid: str, key_id: str, expires: int) -> None:
        now = time.time()
        self._write([
            ("DELETE FROM sessions WHERE expires <= ?", (int(now),)),
            ("INSERT INTO sessions VALUES (?, ?, ?, ?)", (sid, key_id, int(expires), now)),
            # the oldest beyond the bound are deleted, never kept valid
            ("DELETE FROM sessions WHERE sid IN (SELECT sid FROM sessions ORDER BY created DESC "
             "LIMIT -1 OFFSET ?)", (self.max_sessions,)),
        ])

    def session_key_id(self, sid: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT key_id FROM sessions WHERE sid = ? AND expires > ?",
                                   (sid, int(time.time()))).fetchone()
        return row[0] if row else None

    def drop_session(self, sid: str) -> None:
        self._write([("DELETE FROM sessions WHERE sid = ?", (sid,))])

    def session_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM sessions").fetchone()[0])

    # throttling ---------------------------------------------------------------------------
    def blocked(self, buckets: list[str], limit: int, window_s: float) -> int:
        """0 if every bucket holds fewer than ``limit`` failures in the last ``window_s``
        seconds, else the seconds until the fullest lets one more through."""
        now = time.time()
        wait = 0.0
        with self._lock:
            for b in buckets:
                n, oldest = self._db.execute("SELECT count(*), min(ts) FROM attempts WHERE bucket = ? AND ts > ?",
                                             (b, now - window_s)).fetchone()
                if n >= limit:
                    wait = max(wait, oldest + window_s - now)
        return max(int(wait + 0.999), 1) if wait > 0 else 0

    def failed(self, buckets: list[str], window_s: float) -> None:
        """Record a failed attempt in each bucket (and forget those older than the window)."""
        now = time.time()
        self._write([("DELETE FROM attempts WHERE ts <= ?", (now - window_s,)),
                     *(("INSERT INTO attempts VALUES (?, ?)", (b, now)) for b in buckets)])


    # jobs ---------------------------------------------------------------------------------
    def put_job(self, job: dict, keep: int = 500) -> None:
        """Store (or update) a job's record; the newest ``keep`` are kept."""
        ref = (job.get("params") or {}).get("evaluation")
        self._write([
            ("INSERT INTO jobs VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM jobs), ?, ?) "
             "ON CONFLICT (job_id) DO UPDATE SET record = excluded.record",
             (job["job_id"], ref, json.dumps(job, default=str))),
            ("DELETE FROM jobs WHERE seq <= (SELECT max(seq) FROM jobs) - ?", (int(keep),)),
        ])

    def job(self, job_id: str, ref: str | None = None) -> dict | None:
        """A job's record by its id, or by what it made (an evaluation id)."""
        with self._lock:
            row = self._db.execute("SELECT record FROM jobs WHERE job_id = ? OR ref = ? ORDER BY seq DESC",
                                   (job_id, ref)).fetchone()
        return json.loads(row[0]) if row else None

    def recent_jobs(self, n: int = 20) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT record FROM jobs ORDER BY seq DESC LIMIT ?", (int(n),)).fetchall()
        return [json.loads(r[0]) for r in rows]


__all__ = ["SharedState", "fresh_state_file"]
