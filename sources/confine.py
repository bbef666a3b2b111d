"""Reads stay inside the data folder: which entries under a folder may be opened, and why not the others.

A data folder may hold what no ingest should open: a symbolic link leading out of it
(``data/x -> /etc``), a named pipe that blocks whoever opens it, a socket or a device,
a name that is not valid UTF-8, a path too long for the operating system. :func:`walk`
lists every entry under a folder from ``lstat``/``stat`` alone (nothing is opened) and
says for each one it will not give as a file why not, in words that never name or quote
what lies outside the folder. The catalogue, the fingerprint of a store and the police.uk
folder loader all list files through it, so they agree on what a data folder holds.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: Longest path (bytes) walked; deeper entries are reported, not followed (Linux's PATH_MAX is 4,096).
MAX_PATH_BYTES = 4000


@dataclass(frozen=True)
class Entry:
    """One entry found under a folder: a readable regular file (``problem`` None), or what it is instead."""

    path: Path
    rel: str  # relative to the folder walked, printable (undecodable bytes shown as \\xff)
    problem: str | None = None
    damaged: bool = False  # the problem is damage (report and stop unless --keep-going), not a choice
    folder: bool = False


def printable(name: str) -> str:
    """``name`` with bytes that are not UTF-8 shown as ``\\xff`` (file names are bytes on POSIX)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def is_inside(path: str | Path, roots: Iterable[str | Path]) -> bool:
    """Whether ``path``, every link resolved, lies in one of ``roots`` (themselves resolved)."""
    real = os.path.realpath(path)
    for root in roots:
        top = os.path.realpath(root)
        if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
            return True
    return False


def special_kind(mode: int) -> str | None:
    """What a non-regular, non-folder entry is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def check_regular(path: Path) -> os.stat_result:
    """``stat`` of a file about to be opened; ``OSError`` naming what it is when it is not a regular file
    (opening a named pipe blocks until someone writes to it)."""
    st = os.stat(path)
    kind = special_kind(st.st_mode)
    if kind is not None:
        err = IsADirectoryError if kind == "a folder" else OSError
        raise err(errno.EISDIR if kind == "a folder" else errno.EINVAL,
                  f"is {kind}, not a regular file; not opened", str(path))
    return st


def _bad_name(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8 text; not read (rename it)"
    return None


def walk(root: str | Path, allowed: Iterable[str | Path] = (), hidden: bool = False) -> Iterator[Entry]:
    """Every entry under ``root`` in sorted order, from ``lstat``/``stat`` only.

    Readable regular files come with ``problem`` None. Links are followed only while they
    stay inside ``root`` (or one of ``allowed``); a folder reached twice (a loop) is walked
    once. Hidden entries (names starting with ".") are reported, or skipped silently
    unless ``hidden``.
    """
    root = Path(root)
    roots = [root, *allowed]
    seen = {os.path.realpath(root)}
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            names = sorted(os.listdir(here))
        except OSError as exc:
            if here != root:  # the root itself is checked by the caller
                why = ("its path is too long for the operating system; not read" if exc.errno == errno.ENAMETOOLONG
                       else f"folder cannot be read ({exc.strerror})")
                yield Entry(here, _rel(here, root) + "/", why, damaged=True, folder=True)
            continue
        subfolders = []
        for name in names:
            p = here / name
            rel = _rel(p, root)
            try:
                lst = os.lstat(p)
            except OSError as exc:
                why = ("its path is too long for the operating system; not read" if exc.errno == errno.ENAMETOOLONG
                       else f"cannot be read ({exc.strerror})")
                yield Entry(p, rel, why, damaged=True)
                continue
            link = stat.S_ISLNK(lst.st_mode)
            if name.startswith("."):
                if hidden:
                    folder = stat.S_ISDIR(lst.st_mode)
                    yield Entry(p, rel + ("/" if folder else ""),
                                f"hidden {'folder' if folder else 'file'}, not read", folder=folder)
                continue
            bad = _bad_name(name)
            if bad is None and len(os.fsencode(p)) > MAX_PATH_BYTES:
                bad = "its path is too long for the operating system; not read"
            if bad is not None:
                yield Entry(p, rel + ("/" if stat.S_ISDIR(lst.st_mode) else ""), bad, damaged=True)
                continue
            if link and not is_inside(p, roots):
                yield Entry(p, rel, "symbolic link leading outside the data folder; not followed")
                continue
            try:
                st = os.stat(p) if link else lst
            except OSError:
                yield Entry(p, rel, "broken symbolic link")
                continue
            if stat.S_ISDIR(st.st_mode):
                real = os.path.realpath(p)
                if real in seen:
                    yield Entry(p, rel + "/", "link to a folder already read (a loop or a second path to it); "
                                "not read twice", folder=True)
                else:
                    seen.add(real)
                    subfolders.append(p)
                continue
            kind = special_kind(st.st_mode)
            if kind is not None:
                yield Entry(p, rel, f"{kind}, not a regular file; not opened")
                continue
            yield Entry(p, rel)
        stack.extend(reversed(subfolders))


def _rel(p: Path, root: Path) -> str:
    """``p`` relative to ``root``, printable; a path too long to show is shortened in the middle."""
    rel = printable(str(p.relative_to(root)))
    if len(rel) > 200:
        rel = f"{rel[:80]}...({len(rel):,} characters)...{rel[-80:]}"
    return rel
