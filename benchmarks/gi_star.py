"""Benchmark: our Gi* (models.hotspots.GetisOrdGStar) against esda.G_Local, 999 permutations.

Input: a 70 x 72 lattice (5,040 units) with queen contiguity and Poisson(3) counts cast
to float (esda's numba path fails on integers). Each implementation is timed

* fresh: ``python -c`` in a new process, wall time including imports, graph build
  and the fit (what a newcomer waits for);
* warm: the second call in this process (after imports and any JIT compilation).

Prints one JSON object with the times, the ratios esda/ours, the largest |z difference|
and the share of units where both call p_sim <= 0.05 alike. Target: fresh ratio >= 10,
warm ratio >= 1.

Run: ``.venv/bin/python benchmarks/gi_star.py`` (about 2 minutes, most of it esda's
numba compilation, done twice).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings

ROWS, COLS, PERMUTATIONS, SEED = 70, 72, 999, 12345

SETUP = f"""
import numpy as np
from libpysal.graph import Graph
from libpysal.weights import lat2W
graph = Graph.from_W(lat2W({ROWS}, {COLS}, rook=False))
y = np.random.default_rng({SEED}).poisson(3.0, {ROWS * COLS}).astype(float)
"""

OURS = f"""
from models.hotspots import GetisOrdGStar
res = GetisOrdGStar(permutations={PERMUTATIONS}, seed={SEED}).fit(y, graph)
z, p = res.Zs_, res.p_sim_
"""

ESDA = f"""
import warnings
warnings.simplefilter("ignore")
from esda import G_Local
res = G_Local(y, graph, star=True, permutations={PERMUTATIONS}, seed={SEED})
z, p = res.Zs, res.p_sim
"""


def fresh(code):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", SETUP + code], check=True)
    return time.perf_counter() - start


def warm(code, namespace):
    exec(code, namespace)  # first call: imports, JIT compilation
    start = time.perf_counter()
    exec(code, namespace)
    return time.perf_counter() - start


def main():
    import numpy as np

    out = {
        "units": ROWS * COLS,
        "permutations": PERMUTATIONS,
        "seed": SEED,
        "weights": "queen lattice",
    }
    out["ours_fresh_s"] = fresh(OURS)
    out["esda_fresh_s"] = fresh(ESDA)
    ns_ours, ns_esda = {}, {}
    exec(SETUP, ns_ours)
    exec(SETUP, ns_esda)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["ours_warm_s"] = warm(OURS, ns_ours)
        out["esda_warm_s"] = warm(ESDA, ns_esda)
    out["ratio_fresh_esda_over_ours"] = out["esda_fresh_s"] / out["ours_fresh_s"]
    out["ratio_warm_esda_over_ours"] = out["esda_warm_s"] / out["ours_warm_s"]
    out["max_abs_z_diff"] = float(np.max(np.abs(ns_ours["z"] - ns_esda["z"])))
    out["p_sim_agree_at_0.05"] = float(np.mean((ns_ours["p"] <= 0.05) == (ns_esda["p"] <= 0.05)))
    out["max_abs_p_sim_diff"] = float(np.max(np.abs(ns_ours["p"] - ns_esda["p"])))
    out["targets_met"] = {
        "fresh_ratio_ge_10": out["ratio_fresh_esda_over_ours"] >= 10,
        "warm_ratio_ge_1": out["ratio_warm_esda_over_ours"] >= 1,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
