"""How the borough compares: ranks among the region's boroughs, the regional rate, similar boroughs.

Similarity rule (documented in the pack)
----------------------------------------
Each authority is described by four figures: log residents, log residents per km² (land area
of its polygon), deprivation (IMD 2019 score, the population-weighted mean where given) and the
share of residents aged 10-24. Each figure is standardised across the authorities compared
(z-scores), every figure weighs the same, and the most similar authorities are the
:data:`SIMILAR_K` nearest by Euclidean distance in that space. Authorities without any offence
rows (e.g. one policed by another force) are left out. Figures an authority lacks are filled
with the median, and the rule says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.figures import window_figures
from features.months import month, months_between, shift
from sources.compare import CompareData

SIMILAR_K = 5
SIMILARITY_FEATURES = {
    "log_population": "log residents",
    "log_density": "log residents per km² (land area of the boundary polygon)",
    "imd_score": "IMD 2019 score",
    "share_10_24": "share of residents aged 10-24",
}


def population_year(data: CompareData, end) -> int | None:
    """The latest residents year not after the window's end (else the earliest)."""
    if data.population is None:
        return None
    years = sorted(int(y) for y in data.population["year"].dropna().unique())
    usable = [y for y in years if y <= month(end).year]
    return (usable or years)[-1]


def _pop(data: CompareData, year: int) -> pd.Series:
    p = data.population[data.population["year"] == year]
    return p.groupby("area_code")["population"].sum().astype(float)


def profile(data: CompareData, end) -> tuple[pd.DataFrame, list[str]]:
    """The similarity figures of every authority with offence rows, and notes on what was filled."""
    notes = []
    year = population_year(data, end)
    codes = sorted(data.monthly["area_code"].unique())
    out = pd.DataFrame(index=pd.Index(codes, name="area_code"))
    out["name"] = data.names.reindex(codes).to_numpy()
    if year is not None:
        pop = _pop(data, year).reindex(codes)
        out["population"] = pop.to_numpy()
        out["population_year"] = year
        out["log_population"] = np.log(pop.to_numpy())
        youth = data.population.dropna(subset=["age_10_24"])
        if len(youth):
            yy = int(youth["year"].max())
            y = youth[youth["year"] == yy].groupby("area_code")[["age_10_24", "population"]].sum()
            out["share_10_24"] = (y["age_10_24"] / y["population"]).reindex(codes).to_numpy()
            if yy != year:
                notes.append(f"share aged 10-24 from {yy}, the only year with ages")
        if data.area_km2 is not None:
            out["area_km2"] = data.area_km2.reindex(codes).to_numpy()
            out["log_density"] = np.log(pop.to_numpy() / out["area_km2"].to_numpy())
    if data.imd is not None:
        out["imd_score"] = data.imd.reindex(codes).to_numpy(dtype=float)
    missing = [f for f in SIMILARITY_FEATURES if f not in out]
    if missing:
        notes.append(f"similarity without {', '.join(SIMILARITY_FEATURES[f] for f in missing)} (not in the folder)")
    return out, notes


def similar(profile_frame: pd.DataFrame, code: str, k: int = SIMILAR_K) -> tuple[pd.DataFrame, list[str]]:
    """Distance of every authority to ``code`` under the similarity rule, nearest first.

    Returns the profile with z-scores (``z_<figure>``), ``distance`` and ``similar`` (True for
    the ``k`` nearest, the authority itself excluded); and notes on filled values.

    Examples
    --------
    >>> p = pd.DataFrame({"log_population": [1.0, 1.1, 5.0], "imd_score": [10.0, 11.0, 40.0]},
    ...                  index=pd.Index(["a", "b", "c"], name="area_code"))
    >>> similar(p, "a", k=1)[0]["similar"].to_dict()
    {'a': False, 'b': True, 'c': False}
    """
    if code not in profile_frame.index:
        raise ValueError(f"area {code} is not among the authorities compared ({len(profile_frame)} with offence rows)")
    feats = [f for f in SIMILARITY_FEATURES if f in profile_frame]
    if not feats:
        raise ValueError("no similarity figure (residents, density, deprivation, age) is available")
    notes = []
    out = profile_frame.copy()
    for f in feats:
        v = out[f].astype(float)
        if v.isna().any():
            notes.append(f"{SIMILARITY_FEATURES[f]} missing for {', '.join(map(str, out.index[v.isna()]))}: "
                         "filled with the median")
            v = v.fillna(v.median())
        sd = v.std(ddof=0)
        out[f"z_{f}"] = (v - v.mean()) / (sd if sd > 0 else 1.0)
    z = out[[f"z_{f}" for f in feats]].to_numpy()
    me = z[out.index.get_loc(code)]
    out["distance"] = np.sqrt(((z - me) ** 2).sum(axis=1))
    out = out.sort_values(["distance", "name" if "name" in out else "distance"], kind="stable")
    out["similar"] = False
    others = [c for c in out.index if c != code][:k]
    out.loc[others, "similar"] = True
    return out, notes


def compare_window(data: CompareData, end, months: int = 12) -> tuple[pd.Timestamp | None, str | None]:
    """The window end to compare at: ``end`` when the folder covers it and the window before, else
    its latest month that does (with a note), None if none does."""
    have = set(data.months)
    def ok(e):
        return all(m in have for m in months_between(shift(e, -(2 * months - 1)), e))
    end = month(end)
    if ok(end):
        return end, None
    for e in sorted(have, reverse=True):
        if e <= end and ok(e):
            return e, f"the comparison folder does not cover the 24 months to {end:%Y-%m}; compared at {e:%Y-%m}"
    return None, f"the comparison folder has no 24 consecutive months up to {end:%Y-%m}"


def borough_rates(data: CompareData, end, measures: Sequence[str], months: int = 12,
                  year: int | None = None) -> pd.DataFrame:
    """Every authority's count, change, rate and rank per measure for the window ending ``end`` (long).

    Rank 1 is the highest rate among the authorities with offence rows; one residents year
    (``year``, default :func:`population_year`) for every authority.
    """
    year = population_year(data, end) if year is None else year
    pop = _pop(data, year) if year is not None else None
    codes = sorted(data.monthly["area_code"].unique())
    per = window_figures(data.monthly, end, by="area_code", index=codes, population=pop, months=months,
                         groups=[m for m in measures if m not in ("serious violence", "all offences")])
    per["name"] = data.names.reindex(per["area_code"]).to_numpy()
    per["population"] = pop.reindex(per["area_code"]).to_numpy() if pop is not None else np.nan
    per["population_year"] = year
    per["rank"] = per.groupby("measure")["rate_per_1000"].rank(ascending=False, method="min")
    return per


def similar_set(data: CompareData, code: str, own: Sequence[str]) -> tuple[list[str], dict]:
    """The similar boroughs the comparison uses: the Home Office most similar group when the folder
    has one for ``code`` (its members with offence rows), else svrisk's own (``own``, :func:`similar`).

    Returns the codes and ``{"rule", "text", "notes"}`` saying which set it is and how it was chosen.
    """
    have = set(data.monthly["area_code"])
    name = lambda c: str(data.names.get(c, c))  # noqa: E731
    group = (data.msg or {}).get(code)
    own_text = (f"svrisk's own: the {len(own)} authorities nearest to the borough on "
                + ", ".join(SIMILARITY_FEATURES.values()) + " (each standardised, equal weights)")
    if group is None:
        why = ("the comparison folder has no Home Office most similar groups table" if data.msg is None
               else f"the most similar groups table has no row for {code}")
        return list(own), {"rule": "svrisk", "text": own_text + f", not the Home Office's most similar group: {why} "
                           "(a table can be added: docs/most_similar_groups.md)", "notes": []}
    present = [c for c in group if c in have]
    notes = []
    missing = [c for c in group if c not in have]
    if missing:
        notes.append(f"{len(missing)} of the {len(group)} members of the Home Office most similar group have no offence "
                     f"rows in the comparison folder and are left out: {', '.join(missing)}")
    if not present:
        return list(own), {"rule": "svrisk", "text": own_text + ": no member of the Home Office most similar group is "
                           "in the comparison folder", "notes": notes}
    common = [c for c in own if c in present]
    src = f" ({data.msg_source})" if data.msg_source else ""
    notes.append(f"svrisk's own similarity rule would choose {', '.join(name(c) for c in own)}; "
                 f"{len(common)} of them are in the Home Office group")
    return present, {"rule": "home office msg", "notes": notes,
                     "text": f"the Home Office most similar group{src}: {len(present)} authorities in the comparison "
                             f"folder ({', '.join(name(c) for c in present)}); svrisk's own rule would share "
                             f"{len(common)} of its {len(own)}"}


def rank_by_population_base(data: CompareData, end, code: str, measures: Sequence[str],
                            months: int = 12) -> pd.DataFrame:
    """The borough's rate and rank among the authorities with every residents year the folder has.

    The counts are the same; only the denominator changes, so a rank that moves shows how much
    of it rests on the population base (a census against a mid-year estimate).
    """
    if data.population is None:
        return pd.DataFrame()
    used = population_year(data, end)
    rows = []
    for year in sorted(int(y) for y in data.population["year"].dropna().unique()):
        rates = borough_rates(data, end, measures, months, year=year)
        rates = rates[rates["measure"].isin(measures)]
        src = data.population.loc[data.population["year"] == year, "source"].dropna()
        for m, part in rates.groupby("measure", sort=False):
            me = part[part["area_code"] == code]
            if not len(me):
                continue
            rows.append({"measure": m, "population_year": year, "population_source": src.iloc[0] if len(src) else "",
                         "used_by_pack": year == used, "population": float(me["population"].iloc[0]),
                         "rate_per_1000": float(me["rate_per_1000"].iloc[0]), "rank": me["rank"].iloc[0],
                         "of": int(part["rate_per_1000"].notna().sum()),
                         "period": f"{part['period_start'].iloc[0]}..{part['period_end'].iloc[0]}"})
    return pd.DataFrame(rows)


def regional_table(rates: pd.DataFrame, code: str, similar_codes: Sequence[str]) -> pd.DataFrame:
    """Per measure: the borough's rate and rank, the region's and the similar boroughs' pooled rates.

    ``rates`` is :func:`borough_rates`. The region and the similar group are pooled: their
    counts over their residents.
    """
    rows = []
    for m, part in rates.groupby("measure", sort=False):
        part = part.set_index("area_code")
        me = part.loc[code] if code in part.index else None

        def pooled(cs, part=part):
            cs = [c for c in cs if c in part.index]
            n, b, p = part.loc[cs, "count"].sum(), part.loc[cs, "previous"].sum(), part.loc[cs, "population"].sum()
            return (1000 * n / p if p > 0 else np.nan), (100 * (n - b) / b if b > 0 else np.nan)

        lrate, lchange = pooled(list(part.index))
        srate, schange = pooled(similar_codes)
        def mine(col, me=me):
            return me[col] if me is not None else np.nan

        rows.append({
            "measure": m, "period_start": part["period_start"].iloc[0], "period_end": part["period_end"].iloc[0],
            "population_year": part["population_year"].iloc[0], "count": mine("count"),
            "rate_per_1000": mine("rate_per_1000"), "change_pct": mine("change_pct"),
            "rank": int(me["rank"]) if me is not None and pd.notna(me["rank"]) else pd.NA,
            "of": int(part["rate_per_1000"].notna().sum()),
            "region_rate_per_1000": lrate, "region_change_pct": lchange,
            "similar_rate_per_1000": srate, "similar_change_pct": schange,
            "ratio_to_region": mine("rate_per_1000") / lrate if lrate > 0 else np.nan,
            "ratio_to_similar": mine("rate_per_1000") / srate if srate > 0 else np.nan,
        })
    return pd.DataFrame(rows)


def rolling_rates(data: CompareData, measure: str, code: str, similar_codes: Sequence[str],
                  first=None, last=None, months: int = 12) -> pd.DataFrame:
    """Rolling 12-month rate per 1,000 at each month: the borough, the similar group and the region.

    One residents year (the latest not after ``last``) for every month, so the lines move
    with the counts only.
    """
    m = data.monthly
    if measure == "serious violence":
        sel = m["serious_violence"].to_numpy(dtype=bool)
    elif measure == "all offences":
        sel = (m["group"] != "asb").to_numpy()
    else:
        sel = (m["group"] == measure).to_numpy()
    wide = m[sel].pivot_table(index="month", columns="area_code", values="count", aggfunc="sum", fill_value=0.0)
    wide = wide.reindex(pd.DatetimeIndex(sorted(data.months)), fill_value=0.0)
    roll = wide.rolling(months, min_periods=months).sum()
    last = month(last) if last is not None else roll.index.max()
    year = population_year(data, last)
    pop = _pop(data, year)
    codes = [c for c in wide.columns]
    sims = [c for c in similar_codes if c in wide.columns]

    def rate(cs):
        return 1000 * roll[cs].sum(axis=1, min_count=len(cs)) / float(pop.reindex(cs).sum())

    out = pd.DataFrame({"month": roll.index, "borough": rate([code]).to_numpy() if code in wide else np.nan,
                        "similar": rate(sims).to_numpy() if sims else np.nan, "region": rate(codes).to_numpy()})
    out["measure"], out["population_year"] = measure, year
    out = out.dropna(subset=["region"])
    if first is not None:
        out = out[out["month"] >= month(first)]
    return out[out["month"] <= last].reset_index(drop=True)
