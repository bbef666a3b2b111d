"""Backtest every baseline and model on the real Barnet data; print the table and JSON records.

    SVRISK_REAL_DATA=../shared/data .venv/bin/python -P benchmarks/backtest.py [--json out.json]
        [--units grid250 lsoa2011] [--methods count_12m long_mean blend ...] [--store DIR]
        [--demo SEED]

police.uk street crime 2016-01..2018-06; origins 2017-01..2018-06 monthly, 12 months of
history, horizon 1; target: violence + robbery + sexual (settings default). The data is
ingested into a temporary store (or ``--store``, reused if it exists). ``--demo SEED``
backtests the generated demo borough instead (every origin with 12 months of history).

Prints the table for each unit set to stderr and one JSON document to stdout: records
(units, method, slice, coverage, top_n, horizon, hit_rate, pai, pei, rri and harm_*
versions); ``at_5pct_area``: PEI* at 5% of the area of the default model, the plain
count and the long-window mean; ``paired``: per-origin paired comparisons of the default
model against ``count_12m`` and ``long_mean`` at 1%, 5% and 10% of the area (mean
difference, wins/losses/ties, win share, exact sign test p, 95% bootstrap interval of the
mean difference over origins, seed 0); and seconds per unit set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

SLICES = ("1% area", "5% area", "10% area")
REFERENCES = ("count_12m", "long_mean")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SVRISK_REAL_DATA", "../shared/data"))
    parser.add_argument("--store", default=None, help="ingested store folder (made if missing)")
    parser.add_argument("--units", nargs="+", default=["grid250", "lsoa2011"])
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--demo", type=int, default=None, metavar="SEED",
                        help="backtest the demo borough generated with this seed instead")
    parser.add_argument("--json", default=None, help="also write the JSON document here")
    args = parser.parse_args(argv)

    from features.build import FeatureBuilder
    from features.sources.ingest import ingest
    from features.sources.store import Store
    from features.units import build_units
    from models.backtest import (
        backtest,
        backtest_records,
        default_methods,
        paired_comparison,
        summarise_origins,
    )
    from models.ranking import DEFAULT_METHOD
    from service.settings import get_settings

    settings = get_settings()
    tmp = tempfile.mkdtemp(prefix="svrisk-bt-")
    if args.demo is not None:
        from features.demo.borough import generate_demo

        data = generate_demo(Path(tmp) / "demo", seed=args.demo)
        origins = None
    else:
        data = Path(args.data)
        if not data.is_dir():
            print(f"no real data at {data} (set SVRISK_REAL_DATA)", file=sys.stderr)
            return 2
        origins = [f"{m:%Y-%m}" for m in pd.date_range("2017-01-01", "2018-06-01", freq="MS")]
    store_dir = Path(args.store) if args.store else Path(tmp) / "store"
    if not (store_dir / "ingest_report.json").is_file():
        ingest(data, store_dir)
    store = Store(store_dir)
    methods = default_methods(seed=settings.model.seed)
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods}
    records, summary, paired, seconds, spans = [], {}, {}, {}, {}
    for edition in args.units:
        t0 = time.perf_counter()
        fb = FeatureBuilder(store, build_units(store, edition))
        per = backtest(fb, methods, origins=origins, horizon=1,
                       history_months=settings.model.history_months, per_origin=True)
        table = summarise_origins(per)
        seconds[edition] = round(time.perf_counter() - t0, 1)
        spans[edition] = [per["origin"].min(), per["origin"].max(), int(per["origin"].nunique())]
        records += backtest_records(table, edition)
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(f"\n== {edition}  ({spans[edition][2]} origins {spans[edition][0]}..{spans[edition][1]}, "
                  f"horizon 1, {seconds[edition]} s)", file=sys.stderr)
            cols = ["method", "slice", "hit_rate", "pai", "pei", "rri", "harm_pai", "harm_pei"]
            print(table[cols].round(3).to_string(index=False), file=sys.stderr)
        at5 = table[table["slice"] == "5% area"].set_index("method")
        summary[edition] = {f"{m}_pei": round(float(at5.loc[m, "pei"]), 4)
                            for m in (DEFAULT_METHOD, *REFERENCES) if m in at5.index}
        if DEFAULT_METHOD in at5.index:
            summary[edition] |= {f"{DEFAULT_METHOD}_pai": round(float(at5.loc[DEFAULT_METHOD, "pai"]), 3)}
            for ref in REFERENCES:
                if ref in at5.index:
                    summary[edition][f"default_minus_{ref}_pei"] = round(
                        float(at5.loc[DEFAULT_METHOD, "pei"] - at5.loc[ref, "pei"]), 4)
            paired[edition] = [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in
                 paired_comparison(per, DEFAULT_METHOD, ref, slice=sl, seed=0).items()}
                for ref in REFERENCES if ref in at5.index for sl in SLICES
            ]
            for r in paired[edition]:
                print(f"   {r['method']} - {r['against']:<9} {r['slice']:>8}: mean {r['mean_diff']:+.4f} "
                      f"[{r['boot_lo']:+.4f}, {r['boot_hi']:+.4f}]  wins {r['wins']}/{r['wins'] + r['losses']} "
                      f"(ties {r['ties']})  sign p {r['sign_p']:.3f}", file=sys.stderr)
    doc = {"benchmark": "backtest", "data": str(data), "demo_seed": args.demo, "origins": spans,
           "horizon": 1, "default_method": DEFAULT_METHOD, "at_5pct_area": summary, "paired": paired,
           "seconds": seconds, "records": records}
    text = json.dumps(doc, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
