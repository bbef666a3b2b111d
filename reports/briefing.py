"""The tasking briefing: one printable (A4) HTML page per run, from ``reports/templates/briefing.html.j2``.

It shows a static map (PNG drawn with matplotlib, embedded so the page stands alone and
prints), the top 10 places and the Clear Hold Build areas with their reasons, what changed
since the last run (``rank_change`` = previous rank - current rank), the needs-assessment
figures (``figures.json``), the fairness profile (``fairness.json``) and the caveats.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd

from reports import layers as gl
from reports.maps import classify
from reports.run_folder import Run, load_run, run_layers
from reports.templating import environment

TEMPLATE = "briefing.html.j2"
TOP_N = 10


def map_png(layers, meta, *, scheme: str = "quantile", value: str = "expected",
            width_in: float = 7.0, dpi: int = 130) -> bytes:
    """A static PNG of the risk choropleth with areas and hubs (matplotlib, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ranked = layers["ranked_units"]
    idx, labels, colours = classify(ranked[value], scheme)
    xmin, ymin, xmax, ymax = ranked.total_bounds
    aspect = (ymax - ymin) / max(xmax - xmin, 1.0)
    fig = Figure(figsize=(width_in, max(2.5, min(width_in * aspect, 9.0))), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    face = [colours[i] if i >= 0 else "#cccccc" for i in idx]
    ranked.plot(ax=ax, color=face, edgecolor="#636363", linewidth=0.3)
    handles = [Patch(facecolor=c, edgecolor="#636363", label=lab)
               for lab, c in zip(labels, colours, strict=True)]
    areas = layers.get("areas")
    if areas is not None and len(areas):
        areas.to_crs(ranked.crs).boundary.plot(ax=ax, color=gl.AREA_COLOUR, linewidth=2.0)
        for _, a in areas.to_crs(ranked.crs).iterrows():
            p = a.geometry.representative_point()
            ax.annotate(str(a.get("area_id", "")), (p.x, p.y), color=gl.AREA_COLOUR,
                        fontsize=9, fontweight="bold", ha="center")
        handles.append(Line2D([], [], color=gl.AREA_COLOUR, linewidth=2, label="Clear Hold Build area"))
    hubs = layers.get("hubs")
    if hubs is not None and len(hubs):
        h = hubs.to_crs(ranked.crs)
        for kind, part in h.groupby(h["kind"].astype(str) if "kind" in h else np.zeros(len(h))):
            colour = gl.HUB_COLOURS.get(str(kind), "#525252")
            part.plot(ax=ax, color=colour, markersize=22, edgecolor="white", linewidth=0.6)
            handles.append(Line2D([], [], marker="o", linestyle="", color=colour, label=str(kind).capitalize()))
    ax.set_axis_off()
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.9,
              title="Expected count" if value == "expected" else value, title_fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _fmt(v, digits: int = 1) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "–"
    if isinstance(v, float | np.floating):
        return f"{v:,.{digits}f}"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    return str(v)


def _join(v) -> str:
    if isinstance(v, list | tuple | np.ndarray):
        return ", ".join(str(x) for x in v) or "–"
    return _fmt(v)


def _changes(ranking: pd.DataFrame, top_n: int) -> dict:
    if "rank_change" not in ranking or ranking["rank_change"].isna().all():
        return {"has_previous": False}
    r = ranking.assign(change=pd.to_numeric(ranking["rank_change"], errors="coerce"))
    r = r[r["change"].notna()]
    prev = r["rank"] + r["change"]
    label = r["name"].astype(str) if "name" in r else r["unit_id"].astype(str)
    entered = label[(r["rank"] <= top_n) & (prev > top_n)].tolist()
    left = int(((r["rank"] > top_n) & (prev <= top_n)).sum())
    order = r.assign(label=label).sort_values(["change", "rank"], ascending=[False, True])
    up = [f"{x.label}: up {int(x.change)} to #{int(x.rank)}" for x in order[order["change"] > 0].head(5).itertuples()]
    order = order.sort_values(["change", "rank"], ascending=[True, True])
    down = [f"{x.label}: down {int(-x.change)} to #{int(x.rank)}" for x in order[order["change"] < 0].head(5).itertuples()]
    return {"has_previous": True, "entered": entered, "left_count": left, "up": up, "down": down}


def _backtest_text(backtest, method) -> str:
    rows = backtest.get("rows", []) if isinstance(backtest, dict) else (backtest or [])
    rows = [r for r in rows if isinstance(r, dict) and r.get("method", method) == method]
    parts = []
    for r in rows[:3]:
        cov = r.get("coverage", "")
        bits = [f"{k.replace('_', ' ')} {_fmt(r[k], 2)}" for k in ("hit_rate", "pai", "pei") if k in r]
        parts.append(f"at coverage {cov}: " + ", ".join(bits))
    return "; ".join(parts)


def age_text(period: dict) -> dict:
    """How old an analysis' data is, as the briefing says it: ``{"text", "warning"}``."""
    age = period.get("age_months")
    if age is None:
        return {"text": "", "warning": ""}
    what = "area tables" if period.get("source") == "areas" else "point events"
    return {"text": f"{what} {period.get('start')} to {period.get('end')}; the newest month was "
                    f"{age} month{'s' if age != 1 else ''} old when this was made",
            "warning": period.get("warning", "")}


def current_context(run, top_n: int = TOP_N) -> dict | None:
    """The forecast from the freshest area tables, when the run has one (it leads the briefing)."""
    current = run.meta.get("current")
    if not current or "current_ranking" not in run.tables:
        return None
    ranking = run.tables["current_ranking"].sort_values(["rank", "unit_id"], kind="stable")
    rows = [{"rank": int(r["rank"]), "name": _fmt(r.get("name", r["unit_id"])), "unit_id": r["unit_id"],
             "expected": _fmt(float(r["expected"])),
             "interval": (f"{float(r['expected_lo']):.0f} - {float(r['expected_hi']):.0f}"
                          if pd.notna(r.get("expected_lo")) and pd.notna(r.get("expected_hi")) else ""),
             "reasons": [str(r[c]) for c in ("reason_1", "reason_2") if c in r and pd.notna(r[c]) and str(r[c])]}
            for _, r in ranking.head(top_n).iterrows()]
    return {"units": current["units"], "cutoff": current["cutoff"], "model_version": current.get("model_version"),
            "age": age_text(current.get("data_period") or {}), "top": rows}


def briefing_context(run, *, scheme: str = "quantile", value: str = "expected", top_n: int = TOP_N) -> dict:
    """Everything the template shows, as plain strings and lists (testable without HTML)."""
    meta = run.meta
    layers = run_layers(run)
    ranking = run.ranking
    top = []
    for _, r in ranking.head(top_n).iterrows():
        ch = r.get("rank_change")
        ch = None if ch is None or pd.isna(ch) else int(ch)
        top.append({
            "rank": int(r["rank"]), "name": _fmt(r.get("name", r["unit_id"])), "unit_id": r["unit_id"],
            "expected": _fmt(float(r["expected"])),
            "interval": (f"{float(r['expected_lo']):.1f} - {float(r['expected_hi']):.1f}"
                         if pd.notna(r.get("expected_lo")) and pd.notna(r.get("expected_hi")) else ""),
            "change": "–" if ch is None else (f"+{ch}" if ch > 0 else str(ch)),
            "change_class": "" if not ch else ("up" if ch > 0 else "down"),
            "reasons": [str(r[c]) for c in ("reason_1", "reason_2", "reason_3")
                        if c in r and pd.notna(r[c]) and str(r[c])],
            "gi_class": _fmt(r.get("gi_class")),
            "emerging": str(r["emerging"]) if "emerging" in r and pd.notna(r["emerging"])
            and str(r["emerging"]).lower() not in gl.NO_PATTERN else "",
        })
    areas = []
    if "areas" in run.tables:
        a_sorted = run.tables["areas"].sort_values("expected", ascending=False) \
            if "expected" in run.tables["areas"] else run.tables["areas"]
        for _, a in a_sorted.iterrows():
            areas.append({
                "area_id": _fmt(a.get("area_id")), "n_units": _fmt(a.get("n_units")),
                "expected": _fmt(a.get("expected")),
                "harm_share": f"{float(a['harm_share']):.0%}" if pd.notna(a.get("harm_share")) else "–",
                "wards": _join(a.get("wards")), "hubs": _join(a.get("hubs")),
                "reasons": _join(a.get("reasons")),
            })
    youth = []
    if "youth_list" in run.tables:
        for _, y in run.tables["youth_list"].sort_values("youth_rank").head(5).iterrows():
            youth.append({"youth_rank": int(y["youth_rank"]), "name": _fmt(y.get("name", y["unit_id"])),
                          "reasons": _join(y.get("reasons"))})
    figures = None
    if run.figures:
        figures = {
            "period_end": run.figures.get("period_end", ""),
            "population": _fmt(run.figures.get("population")),
            "rows": [{"group": f.get("group"), "count_12m": _fmt(f.get("count_12m")),
                      "rate_per_1000": _fmt(f.get("rate_per_1000"), 2),
                      "change_pct": "–" if f.get("change_pct") is None
                      else f"{float(f['change_pct']):+.1f}%"}
                     for f in run.figures.get("rows", [])],
        }
    fairness = None
    if run.fairness:
        fairness = {
            "top_n": run.fairness.get("top_n", top_n), "note": run.fairness.get("note", ""),
            "rows": [{"measure": f.get("measure"), "top_places": _fmt(f.get("top_places"), 2),
                      "borough": _fmt(f.get("borough"), 2), "ratio": _fmt(f.get("ratio"), 2)}
                     for f in run.fairness.get("rows", [])],
        }
    horizon = int(meta.get("horizon", 1) or 1)
    police = bool(meta.get("police_generated_used", False))
    diagnostics = (meta.get("hotspots") or {}).get("diagnostics") or {}
    hotspot_text = diagnostics.get("no_significance_reason") or (
        f"{diagnostics['summary']}." if diagnostics.get("summary") else "")
    return {
        "age": age_text(meta.get("data_period") or {}),
        "current": current_context(run, top_n),
        "meta": {"area_name": "", "method": "", "units": "", "model_version": "", **meta},
        "period": gl.data_period(meta).replace("/", " to "),
        "horizon_text": f"the next {horizon} month" + ("s" if horizon != 1 else ""),
        "value_label": "expected count" if value == "expected" else value.replace("_", " "),
        "legend_title": "fixed bands of rate per 1,000" if scheme == "rate_bands" else "quantile classes",
        "map_png": base64.b64encode(map_png(layers, meta, scheme=scheme, value=value)).decode("ascii"),
        "map_href": "map.html",
        "top": top, "areas": areas, "youth": youth, "changes": _changes(ranking, top_n),
        "hotspot_text": hotspot_text,
        "figures": figures, "fairness": fairness,
        "target_groups": ", ".join(meta.get("target_groups") or []) or "–",
        "police_generated_text": (
            "Police-generated data (stop and search, possession offences) WAS used in this run at "
            "an analyst's request: it reflects where police already look, so the ranking may "
            "send more police where police already go."
            if police else
            "No police-generated data (stop and search, possession offences) was used: the "
            "model learns from victim-reported harm only."
        ),
        "backtest": _backtest_text(run.backtest, meta.get("method")) if run.backtest else "",
    }


def render_briefing(run, *, template_dir=None, scheme: str = "quantile", value: str = "expected") -> str:
    """The briefing of a run (a :class:`reports.run_folder.Run` or a run folder) as HTML."""
    if not isinstance(run, Run):
        run = load_run(run)
    env = environment(template_dir)
    return env.get_template(TEMPLATE).render(**briefing_context(run, scheme=scheme, value=value))


def write_briefing(run, path, **kwargs) -> Path:
    """Write :func:`render_briefing` to ``path``."""
    path = Path(path)
    path.write_text(render_briefing(run, **kwargs), encoding="utf-8")
    return path
