"""A small demo borough with a planted intervention, written and ingested once per session.

The intervention (``truth.json`` ``intervention``): from month index 20 (2017-09) the serious
violence in the LSOAs within the radius of the first persistent hot spot falls by 40%
(a rate ratio of 0.6), and three quarters of the removed events move to street points
within 300 m of the area. Only serious violence and one light crime type are drawn, so
the 36 monthly files ingest in seconds.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from sources.demo.borough import CrimeTypeRate, DemoIntervention, DemoProcess, generate_demo
from sources.ingest import ingest

SEED = 1
MONTHS = 36
INTERVENTION = DemoIntervention(start_index=20, reduction=0.4, displaced_share=0.75, buffer_m=300.0)
PROCESS = DemoProcess(other_types=(CrimeTypeRate("Burglary", 40, {"resid": 0.4}),),
                      stop_search=CrimeTypeRate("stop and search", 20, {"dep": 0.5}),
                      intervention=INTERVENTION)


def planted_demo(root: Path, planted: bool = True) -> dict:
    """Write and ingest the planted borough under ``root``; return its folders and truth.

    ``planted=False`` writes the same borough without the intervention: the same events
    everywhere, the area's and the ring's included (the intervention's counterfactual).
    """
    process = PROCESS if planted else replace(PROCESS, intervention=None)
    data = generate_demo(Path(root) / "data", seed=SEED, months=MONTHS, n_lsoa=60, process=process)
    store = Path(root) / "store"
    ingest(data, store)
    truth = json.loads((data / "truth.json").read_text())
    return {"data": data, "store": store, "truth": truth.get("intervention"), "months": truth["month_labels"]}
