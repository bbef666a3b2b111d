"""Benchmark: operational areas on the real Barnet grid250 and lsoa2011, top 10% of units.

Risk per unit is the count of target events (``settings.model.target_groups``) in the
12 months before ``--cutoff`` (default 2018-07, the end of the police.uk series). Each
variant runs in a fresh process (so a hung one can be killed) and times only the call
to :func:`models.hotspots.regions.operational_areas`:

* ``default``: SKATER rule (each connected group one area), the unit set's queen graph,
  wards and hubs described;
* ``default_no_graph``: the same with contiguity built from the selected polygons
  (queen, snapped within 1 m);
* ``default_max_1km2``: the default with ``max_area_km2=1.0`` (SKATER splits);
* ``maxp_capped``: max-p with the default caps (10 construction, 2 annealing
  iterations) and the fix of pysal/spopt#506;
* ``maxp_spopt_iterations``: max-p with spopt's own iterations (99, 10) and the fix;
* ``old``: the earlier implementation's path - max-p with spopt's iterations, exact
  polygon queen contiguity, spopt 0.7.0 as released (no loop fix) - killed after
  ``--timeout`` seconds and reported as "timed out".

Prints one JSON object: per edition, per variant, seconds, number of areas, sizes of the
largest areas and share of risk covered, and the ratio old / default (a lower bound
``>= timeout / default`` when the old path timed out).

Run: ``SVRISK_REAL_DATA=../shared/data .venv/bin/python benchmarks/operational_areas.py
[--store /tmp/regions_store] [--timeout 60]`` (about 3 minutes with the two timeouts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "default": {"graph": True, "describe": True},
    "default_no_graph": {"graph": False, "describe": True},
    "default_max_1km2": {"graph": True, "describe": True, "max_area_km2": 1.0},
    "maxp_capped": {"graph": True, "method": "maxp"},
    "maxp_spopt_iterations": {
        "graph": True,
        "method": "maxp",
        "max_iterations_construction": 99,
        "max_iterations_sa": 10,
    },
    "old": {
        "graph": False,
        "method": "maxp",
        "snap_m": 0.0,
        "unguarded": True,
        "max_iterations_construction": 99,
        "max_iterations_sa": 10,
    },
}

CHILD = r"""
import contextlib, json, sys, time, warnings
warnings.simplefilter("ignore")
import geopandas as gpd
import numpy as np
import pandas as pd
from sources.store import Store
from features.units import build_units
from service.settings import get_settings
from models.hotspots import regions

store_dir, edition, cutoff, top_share, spec = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), json.loads(sys.argv[5])
store = Store(store_dir)
settings = get_settings()
units = build_units(store, edition)
events = store.table("events")
end = pd.Timestamp(cutoff + "-01")
keep = events["group"].isin(settings.model.target_groups) & (events["month"] >= end - pd.DateOffset(months=12)) & (events["month"] < end)
at = units.assign(events[keep].geometry)
y = np.bincount(at[at >= 0], minlength=len(units)).astype(float)
frame = units.frame.set_index("unit_id")
kw = {k: v for k, v in spec.items() if k not in ("graph", "describe", "unguarded")}
if spec.get("graph"):
    kw["graph"] = units.graph("queen")
if spec.get("describe"):
    wards = store.units("ward2018")
    st = store.table("stations")
    foot = store.table("station_footfall").sort_values("year").groupby("station_key")["entries_exits"].last()
    hubs = gpd.GeoDataFrame({"kind": "station", "name": st["name"].astype(str),
                             "footfall": st["station_key"].map(foot).to_numpy(dtype=float)},
                            geometry=st.geometry.values, crs=st.crs)
    kw.update(wards=wards[["code", "name", "geometry"]], hubs=hubs)
if spec.get("unguarded"):
    regions._maxp_guarded = contextlib.nullcontext
t0 = time.perf_counter()
areas = regions.operational_areas(frame, y, top_share=top_share, seed=0, **kw)
seconds = time.perf_counter() - t0
print(json.dumps({
    "seconds": round(seconds, 3),
    "units": len(units),
    "selected": int(areas["n_units"].sum()),
    "areas": len(areas),
    "largest_areas_units": areas["n_units"].sort_values(ascending=False).head(5).tolist(),
    "largest_area_km2": round(float(areas["area_km2"].max()), 3),
    "singleton_areas": int((areas["n_units"] == 1).sum()),
    "risk_share_covered": round(float(areas["risk_share"].sum()), 4),
    "areas_with_hubs": int((areas["hubs"] != "").sum()),
    "top_area": {c: areas.iloc[0][c] for c in ("n_units", "wards", "hubs")},
}, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
"""


def run_variant(store_dir, edition, cutoff, top_share, spec, timeout):
    cmd = [
        sys.executable,
        "-c",
        CHILD,
        str(store_dir),
        edition,
        cutoff,
        str(top_share),
        json.dumps(spec),
    ]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {
            "seconds": "timed out",
            "timeout_s": timeout,
            "wall_s": round(time.perf_counter() - start, 1),
        }
    if done.returncode != 0:
        return {
            "error": done.stderr.strip().splitlines()[-1]
            if done.stderr.strip()
            else done.returncode
        }
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SVRISK_REAL_DATA", "../shared/data"))
    parser.add_argument("--store", default=None, help="ingested store folder (made if missing)")
    parser.add_argument("--units", nargs="+", default=["grid250", "lsoa2011"])
    parser.add_argument("--cutoff", default="2018-07")
    parser.add_argument("--top-share", type=float, default=0.1)
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before a variant is killed"
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)

    data = Path(args.data)
    store_dir = (
        Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="svrisk-oa-")) / "store"
    )
    if not (store_dir / "ingest_report.json").is_file():
        if not data.is_dir():
            print(f"no real data at {data} (set SVRISK_REAL_DATA)", file=sys.stderr)
            return 2
        from sources.ingest import ingest

        ingest(data, store_dir)

    out = {
        "cutoff": args.cutoff,
        "top_share": args.top_share,
        "timeout_s": args.timeout,
        "editions": {},
    }
    for edition in args.units:
        res = {}
        for name in args.variants:
            # the old path gets the timeout; the others get a generous limit so a hang still ends
            limit = args.timeout if name == "old" else max(args.timeout, 600.0)
            res[name] = run_variant(
                store_dir, edition, args.cutoff, args.top_share, VARIANTS[name], limit
            )
            print(f"{edition} {name}: {res[name].get('seconds', res[name])}", file=sys.stderr)
        new = res.get("default", {}).get("seconds")
        old = res.get("old", {}).get("seconds")
        if isinstance(new, float) and new > 0:
            if isinstance(old, float):
                res["old_over_default"] = round(old / new, 1)
            elif old == "timed out":
                res["old_over_default"] = f">= {args.timeout / new:.0f}"
        out["editions"][edition] = res
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
