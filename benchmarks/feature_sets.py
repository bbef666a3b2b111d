"""Time the feature matrices on the real Barnet store: shared geometry work vs from-scratch rebuilds.

    .venv/bin/python benchmarks/feature_sets.py [STORE] [--data DIR] [--units lsoa2011 ...] [--cutoffs 18]

STORE (or env SVRISK_REAL_STORE) is an ingested store; when it has no
ingest_report.json it is built from --data (env SVRISK_REAL_DATA, default
../shared/data) with ``sources.ingest.ingest``. For each unit set the script
times: building the units and the FeatureBuilder once (the geometry work), the
matrices for N monthly cutoffs (default 18: 2017-01 .. 2018-06) on that one
builder, one warm cutoff, and one cutoff from scratch (new units + new builder +
matrix). It prints one JSON document with seconds and ratios measured in the
same run:

* ``ratio_scratch_over_warm``: one cutoff from scratch / one cutoff on a built builder;
* ``ratio_naive_over_shared``: N x (from scratch) / (setup + N cutoffs), i.e. what
  sharing the geometry saves over rebuilding for every backtest origin.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# this script is named features.py: drop its own folder from the import path so that
# `import features` finds the svrisk package, not this file
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pandas as pd  # noqa: E402

EDITIONS = ["lsoa2011", "lsoa2021", "ward2022", "grid250"]


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", default=os.environ.get("SVRISK_REAL_STORE"))
    parser.add_argument("--data", default=os.environ.get("SVRISK_REAL_DATA", "../shared/data"))
    parser.add_argument("--units", nargs="+", default=EDITIONS)
    parser.add_argument("--first", default="2017-01", help="first cutoff (YYYY-MM)")
    parser.add_argument("--cutoffs", type=int, default=18, help="number of monthly cutoffs")
    parser.add_argument("--repeat", type=int, default=3, help="repeats of the one-cutoff timings (median)")
    args = parser.parse_args(argv)

    from features.build import FeatureBuilder
    from features.units import build_units
    from sources.store import REPORT_NAME, Store

    store_dir = Path(args.store) if args.store else Path("out/bench-store")
    if not (store_dir / REPORT_NAME).is_file():
        from sources.ingest import ingest

        if not Path(args.data).is_dir():
            print(f"no store at {store_dir} and no data folder {args.data}", file=sys.stderr)
            return 2
        print(f"ingesting {args.data} -> {store_dir}", file=sys.stderr)
        ingest(args.data, store_dir)
    store = Store(store_dir)
    cutoffs = [f"{m:%Y-%m}" for m in pd.date_range(f"{args.first}-01", periods=args.cutoffs, freq="MS")]

    result = {
        "store": str(store_dir), "cutoffs": {"first": cutoffs[0], "last": cutoffs[-1], "n": len(cutoffs)},
        "repeat": args.repeat, "units": {},
    }
    shared_total = naive_total = 0.0
    for edition in args.units:
        t_units, units = _timed(lambda e=edition: build_units(store, e))
        t_builder, fb = _timed(lambda u=units: FeatureBuilder(store, u))
        t_all, _ = _timed(lambda f=fb: [f.matrix(c) for c in cutoffs])
        warm = statistics.median(_timed(lambda f=fb: f.matrix(cutoffs[-1]))[0] for _ in range(args.repeat))

        def scratch(e=edition):
            u = build_units(store, e)
            return FeatureBuilder(store, u).matrix(cutoffs[-1])

        cold = statistics.median(_timed(scratch)[0] for _ in range(args.repeat))
        setup = t_units + t_builder
        shared = setup + t_all
        naive = cold * len(cutoffs)
        shared_total += shared
        naive_total += naive
        result["units"][edition] = {
            "n_units": len(units),
            "n_features": fb.matrix(cutoffs[-1]).shape[1],
            "setup_s": round(setup, 3),
            "cutoffs_s": round(t_all, 3),
            "shared_total_s": round(shared, 3),
            "warm_one_cutoff_s": round(warm, 4),
            "scratch_one_cutoff_s": round(cold, 3),
            "ratio_scratch_over_warm": round(cold / warm, 1),
            "ratio_naive_over_shared": round(naive / shared, 2),
            "assignment": fb.assignment_report(),
        }
        print(f"{edition}: {json.dumps(result['units'][edition])}", file=sys.stderr)
    result["all_units_shared_s"] = round(shared_total, 3)
    result["all_units_naive_s"] = round(naive_total, 3)
    result["ratio_naive_over_shared"] = round(naive_total / shared_total, 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
