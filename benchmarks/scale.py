"""Scaling benchmark: local and Dask engines on a borough, London and a national-sized slice.

For each size the synthetic input is generated once (``features.demo.scale``) and
ingested once under ``--root`` (default ``/tmp/svrisk-scale``; never the repository).
Then each engine runs the event-heavy pipeline in a fresh process measured with
``/usr/bin/time`` (wall time, peak resident memory of the whole process, which
includes the in-process Dask workers): units (grid 250 m), event sums, feature
matrices at ``--cutoffs`` month ends, an XGBoost fit at the last cutoff (12 training
origins) and the ranking (prediction) at it. ``wall_s`` includes interpreter start
and imports (about 8 s here); ``pipeline_s`` is the sum of the steps and
``events_per_s`` = events / ``pipeline_s``. Prints one JSON object::

    {"machine": {...}, "sizes": {"london": {"events": ..., "units": ...,
      "generate_s": ..., "ingest": {"wall_s": ..., "peak_rss_mb": ...},
      "local": {"wall_s": ..., "peak_rss_mb": ..., "pipeline_s": ..., "events_per_s": ..., "steps": {...}},
      "dask": {...}, "dask_over_local_wall": ...}}}

Run: ``.venv/bin/python benchmarks/scale.py --sizes borough,london,national``.
The machine is shared: sizes run one after another, Dask on a LocalCluster of
``--workers`` thread workers in the measured process (``--scheduler`` for a real one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SIZES = {  # name: (boroughs, years)
    "borough": (1, 3),
    "london": (32, 3),
    "national": (99, 1),
}


def _timed(cmd: list[str]) -> tuple[dict, float, float]:
    """Run ``cmd`` under /usr/bin/time; its last stdout line is JSON. Returns (json, wall s, peak MB)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "__TIME__ %e %M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("__TIME__")][-1]
    _, _, peak_kb = line.split()
    out = proc.stdout.strip().splitlines()
    return (json.loads(out[-1]) if out else {}), wall, int(peak_kb) / 1024


def _prepare(root: Path, name: str, seed: int) -> dict:
    boroughs, years = SIZES[name]
    data, store = root / name / "data", root / name / "store"
    info: dict = {"boroughs": boroughs, "years": years}
    if not (data / "catalogue.toml").is_file():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "features.demo.scale", str(data), "--boroughs", str(boroughs),
                        "--years", str(years), "--seed", str(seed)], check=True, capture_output=True)
        info["generate_s"] = round(time.perf_counter() - t0, 1)
    if not (store / "ingest_report.json").is_file():
        code = ("import json,sys; from features.sources.ingest import ingest; "
                f"r = ingest({str(data)!r}, {str(store)!r}); print(json.dumps(r['totals']))")
        totals, wall, peak = _timed([sys.executable, "-c", code])
        info["ingest"] = {"wall_s": round(wall, 1), "peak_rss_mb": round(peak), **totals}
    return info


def _run_engine(args) -> None:
    """Child process: one engine on one store; prints step timings as JSON."""
    import pandas as pd

    from features.sources.store import Store
    from features.units import build_units
    from models.backtest import forecast_matrix
    from models.boosting import PoissonBoost
    from service.engine import Engine
    from service.settings import get_settings

    settings = get_settings()
    store = Store(args.store)
    steps: dict[str, float] = {}
    t = time.perf_counter()
    units = build_units(store, args.units)
    steps["units_s"] = time.perf_counter() - t
    with Engine(args.engine, args.scheduler, npartitions=args.partitions, n_workers=args.workers) as eng:
        t = time.perf_counter()
        fb = eng.feature_builder(store, units, target_groups=settings.model.target_groups)
        steps["event_sums_and_context_s"] = time.perf_counter() - t
        months = fb.months
        cutoffs = [f"{m + pd.DateOffset(months=1):%Y-%m}" for m in months[-args.cutoffs:]]
        t = time.perf_counter()
        for c in cutoffs:
            fb.matrix(c)
        steps["matrices_s"] = time.perf_counter() - t
        t = time.perf_counter()
        model = eng.fit_at(fb, PoissonBoost(), cutoffs[-1], train_origins=12, min_train_history=6)
        steps["train_s"] = time.perf_counter() - t
        t = time.perf_counter()
        X = forecast_matrix(fb, cutoffs[-1])
        scores = model.predict(X)
        steps["rank_s"] = time.perf_counter() - t
    print(json.dumps({"units": len(units), "events": fb.assignment_report()["read"], "cutoffs": cutoffs,
                      "score_sum": float(scores.sum()), "steps": {k: round(v, 2) for k, v in steps.items()}}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="svrisk scaling benchmark (JSON on stdout)")
    ap.add_argument("--sizes", default="borough,london,national")
    ap.add_argument("--root", default="/tmp/svrisk-scale")
    ap.add_argument("--engines", default="local,dask")
    ap.add_argument("--units", default="grid250")
    ap.add_argument("--cutoffs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=None)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--run-engine", dest="engine", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.engine:
        _run_engine(args)
        return
    root = Path(args.root)
    out = {"machine": {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2)}, "units": args.units,
           "sizes": {}}
    for name in [s for s in args.sizes.split(",") if s]:
        res = _prepare(root, name, args.seed)
        for engine in [e for e in args.engines.split(",") if e]:
            cmd = [sys.executable, __file__, "--run-engine", engine, "--store", str(root / name / "store"),
                   "--units", args.units, "--cutoffs", str(args.cutoffs), "--workers", str(args.workers)]
            if args.partitions:
                cmd += ["--partitions", str(args.partitions)]
            if args.scheduler and engine == "dask":
                cmd += ["--scheduler", args.scheduler]
            child, wall, peak = _timed(cmd)
            res.update(events=child["events"], units=child["units"])
            res[engine] = {"wall_s": round(wall, 1), "peak_rss_mb": round(peak),
                           "pipeline_s": round(sum(child["steps"].values()), 1),
                           "events_per_s": round(child["events"] / max(sum(child["steps"].values()), 1e-9)),
                           "score_sum": child["score_sum"],
                           "steps": child["steps"]}
        if "local" in res and "dask" in res:
            res["dask_over_local_wall"] = round(res["dask"]["wall_s"] / res["local"]["wall_s"], 2)
        out["sizes"][name] = res
        print(json.dumps({name: res}), file=sys.stderr)  # progress
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
