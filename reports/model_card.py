"""The model card: what a saved model is, how it did, and its caveats, as Markdown and HTML.

:func:`card_documents` is what the pipeline hands to :func:`models.registry.save_model`,
so the card is written into the same atomic version folder as the model. The card
opens with the verdict in plain words (:func:`verdict`): better than, no better than,
or worse than last year's counts at this scale, by the paired per-origin interval,
and how it compares with the expected PEI* of a long-run-rate oracle (:func:`ceiling_sentence`).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd


def _table(records, columns=None) -> tuple[list[str], list[list[str]]]:
    frame = pd.DataFrame(records or [])
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]

    def fmt(v):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return list(frame.columns), [[fmt(v) for v in row] for row in frame.itertuples(index=False)]


VERDICT_SLICE = "5% area"
"""The slice the verdict is stated at (the tasking footprint most partnerships use)."""
HORIZON_WORDS = {1: "next month", 3: "next quarter"}


def horizon_words(horizon) -> str:
    """"next month", "next quarter" or "the next N months"."""
    try:
        h = int(horizon)
    except (TypeError, ValueError):
        return "the horizon"
    return HORIZON_WORDS.get(h, f"the next {h} months")


def _pick(rows, **match) -> dict | None:
    for r in rows or []:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def verdict(paired: list[dict], summary: list[dict], *, method: str, reference: str = "count_12m",
            slice: str = VERDICT_SLICE, units: str = "", horizon=1) -> str:
    """One plain sentence: is ``method`` better than last year's counts, by more than noise?

    Reads the paired per-origin comparison of PEI* at ``slice`` (the bootstrap
    interval of the mean difference): above zero is "better", below zero "worse",
    and an interval holding zero is "no better than last year's counts at this scale".

    Examples
    --------
    >>> paired = [{"method": "nested", "against": "count_12m", "slice": "5% area", "mean_diff": 0.001,
    ...            "boot_lo": -0.004, "boot_hi": 0.006, "wins": 9, "losses": 8, "n_origins": 18}]
    >>> summary = [{"method": "nested", "slice": "5% area", "pei": 0.70},
    ...            {"method": "count_12m", "slice": "5% area", "pei": 0.70}]
    >>> print(verdict(paired, summary, method="nested", units="grid250")[:69])
    No better than last year's counts at this scale (grid250, next month)
    """
    p = _pick(paired, method=method, against=reference, slice=slice)
    mine, ref = _pick(summary, method=method, slice=slice), _pick(summary, method=reference, slice=slice)
    where = f"{units}, {horizon_words(horizon)}" if units else horizon_words(horizon)
    if method == reference:
        return f"This model is last year's counts ({where}): the reference every other method is judged against."
    if p is None or mine is None or ref is None:
        return f"No backtest against last year's counts was run at this scale ({where})."
    lo, hi = p["boot_lo"], p["boot_hi"]
    if lo is None or hi is None or p.get("mean_diff") is None:
        return f"Not enough backtest origins to compare with last year's counts ({where})."
    head = ("Better than" if lo > 0 else "Worse than" if hi < 0 else "No better than")
    tail = "" if lo > 0 or hi < 0 else "; the difference is within noise"
    return (f"{head} last year's counts at this scale ({where}): in the top {slice.replace(' area', ' of the area')} it caught "
            f"{mine['pei']:.2f} of the most any selection could have (PEI*) against {ref['pei']:.2f} for the "
            f"12-month count, {p['mean_diff']:+.3f} (95% interval {lo:+.3f} to {hi:+.3f}; better in "
            f"{p['wins']} of {p['n_origins']} months, worse in {p['losses']}{_tied(p.get('ties'))}){tail}.")


def _tied(ties) -> str:
    return f", tied in {ties}" if ties else ""


ORACLE = "expected PEI* of a long-run-rate oracle"
"""How every output names the ceiling (``models.ceiling.LABEL``; reports do not import models)."""


def ceiling_sentence(summary: list[dict], ceiling: dict | None, *, method: str, slice: str = VERDICT_SLICE) -> str:
    """PEI* beside the expected PEI* of a long-run-rate oracle and its simulation interval, in words.

    ("PEI* 0.70 against 0.72 expected of a long-run-rate oracle (97%; ...)").
    """
    mine = _pick(summary, method=method, slice=slice)
    row = _pick((ceiling or {}).get("rows"), slice=slice)
    if mine is None or row is None or not row.get("ceiling_pei"):
        return "No long-run-rate oracle was simulated."
    share = mine["pei"] / row["ceiling_pei"]
    interval = (f"; its simulation interval {row['ceiling_pei_lo']:.2f}-{row['ceiling_pei_hi']:.2f}"
                if row.get("ceiling_pei_lo") is not None and row.get("ceiling_pei_hi") is not None else "")
    above = (f"; {row['above']:.0%} of the methods' months scored above it" if row.get("above") is not None else "")
    what = (f"The oracle knows every place's long-run rate and nothing else; each period's counts are a random draw "
            f"around those rates ({ceiling.get('n_sims')} simulated periods, overdispersion "
            f"{ceiling.get('alpha', 0):.3f}), so it is a yardstick, not a bound: a month's draw, or a place that "
            "really changed, can put a forecast above it")
    return (f"PEI* {mine['pei']:.2f} against {row['ceiling_pei']:.2f}, the {ORACLE} ({share:.0%}{interval}{above}); "
            f"hit rate {mine['hit_rate']:.2f} against the oracle's {row['ceiling_hit_rate']:.2f}. {what}.")


def skill_summary(meta: dict, *, slice: str = VERDICT_SLICE, reference: str = "count_12m") -> dict:
    """A saved model's measured skill and ceiling at ``slice``, from its card data (for briefings).

    Returns a dict: ``horizon``, ``horizon_text``, ``method``, ``chosen`` (a nested
    default's pick), ``origins``, ``pei``, ``reference_pei``, ``ceiling_pei``,
    ``share`` (of the ceiling), ``mean_diff``/``lo``/``hi``/``wins``/``losses``/
    ``n_origins`` (paired against ``reference``), ``verdict`` and ``ceiling_text``
    (the card's sentences). Values are None when the model was saved without a backtest.
    """
    summary = meta.get("backtest") or []
    method = meta.get("method", "")
    mine, ref = _pick(summary, method=method, slice=slice), _pick(summary, method=reference, slice=slice)
    p = _pick(meta.get("backtest_paired"), method=method, against=reference, slice=slice) or {}
    row = _pick((meta.get("ceiling") or {}).get("rows"), slice=slice) or {}
    pei, ceil = (mine or {}).get("pei"), row.get("ceiling_pei")
    return {
        "horizon": meta.get("horizon"), "horizon_text": horizon_words(meta.get("horizon")), "slice": slice,
        "method": method, "chosen": (meta.get("chosen") or {}).get("method"),
        "origins": meta.get("backtest_origins"), "pei": pei, "reference_pei": (ref or {}).get("pei"),
        "ceiling_pei": ceil, "share": pei / ceil if pei is not None and ceil else None,
        "mean_diff": p.get("mean_diff"), "lo": p.get("boot_lo"), "hi": p.get("boot_hi"), "wins": p.get("wins"),
        "losses": p.get("losses"), "ties": p.get("ties"), "n_origins": p.get("n_origins"),
        "verdict": verdict(meta.get("backtest_paired"), summary, method=method, reference=reference, slice=slice,
                           units=meta.get("units", ""), horizon=meta.get("horizon", 1)),
        "ceiling_text": ceiling_sentence(summary, meta.get("ceiling"), method=method, slice=slice),
    }


def backtest_text(report: dict) -> list[str]:
    """A backtest report (:func:`models.backtest.backtest_report`) as lines of text: table, paired differences, ceiling, verdict."""
    summary = [r for r in report["records"] if "origin" not in r]
    table = pd.DataFrame(summary)
    cols = [c for c in ["method", "slice", "hit_rate", "pai", "pei", "ceiling_pei", "pei_share", "rri", "harm_pei"]
            if c in table]
    first, last, n = report["origins"]
    lines = [f"{report['units']}, horizon {report['horizon']} ({horizon_words(report['horizon'])}), "
             f"origins {first}..{last} ({n}); default method: {report['default_method']}"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 500):
        lines += table[cols].round(3).to_string(index=False).splitlines()
    lines.append(f"paired PEI* difference vs {report['reference']} per origin "
                 "(mean, 95% bootstrap interval, months better/worse/tied):")
    def num(v) -> str:
        return "   n/a " if v is None else f"{v:+.4f}"

    for r in report["paired"]:
        mark = "*" if r["default"] else " "
        lines.append(f"  {r['method']:<12}{mark} {r['slice']:>8}: {num(r['mean_diff'])} "
                     f"[{num(r['boot_lo'])}, {num(r['boot_hi'])}]  {r['wins']}/{r['losses']}/{r['ties']}")
    chosen = [r for r in report["records"] if "origin" in r and r.get("why") and r.get("slice") == VERDICT_SLICE]
    for method in dict.fromkeys(r["method"] for r in chosen):
        lines.append(f"{method} chose per origin (on earlier origins only):")
        lines += [f"  {r['origin']}: {r['why']}" for r in chosen if r["method"] == method]
    ceiling = report.get("ceiling")
    if ceiling:
        parts = ", ".join(f"{r['slice']} {r['ceiling_pei']:.3f} [{r['ceiling_pei_lo']:.3f}, {r['ceiling_pei_hi']:.3f}]"
                          for r in ceiling["rows"])
        lines.append(f"{ceiling.get('label', ORACLE)} (95% simulation interval): {parts} (overdispersion "
                     f"{ceiling['alpha']:.3f}, {ceiling['n_sims']} simulated periods, seed {ceiling['seed']})")
        packed = [r for r in ceiling["rows"] if r.get("oracle_area_share") is not None and "area" in r["slice"]]
        if packed:
            lines.append("  the oracle's slices cover: " + ", ".join(
                f"{r['slice']} {r['oracle_area_share']:.2%}" for r in packed) + " of the area")
        above = [r for r in ceiling["rows"] if r.get("above") is not None]
        if above:
            lines.append("  method-months above it (above its interval): " + ", ".join(
                f"{r['slice']} {r['above']:.0%} ({r['above_hi']:.0%})" for r in above)
                + "; methods whose mean is above it: " + "; ".join(
                f"{r['slice']} {', '.join(r['methods_above']) or 'none'}" for r in above))
    methods = list(dict.fromkeys(r["method"] for r in summary))
    others = [m for m in methods if m != report["reference"]] or methods
    default = report["default_method"] if report["default_method"] in methods else others[0]
    lines.append("verdict: " + verdict(report["paired"], summary, method=default, units=report["units"],
                                       horizon=report["horizon"]))
    lines.append("         " + ceiling_sentence(summary, ceiling, method=default))
    return lines


def _sections(meta: dict) -> list[tuple[str, list]]:
    """Card content as (heading, blocks); a block is ("p", text) or ("table", header, rows)."""
    data = [
        ("p", f"Units: {meta.get('units', 'n/a')}. Cutoff (data up to the month before): "
              f"{meta.get('cutoff', 'n/a')}. Horizon: {meta.get('horizon', 'n/a')} month(s). "
              f"Target groups: {', '.join(meta.get('target_groups') or []) or 'n/a'}."),
    ]
    if meta.get("data_period"):
        p = meta["data_period"]
        data.append(("p", f"Data period: {p.get('start')} to {p.get('end')}."))
    if meta.get("data_dir"):
        source = "monthly counts by area" if meta.get("source") == "areas" else "point events"
        data.append(("p", f"Data folder: {meta['data_dir']} (events: {source})."))
    if meta.get("data_hashes"):
        data.append(("table", ["file", "sha256"], [[k, v] for k, v in meta["data_hashes"].items()]))
    params = meta.get("params") or {}
    method = [
        ("p", f"Method: {meta.get('method', 'n/a')} ({meta.get('estimator', '')}); seed "
              f"{meta.get('seed', 'n/a')}. Rows are (place, origin) pairs from earlier cutoffs; "
              "the target is the count in the horizon after each origin, so nothing after the "
              "cutoff is used."),
        ("table", ["parameter", "value"], [[k, str(v)] for k, v in params.items()]),
        ("p", f"Features ({len(meta.get('features') or [])}): {', '.join(meta.get('features') or [])}."),
    ]
    chosen = meta.get("chosen")
    if chosen:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in (chosen.get("scores") or {}).items())
        inner = chosen.get("inner_origins") or []
        method.append(("p", f"Chosen by a backtest on earlier origins only (nested): {chosen.get('method')}. "
                            f"Criterion: {chosen.get('criterion', '')}"
                            + (f" over {len(inner)} origins {inner[-1]}..{inner[0]}" if inner else "")
                            + (f": {scores}." if scores else " (no earlier origin to judge by: the first candidate).")
                            + (f" Why: {chosen['why']}." if chosen.get("why") else "")))
    if meta.get("rate_ratios"):
        method.append(("p", "Rate ratios: how the forecast changes when a feature doubles (counts and rates) "
                            "or rises by one standard deviation (scores and shares), others held fixed."))
        method.append(("table", *_table(meta["rate_ratios"], ["feature", "per", "rate_ratio", "lo", "hi"])))
    if meta.get("backtest"):
        origins = meta.get("backtest_origins") or []
        backtest = [
            ("p", f"Rolling origins {origins[0]}..{origins[1]} ({origins[2]}), each forecast from data before it."
                  if len(origins) == 3 else "Rolling origins, each forecast from data before it."),
            ("table", *_table(meta.get("backtest"), [
                "units", "method", "slice", "hit_rate", "pai", "pei", "ceiling_pei", "pei_share", "rri",
                "harm_pei"])),
        ]
        rows = (meta.get("ceiling") or {}).get("rows")
        if rows:
            backtest += [("p", f"The {ORACLE} per slice, with its 95% simulation interval; 'above' is the share "
                               "of method-months that scored above it ('above_hi': above its interval)."),
                         ("table", *_table(rows, ["slice", "ceiling_pei", "ceiling_pei_lo", "ceiling_pei_hi",
                                                  "above", "above_hi", "oracle_area_share"])),
                         ("p", "oracle_area_share: how much of the area the oracle's slice covers (a slice stops at "
                               "the first place that would overflow it); at 1% of an area's LSOAs it is a few "
                               "places, and the oracle's figure there measures packing as much as knowledge.")]
        if meta.get("backtest_paired"):
            backtest += [("p", f"Paired per origin against {meta['backtest_paired'][0].get('against')}: mean "
                               "difference in PEI*, 95% bootstrap interval over origins, months better/worse."),
                         ("table", *_table(meta["backtest_paired"], [
                             "method", "slice", "mean_diff", "boot_lo", "boot_hi", "wins", "losses", "ties"]))]
    else:
        backtest = [("p", "No backtest was run for this version.")]
    calibration = [("p", "Forecast and outcome by tenth of places (ranked by forecast), "
                         f"{meta.get('calibration_note') or 'with a model fitted on earlier data'}. "
                         "ratio_lo..ratio_hi is the 95% Poisson interval of observed / expected: "
                         "a tenth whose interval holds 1 is within noise."),
                   ("table", *_table(meta.get("calibration"),
                                     ["group", "units", "expected", "observed", "ratio", "ratio_lo", "ratio_hi"]))] \
        if meta.get("calibration") else [("p", "No calibration check was run.")]
    fair = meta.get("fairness") or {}
    fairness = [("table", *_table(fair.get("rows"), ["measure", "top_places", "borough", "ratio"])),
                ("p", f"Top {fair.get('top_n')} places. {fair.get('note', '')}")] \
        if fair else [("p", "No fairness profile was computed.")]
    issued = [r for r in meta.get("ledger") or [] if r.get("units") == meta.get("units")]
    ledger = [("p", "Every forecast svrisk issued on this data folder is scored once its months arrive (the "
                    "forecast ledger, `svrisk ledger`): PEI* at 5% of the area against the 12-month count issued "
                    "at the same cutoff. A backtest says how a method would have done; this is how it did."),
              ("table", ["horizon", "scored", "cutoffs", "PEI* forecast", "PEI* count", "difference",
                         "paired 95% interval"],
               [[str(r["horizon"]), str(r["scored"]), f"{r['first']}..{r['last']}", f"{r['pei_5']:.3f}",
                 f"{r['count_pei_5']:.3f}", f"{r['difference']:+.3f}",
                 f"{r['interval'][0]:+.3f} to {r['interval'][1]:+.3f}" if r.get("interval") else "needs 6 scored"]
                for r in issued])] + [("p", w) for r in issued for w in r.get("warnings", [])] \
        if issued else [("p", "No forecast on these units has been scored yet: the ledger fills as the data "
                              "for forecast months arrive.")]
    caveats = [("p", c) for c in meta.get("caveats") or []]
    summary = meta.get("backtest") or []
    name = meta.get("method", "")
    verdict_blocks = [
        ("p", verdict(meta.get("backtest_paired"), summary, method=name, units=meta.get("units", ""),
                      horizon=meta.get("horizon", 1))),
        ("p", ceiling_sentence(summary, meta.get("ceiling"), method=name)),
    ]
    return [("Verdict", verdict_blocks), ("Data", data), ("Method", method), ("Backtest", backtest),
            ("Issued forecasts, scored", ledger),
            ("Calibration", calibration), ("Fairness profile", fairness), ("Caveats", caveats)]


def model_card(meta: dict) -> tuple[str, str]:
    """The model card as (Markdown, HTML)."""
    title = f"svrisk model {meta.get('version', '')}: {meta.get('method', '')}"
    md = [f"# {title}", "", f"Created {meta.get('created', '')}.", ""]
    page = ["<!doctype html>", "<html><head><meta charset='utf-8'>",
            f"<title>{html.escape(title)}</title>",
            "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style>",
            "</head><body>", f"<h1>{html.escape(title)}</h1>",
            f"<p>Created {html.escape(str(meta.get('created', '')))}.</p>"]
    for heading, blocks in _sections(meta):
        md += [f"## {heading}", ""]
        page.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if block[0] == "p":
                md += [block[1], ""]
                page.append(f"<p>{html.escape(block[1])}</p>")
            else:
                header, rows = block[1], block[2]
                if not header:
                    continue
                md.append("| " + " | ".join(header) + " |")
                md.append("|" + "---|" * len(header))
                md += ["| " + " | ".join(r) + " |" for r in rows]
                md.append("")
                page.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
                page += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
                page.append("</table>")
    page.append("</body></html>")
    return "\n".join(md), "\n".join(page)


def card_documents(meta: dict) -> dict[str, str]:
    """``{"card.md": ..., "card.html": ...}`` for a version's metadata."""
    md, page = model_card(meta)
    return {"card.md": md, "card.html": page}
