"""The forecast ledger: every issued forecast, scored once its months arrive.

A backtest says how a method *would* have done; the ledger says how the forecasts a
partnership was actually given *did*. Every run appends what it forecast (one row per
unit: expected count, 80% range, rank, the 12-month count it is compared with) as one
entry; every later run scores each entry whose months are now complete in the data,
for the same units and source, with the same exact measures as the backtest
(:func:`models.evaluation.evaluate_ranking`: hit rate, PAI, PEI* at 1/5/10/25% of the
area and the top 10/20), the same for ``count_12m`` issued at the same cutoff, the share
of units whose count fell inside their 80% range, the mean absolute error and the rank
correlation. A month revised by a later release changes the actual counts: the entry is
scored again and the score says it was revised.

Layout (a folder per data folder's store, beside the runs)::

    <ledger>/entries/<entry_id>.parquet   one issued forecast, written once, never changed
    <ledger>/scores/<entry_id>.json       its score (replaced only when the truth is revised)

Every file is written to a temporary name and renamed into place, so a killed run
leaves the ledger as it was; an unreadable file is one :class:`LedgerError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from models.evaluation import evaluate_ranking

COVERAGES = (0.01, 0.05, 0.10, 0.25)
"""Shares of the area every entry is scored at (the run's map classes)."""
TOP_N = (10, 20)
HEADLINE = "5% area"
"""The slice the one-sentence record and the drift rule use."""
DRIFT_MONTHS = 6
"""Scored forecasts needed for the paired comparison with count_12m and the drift rule."""
RANGE_OK = (0.70, 0.90)
"""An 80% range should hold about 80% of the units; outside this the ranges are miscalibrated."""
ENTRY_COLUMNS = ("entry_id", "run_id", "created", "units", "source", "cutoff", "horizon", "method",
                 "model_version", "unit_id", "expected", "expected_lo", "expected_hi", "rank", "area_m2",
                 "count_12m", "previous")


class LedgerError(ValueError):
    """A ledger file that cannot be read or written."""


def entry_id(run_id: str, units: str, horizon: int) -> str:
    return f"{run_id}--{units}--h{int(horizon)}"


def forecast_entry(ranking: pd.DataFrame, X: pd.DataFrame, *, run_id: str, created: str, units: str, source: str,
                   cutoff: str, horizon: int, method: str | None, model_version: str | None,
                   areas: pd.Series) -> pd.DataFrame:
    """One issued forecast as ledger rows: per unit its expected count and range, rank and baselines.

    ``X`` is the feature matrix at the cutoff: ``cnt_sv_12m`` is the count_12m baseline's
    score and ``cnt_sv_<h>m`` (the horizon's length before the cutoff) the tie-breaker
    the backtest uses.
    """
    ids = ranking["unit_id"].astype(str)
    Xs = X.set_axis(X.index.astype(str))
    prev_col = f"cnt_sv_{int(horizon)}m" if f"cnt_sv_{int(horizon)}m" in Xs else "cnt_sv_1m"
    frame = pd.DataFrame({
        "entry_id": entry_id(run_id, units, horizon), "run_id": run_id, "created": created, "units": units,
        "source": source, "cutoff": cutoff, "horizon": int(horizon), "method": method or "",
        "model_version": model_version or "", "unit_id": ids.to_numpy(),
        "expected": ranking["expected"].to_numpy(dtype=float),
        "expected_lo": ranking.get("expected_lo", pd.Series(np.nan, index=ranking.index)).to_numpy(dtype=float),
        "expected_hi": ranking.get("expected_hi", pd.Series(np.nan, index=ranking.index)).to_numpy(dtype=float),
        "rank": ranking["rank"].to_numpy(dtype=int),
        "area_m2": areas.set_axis(areas.index.astype(str)).reindex(ids).to_numpy(dtype=float),
        "count_12m": Xs["cnt_sv_12m"].reindex(ids).to_numpy(dtype=float),
        "previous": Xs[prev_col].reindex(ids).to_numpy(dtype=float),
    })
    return frame


class Ledger:
    """The ledger folder of one data folder's store (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ---- reading -----------------------------------------------------------------------
    def entries(self) -> pd.DataFrame:
        """Every entry's rows (empty with the columns when there are none)."""
        files = sorted((self.root / "entries").glob("*.parquet"))
        frames = []
        for f in files:
            try:
                frames.append(pd.read_parquet(f))
            except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a damaged file
                raise LedgerError(f"{f}: ledger entry cannot be read ({type(exc).__name__}: {exc}); "
                                  "move it aside to go on (the other entries are intact)") from None
        if not frames:
            return pd.DataFrame(columns=list(ENTRY_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    def scores(self) -> dict[str, dict]:
        """``{entry_id: score}`` for every scored entry."""
        out = {}
        for f in sorted((self.root / "scores").glob("*.json")):
            try:
                out[f.stem] = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise LedgerError(f"{f}: ledger score cannot be read ({exc}); delete it to score the entry "
                                  "again") from None
        return out

    # ---- writing (atomic) ------------------------------------------------------------------
    def append(self, frame: pd.DataFrame) -> Path:
        """Add one entry (rows of one ``entry_id``); an entry is written once."""
        ids = frame["entry_id"].unique()
        if len(ids) != 1:
            raise ValueError(f"one entry at a time, got {len(ids)} entry ids")
        path = self.root / "entries" / f"{ids[0]}.parquet"
        if path.exists():
            raise LedgerError(f"{path}: an entry with this id is already in the ledger")
        _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
        return path

    def write_score(self, eid: str, score: dict) -> Path:
        path = self.root / "scores" / f"{eid}.json"
        _atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(score, indent=1, default=_json), encoding="utf-8"))
        return path


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    return str(value)


def digest(actual: pd.Series) -> str:
    """The truth an entry was scored against, as a short hash (a revised month changes it)."""
    values = actual.sort_index().to_numpy(dtype=float)
    return hashlib.sha256(np.round(values, 6).tobytes() + "|".join(actual.sort_index().index).encode()).hexdigest()[:16]


def score_entry(rows: pd.DataFrame, actual: pd.Series) -> dict:
    """Score one entry's rows against the counts that then happened (``actual``, by unit_id)."""
    rows = rows.set_index("unit_id")
    actual = actual.set_axis(actual.index.astype(str)).reindex(rows.index).fillna(0.0).astype(float)
    areas = rows["area_m2"].astype(float)
    previous = rows["previous"].astype(float)
    forecast = evaluate_ranking(rows["expected"], areas, actual, previous=previous, coverages=COVERAGES, top_n=TOP_N)
    count = evaluate_ranking(rows["count_12m"], areas, actual, previous=previous, coverages=COVERAGES, top_n=TOP_N)
    lo, hi = rows["expected_lo"].astype(float), rows["expected_hi"].astype(float)
    has_range = lo.notna() & hi.notna()
    inside = ((actual >= lo) & (actual <= hi))[has_range]
    rho = _spearman(rows["expected"].to_numpy(float), actual.to_numpy(float))
    keep = ["slice", "coverage", "top_n", "n_units", "area_share", "n", "N", "n_star", "hit_rate", "pai", "pei"]
    first = rows.iloc[0]
    return {
        "entry_id": str(first["entry_id"]), "run_id": str(first["run_id"]), "units": str(first["units"]),
        "source": str(first["source"]), "cutoff": str(first["cutoff"]), "horizon": int(first["horizon"]),
        "method": str(first["method"]), "model_version": str(first["model_version"]),
        "months": [f"{m:%Y-%m}" for m in pd.date_range(pd.Timestamp(str(first["cutoff"]) + "-01"),
                                                       periods=int(first["horizon"]), freq="MS")],
        "events": float(actual.sum()), "truth": digest(actual),
        "forecast": _records(forecast[keep]), "count_12m": _records(count[keep]),
        "range_coverage_80": float(inside.mean()) if len(inside) else None,
        "mae": float((rows["expected"].astype(float) - actual).abs().mean()),
        "rank_correlation": rho,
    }


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for r in frame.to_dict("records"):
        out.append({k: (None if (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA else
                        (int(v) if isinstance(v, (np.integer,)) else (float(v) if isinstance(v, (np.floating,)) else v)))
                    for k, v in r.items()})
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def due_entries(ledger: Ledger, builders: dict, complete: dict) -> list[tuple[str, pd.DataFrame, object]]:
    """Entries whose months are all complete now, for units and sources this run has a builder of.

    ``builders``: ``{(units, source): FeatureBuilder}``; ``complete``: ``{(units, source): set of months}``.
    Returns ``(entry_id, rows, builder)``.
    """
    entries = ledger.entries()
    out = []
    for eid, rows in entries.groupby("entry_id", sort=True):
        first = rows.iloc[0]
        key = (str(first["units"]), str(first["source"]))
        if key not in builders:
            continue
        months = pd.date_range(pd.Timestamp(str(first["cutoff"]) + "-01"), periods=int(first["horizon"]), freq="MS")
        if all(m in complete[key] for m in months):
            out.append((str(eid), rows, builders[key]))
    return out


def score_due(ledger: Ledger, builders: dict) -> list[dict]:
    """Score every due entry not yet scored against this truth; returns the new or revised scores."""
    complete = {k: set(fb.complete_months) for k, fb in builders.items()}
    have = ledger.scores()
    new = []
    for eid, rows, fb in due_entries(ledger, builders, complete):
        first = rows.iloc[0]
        actual = fb.target(str(first["cutoff"]), int(first["horizon"]))
        truth = digest(actual.set_axis(actual.index.astype(str)).reindex(rows["unit_id"].astype(str)).fillna(0.0))
        old = have.get(eid)
        if old is not None and old.get("truth") == truth:
            continue
        score = score_entry(rows, actual)
        if old is not None:
            score["revised"] = (f"re-scored: a later release revised {', '.join(score['months'])} "
                                f"({old.get('events', 0):,.0f} events before, {score['events']:,.0f} now)")
        ledger.write_score(eid, score)
        new.append(score)
    return new


def _headline(score: dict, which: str) -> dict:
    return next(r for r in score[which] if r["slice"] == HEADLINE)


def record(ledger: Ledger) -> pd.DataFrame:
    """One row per scored entry, newest cutoff last: the headline measures of forecast and count_12m."""
    rows = []
    for eid, s in ledger.scores().items():
        f, c = _headline(s, "forecast"), _headline(s, "count_12m")
        rows.append({"entry_id": eid, "run_id": s["run_id"], "units": s["units"], "source": s["source"],
                     "horizon": s["horizon"], "cutoff": s["cutoff"], "months": "..".join(s["months"][::max(1, len(s["months"]) - 1)]),
                     "events": s["events"], "hit_rate_5": f["hit_rate"], "count_hit_rate_5": c["hit_rate"],
                     "pei_5": f["pei"], "count_pei_5": c["pei"], "pai_5": f["pai"],
                     "range_coverage_80": s.get("range_coverage_80"), "mae": s["mae"],
                     "rank_correlation": s.get("rank_correlation"), "revised": bool(s.get("revised"))})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["units", "horizon", "cutoff", "entry_id"]).reset_index(drop=True) if len(frame) else frame


def running_record(frame: pd.DataFrame, months: int = DRIFT_MONTHS) -> list[dict]:
    """Per units and horizon of the scored forecasts (``frame``, :func:`record`): how many are scored,
    their mean PEI* at 5% of the area against count_12m's, a paired 95% interval once ``months`` are
    scored, and drift warnings on the latest ones."""
    out = []
    if frame.empty:
        return out
    for (units, horizon), grp in frame.groupby(["units", "horizon"], sort=True):
        grp = grp.sort_values("cutoff")
        d = (grp["pei_5"] - grp["count_pei_5"]).to_numpy(float)
        item = {"units": units, "horizon": int(horizon), "scored": int(len(grp)),
                "first": str(grp["cutoff"].iloc[0]), "last": str(grp["cutoff"].iloc[-1]),
                "pei_5": float(grp["pei_5"].mean()), "count_pei_5": float(grp["count_pei_5"].mean()),
                "difference": float(d.mean()), "interval": None, "warnings": []}
        if len(d) >= months:
            item["interval"] = list(_paired_interval(d))
        recent = grp.tail(months)
        if len(recent) >= months:
            lo, hi = _paired_interval((recent["pei_5"] - recent["count_pei_5"]).to_numpy(float))
            named = ", ".join(recent["cutoff"])
            if hi < 0:
                item["warnings"].append(f"drift: over the last {months} scored {units} forecasts ({named}) PEI* at "
                                        f"5% of the area fell below the 12-month count's by more than chance allows "
                                        f"(paired 95% interval {lo:+.3f} to {hi:+.3f})")
            cov = recent["range_coverage_80"].dropna()
            if len(cov) and not (RANGE_OK[0] <= cov.mean() <= RANGE_OK[1]):
                item["warnings"].append(f"drift: the 80% ranges of the last {months} scored {units} forecasts "
                                        f"({named}) held {cov.mean():.0%} of places, outside "
                                        f"{RANGE_OK[0]:.0%}-{RANGE_OK[1]:.0%}")
        out.append(item)
    return out


def _paired_interval(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import t

    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return (float("nan"), float("nan"))
    half = t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return (float(d.mean() - half), float(d.mean() + half))


def last_sentence(frame: pd.DataFrame, units: str | None = None) -> str | None:
    """One sentence on the latest scored forecast in ``frame`` (:func:`record`; of ``units``, if given),
    for page 1 of a briefing."""
    if frame.empty:
        return None
    if units is not None and (frame["units"] == units).any():
        frame = frame[frame["units"] == units]
    # the latest cutoff scored, its shortest horizon first (next month is what the meeting tasked on)
    last = frame.sort_values(["cutoff", "horizon"], ascending=[False, True]).iloc[0]
    months = last["months"]
    cov = last["range_coverage_80"]
    return (f"the {last['units']} forecast for {months} (next {'month' if last['horizon'] == 1 else str(last['horizon']) + ' months'}): "
            f"the top 5% of the area held {last['hit_rate_5']:.1%} of serious violence, the 12-month count's top "
            f"5% held {last['count_hit_rate_5']:.1%}" + (f"; {cov:.0%} of places within their 80% range"
                                                         if cov is not None and not pd.isna(cov) else ""))
