"""Population-base sensitivity: the same counts ranked on each residents year, by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.figures import SV_MEASURE
from models.needs.compare import rank_by_population_base
from models.needs.spatial import base_label, rank_sensitivity
from sources.compare import CompareData


def test_ward_ranks_move_only_with_the_denominator():
    counts = pd.Series([30.0, 20.0, 10.0], index=["w1", "w2", "w3"])
    pops = {"census": pd.Series([3000.0, 1000.0, 1000.0], index=["w1", "w2", "w3"]),  # 10, 20, 10 per 1,000
            "mye": pd.Series([1000.0, 2000.0, 2000.0], index=["w1", "w2", "w3"])}     # 30, 10, 5 per 1,000
    t = rank_sensitivity(counts, pops, "census").set_index(["base", "unit_id"])
    assert t.loc[("census", "w2"), "rate_per_1000"] == 20.0
    assert [t.loc[("census", u), "rank"] for u in ("w1", "w2", "w3")] == [2, 1, 2]  # a tie shares the lower rank
    assert [t.loc[("mye", u), "rank"] for u in ("w1", "w2", "w3")] == [1, 2, 3]
    assert [t.loc[("mye", u), "rank_change"] for u in ("w1", "w2", "w3")] == [-1, 1, 1]
    assert (t.xs("census")["rank_change"] == 0).all()


def test_the_boroughs_rank_among_authorities_is_given_for_every_residents_year():
    months = pd.date_range("2020-01-01", "2021-12-01", freq="MS")
    monthly = pd.DataFrame([{"area_code": c, "month": m, "group": "violence", "serious_violence": True,
                             "police_generated": False, "count": n}
                            for c, n in (("E09000001", 10.0), ("E09000002", 12.0), ("E09000003", 5.0)) for m in months])
    population = pd.DataFrame({
        "area_code": ["E09000001", "E09000002", "E09000003"] * 2, "year": [2020] * 3 + [2021] * 3,
        # 2020: 120, 144, 60 a year over 10k, 10k, 4k -> 12.0, 14.4, 15.0 per 1,000; 2021: over 10k, 16k, 4k -> 12.0, 9.0, 15.0
        "population": [10000.0, 10000.0, 4000.0, 10000.0, 16000.0, 4000.0], "age_10_24": pd.NA,
        "source": ["mid-2020"] * 3 + ["Census 2021"] * 3})
    data = CompareData(Path("."), monthly, pd.Series({"E09000001": "A", "E09000002": "B", "E09000003": "C"}),
                       population=population)
    t = rank_by_population_base(data, pd.Timestamp("2021-12-01"), "E09000001", [SV_MEASURE]).set_index("population_year")
    assert t.loc[2020, "rate_per_1000"] == 12.0 and t.loc[2020, "rank"] == 3
    assert t.loc[2021, "rank"] == 2 and t.loc[2021, "of"] == 3
    assert bool(t.loc[2021, "used_by_pack"]) and not bool(t.loc[2020, "used_by_pack"])
    assert t.loc[2021, "population_source"] == "Census 2021"
    assert base_label(2021) == "Census 2021" and base_label(2019) == "mid-2019 estimate"


def test_the_similar_set_is_the_home_office_group_when_given_and_says_so_otherwise():
    from models.needs.compare import similar_set

    monthly = pd.DataFrame({"area_code": ["E09000001", "E09000002", "E09000003", "E09000004"], "count": 1.0})
    names = pd.Series({"E09000001": "A", "E09000002": "B", "E09000003": "C", "E09000004": "D"})
    data = CompareData(Path("."), monthly, names)
    codes, rule = similar_set(data, "E09000001", ["E09000002", "E09000003"])
    assert codes == ["E09000002", "E09000003"] and rule["rule"] == "svrisk"
    assert "not the Home Office" in rule["text"] and "no Home Office most similar groups table" in rule["text"]
    data.msg, data.msg_source = {"E09000001": ["E09000003", "E09000004", "E06000099"]}, "MSG 2023"
    codes, rule = similar_set(data, "E09000001", ["E09000002", "E09000003"])
    assert codes == ["E09000003", "E09000004"] and rule["rule"] == "home office msg"
    assert "(MSG 2023)" in rule["text"] and "share 1 of its 2" in rule["text"]
    assert any("E06000099" in n for n in rule["notes"])
    data.msg = {"E09000001": ["E06000099"]}
    codes, rule = similar_set(data, "E09000001", ["E09000002"])
    assert codes == ["E09000002"] and rule["rule"] == "svrisk" and "no member" in rule["text"]
