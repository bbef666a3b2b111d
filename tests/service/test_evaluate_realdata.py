"""`svrisk evaluate` of a run's operational area on the real Barnet data, checked against counts by hand.

The run folder holds the Clear Hold Build areas a run makes (``clear_hold_build`` over a
ranking of LSOAs by their last 12 months of serious violence before 2018-06); the
evaluation of its first area from 2017-07 must agree with events counted straight from the
store: points in the area's polygons month by month, the comparison's and the buffer's
totals, and the rate ratio and WDQ worked out from those totals.
"""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from features.build import TARGET_GROUPS, FeatureBuilder
from features.units import build_units
from models.ranking import clear_hold_build
from reports.pdf import find_browser
from service.pipeline import evaluate_step
from service.settings import get_settings
from sources.store import Store

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
START, PRE = "2017-07", 18


@pytest.fixture(scope="module")
def evaluated(real_store, tmp_path_factory):
    store = Store(real_store)
    units = build_units(store, "lsoa2011")
    X = FeatureBuilder(store, units).matrix("2018-06")
    ranking = units.frame.assign(expected=X["cnt_sv_12m"].to_numpy() / 12, recent_count=X["cnt_sv_12m"].to_numpy(),
                                 reason_1="long-run serious violence")
    ranking = ranking.sort_values(["expected", "unit_id"], ascending=[False, True]).reset_index(drop=True)
    ranking["rank"] = np.arange(1, len(ranking) + 1)
    out = tmp_path_factory.mktemp("real-eval") / "out"
    run = out / "runs" / "real-run"
    run.mkdir(parents=True)
    ranking.to_parquet(run / "ranking.parquet")
    areas = clear_hold_build(ranking, units.graph("queen"))
    areas.to_parquet(run / "areas.parquet")
    (run / "run.json").write_text(json.dumps({
        "run_id": "real-run", "created": "2024-01-01T00:00:00+00:00", "model_version": "count-12m",
        "units": "lsoa2011", "cutoff": "2018-06", "data_period": {"start": "2016-01", "end": "2018-05"}}))
    settings = get_settings(out_dir=out)
    ev, written = evaluate_step(settings, "A1", START, pre_months=PRE, placebos=19, store_dir=real_store)
    return store, areas, ev, written


def _monthly_in(events: gpd.GeoDataFrame, polygon) -> pd.Series:
    inside = events[shapely.intersects(polygon, events.geometry.to_numpy())]
    return inside.groupby(inside["month"].dt.strftime("%Y-%m")).size()


def test_the_summary_is_written(evaluated):
    _, _, ev, written = evaluated
    assert {"json", "csv", "html"} <= set(written.paths)
    assert "Did it work? Area A1" in written.paths["html"].read_text()
    if find_browser() is not None:
        assert re.findall(rb"/Count\s+(\d+)", written.paths["pdf"].read_bytes()) == [b"1"]
    # the run picked A1 with data up to its cutoff, after the start: said plainly
    assert any("after the start 2017-07" in w for w in ev.warnings)


def test_its_numbers_match_counts_from_the_store_by_hand(evaluated):
    store, areas, ev, written = evaluated
    doc = json.loads(written.paths["json"].read_text())
    series = pd.read_csv(written.paths["csv"]).set_index("month")
    events = store.table("events")
    events = events[events["group"].isin(TARGET_GROUPS)]
    lsoa = store.units("lsoa2011").set_index("code")
    a1 = areas.set_index("area_id").loc["A1", "unit_ids"].split("; ")
    assert doc["area"]["unit_ids"] == sorted(a1)

    used = series[series["period"] != "left out"].index
    area_poly = shapely.union_all(lsoa.loc[a1].geometry.to_numpy())
    by_hand = _monthly_in(events, area_poly).reindex(used, fill_value=0)
    assert series.loc[used, "area"].astype(int).tolist() == by_hand.tolist()

    # buffer: every LSOA within 400 m of the area, by geopandas distance
    dist = lsoa.geometry.distance(area_poly)
    buffer_ids = sorted(c for c, d in dist.items() if d < 400 and c not in a1)
    assert sorted(doc["buffer"]["unit_ids"]) == buffer_ids

    def totals(ids):
        poly = shapely.union_all(lsoa.loc[ids].geometry.to_numpy())
        monthly = _monthly_in(events, poly).reindex(used, fill_value=0)
        before = monthly[[m < START for m in monthly.index]].sum()
        return float(before), float(monthly.sum() - before)

    A_b, A_a = totals(a1)
    B_b, B_a = totals(buffer_ids)
    C_b, C_a = totals(doc["comparison"]["unit_ids"])
    assert (doc["did"]["treated_before"], doc["did"]["treated_after"]) == (A_b, A_a)
    assert (doc["did"]["control_before"], doc["did"]["control_after"]) == (C_b, C_a)
    assert doc["did"]["rate_ratio"] == pytest.approx((A_a / C_a) / (A_b / C_b), rel=1e-6)
    w = doc["displacement"]["wdq"]
    assert w["buffer_measure"] == pytest.approx(B_a / C_a - B_b / C_b)
    assert w["success_measure"] == pytest.approx(A_a / C_a - A_b / C_b)
    n_b, n_a = len(doc["months_before"]), len(doc["months_after"])
    assert (n_b, n_a) == (PRE, 12)  # 2016-01..2017-06 against 2017-07..2018-06
    # the rest of the borough: every event in an LSOA outside area and buffer
    rest = [c for c in lsoa.index if c not in set(a1) | set(buffer_ids)]
    R_b, R_a = totals(rest)
    assert doc["rest_of_borough"]["change_pct"] == pytest.approx(100 * ((R_a / n_a) / (R_b / n_b) - 1), rel=1e-6)
