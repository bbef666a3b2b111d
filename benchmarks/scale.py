"""Scaling benchmark: ingest and the event-heavy pipeline on 1, 2, 4... workers of each engine.

For each size the synthetic input is generated once (``sources.demo.scale``) under
``--root`` (default ``/tmp/svrisk-scale``; never the repository). Then, for each engine
and each worker count of ``--workers`` (e.g. ``1,2``), two fresh processes are measured
with ``/usr/bin/time`` (wall time, peak resident memory of the measured process):

* **ingest**: ``sources.ingest.ingest`` with the engine's ``map_files`` (the
  police.uk monthly files validated on the workers);
* **pipeline**: units (grid 250 m), **event sums** (one task per partition of the store's
  events on the workers, added in a fixed tree), context features, feature matrices at
  ``--cutoffs`` month ends, an XGBoost fit at the last cutoff (12 training origins; local:
  the engine's threads for a fit, ``workers`` less the cores busy as it starts) and the
  ranking (prediction) at it.

Every step reports its seconds, its speed-up over the local engine with one worker
measured in the same run, and the CPUs busy during it (from ``/proc/stat``, the whole
machine: other jobs count too, so ``machine.load_1m`` is printed before each size).
``same_as_serial`` checks that every parallel ingest wrote the same events and rejects as
the serial one, and that every run's forecasts sum to the same total.

Prints one JSON object and, on stderr, a speed-up table per size::

    {"machine": {...}, "sizes": {"london": {"events": ..., "units": ..., "generate_s": ...,
      "runs": [{"engine": "local", "workers": 1, "ingest": {...}, "pipeline": {...}}, ...],
      "speedup": {"local x2": {"ingest": 1.7, "event_sums": 1.9, ...}}}}}

``--background N`` measures every run twice: on an idle machine, then with N cores kept busy
by plain CPU loops (one ``python -c "while True: pass"`` process per core, started before the
runs and stopped after them), as on a shared analysis server or a laptop in use; speed-ups
are against local x1 under the same load (``"speedup"`` and ``"busy N"`` in the output).

``--repeat N`` measures every run N times, the worker counts interleaved (1, 2, 1, 2...); the
tables show each step's median and range and the speed-ups are of medians: on a shared VM one
run of a step varies by 10% or more, as much as the differences ``--background`` looks for.
``machine.parallel_ceiling`` is what the machine gives the largest worker count over one
process on perfectly parallel CPU work, measured first: the most any step could reach.

``--assume-idle`` sizes the local engine as if no other work were running (every worker used
whatever the load): on a machine others keep busy it measures what the pool itself costs and
gives, which the default sizing would not use there.

``--one-file`` ingests the same crimes as one street-level CSV of every month (a force's
multi-year export, written once beside the data as ``one-file/``), which the workers check
in pieces (``[ingest] piece_mb``); ``--ingest-only`` skips the pipeline, ``--pipeline-only``
the ingest (every run then reads the store a local x1 ingest wrote before).

Run: ``.venv/bin/python benchmarks/scale.py --sizes london --workers 1,2 --processes``.
``--processes`` gives the Dask engine a LocalCluster of process workers (without it: thread
workers in the measured process); the local engine's workers are always processes.
``--scheduler`` runs the Dask engine on a real cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = {  # name: (boroughs, years)
    "borough": (1, 3),
    "small": (8, 2),  # 335,000 events (summed in process: under 600,000), 72 MB of monthly files (pooled)
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


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from ``/proc/stat``."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class _Steps:
    """Seconds and busy CPUs of named steps: ``with steps("name"): ...``."""

    def __init__(self):
        self.out: dict[str, dict] = {}

    @contextlib.contextmanager
    def __call__(self, name):
        t, cpu = time.perf_counter(), _cpu_ticks()
        yield
        wall = time.perf_counter() - t
        busy, total = (a - b for a, b in zip(_cpu_ticks(), cpu, strict=True))
        self.out[name] = {"s": round(wall, 2), "busy_cpus": round((os.cpu_count() or 1) * busy / max(total, 1), 2)}


def _prepare(root: Path, name: str, seed: int) -> dict:
    boroughs, years = SIZES[name]
    data = root / name / "data"
    info: dict = {"boroughs": boroughs, "years": years}
    if not (data / "catalogue.toml").is_file():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sources.demo.scale", str(data), "--boroughs", str(boroughs),
                        "--years", str(years), "--seed", str(seed)], check=True, capture_output=True)
        info["generate_s"] = round(time.perf_counter() - t0, 1)
    return info


def _one_file(data: Path) -> Path:
    """A copy of the data folder ``data`` whose police.uk street-level crime is one CSV of every month
    (a force's multi-year export), beside it in ``one-file/``; the other inputs are linked, not copied."""
    one = data.parent / "one-file"
    if (one / "catalogue.toml").is_file():
        return one
    (one / "crime").mkdir(parents=True, exist_ok=True)
    for item in data.iterdir():
        if item.name not in ("crime", "catalogue.toml") and not (one / item.name).exists():
            (one / item.name).symlink_to(item.resolve())
    (one / "stop-search").mkdir(exist_ok=True)
    with open(one / "crime" / "all-street.csv", "w", encoding="utf-8") as out:
        for i, f in enumerate(sorted(data.glob("crime/*/*-street.csv"))):
            with open(f, encoding="utf-8") as fh:
                header = fh.readline()
                if i == 0:
                    out.write(header)
                out.write(fh.read())
    for f in sorted(data.glob("crime/*/*-stop-and-search.csv")):
        (one / "stop-search" / f.name).symlink_to(f.resolve())
    cat = (data / "catalogue.toml").read_text()
    cat = cat.replace('kind = "policeuk_street"\npath = "crime"\nformat = "folder"',
                      'kind = "policeuk_street"\npath = "crime/all-street.csv"\nformat = "csv"')
    cat = cat.replace('kind = "policeuk_stop_search"\npath = "crime"', 'kind = "policeuk_stop_search"\npath = "stop-search"')
    (one / "catalogue.toml").write_text(cat)
    return one


def _engine(args):
    from service.engine import Engine

    free = {"load": lambda: 0.0} if args.assume_idle and args.engine == "local" else {}
    return Engine(args.engine, args.scheduler, npartitions=args.partitions, n_workers=args.workers,
                  processes=args.processes, **free)


@contextlib.contextmanager
def _busy_cores(n: int):
    """``n`` plain CPU loops (one process each) running while the block runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(1.0 if n else 0.0)  # the loops are running before the first measured step
        yield
    finally:
        for proc in loops:
            proc.terminate()
        for proc in loops:
            proc.wait()


def _spin(_: int) -> float:
    """A fixed piece of CPU work (sorting and a Python loop), for :func:`_ceiling`."""
    import numpy as np

    a = np.random.default_rng(0).random(2_000_000)
    return float(sum(np.sort(a)[1000] + sum(range(200_000)) for _ in range(6)))


def _ceiling(workers: int) -> dict:
    """What the machine itself gives ``workers`` processes over one on perfectly parallel work
    (4 x ``workers`` equal pieces, median of 3 tries, before any run): the most any step could reach
    here (a VM's cores may share a physical core)."""
    from concurrent.futures import ProcessPoolExecutor

    if workers < 2:
        return {}
    times: dict[int, list[float]] = {1: [], workers: []}
    for _ in range(3):
        for n in (1, workers):
            t0 = time.perf_counter()
            with ProcessPoolExecutor(n) as pool:
                list(pool.map(_spin, range(4 * workers)))
            times[n].append(time.perf_counter() - t0)
    return {"workers": workers, "speedup": round(statistics.median(times[1]) / statistics.median(times[workers]), 2)}


def _store_digest(store_dir: Path) -> str:
    """A digest of the events and rejects a store holds (rows in store order, geometry as WKB)."""
    import hashlib

    import pandas as pd

    from sources.store import Store

    store = Store(store_dir)
    h = hashlib.sha256()
    for name in ("events", "rejects"):
        if not store.has(name):
            continue
        table = pd.DataFrame(store.table(name))
        if "geometry" in table:
            table["geometry"] = table["geometry"].to_wkb() if hasattr(table["geometry"], "to_wkb") else table["geometry"]
        h.update(pd.util.hash_pandas_object(table.astype("string"), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def _run_ingest(args) -> None:
    """Child process: ingest ``--data`` into ``--store`` on one engine; prints JSON."""
    import shutil

    from sources.ingest import ingest

    shutil.rmtree(args.store, ignore_errors=True)
    steps = _Steps()
    with _engine(args) as eng, steps("ingest"):
        report = ingest(args.data, args.store, map_files=eng.map_files)
    print(json.dumps({"engine": repr(eng), "pool_processes": getattr(eng._workers, "used", None),
                      "pool_items_here": getattr(eng._workers, "here", None),
                      "totals": report["totals"], "digest": _store_digest(Path(args.store)), "steps": steps.out}))


def _run_engine(args) -> None:
    """Child process: one engine on one store; prints step timings as JSON."""
    import pandas as pd

    from features.build import FeatureBuilder
    from features.units import build_units
    from models.backtest import fit_at, forecast_matrix
    from models.boosting import PoissonBoost
    from service.settings import get_settings
    from sources.store import Store

    settings = get_settings()
    store = Store(args.store)
    target = settings.model.target_groups
    steps = _Steps()
    with _engine(args) as eng:  # entered first: a local pool's forkserver starts while the units are built
        with steps("units"):
            units = build_units(store, args.units)
        with steps("event_sums"):
            sums = eng.event_sums(store, units, target)
        with steps("context"):
            fb = FeatureBuilder(store, units, target_groups=target, event_sums=sums)
            months = fb.months
        cutoffs = [f"{m + pd.DateOffset(months=1):%Y-%m}" for m in months[-args.cutoffs:]]
        with steps("matrices"):
            for c in cutoffs:
                fb.matrix(c)
        estimator = eng.estimator(PoissonBoost())  # a local fit's threads are decided here, from the load now
        with steps("train"):
            model = fit_at(fb, estimator, cutoffs[-1], train_origins=12, min_train_history=6)
        with steps("rank"):
            scores = model.predict(forecast_matrix(fb, cutoffs[-1]))
    print(json.dumps({"engine": repr(eng), "pool_processes": getattr(eng._workers, "used", None),
                      "pool_items_here": getattr(eng._workers, "here", None),
                      "fit_threads": {"most": estimator.get_params().get("n_jobs"),
                                      "used": getattr(model, "n_threads_", None)},
                      "units": len(units), "events": fb.assignment_report()["read"], "cutoffs": cutoffs,
                      "pieces": sums.partitions, "cube_sum": float(sums.cube.counts.sum()),
                      "kernel_sum": float(sums.kernel.near.sum()), "score_sum": float(scores.sum()),
                      "steps": steps.out}))


def _child(args, mode: str, engine: str, workers: int, store: Path, data: Path) -> tuple[dict, float, float]:
    cmd = [sys.executable, __file__, mode, engine, "--store", str(store), "--data", str(data),
           "--units", args.units, "--cutoffs", str(args.cutoffs), "--workers", str(workers)]
    if args.partitions:
        cmd += ["--partitions", str(args.partitions)]
    if args.processes:
        cmd += ["--processes"]
    if args.scheduler and engine == "dask":
        cmd += ["--scheduler", args.scheduler]
    if args.assume_idle:
        cmd += ["--assume-idle"]
    return _timed(cmd)


def _key(run: dict) -> str:
    return f"{run['engine']} x{run['workers']}" + (f" busy {run['background']}" if run.get("background") else "")


def _speedups(runs: list[dict]) -> dict:
    """Each run's speed-up per step over local x1 under the same background load."""
    out = {}
    for background in dict.fromkeys(r.get("background", 0) for r in runs):
        out.update(_speedups_of([r for r in runs if r.get("background", 0) == background]))
    return out


def _step_seconds(run: dict) -> dict[str, float]:
    """{step: seconds} of one run: ``ingest``, each pipeline step and ``pipeline_wall``."""
    out = {}
    if "ingest" in run:
        out["ingest"] = run["ingest"]["steps"]["ingest"]["s"]
    if "pipeline" in run:
        out.update({step: v["s"] for step, v in run["pipeline"]["steps"].items()})
        out["pipeline_wall"] = run["pipeline"]["wall_s"]
    return out


def _medians(runs: list[dict]) -> dict[str, dict[str, float]]:
    """{run key: {step: median seconds over the repeats}}."""
    by_key: dict[str, list[dict]] = {}
    for r in runs:
        by_key.setdefault(_key(r), []).append(_step_seconds(r))
    return {key: {step: statistics.median(s[step] for s in seconds) for step in seconds[0]}
            for key, seconds in by_key.items()}


def _speedups_of(runs: list[dict]) -> dict:
    """Speed-up of each run key's median over local x1's median, per step (one repeat: its one run)."""
    medians = _medians(runs)
    base = next((medians[_key(r)] for r in runs if r["engine"] == "local" and r["workers"] == 1), None)
    if base is None:
        return {}
    return {key: {step: round(base[step] / max(s, 1e-9), 2) for step, s in steps.items()}
            for key, steps in medians.items()}


def _table(name: str, runs: list[dict], speedup: dict) -> str:
    steps = [s for s in _step_seconds(runs[0]) if s != "pipeline_wall"]
    repeats = max(r.get("repeat", 0) for r in runs) + 1
    head = f"median seconds of {repeats} repeats (min-max)" if repeats > 1 else "seconds"
    lines = [f"## {name}: {head} (speed-up over local x1 under the same load; busy CPUs)",
             "| run | " + " | ".join(steps) + " | pipeline wall | same as serial |",
             "|---" * (len(steps) + 3) + "|"]
    medians = _medians(runs)
    for key, med in medians.items():
        mine = [r for r in runs if _key(r) == key]
        cells = []
        for step in steps:
            seconds = [_step_seconds(r)[step] for r in mine]
            busy = statistics.median(
                (r["ingest"]["steps"]["ingest"] if step == "ingest" else r["pipeline"]["steps"][step])["busy_cpus"]
                for r in mine)
            spread = f" {min(seconds):.1f}-{max(seconds):.1f}" if repeats > 1 else ""
            cells.append(f"{med[step]:.1f}{spread} ({speedup.get(key, {}).get(step, float('nan')):.2f}x; {busy:.1f})")
        wall = f"{med['pipeline_wall']:.1f}" if "pipeline_wall" in med else "-"
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {wall} | {all(r['same_as_serial'] for r in mine)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="svrisk scaling benchmark (JSON on stdout, tables on stderr)")
    ap.add_argument("--sizes", default="borough,london")
    ap.add_argument("--root", default="/tmp/svrisk-scale")
    ap.add_argument("--engines", default="local,dask")
    ap.add_argument("--units", default="grid250")
    ap.add_argument("--cutoffs", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, e.g. 1,2,4")
    ap.add_argument("--processes", action="store_true", help="Dask LocalCluster of process workers (else threads)")
    ap.add_argument("--partitions", type=int, default=None)
    ap.add_argument("--scheduler", default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--background", type=int, default=0,
                    help="also measure every run with this many cores kept busy by CPU loops")
    ap.add_argument("--assume-idle", action="store_true",
                    help="size the local engine's pools and fits as if no other work were running (every worker "
                         "used): measures the pool itself on a machine other work keeps busy")
    ap.add_argument("--one-file", action="store_true",
                    help="street-level crime as one CSV of every month (checked in pieces on the workers)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure every run this many times, interleaved; tables and speed-ups use medians")
    ap.add_argument("--ingest-only", action="store_true", help="measure ingest only, not the pipeline")
    ap.add_argument("--pipeline-only", action="store_true",
                    help="measure the pipeline only, every run on the store a local x1 ingest wrote before")
    ap.add_argument("--run-engine", dest="engine", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--run-ingest", dest="ingest_engine", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--store", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.engine or args.ingest_engine:
        args.workers = int(args.workers)
        if args.ingest_engine:
            args.engine = args.ingest_engine
            _run_ingest(args)
        else:
            _run_engine(args)
        return
    try:
        workers = [int(w) for w in args.workers.split(",") if w]
    except ValueError:
        ap.error(f"--workers: expected counts such as 1,2,4, got {args.workers!r}")
    if not workers or min(workers) < 1:
        ap.error(f"--workers: counts must be >= 1, got {args.workers!r}")
    if args.repeat < 1:
        ap.error(f"--repeat: a number of runs >= 1, got {args.repeat}")
    if args.background < 0:
        ap.error(f"--background: a number of cores >= 0, got {args.background}")
    unknown = [s for s in args.sizes.split(",") if s and s not in SIZES]
    if unknown:
        ap.error(f"--sizes: unknown {unknown}; known sizes are {list(SIZES)}")
    engines = [e for e in args.engines.split(",") if e]
    # the baseline of every speed-up, measured in the same run: the local engine with one worker
    engines, workers = ["local", *[e for e in engines if e != "local"]], sorted({1, *workers})
    root = Path(args.root)
    from service.cores import usable_cores

    out = {"machine": {"cpus": os.cpu_count(), "usable_cores": usable_cores(),
                       "parallel_ceiling": _ceiling(max(workers))}, "units": args.units,
           "workers": workers, "background": args.background, "assume_idle": args.assume_idle,
           "dask_workers": "processes" if args.processes else "threads", "sizes": {}}
    for name in [s for s in args.sizes.split(",") if s]:
        res = _prepare(root, name, args.seed)
        res["load_1m_before"] = round(os.getloadavg()[0], 2)
        data, runs = root / name / "data", []
        if args.one_file:
            data = _one_file(data)
            res["layout"] = "one street-level CSV of every month"
        for background in dict.fromkeys([0, args.background]):
            with _busy_cores(background):
                # repeats interleaved (1, 2, 1, 2...): a drift of the machine's speed hits every count alike
                for repeat, engine, w in ((r, e, w) for r in range(args.repeat) for e in engines for w in workers):
                    store = root / name / f"store-{'one-' if args.one_file else ''}{engine}-{w}"
                    runs.append({"engine": engine, "workers": w, "background": background, "repeat": repeat,
                                 "load_1m_before": round(os.getloadavg()[0], 2)})
                    if args.pipeline_only:
                        store = root / name / f"store-{'one-' if args.one_file else ''}local-1"
                        if not (store / "ingest_report.json").is_file():
                            ap.error(f"--pipeline-only: no store at {store}; run once without it")
                    else:
                        ing, ing_wall, ing_peak = _child(args, "--run-ingest", engine, w, store, data)
                        runs[-1]["ingest"] = {"wall_s": round(ing_wall, 1), "peak_rss_mb": round(ing_peak), **ing}
                    if not args.ingest_only:
                        pipe, wall, peak = _child(args, "--run-engine", engine, w, store, data)
                        res.update(events=pipe["events"], units=pipe["units"])
                        runs[-1]["pipeline"] = {"wall_s": round(wall, 1), "peak_rss_mb": round(peak), **pipe}
                    print(json.dumps({name: runs[-1]}), file=sys.stderr)  # progress
        first = runs[0]
        for r in runs:
            r["same_as_serial"] = (("ingest" not in r or (r["ingest"]["digest"] == first["ingest"]["digest"]
                                                          and r["ingest"]["totals"] == first["ingest"]["totals"]))
                                   and ("pipeline" not in r
                                        or (r["pipeline"]["cube_sum"] == first["pipeline"]["cube_sum"]
                                            and abs(r["pipeline"]["score_sum"] - first["pipeline"]["score_sum"])
                                            <= 1e-3 * abs(first["pipeline"]["score_sum"]))))
        res["runs"] = runs
        res["speedup"] = _speedups(runs)
        out["sizes"][name] = res
        print(_table(name, runs, res["speedup"]), file=sys.stderr)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
