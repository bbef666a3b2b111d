"""The forecast ledger end to end: a run on the Met's LSOA tables to month M, the next release
arrives, and the next run scores the first run's forecast against it, as a hand computation does."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from ingest_fixtures import write_csv
from shapely.geometry import box
from typer.testing import CliRunner

from models.ledger import Ledger, LedgerError, forecast_entry, record, score_due
from service.cli import app

runner = CliRunner()
CODES = [f"E0190{i:04d}" for i in range(9)]
HEADER = ["LSOA Code", "LSOA Name", "Borough", "Major Category", "Minor Category"]


def rate(i: int, m: int) -> int:
    """Violence in LSOA ``i`` in month ``m`` (0 = 2023-01): distinct levels, a little seasonal wobble."""
    return 2 + 3 * i + (m * (i + 1)) % 4


def release(folder, first: str, last: str, name: str) -> None:
    months = pd.date_range(first + "-01", last + "-01", freq="MS")
    cols = [f"{m:%Y%m}" for m in months]
    offset = [(m.year - 2023) * 12 + m.month - 1 for m in months]
    rows = [[code, "Fixture", "E09000099", "VIOLENCE AGAINST THE PERSON", "VIOLENCE WITH INJURY",
             *[str(rate(i, k)) for k in offset]] for i, code in enumerate(CODES)]
    write_csv(folder / "crime" / name, HEADER + cols, rows)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ledger")
    data = tmp / "data"
    (data / "boundaries").mkdir(parents=True)
    cells = [box(530000 + 500 * (i % 3), 180000 + 500 * (i // 3), 530500 + 500 * (i % 3), 180500 + 500 * (i // 3))
             for i in range(9)]
    gpd.GeoDataFrame({"LSOA21CD": CODES, "LSOA21NM": CODES}, geometry=cells, crs="EPSG:27700") \
        .to_file(data / "boundaries" / "lsoa2021.gpkg")
    release(data, "2022-01", "2024-06", "lsoa_202201_202406.csv")
    env = {"SVRISK_OUT_DIR": str(tmp / "out"), "SVRISK_MODEL__PERMUTATIONS": "99", "SVRISK_MAP__PDF": "false"}
    args = ["run", "--data", str(data), "--units", "lsoa2021"]
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    release(data, "2023-08", "2024-07", "lsoa_202308_202407.csv")  # the next release: truth for 2024-07
    second = runner.invoke(app, args, env=env)
    assert second.exit_code == 0, second.output
    runs = sorted(p for p in (tmp / "out" / "runs").iterdir() if (p / "run.json").is_file())
    return tmp, data, env, runs


@pytest.mark.slow
def test_the_second_run_scores_the_first_run_s_forecast_as_a_hand_computation_does(two_runs):
    tmp, data, env, runs = two_runs
    first, second = runs
    assert json.loads((first / "run.json").read_text())["cutoff"] == "2024-07"
    ranking = pd.read_parquet(first / "ranking.parquet").set_index("unit_id")
    actual = pd.Series({code: rate(i, 18) for i, code in enumerate(CODES)}, dtype=float)  # 2024-07 = month 18
    # nine equal squares: 5% of the area is less than one square, so the slice is the top square alone
    top = ranking["rank"].idxmin()
    count_12m = pd.Series({code: sum(rate(i, m) for m in range(6, 18)) for i, code in enumerate(CODES)})
    meta = json.loads((second / "run.json").read_text())
    (scored,) = [r for r in meta["ledger"]["recent"] if r["horizon"] == 1]
    assert scored["cutoff"] == "2024-07" and scored["events"] == actual.sum()
    assert scored["hit_rate_5"] == pytest.approx(actual[top] / actual.sum())
    assert scored["count_hit_rate_5"] == pytest.approx(actual[count_12m.idxmax()] / actual.sum())
    assert scored["pei_5"] == pytest.approx(actual[top] / actual.max())
    assert scored["mae"] == pytest.approx((ranking["expected"] - actual.reindex(ranking.index)).abs().mean())
    inside = (actual.reindex(ranking.index) >= ranking["expected_lo"]) & (actual.reindex(ranking.index) <= ranking["expected_hi"])
    assert scored["range_coverage_80"] == pytest.approx(inside.mean())
    # the next-quarter forecast (2024-07..09) is not due yet; the first run had nothing to score
    assert all(r["horizon"] == 1 for r in meta["ledger"]["recent"])
    assert json.loads((first / "run.json").read_text())["ledger"]["recent"] == []
    html = (second / "briefing.html").read_text()
    assert "How the last forecast did:</b> the lsoa2021 forecast for 2024-07" in html
    # the second run's model card quotes the scored forecast beside its backtest
    card = (tmp / "out" / "models" / meta["model_version"] / "card.md").read_text()
    assert "## Issued forecasts, scored" in card and "| 1 | 1 | 2024-07..2024-07 |" in card


@pytest.mark.slow
def test_svrisk_ledger_prints_the_record_and_json(two_runs):
    tmp, data, env, _ = two_runs
    out = runner.invoke(app, ["ledger", "--data", str(data)], env=env)
    assert out.exit_code == 0, out.output
    assert "lsoa2021, 1 month(s) ahead: 1 scored 2024-07..2024-07" in out.output
    assert "an interval needs 6 scored forecasts; 1 so far" in out.output
    js = runner.invoke(app, ["ledger", "--data", str(data), "--json"], env=env)
    doc = json.loads(js.output)
    assert doc["issued"] == 4 and len(doc["scored"]) == 1  # two runs x (next month, next quarter)


def test_a_revised_month_is_scored_again_and_says_so(tmp_path):
    units = pd.Index(["a", "b", "c"])
    ranking = pd.DataFrame({"unit_id": units, "expected": [3.0, 2.0, 1.0], "expected_lo": [1.0, 1.0, 0.0],
                            "expected_hi": [5.0, 4.0, 2.0], "rank": [1, 2, 3]})
    X = pd.DataFrame({"cnt_sv_12m": [30.0, 10.0, 20.0], "cnt_sv_1m": [3.0, 1.0, 2.0]}, index=units)
    ledger = Ledger(tmp_path / "ledger")
    ledger.append(forecast_entry(ranking, X, run_id="r1", created="2024-01-05", units="lsoa2021", source="areas",
                                 cutoff="2024-01", horizon=1, method="nested", model_version="v0001",
                                 areas=pd.Series(1.0, index=units)))

    class Truth:  # the builder's view of the data: complete months and the counts that happened
        def __init__(self, counts):
            self.complete_months = [pd.Timestamp("2024-01-01")]
            self.counts = pd.Series(counts, index=units, dtype=float)

        def target(self, cutoff, horizon):
            return self.counts

    assert len(score_due(ledger, {("lsoa2021", "areas"): Truth([4, 0, 1])})) == 1
    assert score_due(ledger, {("lsoa2021", "areas"): Truth([4, 0, 1])}) == []  # same truth: scored once
    (rescored,) = score_due(ledger, {("lsoa2021", "areas"): Truth([2, 0, 3])})
    assert "revised 2024-01 (5 events before, 5 now)" in rescored["revised"]
    row = record(ledger).iloc[0]
    assert row["hit_rate_5"] == pytest.approx(2 / 5) and row["count_hit_rate_5"] == pytest.approx(2 / 5)
    assert row["range_coverage_80"] == pytest.approx(1 / 3) and bool(row["revised"])
    assert score_due(ledger, {("ward2022", "areas"): Truth([1, 1, 1])}) == []  # other units: not this entry


def test_a_damaged_ledger_file_is_one_error_naming_it_and_a_failed_write_leaves_nothing(tmp_path):
    ledger = Ledger(tmp_path / "ledger")
    (ledger.root / "entries").mkdir(parents=True)
    bad = ledger.root / "entries" / "r1--lsoa2021--h1.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(LedgerError, match=r"r1--lsoa2021--h1.parquet: ledger entry cannot be read"):
        ledger.entries()
    bad.unlink()

    def boom(_tmp):
        raise KeyboardInterrupt  # a run killed while writing

    from models import ledger as module

    with pytest.raises(KeyboardInterrupt):
        module._atomic(ledger.root / "scores" / "x.json", boom)
    assert list((ledger.root / "scores").iterdir()) == []
    assert np.isnan(module._paired_interval(np.array([0.1]))[0])


def test_the_lead_is_the_finest_recent_edition_and_the_configured_units_when_current():
    from types import SimpleNamespace

    from service.run import lead_choice

    class Units(list):
        def __init__(self, n, edition):
            super().__init__([0] * n)
            self.edition = edition

    def fb(n, edition, source="areas"):
        return SimpleNamespace(units=Units(n, edition), source=source)

    points, lsoa, ward = fb(211, "lsoa2011", "points"), fb(220, "lsoa2021"), fb(24, "ward2022")
    month = pd.Timestamp
    # points years old: the LSOA tables lead even 8 months behind the ward tables
    lead, why = lead_choice(points, month("2018-07-01"), [(lsoa, month("2025-08-01")), (ward, month("2026-04-01"))])
    assert lead is lsoa and "points end 2018-06" in why
    # an LSOA table two years behind the wards does not lead
    assert lead_choice(points, month("2018-07-01"), [(lsoa, month("2024-03-01")), (ward, month("2026-04-01"))])[0] is ward
    # points as current as the tables: the configured units lead
    assert lead_choice(points, month("2026-03-01"), [(lsoa, month("2026-03-01")), (ward, month("2026-04-01"))]) == \
        (points, None)
