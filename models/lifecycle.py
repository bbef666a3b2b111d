"""Versioned models on disk, saved atomically, each with a model card.

Layout::

    <models_dir>/
      v0001/
        model.joblib     the fitted estimator (joblib pickle: load only models you trust)
        meta.json        version, created, method, parameters, seed, data hashes,
                         feature list, backtest scores, calibration, fairness, caveats
        card.md          the model card (data, method, backtest, calibration,
        card.html        fairness profile, caveats)
      v0002/ ...

A save writes everything into a hidden temporary folder in ``models_dir``, flushes
each file to disk, then renames the folder to its version (an atomic step on one
file system). A crash at any point before the rename leaves no ``v*`` folder; a
leftover ``.tmp-*`` folder is ignored by :func:`list_versions` and removed by the
next successful save that finds it older than an hour.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
import uuid
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


def _write_card(meta: dict, folder: Path) -> None:
    md, page = model_card(meta)
    (folder / "card.md").write_text(md, encoding="utf-8")
    (folder / "card.html").write_text(page, encoding="utf-8")


def save_model(model, meta: dict, models_dir: str | Path) -> str:
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
            _write_card(_jsonable(meta), tmp)
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
    folder = root / version
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    return joblib.load(folder / MODEL_FILE), meta


# ---- the model card -----------------------------------------------------------------------

def _table(records, columns=None) -> tuple[list[str], list[list[str]]]:
    frame = pd.DataFrame(records or [])
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]

    def fmt(v):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return list(frame.columns), [[fmt(v) for v in row] for row in frame.itertuples(index=False)]


def _sections(meta: dict) -> list[tuple[str, list]]:
    """Card content as (heading, blocks); a block is ("p", text) or ("table", header, rows)."""
    data = [
        ("p", f"Units: {meta.get('units', 'n/a')}. Cutoff (data up to the month before): "
              f"{meta.get('cutoff', 'n/a')}. Horizon: {meta.get('horizon', 'n/a')} month(s). "
              f"Target groups: {', '.join(meta.get('target_groups') or []) or 'n/a'}."),
    ]
    if meta.get("data_period"):
        p = meta["data_period"]
        data.append(("p", f"Data period: {p.get('start')} to {p.get('end')}."))
    if meta.get("data_hashes"):
        data.append(("table", ["file", "sha256"], [[k, v] for k, v in meta["data_hashes"].items()]))
    params = meta.get("params") or {}
    method = [
        ("p", f"Method: {meta.get('method', 'n/a')} ({meta.get('estimator', '')}); seed "
              f"{meta.get('seed', 'n/a')}. Rows are (place, origin) pairs from earlier cutoffs; "
              "the target is the count in the horizon after each origin, so nothing after the "
              "cutoff is used."),
        ("table", ["parameter", "value"], [[k, str(v)] for k, v in params.items()]),
        ("p", f"Features ({len(meta.get('features') or [])}): {', '.join(meta.get('features') or [])}."),
    ]
    if meta.get("rate_ratios"):
        method.append(("table", *_table(meta["rate_ratios"], ["feature", "per", "rate_ratio", "lo", "hi"])))
    backtest = [("table", *_table(meta.get("backtest"), [
        "units", "method", "slice", "hit_rate", "pai", "pei", "rri", "harm_pai", "harm_pei"]))] \
        if meta.get("backtest") else [("p", "No backtest was run for this version.")]
    calibration = [("p", "Forecast and outcome by tenth of places (ranked by forecast), on the "
                         "month before the cutoff with a model fitted on earlier data."),
                   ("table", *_table(meta.get("calibration")))] \
        if meta.get("calibration") else [("p", "No calibration check was run.")]
    fair = meta.get("fairness") or {}
    fairness = [("table", *_table(fair.get("rows"), ["measure", "top_places", "borough", "ratio"])),
                ("p", f"Top {fair.get('top_n')} places. {fair.get('note', '')}")] \
        if fair else [("p", "No fairness profile was computed.")]
    caveats = [("p", c) for c in meta.get("caveats") or []]
    return [("Data", data), ("Method", method), ("Backtest", backtest),
            ("Calibration", calibration), ("Fairness profile", fairness), ("Caveats", caveats)]


def model_card(meta: dict) -> tuple[str, str]:
    """The model card as (Markdown, HTML)."""
    title = f"svrisk model {meta.get('version', '')}: {meta.get('method', '')}"
    md = [f"# {title}", "", f"Created {meta.get('created', '')}.", ""]
    page = ["<!doctype html>", "<html><head><meta charset='utf-8'>",
            f"<title>{html.escape(title)}</title>",
            "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>",
            "</head><body>", f"<h1>{html.escape(title)}</h1>",
            f"<p>Created {html.escape(str(meta.get('created', '')))}.</p>"]
    for heading, blocks in _sections(meta):
        md += [f"## {heading}", ""]
        page.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if block[0] == "p":
                md += [block[1], ""]
                page.append(f"<p>{html.escape(block[1])}</p>")
            else:
                header, rows = block[1], block[2]
                if not header:
                    continue
                md.append("| " + " | ".join(header) + " |")
                md.append("|" + "---|" * len(header))
                md += ["| " + " | ".join(r) + " |" for r in rows]
                md.append("")
                page.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
                page += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
                page.append("</table>")
    page.append("</body></html>")
    return "\n".join(md), "\n".join(page)


# ---- training a version ------------------------------------------------------------------

def train(
    fb,
    cutoff,
    models_dir: str | Path,
    *,
    method: str | None = None,
    horizon: int = 1,
    seed: int = 0,
    train_origins: int = 12,
    backtest_origins: list[str] | None = None,
    data_hashes: dict | None = None,
    top_n: int = 20,
    estimator_for=None,
) -> str:
    """Fit ``method`` on data before ``cutoff``, check it, and save it as a new version.

    The card gets: rate ratios (GLM), a calibration table (a model fitted before
    ``cutoff - horizon`` forecasting ``[cutoff - horizon, cutoff)``, compared with
    what happened), the fairness profile of the ranking at ``cutoff``, and, when
    ``backtest_origins`` are given, the backtest of this method and the plain
    12-month count on them.

    ``estimator_for`` maps the chosen estimator to the one actually trained (the Dask
    engine's :meth:`service.engine.Engine.estimator` sends the boosting to a cluster).

    Returns
    -------
    str, the version saved.
    """
    from models.backtest import (
        backtest,
        backtest_records,
        default_methods,
        fit_at,
        forecast_matrix,
        month,
        window_sum,
    )
    from models.baselines import ColumnRanker
    from models.evaluation import calibration_table
    from models.fairness import fairness_profile
    from models.ranking import DEFAULT_METHOD, rank_from_model

    method = method or DEFAULT_METHOD
    methods = default_methods(seed)
    if method not in methods or not hasattr(methods[method], "fit"):
        fittable = [k for k, v in methods.items() if hasattr(v, "fit")]
        raise ValueError(f"method {method!r} cannot be trained; choose one of {fittable}")
    estimator = methods[method] if estimator_for is None else estimator_for(methods[method])
    c = month(cutoff)
    model = fit_at(fb, estimator, c, horizon, train_origins=train_origins)
    ranking, X = rank_from_model(fb, model, c)
    police = bool(getattr(fb, "allow_police_generated", False))
    meta = {
        "method": method, "units": fb.units.edition, "cutoff": f"{c:%Y-%m}", "horizon": int(horizon),
        "seed": int(seed), "train_origins": int(train_origins),
        "target_groups": list(getattr(fb, "target_groups", []) or []),
        "data_period": {"start": f"{month(fb.months[0]):%Y-%m}",
                        "end": f"{max(m for m in map(month, fb.months) if m < c):%Y-%m}"},
        "data_hashes": data_hashes or {},
        "police_generated_used": police,
        "fairness": fairness_profile(ranking, X, top_n=top_n, police_generated_used=police),
    }
    if hasattr(model, "rate_ratios"):
        meta["rate_ratios"] = model.rate_ratios()
    prior = c - pd.DateOffset(months=int(horizon))
    try:
        check = fit_at(fb, estimator, prior, horizon, train_origins=train_origins)
        Xp = forecast_matrix(fb, prior)
        actual = window_sum(fb.panel(), prior, horizon).set_axis(fb.panel().index.astype(str))
        pred = pd.Series(check.predict(Xp), index=Xp.index.astype(str))
        meta["calibration"] = calibration_table(pred, actual.reindex(pred.index), bins=10)
    except ValueError as exc:  # too little history before the cutoff for a separate check
        meta["calibration_note"] = str(exc)
    if backtest_origins:
        table = backtest(fb, {method: estimator, "count_12m": ColumnRanker("cnt_sv_12m")},
                         origins=backtest_origins, horizon=horizon, train_origins=train_origins)
        meta["backtest"] = backtest_records(table, fb.units.edition)
    return save_model(model, meta, models_dir)
