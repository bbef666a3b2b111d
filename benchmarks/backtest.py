"""Backtest every baseline and model on the real data at both horizons; print the evidence as JSON.

    SVRISK_REAL_DATA=../shared/data .venv/bin/python -P benchmarks/backtest.py [--json out.json]
        [--units grid250 lsoa2011] [--horizons 1 3] [--methods count_12m long_mean nested ...]
        [--origins 18] [--store DIR] [--demo SEED [--boroughs N] [--years Y]] [--n-sims 200]

Origins are the pipeline's (:func:`service.pipeline.origin_plan`: the last ``--origins`` usable
ones, with the history shortened, and said so, on short data); target: violence + robbery +
sexual (settings default). The data is ingested into a temporary store (or ``--store``,
reused if it exists). ``--demo SEED`` backtests the generated demo borough instead
(``--boroughs N`` of them side by side, ``--years Y`` of crime: a short history with 2).

Timing, in one run: ``count_12m`` backtested alone, then the whole default backtest (every
method of :func:`models.backtest.backtest_methods`, or ``--methods``) in one call sharing its
feature matrices, training rows and candidate fits, as ``svrisk backtest`` runs it. The JSON
has ``seconds`` (``count_12m_alone``, ``default``, ``default_cache_fill`` and ``default_cached``: the
default run again writing then reading a fresh on-disk prediction cache, as a first and a second
``svrisk backtest`` of one store; ``ceiling``), ``default_vs_count`` (the ratio; target at most 3),
``cached_vs_count`` (the second run's), ``method_seconds`` (each method's own added time in the shared
run) and ``nested_share`` (the nested default's own share of the default run). Scores
(:mod:`models.evaluation`, exact): ``pei_5pct`` per method and ``pei_5pct_vs_count``;
``paired``: each method against ``count_12m`` per origin at 1%, 5% and 10% of the area (mean
difference, 95% bootstrap interval, wins/losses/ties, seed 0) and ``default_vs_long_mean``;
``ceiling``: the expected PEI* of a long-run-rate oracle per slice with its simulation
interval and how often methods scored above it (:mod:`models.ceiling`); ``verdict``; and
``choices``: what the nested default chose at each origin and why. The report text
(:func:`reports.model_card.backtest_text`) goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REFERENCE = "count_12m"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SVRISK_REAL_DATA", "../shared/data"))
    parser.add_argument("--store", default=None, help="ingested store folder (made if missing)")
    parser.add_argument("--units", nargs="+", default=["grid250", "lsoa2011"])
    parser.add_argument("--horizons", nargs="+", type=int, default=[1, 3])
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--n-sims", type=int, default=200, help="simulated periods of the ceiling")
    parser.add_argument("--demo", type=int, default=None, metavar="SEED",
                        help="backtest the demo borough generated with this seed instead")
    parser.add_argument("--boroughs", type=int, default=1, help="with --demo: boroughs side by side")
    parser.add_argument("--years", type=int, default=3, help="with --demo: years of crime from 2016-01")
    parser.add_argument("--origins", type=int, default=18, help="the last N usable origins")
    parser.add_argument("--json", default=None, help="also write the JSON document here")
    args = parser.parse_args(argv)

    from features.build import FeatureBuilder
    from features.units import build_units
    from models.backtest import (
        NestedChoice,
        area_slice_labels,
        backtest,
        backtest_ceiling,
        backtest_methods,
        backtest_report,
        default_methods,
        paired_comparison,
    )
    from models.prediction_cache import PredictionCache, store_digest
    from models.ranking import DEFAULT_METHOD
    from reports.model_card import backtest_text, verdict
    from service.pipeline import origin_plan
    from service.settings import get_settings
    from sources.ingest import ingest
    from sources.store import Store

    settings = get_settings()
    tmp = tempfile.mkdtemp(prefix="svrisk-bt-")
    if args.demo is not None:
        from sources.demo.borough import generate_demo
        from sources.demo.scale import generate_scaled

        data = (generate_demo(Path(tmp) / "demo", seed=args.demo, months=12 * args.years) if args.boroughs == 1
                else generate_scaled(Path(tmp) / "demo", boroughs=args.boroughs, years=args.years, seed=args.demo))
    else:
        data = Path(args.data)
        if not data.is_dir():
            print(f"no real data at {data} (set SVRISK_REAL_DATA)", file=sys.stderr)
            return 2
    store_dir = Path(args.store) if args.store else Path(tmp) / "store"
    if not (store_dir / "ingest_report.json").is_file():
        ingest(data, store_dir)
    store = Store(store_dir)
    names = list(backtest_methods()) if not args.methods else list(dict.fromkeys([REFERENCE, *args.methods]))
    runs, records = [], []
    for edition in args.units:
        fb = FeatureBuilder(store, build_units(store, edition), target_groups=settings.model.target_groups)
        for horizon in args.horizons:
            origins, notes = origin_plan(fb, horizon, settings.model.history_months, count=args.origins)
            for note in notes:
                print(f"{edition} h{horizon} origins: {note}", file=sys.stderr)
            methods = {k: v for k, v in default_methods(seed=settings.model.seed).items() if k in names}
            t0 = time.perf_counter()
            backtest(fb, {REFERENCE: methods[REFERENCE]}, origins=origins, horizon=horizon,
                     history_months=settings.model.history_months, per_origin=True)
            seconds = {"count_12m_alone": round(time.perf_counter() - t0, 2)}
            method_seconds: dict = {}
            t0 = time.perf_counter()
            per = backtest(fb, methods, origins=origins, horizon=horizon, history_months=settings.model.history_months,
                           per_origin=True, seconds=method_seconds)
            seconds["default"] = round(time.perf_counter() - t0, 2)
            cache = PredictionCache(Path(tmp) / "predictions" / f"{edition}-h{horizon}", store_digest(store))
            for step in ("cache_fill", "cached"):  # as a first and a second `svrisk backtest` on this store
                t0 = time.perf_counter()
                backtest(fb, {k: v for k, v in default_methods(seed=settings.model.seed).items() if k in names},
                         origins=origins, horizon=horizon, history_months=settings.model.history_months,
                         per_origin=True, predictions=cache)
                seconds[f"default_{step}"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            ceiling = backtest_ceiling(fb, origins, horizon, n_sims=args.n_sims, seed=0)
            seconds["ceiling"] = round(time.perf_counter() - t0, 2)
            report = backtest_report(per, edition, default=DEFAULT_METHOD, reference=REFERENCE, ceiling=ceiling)
            print("\n" + "\n".join(backtest_text(report)), file=sys.stderr)
            summary = [r for r in report["records"] if "origin" not in r]
            five = {r["method"]: r for r in summary if r["slice"] == "5% area"}
            ref_pei, ref_s = five[REFERENCE]["pei"], seconds["count_12m_alone"]
            nested = [k for k, m in methods.items() if isinstance(m, NestedChoice)]
            runs.append({
                "units": edition, "horizon": horizon, "origins": report["origins"], "origin_notes": notes,
                "seconds": seconds, "default_vs_count": round(seconds["default"] / ref_s, 2) if ref_s > 0 else None,
                "cached_vs_count": round(seconds["default_cached"] / ref_s, 2) if ref_s > 0 else None,
                "method_seconds": {k: round(v, 2) for k, v in method_seconds.items()},
                "nested_share": {k: round(method_seconds[k] / seconds["default"], 3) for k in nested
                                 if seconds["default"] > 0},
                "pei_5pct": {k: round(r["pei"], 4) for k, r in five.items()},
                "pei_5pct_vs_count": {k: round(r["pei"] / ref_pei, 4) for k, r in five.items()},
                "hit_rate_5pct": {k: round(r["hit_rate"], 4) for k, r in five.items()},
                "share_of_ceiling_5pct": {k: round(r["pei_share"], 4) for k, r in five.items()
                                          if r.get("pei_share") is not None},
                "paired": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                            if k in ("method", "slice", "mean_diff", "boot_lo", "boot_hi", "wins", "losses",
                                     "ties", "n_origins", "sign_p")} for r in report["paired"]],
                "default_vs_long_mean": [
                    {k: (round(v, 4) if isinstance(v, float) else v) for k, v in
                     paired_comparison(per, DEFAULT_METHOD, "long_mean", slice=sl, seed=0).items()
                     if k in ("slice", "mean_diff", "boot_lo", "boot_hi", "wins", "losses", "ties", "n_origins")}
                    for sl in area_slice_labels(per)] if {DEFAULT_METHOD, "long_mean"} <= set(five) else [],
                "ceiling": {k: v for k, v in report["ceiling"].items()},
                "verdict": verdict(report["paired"], summary, method=DEFAULT_METHOD, units=edition,
                                   horizon=horizon) if DEFAULT_METHOD in five else None,
                "choices": {name: {o: [c, m.reasons_[o]] for o, c in m.choices_.items() if o in set(per["origin"])}
                            for name, m in methods.items() if isinstance(m, NestedChoice)},
            })
            records += report["records"]
    doc = {"benchmark": "backtest", "data": str(data), "demo_seed": args.demo, "default_method": DEFAULT_METHOD,
           "reference": REFERENCE, "runs": runs, "records": records}
    text = json.dumps(doc, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
