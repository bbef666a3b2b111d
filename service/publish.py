"""Runs appear whole, and GIS sees the run an analyst published.

A run is written into a hidden folder ``<runs>/.partial-<run_id>`` and renamed to
``<runs>/<run_id>`` only when every file is written (:func:`stage_run`,
:func:`complete_run`): a rename within one folder is atomic, so a reader sees the whole run
or none of it, and a run killed half-way leaves only a hidden folder nobody serves.

Which run GIS clients and the default pages see is recorded in ``<runs>/.published.json``
(written atomically; hidden, like the staging folders, so the runs folder lists only runs). An analyst publishes a run (``svrisk publish RUN`` or
``POST /runs/{id}/publish``); a completed run publishes itself only when nothing is
published yet or the published run is a demo run, so a demo never replaces a real run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import time
from pathlib import Path

from reports.run_catalogue import RUN_JSON

PUBLISHED = ".published.json"
PARTIAL = ".partial-"
_LOCK = ".publish.lock"
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STALE_PARTIAL_S = 24 * 3600


def stage_run(runs_dir, run_id: str) -> tuple[str, Path]:
    """Reserve a run id and make its hidden folder; return ``(run_id, folder)``.

    Two runs started in the same second with the same units and cutoff get ``<id>``
    and ``<id>-2``: the hidden folder is made first (exclusively), then the final name
    is checked, so two writers can never pick the same id.
    """
    runs = Path(runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    _sweep_stale(runs)
    for n in range(1, 1000):
        candidate = run_id if n == 1 else f"{run_id}-{n}"
        if not RUN_ID.match(candidate):
            raise ValueError(f"run id {candidate!r} is not a valid run id")
        folder = runs / f"{PARTIAL}{candidate}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        if (runs / candidate).exists():
            folder.rmdir()
            continue
        return candidate, folder
    raise RuntimeError(f"could not reserve a run id for {run_id!r}: 999 runs with that name")


def complete_run(folder, *, demo: bool = False) -> Path:
    """Rename a staged folder to its run id (atomic); publish it if nothing real is published."""
    folder = Path(folder)
    if not folder.name.startswith(PARTIAL):
        raise ValueError(f"{folder.name!r} is not a staged run folder")
    final = folder.with_name(folder.name[len(PARTIAL):])
    os.rename(folder, final)  # raises rather than merge if the name were taken
    auto_publish(final.parent, final.name, demo=demo)
    return final


def is_demo_store(report: dict, demo_dir) -> bool:
    """True when a store's ingest report says it came from a generated demo borough.

    The demo generator writes ``truth.json`` beside its catalogue; the settings' demo
    folder counts even before it is generated.
    """
    data = report.get("data_dir_resolved") or report.get("data_dir")
    if not data:
        return False
    data = Path(data)
    return data.resolve() == Path(demo_dir).resolve() or (data / "truth.json").is_file()


def _sweep_stale(runs: Path) -> None:
    """Remove hidden folders of runs that died more than a day ago."""
    cutoff = time.time() - STALE_PARTIAL_S
    for p in runs.glob(f"{PARTIAL}*"):
        with contextlib.suppress(OSError):
            if p.is_dir() and p.stat().st_mtime < cutoff:
                shutil.rmtree(p)


@contextlib.contextmanager
def _locked(runs: Path):
    runs.mkdir(parents=True, exist_ok=True)
    with open(runs / _LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def published(runs_dir) -> dict | None:
    """The publication record ``{"run_id", "published", "by", "demo"}``, or None."""
    path = Path(runs_dir) / PUBLISHED
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{PUBLISHED} of the runs folder is not readable: {err}") from None
    if not isinstance(record, dict) or not RUN_ID.match(str(record.get("run_id", ""))):
        raise ValueError(f"{PUBLISHED} of the runs folder names no valid run id")
    return record


def run_for_areas(runs_dir, run: str | None = None) -> tuple[str, str]:
    """The run whose areas a command reads (``--area A1``), and how it was chosen.

    ``run`` names one: a run id, or ``"latest"`` for the newest run. By default it is the
    published run, the one GIS clients, the map and the briefing show, so "A1" is the A1
    the tasking meeting saw; with nothing published, the latest. Returns ``(run, how)``:
    a run id or ``"latest"``, and a few words for ``area A1 of run <id> (<how>)``.
    """
    if run is not None:
        return run, "the latest" if run == "latest" else "chosen"
    record = published(runs_dir)
    if record is None or not (Path(runs_dir) / record["run_id"] / RUN_JSON.path).is_file():
        return "latest", "the latest; no run is published"
    return record["run_id"], "published, a demo run" if record.get("demo") else "published"


def _is_demo(run_folder: Path) -> bool:
    try:
        return bool(json.loads((run_folder / RUN_JSON.path).read_text()).get("demo", False))
    except (OSError, json.JSONDecodeError):
        return False


def _write(runs: Path, run_id: str, by: str) -> dict:
    record = {"run_id": run_id, "published": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "by": by, "demo": _is_demo(runs / run_id)}
    tmp = runs / f"{PUBLISHED}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, runs / PUBLISHED)
    return record


def publish(runs_dir, run_id: str, *, by: str = "cli") -> dict:
    """Publish a complete run: GIS clients and the default pages serve it from now on."""
    runs = Path(runs_dir)
    if not RUN_ID.match(run_id or "") or not (runs / run_id / RUN_JSON.path).is_file():
        raise ValueError(f"no complete run {run_id!r} to publish")
    with _locked(runs):
        return _write(runs, run_id, by)


def auto_publish(runs_dir, run_id: str, *, demo: bool) -> dict | None:
    """Publish ``run_id`` if nothing usable is published, or a demo is and this run is real
    or a demo too; a real published run is only replaced by :func:`publish`."""
    runs = Path(runs_dir)
    with _locked(runs):
        try:
            current = published(runs)
        except ValueError:
            current = None
        if current is not None and (runs / current["run_id"] / RUN_JSON.path).is_file():
            if not _is_demo(runs / current["run_id"]):
                return None
        return _write(runs, run_id, "auto")


__all__ = ["PARTIAL", "PUBLISHED", "auto_publish", "complete_run", "is_demo_store", "publish", "published",
           "run_for_areas", "stage_run"]
