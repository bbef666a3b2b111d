"""`svrisk assess` on the real borough folder and the London comparison folder.

The pack is built once for the session (``real_pack`` in ``tests/conftest.py``). Its figures are checked against sums made here
directly from the raw files: the Met ward table (latest release for each month, as the
manifest says) and the London borough totals.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()
END = "2026-03"
WINDOW = pd.period_range("2025-04", END, freq="M").astype(str)
SECTIONS = ("profile", "trends", "open-data-gaps", "spatial", "comparison", "risk", "monitoring")


def _latest_release(frame: pd.DataFrame) -> pd.DataFrame:
    key = frame["release_last_month"] + "|" + frame["release_first_month"]
    best = key.groupby(frame["month"]).transform("max")
    return frame[key == best]


def test_the_pack_has_every_section_a_pdf_and_its_files(real_pack):
    out, output = real_pack
    html = (out / "evidence_pack.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    assert (out / "evidence_pack.pdf").read_bytes()[:5] == b"%PDF-"
    meta = json.loads((out / "pack.json").read_text())
    assert meta["area_code"] == "E09000003" and meta["period_end"] == END  # from the data's own boundary
    for fig in meta["figures"].values():
        assert all((out / f).is_file() for f in fig["files"].values())
        assert "Period:" in fig["footer"] and "Population base:" in fig["footer"]
    assert "12 months to 2026-03" in output


def test_rolling_12_months_equal_hand_sums_of_the_ward_table(real_pack, real_data):
    out, _ = real_pack
    raw = pd.read_csv(real_data / "crime" / "barnet_ward_crime_monthly_mps_releases.csv.gz", dtype=str)
    raw["count"] = raw["count"].astype(float)
    raw = _latest_release(raw[raw["month"].isin(WINDOW)])
    raw["major"] = raw["major_category"].str.upper()
    majors = {"violence": "VIOLENCE AGAINST THE PERSON", "robbery": "ROBBERY", "sexual": "SEXUAL OFFENCES",
              "weapons": "POSSESSION OF WEAPONS", "drugs": "DRUG OFFENCES"}
    wards = pd.read_csv(out / "tables" / "ward_rolling_12m.csv")
    head = pd.read_csv(out / "tables" / "headline_rolling_12m.csv").set_index("measure")
    for measure, major in majors.items():
        hand = raw[raw["major"] == major].groupby("ward_code")["count"].sum()
        pack = wards[wards["measure"] == measure].set_index("unit_id")["count"]
        assert len(pack) == 24 and pack.reindex(hand.index).tolist() == hand.tolist(), measure
        assert head.loc[measure, "count"] == hand.sum()
        assert (head.loc[measure, "period_start"], head.loc[measure, "period_end"]) == ("2025-04", END)
    # the rate uses Census 2021 residents, and the table says so
    assert head.loc["violence", "population_year"] == 2021
    assert head.loc["violence", "rate_per_1000"] == pytest.approx(
        1000 * head.loc["violence", "count"] / head.loc["violence", "population"])


def test_london_rank_for_violence_against_the_person_matches_the_london_file(real_pack, london_data):
    out, _ = real_pack
    t = pd.read_csv(london_data / "london_borough_crime_monthly_totals.csv.gz")
    t = t[(t["is_borough"]) & t["month"].isin(WINDOW) & (t["major_category_harmonised"] == "VIOLENCE AGAINST THE PERSON")]
    counts = t.groupby("borough_code")["count"].sum()
    pop = pd.read_csv(london_data / "london_borough_population.csv").query("year == 2021") \
        .set_index("borough_code")["population"]
    rate = 1000 * counts / pop.reindex(counts.index)
    rank = int(rate.rank(ascending=False, method="min")["E09000003"])
    row = pd.read_csv(out / "tables" / "region_comparison.csv").set_index("measure").loc["violence"]
    assert (row["rank"], row["of"]) == (rank, len(counts))
    assert row["rate_per_1000"] == pytest.approx(rate["E09000003"])
    assert row["region_rate_per_1000"] == pytest.approx(1000 * counts.sum() / pop.reindex(counts.index).sum())
    rec = pd.read_csv(out / "tables" / "comparison_reconciliation.csv")
    assert (rec["difference"] == 0).all()  # the borough's own data and the London file agree


def test_the_boroughs_rank_on_every_population_base_matches_the_london_file(real_pack, london_data):
    out, _ = real_pack
    t = pd.read_csv(london_data / "london_borough_crime_monthly_totals.csv.gz")
    t = t[(t["is_borough"]) & t["month"].isin(WINDOW) & (t["major_category_harmonised"] == "VIOLENCE AGAINST THE PERSON")]
    counts = t.groupby("borough_code")["count"].sum()
    pops = pd.read_csv(london_data / "london_borough_population.csv")
    bases = pd.read_csv(out / "tables" / "rank_population_bases.csv").query("measure == 'violence'") \
        .set_index("population_year")
    assert sorted(bases.index) == sorted(pops["year"].unique())
    for year, p in pops.groupby("year"):
        rate = 1000 * counts / p.set_index("borough_code")["population"].reindex(counts.index)
        assert bases.loc[year, "rank"] == int(rate.rank(ascending=False, method="min")["E09000003"]), year
        assert bases.loc[year, "rate_per_1000"] == pytest.approx(rate["E09000003"])
    assert bases["used_by_pack"].sum() == 1 and bool(bases.loc[2021, "used_by_pack"])
    html = (out / "evidence_pack.html").read_text()
    assert 'id="rank-bases"' in html and 'id="ward-rank-bases"' in html
    wards = pd.read_csv(out / "tables" / "ward_rank_population_bases.csv")
    assert wards["base"].str.split(" ").str[:2].str.join(" ").nunique() >= 2  # Census 2021 and the mid-year estimates
    base = wards[wards["used_by_pack"]]
    assert base["base"].str.startswith("Census 2021").all() and (base["rank_change"] == 0).all()


def test_hot_spots_are_on_the_lsoas_of_the_freshest_lsoa_table(real_pack, real_data):
    out, _ = real_pack
    raw = pd.read_csv(real_data / "crime" / "barnet_mps_lsoa_crime_monthly_202403_202602.csv")
    window = [m.replace("-", "") for m in pd.period_range("2025-03", "2026-02", freq="M").astype(str)]
    sv = raw[raw["Major Category"].isin(["VIOLENCE AGAINST THE PERSON", "ROBBERY", "SEXUAL OFFENCES"])]
    by_lsoa = sv.groupby("LSOA Code")[window].sum().sum(axis=1)
    hs = pd.read_csv(out / "tables" / "hotspots.csv").set_index("unit_id")
    assert len(hs) == 220 and hs["y"].sum() == by_lsoa.sum()
    assert (hs["y"].reindex(by_lsoa.index) == by_lsoa).all()
    lsoa = pd.read_csv(out / "tables" / "lsoa_rolling_12m.csv").query("measure == 'serious violence'") \
        .set_index("unit_id")
    assert (lsoa["count"].reindex(by_lsoa.index) == by_lsoa).all()
    assert lsoa["rate_per_1000"].to_numpy() == pytest.approx(1000 * lsoa["count"] / lsoa["population"])
    html = (out / "evidence_pack.html").read_text()
    assert "2025-03..2026-02, on lsoa2021" in html and 'id="lsoa-top"' in html
    parts = pd.DataFrame(json.loads((out / "pack.json").read_text())["parts"])
    assert parts.loc[parts["what"].str.startswith("hot spots"), "units"].iloc[0] == "lsoa2021 (220)"


def test_a_period_end_without_12_complete_months_is_one_line_and_exit_2(real_data, real_store, tmp_path):
    result = runner.invoke(app, ["assess", "--data", str(real_data), "--store", str(real_store),
                                 # the ward history starts 2010-04: a year ending 2010-06 is not complete
                                 "--period-end", "2010-06", "--out", str(tmp_path / "p"), "--no-pdf"])
    assert result.exit_code == 2
    assert "latest usable period end is 2026-03" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p").exists()


def test_core_serious_violence_is_the_hand_sum_of_its_minor_categories(real_pack, real_data):
    out, _ = real_pack
    raw = pd.read_csv(real_data / "crime" / "barnet_ward_crime_monthly_mps_releases.csv.gz", dtype=str)
    raw["count"] = raw["count"].astype(float)
    raw = _latest_release(raw[raw["month"].isin(WINDOW)])
    minor = raw["minor_category"].str.upper()
    core = minor.isin(["VIOLENCE WITH INJURY", "HOMICIDE", "ROBBERY OF PERSONAL PROPERTY", "RAPE",
                       "OTHER SEXUAL OFFENCES"])
    broad = raw["major_category"].str.upper().isin(["VIOLENCE AGAINST THE PERSON", "ROBBERY", "SEXUAL OFFENCES"])
    head = pd.read_csv(out / "tables" / "headline_rolling_12m.csv").set_index("measure")
    assert head.loc["core serious violence", "count"] == raw.loc[core, "count"].sum()
    assert head.loc["serious violence", "count"] == raw.loc[broad, "count"].sum()  # business robbery included
    html = (out / "evidence_pack.html").read_text()
    assert "Serious violence, core" in html and "Serious violence, broad" in html
    assert "Recording change, 2024-02 (CONNECT)" in html
    # the summary leads deprivation with domains that are not built from crime
    assert "Deprivation without the crime domain" in html and "income domain is higher" in html


def test_the_knife_cohort_is_the_briefings_knife_figures_and_the_raw_dashboard(real_pack, real_data, real_store):
    from features.figures import knife_figures
    from sources.store import Store

    out, _ = real_pack
    cb = pd.read_csv(out / "tables" / "cohorts_borough.csv").set_index("measure")
    briefing = {r["measure"]: r["count"] for r in knife_figures(Store(real_store).table("dashboard_counts"))["borough"]}
    raw = pd.read_csv(real_data / "crime" / "barnet_mps_crime_dashboard_knife_202203_202602.csv")
    raw = raw[(raw["area_type"] == "Borough") & (raw["measure"] == "Offences")
              & raw["month_year"].isin(pd.period_range("2025-03", "2026-02", freq="M").astype(str))]
    for sub in ("Knife Crime", "Knife Crime with Injury", "Knife Injury Victims (1-24)"):
        hand = raw.loc[raw["crime_subtype"] == sub, "count"].sum()
        assert cb.loc[sub, "count"] == briefing[sub] == hand, sub
        assert cb.loc[sub, "period"] == "2025-03..2026-02"
    assert cb.loc["Domestic Abuse", "place_based"] == False  # noqa: E712 (a CSV bool)
    kl = pd.read_csv(out / "tables" / "knife_london.csv")
    assert kl.loc[kl["is_borough"], "area_code"].unique().tolist() == ["E09000003"] and kl["of"].max() == 32


def test_stop_search_disproportionality_from_the_raw_files(real_pack, real_data):
    out, _ = real_pack
    d = pd.read_csv(out / "tables" / "stop_search_disproportionality.csv").set_index("group")
    first, last = d["period"].iloc[0].split("..")
    ss = pd.read_csv(real_data / "crime" / "barnet_stop_and_search_2015_2025.csv.gz", dtype=str)
    ss = ss[(ss["month"] >= first) & (ss["month"] <= last)]
    eth = ss["Self-defined ethnicity"].dropna()
    eth = eth[~eth.str.contains("Not stated")]
    census = pd.read_csv(real_data / "population" / "barnet_census2021_ts021_ethnic_group_lsoa21.csv")
    for word, group in (("Black", "Black, Black British, Black Welsh, Caribbean or African"), ("White", "White"),
                        ("Asian", "Asian, Asian British or Asian Welsh")):
        searches = int(eth.str.startswith(word).sum())
        col = next(c for c in census.columns if c.startswith(word))
        residents = census[col].sum()
        assert d.loc[group, "searches"] == searches and d.loc[group, "residents"] == residents, group
        assert d.loc[group, "rate_per_1000"] == pytest.approx(1000 * searches / residents)
    white = d.loc["White", "searches"] / d.loc["White", "residents"]
    black = d.loc["Black, Black British, Black Welsh, Caribbean or African"]
    assert black["rate_ratio"] == pytest.approx(black["searches"] / black["residents"] / white)
    assert "Police-generated" in (out / "evidence_pack.html").read_text()


def test_ward_funnel_limits_hold_the_poisson_tail_probabilities(real_pack):
    from scipy.stats import poisson

    out, _ = real_pack
    f = pd.read_csv(out / "tables" / "ward_funnel.csv").fillna({"outside": ""})
    head = pd.read_csv(out / "tables" / "headline_rolling_12m.csv").set_index("measure")
    for r in f.itertuples():
        expected = head.loc[r.measure, "rate_per_1000"] * r.population / 1000
        hi = f.loc[r.Index, "hi_99.8"] * r.population / 1000  # back to a count
        assert poisson.cdf(round(hi), expected) >= 0.999 > poisson.cdf(round(hi) - 1, expected)
        assert (r.count > round(hi)) == (r.outside == "above 99.8%")
