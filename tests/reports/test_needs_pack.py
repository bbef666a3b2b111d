"""The evidence pack on the demo borough: planted drivers recovered, every file written, the
document rendered by a real browser with every figure loaded, and a PDF printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.needs.assessment import assess
from reports.needs_pack import findings, write_pack
from sources.store import Store

SECTIONS = ("summary", "profile", "trends", "open-data-gaps", "spatial", "partner", "comparison", "risk", "monitoring",
            "recommendations", "methods")
PLANTED = {"b_dep": "imd_score", "b_foot": "foot_decay", "b_school": "sec_school_prox"}
"""The demo's generating coefficients (truth.json "process") and the factor that measures each."""


def test_risk_factors_recover_the_planted_drivers_with_their_signs(demo_assessment, demo_store):
    truth = json.loads((Path(demo_store).parent / "data" / "truth.json").read_text())["process"]
    rf = demo_assessment.tables["risk_factors"]
    lsoa = rf[rf["level"] == "lsoa"].set_index("factor")
    assert lsoa["units"].iloc[0] == "lsoa2011" and lsoa["n"].iloc[0] == 120
    for coef, factor in PLANTED.items():
        assert np.sign(np.log(lsoa.loc[factor, "rate_ratio"])) == np.sign(truth[coef]), (factor, lsoa.loc[factor])
    # the two strong drivers clearly: their whole interval on the planted side
    assert lsoa.loc["imd_score", "direction"] == "higher" and lsoa.loc["foot_decay", "direction"] == "higher"
    # and deprivation (planted +0.45 per SD of the cell's own deprivation) is the largest per SD
    assert 1.3 < lsoa.loc["imd_score", "rate_ratio"] < 2.2


def test_the_headline_counts_equal_the_points_in_the_window(demo_assessment, demo_store):
    events = Store(demo_store).table("events")
    h = demo_assessment.tables["headline_rolling_12m"].set_index("measure")
    recent = events[(events["month"] >= "2018-01-01") & (events["month"] <= "2018-12-01")]
    assert demo_assessment.period_end == "2018-12"
    assert h.loc["serious violence", "count"] == int(recent["serious_violence"].sum())
    assert h.loc["robbery", "count"] == int((recent["group"] == "robbery").sum())
    assert demo_assessment.tables["kpi_baseline"].query("area_type == 'borough' and measure == 'robbery'")["count"] \
        .iloc[0] == h.loc["robbery", "count"]


def test_every_table_figure_and_section_is_written(demo_pack, demo_assessment):
    out, paths = demo_pack
    html = (out / "evidence_pack.html").read_text()
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    meta = json.loads((out / "pack.json").read_text())
    assert set(meta["tables"]) == set(demo_assessment.tables)
    for name in demo_assessment.tables:
        assert len(pd.read_csv(out / "tables" / f"{name}.csv")) == len(demo_assessment.tables[name])
    assert len(meta["figures"]) >= 10
    for fig in meta["figures"].values():
        assert set(fig["files"]) == {"png", "svg"}
        assert all((out / f).stat().st_size > 2000 for f in fig["files"].values())
        for part in ("Source:", "Period:", "Population base:"):
            assert part in fig["footer"]
        assert fig["footer"] in html  # the caption says it too
    assert (out / "kpi_baseline.csv").is_file()
    if "pdf" in paths:
        assert (out / "evidence_pack.pdf").read_bytes()[:5] == b"%PDF-"


CHROMIUM = Path("/usr/bin/chromium")


def test_the_pack_renders_in_chromium_with_every_figure_loaded(demo_pack, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package to run the browser test")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from playwright.sync_api import sync_playwright

    out, _ = demo_pack
    url = (out / "evidence_pack.html").resolve().as_uri()
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        page = browser.new_page(viewport={"width": 900, "height": 1200})
        problems = []
        page.on("pageerror", lambda e: problems.append(f"error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "about:"))
                else problems.append(f"external request: {r.url}"))
        page.goto(url)
        page.wait_for_load_state("load")
        images = page.locator("figure img")
        assert images.count() >= 10
        sizes = page.evaluate("Array.from(document.querySelectorAll('figure img')).map(i => [i.complete, i.naturalWidth])")
        assert all(done and width > 300 for done, width in sizes), sizes
        assert page.locator("#headline tbody tr").count() >= 6
        assert "associations" in page.locator("#risk .caveat").inner_text().lower()
        page.screenshot(path=str(tmp_path / "pack.png"), full_page=True)
        browser.close()
    assert (tmp_path / "pack.png").stat().st_size > 50_000
    assert problems == []


@pytest.mark.parametrize("inference", ["normal", "permutation"])
def test_the_methods_name_the_hot_spot_inference_the_pack_used(demo_assessment, inference):
    import copy
    import re

    from reports.needs_pack import render_pack

    a = copy.copy(demo_assessment)
    a.meta = {**demo_assessment.meta,
              "hotspot_options": {**demo_assessment.meta["hotspot_options"], "inference": inference,
                                  "permutations": 99}}
    methods = " ".join(render_pack(a, {}, created="2026-01-01").split("<h3>Methods</h3>", 1)[1].split())
    said = re.search(r"Getis-Ord Gi\* with (.*?) and Benjamini-Hochberg", methods).group(1)
    assert said == {"normal": "normal-theory p-values of the z-scores",
                    "permutation": "conditional permutation inference (99 permutations)"}[inference]


def test_every_partner_route_absent_from_the_demo_is_named_with_its_template(demo_pack, demo_assessment):
    out, _ = demo_pack
    html = (out / "evidence_pack.html").read_text()
    section = html[html.index('id="partner"'):html.index('id="comparison"')]
    assert section.count("Absent from this pack") == 4
    for template in ("ae_ambulance_assaults.csv", "youth_justice.csv", "marac.csv", "education_summary.csv"):
        assert f"docs/templates/{template}" in section
    assert "partner_summary" not in demo_assessment.tables


def test_partner_data_in_the_store_gets_its_own_section_with_the_counts(demo_store, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    wards = Store(store).table("units_ward2018" if Store(store).has("units_ward2018") else "units_ward2022")
    code = sorted(wards["code"])[0]
    months = pd.period_range("2017-01", "2018-12", freq="M").strftime("%Y-%m")
    rows = [{"route": "partner_marac", "period": m, "month": pd.Timestamp(m + "-01"), "area_level": "borough",
             "area_code": pd.NA, "service": pd.NA, "measure": "marac_cases", "value": 3.0 if m < "2018" else 5.0,
             "suppressed": False, "suppressed_below": np.nan, "source_file": "marac.csv", "source_row": i + 1}
            for i, m in enumerate(months)]
    rows.append({**rows[-1], "route": "partner_ae_assaults", "area_level": "ward", "area_code": code, "service": "ae",
                 "measure": "assault_attendances", "value": np.nan, "suppressed": True, "suppressed_below": 4.0})
    pd.DataFrame(rows).astype({"area_code": "string", "service": "string"}).to_parquet(store / "partner_counts.parquet")
    a = assess(Store(store), seed=1)
    s = a.tables["partner_summary"].set_index("measure")
    assert (s.loc["marac_cases", "count"], s.loc["marac_cases", "previous"]) == (60.0, 36.0)
    assert s.loc["assault_attendances", "suppressed_cells"] == 1
    out = tmp_path / "pack"
    write_pack(a, out, pdf=False)
    html = (out / "evidence_pack.html").read_text()
    section = html[html.index('id="partner"'):html.index('id="comparison"')]
    assert section.count("Absent from this pack") == 2 and "+66.7%" in section and "lower bound" in section
    assert any(p["section"] == "3c. Partner data" and p["source"] == "marac.csv" for p in a.parts)


def test_the_recommendations_skeleton_rests_on_the_packs_own_findings_and_leaves_the_judgement_blank(demo_pack,
                                                                                                       demo_assessment):
    out, _ = demo_pack
    rec = pd.read_csv(out / "tables" / "recommendations_skeleton.csv", keep_default_na=False)
    summary = findings(demo_assessment)
    assert rec["finding"].tolist()[:len(summary)] == summary  # the same sentences, the same numbers
    assert len(rec) > len(summary)  # and what the summary leaves out (funnel, hot spots, data gaps)
    for col in ("implication for the strategy", "action", "lead", "by when"):
        assert (rec[col] == "").all()
    html = (out / "evidence_pack.html").read_text()
    section = html[html.index('id="recommendations"'):html.index('id="methods"')]
    assert section.count("[to be completed by the partnership]") == 2 * len(rec)
    for ref in set(re.findall(r"Figure (\d+b?\.\d+)", " ".join(rec["evidence"]))):
        assert f'id="fig-{ref.replace(".", "-")}"' in html, ref  # every figure cited is in the pack
    for ref in set(re.findall(r"tables/(\w+)\.csv", " ".join(rec["evidence"]))):
        assert (out / "tables" / f"{ref}.csv").is_file(), ref
    assert rec["finding"].str.startswith("No data in this pack for A&E and ambulance assault attendances").any()


def test_lsoa_counts_add_up_to_the_borough_and_the_smoothed_rates_pull_to_it(demo_assessment):
    t = demo_assessment.tables["lsoa_rolling_12m"]
    h = demo_assessment.tables["headline_rolling_12m"].set_index("measure")
    sv = t[t["measure"] == "serious violence"]
    assert sv["count"].sum() == h.loc["serious violence", "count"]
    borough = 1000 * sv["count"].sum() / sv["population"].sum()
    # empirical Bayes moves every rate towards the borough's, never past it
    assert ((sv["rate_eb_per_1000"] - borough).abs() <= (sv["rate_per_1000"] - borough).abs() + 1e-9).all()
