"""The briefing's forecasts-by-horizon section: each forecast with its measured skill and ceiling."""

from reports.briefing import horizons_context

SKILL = {"horizon_text": "next quarter", "pei": 0.847, "reference_pei": 0.816, "ceiling_pei": 0.857, "share": 0.988,
         "mean_diff": 0.031, "lo": 0.023, "hi": 0.039, "wins": 16, "losses": 0, "ties": 0, "n_origins": 16,
         "chosen": "glm", "verdict": "Better than last year's counts at this scale (grid250, next quarter): ..."}


def test_each_horizon_reads_as_one_row_with_its_skill_and_ceiling():
    meta = {"cutoff": "2018-07", "horizons": [
        {"role": "main", "use": "youth-work deployment", "horizon": 1, "model_version": "v0001", "method": "nested",
         "skill": {**SKILL, "horizon_text": "next month", "ties": 2}},
        {"role": "planning", "use": "Clear Hold Build planning", "horizon": 3, "model_version": "v0002",
         "method": "nested", "skill": SKILL},
    ]}
    month, quarter = horizons_context(meta)
    assert month["forecast"] == "next month (2018-07)" and month["use"] == "youth-work deployment"
    assert quarter["forecast"] == "next quarter (2018-07 to 2018-09)"
    assert quarter["method"] == "nested (glm)" and quarter["pei"] == "0.85" and quarter["reference"] == "0.82"
    assert quarter["diff"] == "+0.031 (+0.023 to +0.039); better in 16 of 16 months, worse in 0"
    assert month["diff"].endswith(", tied in 2")
    assert quarter["ceiling"] == "~0.86 (99%)" and quarter["verdict"].startswith("Better than")


def test_a_model_saved_without_a_backtest_shows_dashes():
    (row,) = horizons_context({"cutoff": "2018-07", "horizons": [
        {"role": "main", "use": "youth-work deployment", "horizon": 1, "method": "count_12m",
         "skill": {"horizon_text": "next month", "pei": None, "ceiling_pei": None, "verdict": "No backtest ..."}}]})
    assert (row["pei"], row["ceiling"], row["diff"]) == ("–", "–", "–")
    assert horizons_context({}) == []
