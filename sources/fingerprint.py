"""What a data folder held when its store was built, and whether it still holds the same.

A store records every file of its data folder (path, size, modification time and
sha256). :func:`changes` compares the folder now with that record: a file added,
removed or with other contents means the store no longer describes the folder.
Size and time are checked first; a file whose size or time changed is hashed again,
so touching a file without changing it does not force a new ingest.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sources.confine import walk

HASH_THREADS = 4
"""Most threads hashing the files of a folder at once."""


def data_files(root: str | Path, allowed: Iterable[str | Path] = ()) -> list[Path]:
    """The files a data folder holds: every regular file below it but hidden ones (names starting with '.'),
    links leading outside it (save into ``allowed``) and names that are not UTF-8 (:func:`confine.walk`)."""
    return sorted(e.path for e in walk(root, allowed) if e.problem is None)


def sha256(path: str | Path) -> str | None:
    """The file's sha256, or None when it cannot be read (ingest reports such a file as damaged)."""
    h = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def fingerprint(root: str | Path, allowed: Iterable[str | Path] = ()) -> dict[str, dict]:
    """``{relative path: {"size", "mtime_ns", "sha256"}}`` of every file in the folder.

    Size and time are taken before the hash: if the file changes while it is hashed, a later
    :func:`changes` sees a different time and says so, rather than trusting the hash.
    """
    root = Path(root)
    found = []
    for p in data_files(root, allowed):
        try:
            found.append((p, p.stat()))
        except OSError:
            continue  # gone since it was listed
    # hashlib works outside the GIL: the files are hashed on threads (London's 72 monthly files:
    # 0.5 s on one).
    with ThreadPoolExecutor(max_workers=max(1, min(HASH_THREADS, os.cpu_count() or 1))) as pool:
        digests = list(pool.map(sha256, [p for p, _ in found]))
    return {p.relative_to(root).as_posix(): {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            for (p, st), digest in zip(found, digests, strict=True)}


def moved(root: str | Path, recorded: dict[str, dict]) -> list[str]:
    """The files of ``recorded`` whose size or modification time is no longer the recorded one (or that are
    gone): files changed since they were fingerprinted, found from ``stat`` alone."""
    root = Path(root)
    out = []
    for name, rec in sorted(recorded.items()):
        try:
            st = (root / name).stat()
        except OSError:
            out.append(name)
            continue
        if st.st_size != rec.get("size") or st.st_mtime_ns != rec.get("mtime_ns"):
            out.append(name)
    return out


def changes(root: str | Path, recorded: dict[str, dict], allowed: Iterable[str | Path] = ()) -> list[str]:
    """How the folder differs from ``recorded`` (a :func:`fingerprint` with the same ``allowed``), one line
    per file; empty if the same."""
    root = Path(root)
    now = {p.relative_to(root).as_posix(): p for p in data_files(root, allowed)}
    out = [f"added {name}" for name in sorted(set(now) - set(recorded))]
    out += [f"removed {name}" for name in sorted(set(recorded) - set(now))]
    for name in sorted(set(now) & set(recorded)):
        rec, st = recorded[name], now[name].stat()
        if st.st_size == rec.get("size") and st.st_mtime_ns == rec.get("mtime_ns"):
            continue
        if st.st_size != rec.get("size") or sha256(now[name]) != rec.get("sha256"):
            out.append(f"changed {name}")
    return out
