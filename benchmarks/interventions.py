"""How often `svrisk evaluate` gets a planted intervention right, over demo seeds.

For each seed, a small demo borough (the tests' process, :mod:`tests/_support/intervention_demo`
settings) is written with a planted intervention (rate ratio 0.6 in the area from month 20,
three quarters of the removed events moved within 300 m), ingested and evaluated three ways:

* ``effect``: on LSOAs (2011), the area as unit ids; does the 95% interval hold 0.6, and exclude 1?
* ``displacement``: on 200 m grid cells, the area as a polygon; is the buffer's interval above 1?
* ``null``: the same area over months 0..19 only (nothing planted there); does the interval hold 1?

and the displacement intervals against the truth: the net events prevented (removed less
displaced), the displaced events (LSOA buffer, 200 m cells) and the WDQ (true: minus the
displaced over the removed events).

Figures are shares of seeds, printed as JSON beside the nominal 95% coverage (a ratio
of 1.0 is calibrated). Then, on the first seed's borough *without* the intervention, every
one of the 30 busiest LSOAs is evaluated as if treated from three start months: the share
of intervals that hold 1 with the Driscoll-Kraay standard errors used, against the
textbook Poisson standard error ``sqrt(1/A_b + 1/A_a + 1/C_b + 1/C_a)`` measured on the
same cases (the baseline).

Then the verdict's calibration on real data (``--real DIR``, default ``../shared/data``
beside the repository; skipped with a message when absent): ``N_AREAS`` random Barnet
placebo areas (an LSOA and its 2-4 nearest, start 2017-07, 2017-10 or 2018-01, 18 months
before, 19 synthetic-control placebos each; modest counts to stay within a few minutes on
2 shared cores) where nothing was done:

* ``false_positive_rate``: share whose final verdict is "reduced" or "increased" (target
  <= 5%), beside the DiD alone and the previous page's reading (an effect when the DiD
  excluded 1 or the synthetic control's p was <= 0.1) on the same areas (the baselines);
* ``net_interval_coverage`` / ``displaced_interval_coverage``: share of the Wheeler &
  Ratcliffe intervals (net effect, buffer's extra events) holding 0;
* planted reductions of 20/30/40% (each post-period event of the area kept with
  probability 1 - effect): power of the verdict ("reduced") and of the DiD, coverage of
  the effect interval, and the power ``svrisk evaluate --plan`` predicts for the same
  areas and months from their pre-period alone (ratio to the simulated DiD power).

Run: ``.venv/bin/python -P benchmarks/interventions.py [seeds] [--real DIR] [--areas N]``.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from features.build import FeatureBuilder
from features.units import build_units
from models.interventions import (
    PLAN_EFFECTS,
    EvaluationRefused,
    evaluate_intervention,
    plan_intervention,
    units_in_polygon,
)
from sources.demo.borough import CrimeTypeRate, DemoIntervention, DemoProcess, generate_demo
from sources.ingest import ingest
from sources.store import Store

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
    start = iv["start_index"]
    true_displaced = sum(iv["displaced"][start:])
    true_net = sum(iv["removed"][start:]) - true_displaced
    t, tg = planted["displacement"]["test"], disp["displacement"]["test"]
    return {
        "verdict": planted["finding"]["verdict"], "null_verdict": null["finding"]["verdict"],
        "true_net": true_net, "net": round(t["net_effect"], 1), "net_interval": [round(v, 1) for v in t["net_effect_interval"]],
        "net_covered": bool(t["net_effect_interval"][0] <= true_net <= t["net_effect_interval"][1]),
        "true_wdq": round(-true_displaced / max(true_net + true_displaced, 1), 3),
        "wdq": planted["displacement"]["wdq"]["wdq"], "wdq_interval": planted["displacement"]["wdq"].get("interval"),
        "wdq_covered": bool(planted["displacement"]["wdq"].get("interval") is not None
                            and planted["displacement"]["wdq"]["interval"][0] <= -true_displaced / max(
                                true_net + true_displaced, 1) <= planted["displacement"]["wdq"]["interval"][1]),
        "true_displaced": true_displaced, "displaced_grid": round(tg["displaced"], 1),
        "displaced_grid_covered": bool(tg["displaced_interval"][0] <= true_displaced <= tg["displaced_interval"][1]),
        "displaced_lsoa_covered": bool(t["displaced_interval"][0] <= true_displaced <= t["displaced_interval"][1]),
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

    def share_of(key, value):
        return round(sum(r[key] == value for r in rows) / n, 3)

    print(json.dumps({
        "seeds": n, "nominal_coverage": 0.95,
        "effect_coverage": share("effect_covered"), "effect_coverage_ratio": round(share("effect_covered") / 0.95, 3),
        "null_coverage": share("null_covered"), "null_coverage_ratio": round(share("null_covered") / 0.95, 3),
        "effect_power": share("effect_detected"), "displacement_power": share("displacement_detected"),
        "scm_p_below_0.1": round(sum(r["scm_p"] <= 0.1 for r in rows) / n, 3),
        "null_scm_p_below_0.1": round(sum(r["null_scm_p"] <= 0.1 for r in rows) / n, 3),
        "verdict_reduced": share_of("verdict", "reduced"), "null_verdict_claims": round(
            sum(r["null_verdict"] in ("reduced", "increased") for r in rows) / n, 3),
        "net_interval_coverage": share("net_covered"), "displaced_interval_coverage_grid200": share("displaced_grid_covered"),
        "displaced_interval_coverage_lsoa": share("displaced_lsoa_covered"),
        "wdq_interval_coverage": share("wdq_covered"),
    }, indent=1), flush=True)
    with tempfile.TemporaryDirectory(prefix="svrisk-iv-") as tmp:
        print(json.dumps(placebo_coverage(seeds[0], Path(tmp)), indent=1))


N_AREAS = 150
STARTS = ("2017-07", "2017-10", "2018-01")


def _thin(panel: pd.DataFrame, ids, start: str, effect: float, rng) -> pd.DataFrame:
    """The panel with each event of the area from ``start`` kept with probability ``1 - effect``."""
    out = panel.copy()
    cols = [c for c in out.columns if c >= pd.Timestamp(f"{start}-01")]
    block = out.loc[ids, cols].to_numpy(dtype=np.int64)
    out.loc[ids, cols] = rng.binomial(block, 1.0 - effect).astype(float)
    return out


def barnet_calibration(data_dir: Path, n_areas: int = N_AREAS, seed: int = 0) -> dict:
    """The verdict, the displacement intervals and planning on random Barnet placebo areas (module docstring)."""
    from scipy.spatial import cKDTree

    with tempfile.TemporaryDirectory(prefix="svrisk-iv-real-") as tmp:
        ingest(data_dir, Path(tmp) / "store", progress=None)
        store = Store(Path(tmp) / "store")
        units = build_units(store, "lsoa2011")
        fb = FeatureBuilder(store, units)
        panel, complete = fb.panel(), fb.complete_months
    rng = np.random.default_rng(seed)
    tree = cKDTree(units.centroids)
    rows, refused = [], 0
    t0 = time.perf_counter()
    for i in range(n_areas):
        k = int(rng.integers(3, 6))
        _, near = tree.query(units.centroids[int(rng.integers(len(units)))], k=k)
        ids = [str(units.ids[j]) for j in np.atleast_1d(near)]
        start = STARTS[int(rng.integers(len(STARTS)))]
        kwargs = {"complete_months": complete, "pre_months": 18, "buffer_m": 400.0, "n_placebos": 19, "seed": i}
        try:
            null = evaluate_intervention(panel, units, ids, start, **kwargs).estimates
        except EvaluationRefused:  # too few events to say anything: refused before any verdict
            refused += 1
            continue
        d, t, scm = null["did"], null["displacement"]["test"], null["synthetic_control"]
        row = {"claim": null["finding"]["verdict"] in ("reduced", "increased"),
               "did_claim": d["hi"] < 1 or d["lo"] > 1,
               "old_claim": d["hi"] < 1 or d["lo"] > 1 or (scm is not None and scm["p_value"] <= 0.1),
               "inconclusive": null["finding"]["verdict"] == "inconclusive",
               "net0": t["net_effect_interval"][0] <= 0 <= t["net_effect_interval"][1],
               "displaced0": t["displaced_interval"][0] <= 0 <= t["displaced_interval"][1],
               "mde": null["minimum_detectable_effect"]["mde"]}
        plan = plan_intervention(panel, units, ids, len(null["months_after"]), complete_months=complete,
                                 pre_months=18, buffer_m=400.0, before=start)
        for effect in PLAN_EFFECTS:
            key = f"{100 * effect:.0f}%"
            est = evaluate_intervention(_thin(panel, ids, start, effect, rng), units, ids, start, **kwargs).estimates
            row[f"reduced_{key}"] = est["finding"]["verdict"] == "reduced"
            row[f"did_{key}"] = est["did"]["hi"] < 1
            row[f"covered_{key}"] = est["did"]["lo"] <= 1 - effect <= est["did"]["hi"]
            row[f"plan_{key}"] = plan["power"][key]
        rows.append(row)
    df = pd.DataFrame(rows)
    out = {"areas": len(df), "refused": refused, "seconds": round(time.perf_counter() - t0, 1),
           "false_positive_rate": round(df["claim"].mean(), 3),
           "false_positive_rate_did_alone": round(df["did_claim"].mean(), 3),
           "false_positive_rate_previous_page": round(df["old_claim"].mean(), 3),
           "fpr_ratio_vs_previous_page": round(df["claim"].mean() / max(df["old_claim"].mean(), 1e-9), 3),
           "inconclusive_share": round(df["inconclusive"].mean(), 3),
           "net_interval_coverage": round(df["net0"].mean(), 3),
           "displaced_interval_coverage": round(df["displaced0"].mean(), 3),
           "median_mde": round(df["mde"].median(), 3)}
    for effect in PLAN_EFFECTS:
        key = f"{100 * effect:.0f}%"
        sim, planned = df[f"did_{key}"].mean(), df[f"plan_{key}"].mean()
        out[f"power_{key}"] = {"verdict_reduced": round(df[f"reduced_{key}"].mean(), 3), "did": round(sim, 3),
                               "plan_predicted": round(planned, 3), "plan_to_simulated": round(planned / max(sim, 1e-9), 3),
                               "effect_interval_coverage": round(df[f"covered_{key}"].mean(), 3)}
    return out


def _arg(name: str, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


if __name__ == "__main__":
    args = [a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("--") and not sys.argv[i - 1].startswith("--")]
    if not (args and args[0] == "0"):
        main([int(s) for s in args[0].split(",")] if args else list(range(1, 9)))
    real = Path(_arg("--real", Path.cwd().resolve().parent / "shared" / "data"))
    if real.is_dir():
        print(json.dumps({"barnet": barnet_calibration(real, int(_arg("--areas", N_AREAS)))}, indent=1), flush=True)
    else:
        print(json.dumps({"barnet": f"skipped: no real data folder at {real} (give --real DIR)"}))
