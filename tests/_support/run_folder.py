"""A small, realistic run folder made by hand, for the output and API tests.

The run covers a 6 x 6 grid of 250 m cells in British National Grid, south-west corner at
(522000, 190000) (inside Barnet). Cell ``G{row}{col}`` has row 0 at the south. The forecast
peaks at cell G11 and falls with distance, so the numbers below can be checked by hand:

- ``expected`` = 12 / (1 + d) where d is the Chebyshev distance (in cells) from G11;
  G11 has 12.0, its 8 neighbours 6.0, the next ring 4.0, then 3.0 and 2.4.
- ranks are by ``expected`` descending, ties broken by ``unit_id`` ascending (so G00 is 2nd).
- Gi_Bin is 3 at d = 0, 2 at d = 1, 0 in between and -1 at the far corner G55.
- Two Clear Hold Build areas: "A1" = G00, G01, G10, G11; "A2" = G44, G45, G54, G55.
- Two wards split the grid at column 3: "Colindale North" (west) and "Burnt Oak" (east);
  the borough outline is the grid's square. ``place`` names each cell by its ward and the
  nearest of the two stations (:func:`geo.places.place_names`).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point, box
from shapely.ops import unary_union

from geo.places import place_names

X0, Y0, CELL = 522_000.0, 190_000.0, 250.0
N = 6


def _cells() -> gpd.GeoDataFrame:
    rows = []
    for r in range(N):
        for c in range(N):
            geom = box(X0 + c * CELL, Y0 + r * CELL, X0 + (c + 1) * CELL, Y0 + (r + 1) * CELL)
            rows.append({"unit_id": f"G{r}{c}", "name": f"Cell {r}-{c}", "row": r, "col": c,
                         "geometry": geom})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:27700")


def make_run_dir(runs_dir, run_id: str = "run-2024-01", *, created: str = "2024-01-05T09:00:00+00:00",
                 previous: bool = True, police_generated: bool = False) -> Path:
    """Write a complete run folder under ``runs_dir`` and return its path."""
    run = Path(runs_dir) / run_id
    run.mkdir(parents=True, exist_ok=True)
    cells = _cells()
    d = np.maximum((cells["row"] - 1).abs(), (cells["col"] - 1).abs())
    cells["expected"] = 12.0 / (1.0 + d)
    cells = cells.sort_values(["expected", "unit_id"], ascending=[False, True]).reset_index(drop=True)
    cells["rank"] = np.arange(1, len(cells) + 1)
    cells["expected_lo"] = cells["expected"] * 0.5
    cells["expected_hi"] = cells["expected"] * 1.5
    cells["risk_share"] = cells["expected"] / cells["expected"].sum()
    dd = np.maximum((cells["row"] - 1).abs(), (cells["col"] - 1).abs())
    cells["reason_1"] = np.where(dd <= 1, "+ 9 violent crimes in the last 3 months (borough cell median 1)",
                                 "- few recent violent crimes")
    cells["reason_2"] = np.where(dd <= 1, "+ 400 m from Colindale station (8.1m entries/exits)",
                                 "- far from stations")
    cells["reason_3"] = "+ deprivation in the top 20% nationally"
    gi_bin = np.select([dd == 0, dd == 1], [3, 2], 0)
    gi_bin[(cells["unit_id"] == "G55").to_numpy()] = -1
    cells["Gi_Bin"] = gi_bin
    cells["gi_class"] = pd.Series(gi_bin).map(
        {3: "Hot spot (99%)", 2: "Hot spot (95%)", 0: "Not significant", -1: "Cold spot (90%)"}).to_numpy()
    emerging = np.full(len(cells), "no pattern detected", dtype=object)
    emerging[(cells["unit_id"] == "G11").to_numpy()] = "persistent hot spot"
    emerging[(cells["unit_id"] == "G01").to_numpy()] = "new hot spot"
    emerging[(cells["unit_id"] == "G44").to_numpy()] = "intensifying hot spot"
    cells["emerging"] = emerging
    change = pd.array([(-1) ** i * (i % 3) if i % 5 else pd.NA for i in range(len(cells))],
                      dtype="Int64") if previous else pd.array([pd.NA] * len(cells), dtype="Int64")
    cells["rank_change"] = change
    cells["recent_count"] = (cells["expected"] * 10).round().astype("int64")
    wards = gpd.GeoDataFrame(
        {"code": ["E05000001", "E05000002"], "name": ["Colindale North", "Burnt Oak"]},
        geometry=[box(X0, Y0, X0 + 3 * CELL, Y0 + N * CELL), box(X0 + 3 * CELL, Y0, X0 + N * CELL, Y0 + N * CELL)],
        crs="EPSG:27700")
    wards.to_parquet(run / "wards.parquet")
    gpd.GeoDataFrame({"code": ["E09000003"], "name": ["Barnet (test)"]},
                     geometry=[box(X0, Y0, X0 + N * CELL, Y0 + N * CELL)], crs="EPSG:27700").to_parquet(
        run / "borough.parquet")
    stations = gpd.GeoDataFrame({"name": ["Colindale", "Burnt Oak"]},
                                geometry=[Point(X0 + 300, Y0 + 310), Point(X0 + 1200, Y0 + 1150)], crs="EPSG:27700")
    cells["place"] = place_names(cells, wards, stations).reindex(cells["unit_id"]).to_numpy()
    ranking = cells[["unit_id", "name", "place", "rank", "expected", "expected_lo", "expected_hi",
                     "risk_share", "reason_1", "reason_2", "reason_3", "gi_class", "Gi_Bin",
                     "emerging", "rank_change", "recent_count", "geometry"]]
    ranking = gpd.GeoDataFrame(ranking, geometry="geometry", crs="EPSG:27700")
    ranking.to_parquet(run / "ranking.parquet")

    hot = ranking[["unit_id", "gi_class", "Gi_Bin", "emerging", "geometry"]].copy()
    hot["Gs"] = 0.02 + 0.01 * hot["Gi_Bin"]
    hot["Zs"] = hot["Gi_Bin"] * 1.3
    hot["p_sim"] = np.where(hot["Gi_Bin"].abs() > 0, 0.001, 0.4)
    hot["q_value"] = np.where(hot["Gi_Bin"].abs() > 0, 0.01, 0.6)
    hot["lisa_label"] = np.where(hot["Gi_Bin"] > 0, "High-High", "Not significant")
    hot = hot[["unit_id", "Gs", "Zs", "p_sim", "q_value", "gi_class", "Gi_Bin", "lisa_label",
               "emerging", "geometry"]]
    gpd.GeoDataFrame(hot, geometry="geometry", crs="EPSG:27700").to_parquet(run / "hotspots.parquet")

    by_id = ranking.set_index("unit_id")
    areas = []
    for aid, ids in (("A1", ["G00", "G01", "G10", "G11"]), ("A2", ["G44", "G45", "G54", "G55"])):
        areas.append({
            "area_id": aid, "n_units": len(ids), "unit_ids": ids,
            "expected": float(by_id.loc[ids, "expected"].sum()),
            "harm_share": 0.5 if aid == "A1" else 0.1,
            "wards": ["Colindale North"] if aid == "A1" else ["Burnt Oak", "Edgware"],
            "hubs": ["Colindale station"] if aid == "A1" else [],
            "reasons": "Persistent hot spot around the station" if aid == "A1" else "Intensifying",
            "geometry": unary_union(list(by_id.loc[ids, "geometry"])),
        })
    gpd.GeoDataFrame(areas, geometry="geometry", crs="EPSG:27700").to_parquet(run / "areas.parquet")

    youth = ranking.head(5)[["unit_id", "name", "geometry"]].copy()
    youth["youth_rank"] = np.arange(1, 6)
    youth["youth_score"] = [0.9, 0.8, 0.7, 0.6, 0.5]
    youth["reasons"] = "+ near two secondary schools"
    gpd.GeoDataFrame(youth[["unit_id", "name", "youth_rank", "youth_score", "reasons", "geometry"]],
                     geometry="geometry", crs="EPSG:27700").to_parquet(run / "youth_list.parquet")

    hubs = gpd.GeoDataFrame(
        {"kind": ["station", "station", "school", "school"],
         "name": ["Colindale", "Burnt Oak", "Orion Primary", "Colindale High"],
         "footfall": pd.array([8_100_000.0, 5_300_000.0, None, None], dtype="Float64"),
         "geometry": [Point(X0 + 300, Y0 + 310), Point(X0 + 1200, Y0 + 1150),
                      Point(X0 + 600, Y0 + 100), Point(X0 + 120, Y0 + 900)]},
        geometry="geometry", crs="EPSG:27700")
    hubs.to_parquet(run / "hubs.parquet")

    (run / "fairness.json").write_text(json.dumps({
        "top_n": 10,
        "rows": [{"measure": "IMD score (mean)", "top_places": 32.1, "borough": 18.4, "ratio": 1.74},
                 {"measure": "Share of residents aged 10-24", "top_places": 0.21, "borough": 0.18,
                  "ratio": 1.17}],
        "note": "Top 10 places against the borough, population-weighted.",
    }))
    (run / "figures.json").write_text(json.dumps({
        "period_end": "2023-12",
        "rows": [{"group": "violence", "count_12m": 480, "rate_per_1000": 2.4, "change_pct": 5.0},
                 {"group": "robbery", "count_12m": 120, "rate_per_1000": 0.6, "change_pct": -10.0},
                 {"group": "sexual", "count_12m": 60, "rate_per_1000": 0.3, "change_pct": None},
                 {"group": "serious violence", "count_12m": 660, "rate_per_1000": 3.3, "change_pct": 1.5}],
        "population": 200_000,
    }))
    (run / "run.json").write_text(json.dumps({
        "run_id": run_id, "created": created, "model_version": "svrisk-0.1.0+test",
        "method": "poisson_glm", "units": "grid250", "cutoff": "2024-01", "horizon": 1,
        "data_period": {"start": "2021-01", "end": "2023-12"}, "area_name": "Barnet (test)",
        "seed": 20240101, "permutations": 99, "target_groups": ["violence", "robbery", "sexual"],
        "police_generated_used": police_generated, "settings": {"units": {"grid_size_m": 250}},
    }))
    return run
