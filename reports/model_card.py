"""The model card: what a saved model is, how it did, and its caveats, as Markdown and HTML.

:func:`card_documents` is what the pipeline hands to :func:`models.registry.save_model`,
so the card is written into the same atomic version folder as the model.
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
    if meta.get("rate_ratios"):
        method.append(("table", *_table(meta["rate_ratios"], ["feature", "per", "rate_ratio", "lo", "hi"])))
    backtest = [("table", *_table(meta.get("backtest"), [
        "units", "method", "slice", "hit_rate", "pai", "pei", "rri", "harm_pai", "harm_pei"]))] \
        if meta.get("backtest") else [("p", "No backtest was run for this version.")]
    calibration = [("p", "Forecast and outcome by tenth of places (ranked by forecast), on the "
                         "month before the cutoff with a model fitted on earlier data."),
                   ("table", *_table(meta.get("calibration")))] \
        if meta.get("calibration") else [("p", "No calibration check was run.")]
    fair = meta.get("fairness") or {}
    fairness = [("table", *_table(fair.get("rows"), ["measure", "top_places", "borough", "ratio"])),
                ("p", f"Top {fair.get('top_n')} places. {fair.get('note', '')}")] \
        if fair else [("p", "No fairness profile was computed.")]
    caveats = [("p", c) for c in meta.get("caveats") or []]
    return [("Data", data), ("Method", method), ("Backtest", backtest),
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
