"""How often `svrisk evaluate` gets a planted intervention right, over demo seeds.

For each seed, a small demo borough (the tests' process, :mod:`tests/_support/intervention_demo`
settings) is written with a planted intervention (rate ratio 0.6 in the area from month 20,
three quarters of the removed events moved within 300 m), ingested and evaluated three ways:

* ``effect``: on LSOAs (2011), the area as unit ids; does the 95% interval hold 0.6, and exclude 1?
* ``displacement``: on 200 m grid cells, the area as a polygon; is the buffer's interval above 1?
* ``null``: the same area over months 0..19 only (nothing planted there); does the interval hold 1?

Figures are shares of seeds, printed as JSON beside the nominal 95% coverage (a ratio
of 1.0 is calibrated). Then, on the first seed's borough *without* the intervention, every
one of the 30 busiest LSOAs is evaluated as if treated from three start months: the share
of intervals that hold 1 with the Driscoll-Kraay standard errors used, against the
textbook Poisson standard error ``sqrt(1/A_b + 1/A_a + 1/C_b + 1/C_a)`` measured on the
same cases (the baseline). Run: ``.venv/bin/python -P benchmarks/interventions.py [seeds]``.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import shapely

from features.build import FeatureBuilder
from features.demo.borough import CrimeTypeRate, DemoIntervention, DemoProcess, generate_demo
from features.sources.ingest import ingest
from features.sources.store import Store
from features.units import build_units
from models.interventions import EvaluationRefused, evaluate_intervention, units_in_polygon

RATE_RATIO = 0.6
PROCESS = DemoProcess(other_types=(CrimeTypeRate("Burglary", 40, {"resid": 0.4}),),
                      stop_search=CrimeTypeRate("stop and search", 20, {"dep": 0.5}),
                      intervention=DemoIntervention(start_index=20, reduction=1 - RATE_RATIO,
                                                    displaced_share=0.75, buffer_m=300.0))


def one_seed(seed: int, root: Path) -> dict:
    data = generate_demo(root / "data", seed=seed, months=36, n_lsoa=60, process=PROCESS)
    truth = json.loads((data / "truth.json").read_text())
    iv, labels = truth["intervention"], truth["month_labels"]
    ingest(data, root / "store", progress=None)
    store = Store(root / "store")
    lsoa = build_units(store, "lsoa2011")
    fb = FeatureBuilder(store, lsoa)
    t0 = time.perf_counter()
    planted = evaluate_intervention(fb.panel(), lsoa, iv["area_lsoa11"], iv["start_month"], complete_months=fb.complete_months,
                                    pre_months=20, buffer_m=300.0, n_placebos=39).estimates
    null = evaluate_intervention(fb.panel(), lsoa, iv["area_lsoa11"], labels[12], end=labels[19],
                                 complete_months=fb.complete_months, pre_months=12, buffer_m=300.0, n_placebos=39).estimates
    seconds = time.perf_counter() - t0
    grid = build_units(store, "grid200")
    fbg = FeatureBuilder(store, grid)
    geoms = lsoa.frame[lsoa.frame["unit_id"].isin(iv["area_lsoa11"])].geometry.to_numpy()
    cells = units_in_polygon(grid, shapely.union_all(geoms))
    disp = evaluate_intervention(fbg.panel(), grid, cells, iv["start_month"], complete_months=fbg.complete_months,
                                 pre_months=20, buffer_m=300.0, n_placebos=0).estimates
    d, n, b = planted["did"], null["did"], disp["displacement"]["buffer_did"]
    return {
        "seed": seed, "rate_ratio": round(d["rate_ratio"], 3), "interval": [round(d["lo"], 3), round(d["hi"], 3)],
        "effect_covered": d["lo"] <= RATE_RATIO <= d["hi"], "effect_detected": d["hi"] < 1,
        "scm_effect_pct": round(planted["synthetic_control"]["effect_pct"], 1),
        "scm_p": planted["synthetic_control"]["p_value"],
        "buffer_rate_ratio": round(b["rate_ratio"], 3), "displacement_detected": b["lo"] > 1,
        "null_covered": n["lo"] <= 1 <= n["hi"], "null_scm_p": null["synthetic_control"]["p_value"],
        "evaluate_seconds": round(seconds / 2, 2),
    }


def placebo_coverage(seed: int, root: Path) -> dict:
    data = generate_demo(root / "data", seed=seed, months=36, n_lsoa=60, process=replace(PROCESS, intervention=None))
    ingest(data, root / "store", progress=None)
    store = Store(root / "store")
    units = build_units(store, "lsoa2011")
    fb = FeatureBuilder(store, units)
    panel = fb.panel()
    busiest = panel.sum(axis=1).sort_values(ascending=False).index[:30]
    dk, textbook, refused = [], [], 0
    for unit in busiest:
        for start in ("2017-01", "2017-07", "2018-01"):
            try:
                d = evaluate_intervention(panel, units, [str(unit)], start, complete_months=fb.complete_months,
                                          pre_months=12, buffer_m=300.0, n_placebos=0).estimates["did"]
            except EvaluationRefused:  # too few events to say anything: refused, not counted
                refused += 1
                continue
            se = math.sqrt(sum(1 / d[k] for k in ("treated_before", "treated_after", "control_before",
                                                   "control_after")))
            dk.append(d["lo"] <= 1 <= d["hi"])
            textbook.append(abs(d["log_rate_ratio"]) <= 1.959964 * se)
    cover, base = sum(dk) / len(dk), sum(textbook) / len(textbook)
    return {"placebo_cases": len(dk), "placebo_refused": refused, "placebo_coverage": round(cover, 3),
            "placebo_coverage_textbook_poisson": round(base, 3), "coverage_ratio_vs_textbook": round(cover / base, 3)}


def main(seeds: list[int]) -> None:
    rows = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="svrisk-iv-") as tmp:
            rows.append(one_seed(seed, Path(tmp)))
        print(json.dumps(rows[-1]), flush=True)
    n = len(rows)

    def share(key):
        return round(sum(r[key] for r in rows) / n, 3)

    print(json.dumps({
        "seeds": n, "nominal_coverage": 0.95,
        "effect_coverage": share("effect_covered"), "effect_coverage_ratio": round(share("effect_covered") / 0.95, 3),
        "null_coverage": share("null_covered"), "null_coverage_ratio": round(share("null_covered") / 0.95, 3),
        "effect_power": share("effect_detected"), "displacement_power": share("displacement_detected"),
        "scm_p_below_0.1": round(sum(r["scm_p"] <= 0.1 for r in rows) / n, 3),
        "null_scm_p_below_0.1": round(sum(r["null_scm_p"] <= 0.1 for r in rows) / n, 3),
    }, indent=1), flush=True)
    with tempfile.TemporaryDirectory(prefix="svrisk-iv-") as tmp:
        print(json.dumps(placebo_coverage(seeds[0], Path(tmp)), indent=1))


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1].split(",")] if len(sys.argv) > 1 else list(range(1, 9)))
