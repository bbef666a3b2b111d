"""The monitoring framework: KPI figures per area, written as a baseline the next pack compares against.

A KPI is one measure (serious violence, robbery, ...) for one area: the borough, a ward, or an
operational area (a Clear Hold Build footprint: a set of units). Each row of the baseline
carries its area's units, so next year's pack can recount *the same footprint* on new data
even when this year's operational areas differ. ``kpi_id`` is stable across packs:
``<area type>:<edition>:<area code or footprint>:<measure>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.figures import ALL_MEASURE, CORE_MEASURE, SV_MEASURE, window_figures

KPI_COLUMNS = (
    "kpi_id", "area_type", "area_code", "area_name", "edition", "measure", "period_start", "period_end",
    "count", "previous", "change_pct", "rate_per_1000", "population", "population_year", "police_generated",
    "source", "unit_ids",
)
BASELINE_FILE = "kpi_baseline.csv"


@dataclass(frozen=True)
class KpiArea:
    area_type: str  # "borough", "ward", "operational area"
    area_code: str
    name: str
    edition: str
    unit_ids: tuple[str, ...]

    @property
    def key(self) -> str:
        if self.area_type == "operational area":
            digest = hashlib.sha1("|".join(sorted(self.unit_ids)).encode()).hexdigest()[:10]
            return f"{self.area_type}:{self.edition}:{digest}"
        return f"{self.area_type}:{self.edition}:{self.area_code}"


def unit_list(value) -> tuple[str, ...]:
    """Unit ids from a list or from text joined with ";" (as GIS layers and CSVs keep them)."""
    if isinstance(value, str):
        return tuple(u.strip() for u in value.split(";") if u.strip())
    return tuple(str(u) for u in value)


def footprint_areas(rows: pd.DataFrame) -> list[KpiArea]:
    """Operational areas of a baseline table (one per footprint), to recount on new data."""
    out = {}
    ops = rows[rows["area_type"] == "operational area"]
    for r in ops.drop_duplicates("kpi_id").itertuples(index=False):
        area = KpiArea("operational area", str(r.area_code), str(r.area_name), str(r.edition), unit_list(r.unit_ids))
        out[area.key] = area
    return list(out.values())


def kpi_table(counts: pd.DataFrame, population: pd.Series, areas: Iterable[KpiArea], period_end, *,
              complete, measures: Sequence[str], population_year, source: str) -> pd.DataFrame:
    """KPI rows for ``areas`` from unit-level ``counts`` (``unit_id``, ``month``, ``group``, flags, ``count``).

    ``population`` is residents per unit; an area's residents are its units' sum.
    """
    areas = list(dict((a.key, a) for a in areas).values())
    link = pd.DataFrame([(a.key, u) for a in areas for u in a.unit_ids], columns=["area_key", "unit_id"])
    joined = counts.merge(link, on="unit_id", how="inner")
    pop = link.assign(p=population.reindex(link["unit_id"]).to_numpy(dtype=float)).groupby("area_key")["p"] \
        .sum(min_count=1)
    groups = [m for m in measures if m not in (SV_MEASURE, CORE_MEASURE, ALL_MEASURE)]
    fig = window_figures(joined, period_end, by="area_key", index=[a.key for a in areas], population=pop,
                         complete=complete, groups=groups)
    fig = fig[fig["measure"].isin(measures)]
    meta = pd.DataFrame([{"area_key": a.key, "area_type": a.area_type, "area_code": a.area_code,
                          "area_name": a.name, "edition": a.edition, "unit_ids": ";".join(a.unit_ids)}
                         for a in areas])
    out = fig.merge(meta, on="area_key")
    out["kpi_id"] = out["area_key"] + ":" + out["measure"]
    out["population"] = pop.reindex(out["area_key"]).to_numpy()
    out["population_year"] = population_year
    out["source"] = source
    return out[list(KPI_COLUMNS)].reset_index(drop=True)


def compare_with_baseline(current: pd.DataFrame, baseline: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Each baseline KPI beside this pack's figure for the same area and measure.

    Returns the comparison (``status`` "compared" or why not) and notes (different population
    years, areas not found).
    """
    need = {"kpi_id", "count", "rate_per_1000", "period_end"}
    missing = need - set(baseline.columns)
    if missing:
        raise ValueError(f"the baseline has no column(s) {sorted(missing)}; expected a {BASELINE_FILE} "
                         "written by `svrisk assess`")
    b = baseline.drop_duplicates("kpi_id").set_index("kpi_id")
    c = current.drop_duplicates("kpi_id").set_index("kpi_id")
    rows = []
    for kid, r in b.iterrows():
        now = c.loc[kid] if kid in c.index else None
        row = {"kpi_id": kid, "area_type": r.get("area_type"), "area_name": r.get("area_name"),
               "measure": r.get("measure"), "baseline_period": f"{r.get('period_start', '')}..{r['period_end']}",
               "baseline_count": float(r["count"]), "baseline_rate_per_1000": float(r["rate_per_1000"])
               if pd.notna(r["rate_per_1000"]) else np.nan}
        if now is None:
            row.update({"status": "not in this pack (area or measure not available)", "period": "",
                        "count": np.nan, "rate_per_1000": np.nan, "change_pct": np.nan})
        else:
            n, b0 = float(now["count"]), float(r["count"])
            row.update({"status": "compared", "period": f"{now['period_start']}..{now['period_end']}",
                        "count": n, "rate_per_1000": float(now["rate_per_1000"]),
                        "change_pct": 100 * (n - b0) / b0 if b0 > 0 else np.nan})
        rows.append(row)
    out = pd.DataFrame(rows)
    notes = []
    if "population_year" in baseline and "population_year" in current:
        yb, yc = set(baseline["population_year"].dropna().astype(int)), set(current["population_year"].dropna().astype(int))
        if yb and yc and yb != yc:
            notes.append(f"rates use residents of {sorted(yb)} in the baseline and {sorted(yc)} here: compare counts")
    lost = int((out["status"] != "compared").sum()) if len(out) else 0
    if lost:
        notes.append(f"{lost} baseline KPIs have no figure in this pack (areas or measures not available)")
    return out, notes


def read_baseline(path) -> pd.DataFrame:
    """A previous pack's KPI baseline: the pack folder or its ``kpi_baseline.csv``."""
    p = Path(path)
    if p.is_dir():
        p = p / BASELINE_FILE
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no KPI baseline here; give a folder written by `svrisk assess` or its "
                                f"{BASELINE_FILE}")
    return pd.read_csv(p, dtype={"unit_ids": str, "area_code": str, "kpi_id": str})
