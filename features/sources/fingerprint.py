"""What a data folder held when its store was built, and whether it still holds the same.

A store records every file of its data folder (path, size, modification time and
sha256). :func:`changes` compares the folder now with that record: a file added,
removed or with other contents means the store no longer describes the folder.
Size and time are checked first; a file whose size or time changed is hashed again,
so touching a file without changing it does not force a new ingest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def data_files(root: str | Path) -> list[Path]:
    """The files a data folder holds: every file below it but hidden ones (names starting with '.')."""
    root = Path(root)
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


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


def fingerprint(root: str | Path) -> dict[str, dict]:
    """``{relative path: {"size", "mtime_ns", "sha256"}}`` of every file in the folder."""
    root = Path(root)
    out = {}
    for p in data_files(root):
        st = p.stat()
        out[p.relative_to(root).as_posix()] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256(p)}
    return out


def changes(root: str | Path, recorded: dict[str, dict]) -> list[str]:
    """How the folder differs from ``recorded`` (a :func:`fingerprint`), one line per file; empty if the same."""
    root = Path(root)
    now = {p.relative_to(root).as_posix(): p for p in data_files(root)}
    out = [f"added {name}" for name in sorted(set(now) - set(recorded))]
    out += [f"removed {name}" for name in sorted(set(recorded) - set(now))]
    for name in sorted(set(now) & set(recorded)):
        rec, st = recorded[name], now[name].stat()
        if st.st_size == rec.get("size") and st.st_mtime_ns == rec.get("mtime_ns"):
            continue
        if st.st_size != rec.get("size") or sha256(now[name]) != rec.get("sha256"):
            out.append(f"changed {name}")
    return out
