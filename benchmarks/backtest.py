"""Backtest every baseline and model on the real Barnet data; print the table and JSON records.

    SVRISK_REAL_DATA=../shared/data .venv/bin/python benchmarks/backtest.py [--json out.json]
        [--units grid250 lsoa2011] [--methods count_12m glm ...] [--store DIR]

police.uk street crime 2016-01..2018-06; origins 2017-01..2018-06 monthly, 12 months of
history, horizon 1; target: violence + robbery + sexual (settings default). The data is
ingested into a temporary store (or ``--store``, reused if it exists). Prints the table
for each unit set to stderr and one JSON document to stdout: records (units, method,
slice, coverage, top_n, horizon, hit_rate, pai, pei, rri and harm_* versions), plus the
PEI* at 5% of the default model against the plain count, and seconds per unit set.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SVRISK_REAL_DATA", "../shared/data"))
    parser.add_argument("--store", default=None, help="ingested store folder (made if missing)")
    parser.add_argument("--units", nargs="+", default=["grid250", "lsoa2011"])
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--json", default=None, help="also write the JSON document here")
    args = parser.parse_args(argv)

    from features.build import FeatureBuilder
    from features.ingest import ingest
    from features.store import Store
    from geo.units import build_units
    from models.backtest import backtest, backtest_records, default_methods
    from models.ranking import DEFAULT_METHOD
    from service.settings import get_settings

    data = Path(args.data)
    if not data.is_dir():
        print(f"no real data at {data} (set SVRISK_REAL_DATA)", file=sys.stderr)
        return 2
    settings = get_settings()
    tmp = None
    store_dir = Path(args.store) if args.store else Path(tmp := tempfile.mkdtemp(prefix="svrisk-bt-")) / "store"
    if not (store_dir / "ingest_report.json").is_file():
        ingest(data, store_dir)
    store = Store(store_dir)
    methods = default_methods(seed=settings.model.seed)
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods}
    origins = [f"{m:%Y-%m}" for m in pd.date_range("2017-01-01", "2018-06-01", freq="MS")]
    records, summary, seconds = [], {}, {}
    for edition in args.units:
        t0 = time.perf_counter()
        fb = FeatureBuilder(store, build_units(store, edition), settings)
        table = backtest(fb, methods, origins=origins, horizon=1,
                         history_months=settings.model.history_months)
        seconds[edition] = round(time.perf_counter() - t0, 1)
        records += backtest_records(table, edition)
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(f"\n== {edition}  ({len(origins)} origins, horizon 1, {seconds[edition]} s)", file=sys.stderr)
            cols = ["method", "slice", "hit_rate", "pai", "pei", "rri", "harm_pai", "harm_pei"]
            print(table[cols].round(3).to_string(index=False), file=sys.stderr)
        at5 = table[table["slice"] == "5% area"].set_index("method")
        if "count_12m" in at5.index and DEFAULT_METHOD in at5.index:
            summary[edition] = {
                "count_12m_pai": round(float(at5.loc["count_12m", "pai"]), 3),
                "count_12m_pei": round(float(at5.loc["count_12m", "pei"]), 3),
                f"{DEFAULT_METHOD}_pai": round(float(at5.loc[DEFAULT_METHOD, "pai"]), 3),
                f"{DEFAULT_METHOD}_pei": round(float(at5.loc[DEFAULT_METHOD, "pei"]), 3),
                "pei_ratio_default_vs_count": round(
                    float(at5.loc[DEFAULT_METHOD, "pei"] / at5.loc["count_12m", "pei"]), 4),
                "default_beats_count_on_pei_5pct": bool(
                    at5.loc[DEFAULT_METHOD, "pei"] > at5.loc["count_12m", "pei"]),
            }
    doc = {"benchmark": "backtest", "data": str(data), "origins": [origins[0], origins[-1]],
           "horizon": 1, "default_method": DEFAULT_METHOD, "at_5pct_area": summary,
           "seconds": seconds, "records": records}
    text = json.dumps(doc, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    if tmp:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
