"""The model card says in one plain sentence whether the model beats last year's counts."""

from reports.model_card import backtest_text, ceiling_sentence, model_card, verdict

SUMMARY = [
    {"method": "nested", "slice": "5% area", "pei": 0.70, "hit_rate": 0.30, "pai": 6.0},
    {"method": "count_12m", "slice": "5% area", "pei": 0.68, "hit_rate": 0.29, "pai": 5.8},
]
CEILING = {"label": "expected PEI* of a long-run-rate oracle",
           "rows": [{"slice": "5% area", "ceiling_pei": 0.72, "ceiling_pei_lo": 0.65, "ceiling_pei_hi": 0.79,
                     "ceiling_hit_rate": 0.32, "above": 0.4, "above_hi": 0.05, "methods_above": []}],
           "alpha": 0.08, "n_sims": 200, "seed": 0}


def paired(lo, hi, mean=0.01):
    return [{"method": "nested", "against": "count_12m", "slice": "5% area", "mean_diff": mean, "boot_lo": lo,
             "boot_hi": hi, "wins": 12, "losses": 5, "ties": 1, "n_origins": 18, "default": True}]


def test_verdict_follows_the_paired_interval():
    no_better = verdict(paired(-0.003, 0.007), SUMMARY, method="nested", units="grid250", horizon=1)
    assert no_better.startswith("No better than last year's counts at this scale (grid250, next month)")
    assert "within noise" in no_better and "better in 12 of 18 months, worse in 5, tied in 1)" in no_better
    better = verdict(paired(0.002, 0.018), SUMMARY, method="nested", units="lsoa2011", horizon=3)
    assert better.startswith("Better than last year's counts at this scale (lsoa2011, next quarter)")
    assert "0.70" in better and "0.68" in better and "+0.002 to +0.018" in better
    worse = verdict(paired(-0.02, -0.001, -0.01), SUMMARY, method="nested")
    assert worse.startswith("Worse than last year's counts")
    assert verdict(paired(-0.003, 0.007), SUMMARY, method="count_12m").startswith("This model is last year's counts")
    assert verdict([], SUMMARY, method="nested").startswith("No backtest against last year's counts")


def test_ceiling_sentence_names_the_oracle_its_interval_and_how_often_methods_beat_it():
    text = ceiling_sentence(SUMMARY, CEILING, method="nested")
    assert text.startswith("PEI* 0.70 against 0.72, the expected PEI* of a long-run-rate oracle (97%; its simulation "
                           "interval 0.65-0.79; 40% of the methods' months scored above it)")
    assert "hit rate 0.30 against the oracle's 0.32" in text and "a yardstick, not a bound" in text
    assert "attainable" not in text
    assert ceiling_sentence(SUMMARY, None, method="nested") == "No long-run-rate oracle was simulated."


def test_card_opens_with_the_verdict_and_the_ceiling():
    meta = {"version": "v0001", "method": "nested", "units": "grid250", "horizon": 1, "backtest": SUMMARY,
            "backtest_paired": paired(-0.003, 0.007), "ceiling": CEILING, "backtest_origins": ["2017-01", "2018-06", 18],
            "chosen": {"method": "glm", "criterion": "mean PEI* at 1%, 5%, 10% of area",
                       "inner_origins": ["2018-05", "2017-06"], "scores": {"long_mean": 0.71, "glm": 0.73}},
            "calibration": [{"group": 1, "units": 10, "expected": 5.0, "observed": 4.0, "ratio": 0.8,
                             "ratio_lo": 0.22, "ratio_hi": 2.05}],
            "calibration_note": "pooled over the forecasts made at 12 origins 2017-07..2018-06"}
    md, page = model_card(meta)
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Verdict"
    first = md.split("## Verdict", 1)[1].split("## ", 1)[0]
    assert "No better than last year's counts at this scale" in first and "against 0.72, the expected PEI*" in first
    # the oracle per slice, with its interval and how often methods scored above it
    assert "| 5% area | 0.72 | 0.65 | 0.79 | 0.4 | 0.05 |" in md
    assert "Chosen by a backtest on earlier origins only (nested): glm" in md and "glm 0.730" in md
    assert "pooled over the forecasts made at 12 origins" in md and "ratio_hi" in md
    assert "No better than last year&#x27;s counts" in page


def test_backtest_text_prints_paired_differences_and_the_ceiling():
    report = {"units": "grid250", "horizon": 3, "origins": ["2017-01", "2018-04", 16], "default_method": "nested",
              "reference": "count_12m", "records": [{**r, "ceiling_pei": 0.72, "pei_share": r["pei"] / 0.72}
                                                    for r in SUMMARY],
              "paired": paired(0.002, 0.018), "ceiling": CEILING}
    lines = backtest_text(report)
    assert lines[0].startswith("grid250, horizon 3 (next quarter), origins 2017-01..2018-04 (16)")
    assert any("nested      *  5% area: +0.0100 [+0.0020, +0.0180]  12/5/1" in line for line in lines)
    assert any(line.startswith("expected PEI* of a long-run-rate oracle (95% simulation interval): "
                               "5% area 0.720 [0.650, 0.790]") for line in lines)
    assert "  method-months above it (above its interval): 5% area 40% (5%); methods whose mean is above it: " \
           "5% area none" in lines
    assert any(line.startswith("verdict: Better than last year's counts") for line in lines)
