"""Versioned models on disk, saved atomically: the registry (save, list, load).

Layout::

    <models_dir>/
      v0001/
        model.joblib     the fitted estimator (joblib pickle: load only models you trust)
        meta.json        version, created, method, parameters, seed, data hashes,
                         feature list, backtest scores, calibration, fairness, caveats
        card.md          documents written with the model (the model card of
        card.html        reports.model_card: data, method, backtest, calibration, fairness)
      v0002/ ...

A save writes everything into a hidden temporary folder in ``models_dir``, flushes
each file to disk, then renames the folder to its version (an atomic step on one
file system). A crash at any point before the rename leaves no ``v*`` folder; a
leftover ``.tmp-*`` folder is ignored by :func:`list_versions` and removed by the
next successful save that finds it older than an hour.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

_VERSION = re.compile(r"^v(\d{4,})$")
MODEL_FILE = "model.joblib"
META_FILE = "meta.json"

DEFAULT_CAVEATS = [
    "Forecasts places, never people. Police-recorded crime under-records some places and "
    "groups more than others; a high rank means more recorded serious violence is expected, "
    "not that residents are to blame.",
    "police.uk locations are snapped to anonymised points on streets: small units (grid cells) "
    "can gain or lose events at their edges.",
    "Trained on one borough's recent past; recheck the backtest after retraining and before "
    "using it elsewhere.",
    "Police-generated counts (stop and search, possession offences) are never a target and are "
    "off as features unless the analyst allows them.",
]


def list_versions(models_dir: str | Path) -> list[str]:
    """Complete saved versions, oldest first."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p.name) for p in root.iterdir()
             if p.is_dir() and (m := _VERSION.match(p.name)) and (p / META_FILE).is_file()]
    return [name for _, name in sorted(found)]


def version_meta(models_dir: str | Path, version: str) -> dict:
    """The ``meta.json`` of one saved version (what it was trained on, for, and how well it did)."""
    path = Path(models_dir) / version / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{Path(models_dir)}: no model version {version!r}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return _jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if obj is pd.NA or obj is None:
        return None
    if isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, Path | pd.Timestamp):
        return str(obj)
    return repr(obj)


def _write_model(model, path: Path) -> None:
    import joblib

    joblib.dump(model, path)


def _write_documents(documents, meta: dict, folder: Path) -> None:
    if documents is None:
        return
    for name, text in documents(meta).items():
        if "/" in name or name.startswith(".") or name in (MODEL_FILE, META_FILE):
            raise ValueError(f"model document name {name!r} is not a plain file name")
        (folder / name).write_text(text, encoding="utf-8")


def save_model(model, meta: dict, models_dir: str | Path, documents: Callable[[dict], dict] | None = None) -> str:
    """Save a fitted model and its metadata as the next version; return the version.

    Parameters
    ----------
    model : fitted estimator
    meta : dict
        What the card reports. Recognised keys: ``method``, ``units``,
        ``cutoff``, ``horizon``, ``seed``, ``target_groups``, ``data_period``,
        ``data_hashes`` (file -> sha256), ``backtest`` (records),
        ``calibration`` (records), ``fairness`` (a fairness profile),
        ``rate_ratios`` (records), ``caveats`` (list of str). ``params``
        (``model.get_params()``) and ``features`` (the fitted feature names)
        are filled in when absent.
    models_dir : path
    documents : callable, optional
        ``documents(meta) -> {file name: text}``, called with the final metadata
        (version and creation time filled in) and written into the same atomic
        folder: the model card (:func:`reports.model_card.card_documents`).

    Returns
    -------
    str, e.g. ``"v0003"``
    """
    root = Path(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    meta = dict(meta)
    if "params" not in meta and hasattr(model, "get_params"):
        meta["params"] = model.get_params(deep=False)
    if "features" not in meta:
        names = getattr(model, "feature_names_in_", None)
        meta["features"] = [str(n) for n in names] if names is not None else None
    meta.setdefault("caveats", DEFAULT_CAVEATS)
    meta["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["estimator"] = type(model).__name__
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        _write_model(model, tmp / MODEL_FILE)
        for attempt in range(100):
            existing = list_versions(root)
            n = int(existing[-1][1:]) + 1 if existing else 1
            version = f"v{n + attempt:04d}"
            meta["version"] = version
            (tmp / META_FILE).write_text(json.dumps(_jsonable(meta), indent=1), encoding="utf-8")
            _write_documents(documents, _jsonable(meta), tmp)
            for f in tmp.iterdir():
                _fsync_file(f)
            _fsync_dir(tmp)
            try:
                os.rename(tmp, root / version)  # fails if another save took the name
            except OSError:
                if (root / version).exists():
                    continue
                raise
            _fsync_dir(root)
            break
        else:
            raise RuntimeError(f"{root}: could not find a free version name")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in root.glob(".tmp-*"):  # leftovers of crashed saves
        if time.time() - old.stat().st_mtime > 3600:
            shutil.rmtree(old, ignore_errors=True)
    return version


def load_model(models_dir: str | Path, version: str | None = None):
    """Load a saved version (the latest when ``version`` is None).

    Returns
    -------
    model, meta : fitted estimator, dict
    """
    import joblib

    root = Path(models_dir)
    versions = list_versions(root)
    if not versions:
        raise FileNotFoundError(f"{root}: no saved models (run `svrisk train` first)")
    version = versions[-1] if version is None else version
    if version not in versions:
        raise FileNotFoundError(f"{root}: no model version {version!r}; saved versions: {versions}")
    return joblib.load(root / version / MODEL_FILE), version_meta(root, version)
