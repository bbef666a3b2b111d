"""The tasking briefing: a printable A4 HTML page set per run, from ``reports/templates/briefing.html.j2``.

Page 1 is the map (a static PNG drawn with matplotlib and embedded, so the page stands
alone and prints: borough outline, wards with names, stations, the top 10 numbered, the
Clear Hold Build areas) with the top 10 listed below it. Then why those places (reasons in
plain words), the Clear Hold Build areas, what changed since the last run
(``rank_change`` = previous rank - current rank), the needs-assessment figures
(``figures.json``), who lives in the top places (``fairness.json``), the youth-work list,
the caveats and the data credits. Every section is its own ``<section>`` with an id, so
further sections (a ward-level forecast, forecast skill, hot-spot diagnostics) slot in
between without touching the others; tables never split across a page.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from features.areas import coverage_note
from features.figures import MEASURE_NAMES
from features.months import months_apart
from models.reasons import GROUP_LABELS
from reports import layers as gl
from reports import run_catalogue as rc
from reports.maps import (
    TOP_N,
    forecast_text,
    has_previous,
    rank_change_text,
    risk_classes,
    value_label,
)
from reports.model_card import horizon_words
from reports.run_folder import Run, context_layers, load_run, run_layers
from reports.templating import environment

TEMPLATE = "briefing.html.j2"
MAP_WIDTH_MM = 190.0
MAP_HEIGHT_MM = 132.0
"""Tallest map on page 1 (A4 text width 190 mm): the header, legend and top 10 fit below it."""
MIN_MAP_HEIGHT_MM = 95.0
NOTE_HEIGHT_MM = 11.0
"""Map height given up for each note page 1 carries (data age beside it, last forecast scored, coverage)."""
CURRENT_MAP_HEIGHT_MM = 85.0
"""Tallest map of the lead page (the forecast from the freshest area tables), above its top 10 and reasons."""


def map_png(layers, meta, **kwargs) -> bytes:
    """A static PNG of the risk map with its legend drawn inside (see :func:`static_map`)."""
    return static_map(layers, meta, legend_inside=True, **kwargs)[0]


def static_map(layers, meta, **kwargs) -> tuple[bytes, list[tuple[str, str, str]]]:
    """A static PNG of the risk map for print, and its legend (see :func:`static_figure`)."""
    fig, items = static_figure(layers, meta, **kwargs)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue(), items


def static_figure(layers, meta, *, context=None, scheme: str = "top_area", value: str = "expected",
                  width_mm: float = MAP_WIDTH_MM, height_mm: float | None = None, dpi: int = 170,
                  top_n: int = TOP_N, legend_inside: bool = False,
                  max_height_mm: float = MAP_HEIGHT_MM,
                  ward_labels_below: bool = False) -> tuple[object, list[tuple[str, str, str]]]:
    """The static risk map for print (a matplotlib Figure, no pyplot state), and its legend.

    Draws the classes of :func:`reports.maps.risk_classes`, the borough outline and ward
    boundaries with their names (``context``), stations with names and schools, Clear Hold
    Build areas, and the top ``top_n`` places numbered as in the list. The legend lists only
    what was drawn, as ``(label, colour, shape)`` with shape ``box``, ``line``, ``thin``,
    ``dot`` or ``num``; ``legend_inside`` also draws it on the image. ``ward_labels_below``
    sets ward names under the ward's centre point (when the places are the wards, their numbers
    sit on it). Names never cover each other, a place's number, an area's label, a station's
    dot, the scale or the legend: each goes to the first free spot around its point, or is left
    out when none is free (:func:`place_labels`; station names before ward names).
    """
    from matplotlib import patheffects
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    context = dict(context or {})
    ranked = layers["ranked_units"]
    ranked = ranked.sort_values("rank", kind="stable") if "rank" in ranked else ranked
    horizon = int(meta.get("horizon", 1) or 1)
    if height_mm is None:  # a tall borough gets a taller map; the top 10 still fits below it
        b = (context.get("borough") if context.get("borough") is not None else ranked).total_bounds
        height_mm = float(np.clip(width_mm * (b[3] - b[1]) / max(b[2] - b[0], 1.0), min(95.0, max_height_mm),
                                  max_height_mm))
    idx, labels, colours = risk_classes(ranked, scheme, value, unit="expected" if value == "expected" else "")
    frame = context.get("borough")
    frame = frame.to_crs(ranked.crs) if frame is not None and len(frame) else ranked
    xmin, ymin, xmax, ymax = frame.total_bounds
    pad = 0.02 * max(xmax - xmin, ymax - ymin)
    xmin, ymin, xmax, ymax = xmin - pad, ymin - pad, xmax + pad, ymax + pad
    # widen the shorter side so the borough fills the frame at equal scale (no distortion)
    want = height_mm / width_mm
    cx, cy, w, h = (xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin
    w, h = (h / want, h) if h / w > want else (w, w * want)
    xmin, xmax, ymin, ymax = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    halo = [patheffects.withStroke(linewidth=2.2, foreground="white")]
    face = [colours[i] if i >= 0 else "#cccccc" for i in idx]
    ranked.plot(ax=ax, color=face, edgecolor="#9a9a9a", linewidth=0.25, zorder=1)
    fixed: list = []  # labels left where they are: numbers, area ids, the scale, the legend
    station_names: list = []  # names placed around their point where free (place_labels)
    ward_names: list = []
    dots: list = []  # station dots, kept clear of names
    handles = [Patch(facecolor=c, edgecolor="#7a7a7a", label=lab) for lab, c in zip(labels, colours, strict=True)]
    items = [(lab, c, "box") for lab, c in zip(labels, colours, strict=True)]
    wards = context.get("wards")
    if wards is not None and len(wards):
        w = wards.to_crs(ranked.crs)
        w.boundary.plot(ax=ax, color=gl.WARD_COLOUR, linewidth=0.6, linestyle=(0, (4, 2)), zorder=3)
        if "name" in w:
            spots = WARD_SPOTS[1:2] + WARD_SPOTS[:1] + WARD_SPOTS[2:] if ward_labels_below else WARD_SPOTS
            for name, pt in zip(w["name"], w.geometry.representative_point(), strict=True):
                if pd.notna(name):
                    ward_names.append((ax.annotate(str(name), (pt.x, pt.y), xytext=spots[0][:2],
                                                   textcoords="offset points", ha=spots[0][2], va=spots[0][3],
                                                   fontsize=5.6, style="italic", color="#3a3a3a",
                                                   path_effects=halo, zorder=6), spots))
        handles.append(Line2D([], [], color=gl.WARD_COLOUR, linewidth=0.8, linestyle=(0, (4, 2)),
                              label="Ward boundary (name in italics)"))
        items.append(("Ward boundary (name in italics)", gl.WARD_COLOUR, "thin"))
    borough = context.get("borough")
    if borough is not None and len(borough):
        borough.to_crs(ranked.crs).boundary.plot(ax=ax, color=gl.BOROUGH_COLOUR, linewidth=1.4, zorder=4)
        items.append(("Borough boundary", gl.BOROUGH_COLOUR, "line"))
    areas = layers.get("areas")
    if areas is not None and len(areas):
        a = areas.to_crs(ranked.crs)
        a.boundary.plot(ax=ax, color=gl.AREA_COLOUR, linewidth=1.8, zorder=5)
        handles.append(Line2D([], [], color=gl.AREA_COLOUR, linewidth=2, label="Clear Hold Build area (A1 ...)"))
        items.append(("Clear Hold Build area (A1 ...)", gl.AREA_COLOUR, "line"))
        for aid, geom in zip(a.get("area_id", [""] * len(a)), a.geometry, strict=True):
            b = geom.bounds
            fixed.append(ax.annotate(str(aid), (b[2], b[3]), color=gl.AREA_COLOUR, fontsize=7, fontweight="bold",
                                     ha="left", va="bottom", path_effects=halo, zorder=7))
    hubs = layers.get("hubs")
    if hubs is not None and len(hubs) and "kind" in hubs:
        h = gl.hubs_near(hubs.to_crs(ranked.crs), context.get("borough"))
        for kind, part in h.groupby(h["kind"].astype(str)):
            colour = gl.HUB_COLOURS.get(str(kind), "#525252")
            pts = part.geometry.representative_point()
            station = kind == "station"
            ax.scatter(pts.x, pts.y, s=14 if station else 4, color=colour, edgecolor="white",
                       linewidth=0.5 if station else 0.2, alpha=1.0 if station else 0.7, zorder=8 if station else 2)
            if station:
                dots.extend(zip(pts.x, pts.y, strict=True))
            label = "Station (name in bold)" if kind == "station" else str(kind).capitalize()
            handles.append(Line2D([], [], marker="o", linestyle="", color=colour, markeredgecolor="white",
                                  label=label))
            items.append((label, colour, "dot"))
            if kind == "station" and "name" in part:
                for name, pt in zip(part["name"], pts, strict=True):
                    if pd.notna(name):
                        station_names.append((ax.annotate(str(name), (pt.x, pt.y), xytext=STATION_SPOTS[0][:2],
                                                          textcoords="offset points", fontsize=5.4, fontweight="bold", color="#08306b",
                                                          path_effects=halo, zorder=9), STATION_SPOTS))
    top = ranked.head(top_n)
    for r, pt in zip(top["rank"] if "rank" in top else range(1, len(top) + 1),
                     top.geometry.representative_point(), strict=True):
        fixed.append(ax.annotate(str(int(r)), (pt.x, pt.y), fontsize=6.5, fontweight="bold", ha="center",
                                 va="center", zorder=10,
                                 bbox={"boxstyle": "circle,pad=0.25", "fc": "white", "ec": "#111111", "lw": 0.9}))
    handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="#111111",
                          markersize=7, label=f"Top {len(top)} places, numbered as in the list"))
    items.append((f"Top {len(top)} places, numbered as in the list", "#111111", "num"))
    ax.set_axis_off()
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal", adjustable="box")
    title = f"Risk: {value_label(value, horizon)}" if value == "expected" else value.replace("_", " ")
    if legend_inside:
        ax.legend(handles=handles, loc="lower left", fontsize=5.8, framealpha=0.92, title=title,
                  title_fontsize=6.2, alignment="left", borderpad=0.5)
    # the scale, so distances on paper mean something
    bar = max((m_ for m_ in (100, 200, 250, 500, 1000, 2000, 5000, 10000) if m_ <= (xmax - xmin) / 5), default=100)
    x0, y0 = xmax - 0.03 * (xmax - xmin) - bar, ymin + 0.03 * (ymax - ymin)
    ax.plot([x0, x0 + bar], [y0, y0], color="#111111", linewidth=2, solid_capstyle="butt", zorder=11)
    fixed.append(ax.annotate(f"{bar / 1000:g} km" if bar >= 1000 else f"{bar} m", (x0 + bar / 2, y0),
                             xytext=(0, 3), textcoords="offset points", fontsize=6, ha="center",
                             path_effects=halo, zorder=11))
    if ax.get_legend() is not None:
        fixed.append(ax.get_legend())
    place_labels(fig, ax, fixed, station_names + ward_names, dots)
    return fig, items


WARD_SPOTS = [(0, 0, "center", "center"), (0, -8, "center", "top"), (0, 8, "center", "bottom"),
              (10, 0, "left", "center"), (-10, 0, "right", "center"), (0, -16, "center", "top"),
              (0, 16, "center", "bottom")]
"""Where a ward's name may go, in points from the ward's centre point, in order of preference."""
STATION_SPOTS = [(3, 2, "left", "bottom"), (-3, 2, "right", "bottom"), (3, -2, "left", "top"),
                 (-3, -2, "right", "top"), (0, 5, "center", "bottom"), (0, -5, "center", "top"),
                 (5, 0, "left", "center"), (-5, 0, "right", "center"), (6, 7, "left", "bottom"),
                 (-6, 7, "right", "bottom"), (6, -7, "left", "top"), (-6, -7, "right", "top"),
                 (0, 11, "center", "bottom"), (0, -11, "center", "top")]
"""Where a station's name may go, in points from its dot, in order of preference."""
DOT_PT = 1.5
"""Half the side of the square a station's dot keeps free of names, in points."""
GAP_PT = 1.0
"""Least space between a name and anything else, in points (names have a white halo)."""


def place_labels(fig, ax, fixed: list, movable: list[tuple[object, list[tuple]]], dots=()) -> list:
    """Put each of ``movable`` (``(annotation, spots)``, in order of priority) at its first spot
    ``(dx points, dy points, ha, va)`` whose box lies inside ``ax`` and overlaps no box taken
    before it: those of ``fixed`` (annotations or a legend, left where they are), of ``dots``
    (data points that stay in view) and of the names already placed, with :data:`GAP_PT`
    between them. A name with no free spot is hidden. Returns the hidden annotations."""
    fig.canvas.draw()  # lays out the fixed artists (a number's circle is sized when drawn)
    renderer = fig.canvas.get_renderer()
    half, gap = DOT_PT * fig.dpi / 72.0, GAP_PT * fig.dpi / 72.0
    xy = ax.transData.transform(np.asarray(list(dots), dtype=float).reshape(-1, 2))
    # boxes taken so far as rows (x0, y0, x1, y1): one array, so a force's thousand names are
    # checked in 0.1 s, not the 5 s of a Bbox.overlaps per pair
    taken = np.empty((len(fixed) + len(xy) + len(movable), 4))
    boxes = [_extent(a, renderer).extents for a in fixed if a.get_visible()]
    n = len(boxes) + len(xy)
    taken[:len(boxes)] = np.reshape(boxes, (-1, 4))
    taken[len(boxes):n] = np.column_stack([xy - half, xy + half])
    frame = ax.get_window_extent(renderer)
    hidden = []
    for ann, spots in movable:
        for box, (dx, dy, ha, va) in zip(spot_boxes(ann, spots, renderer), spots, strict=True):
            x0, y0, x1, y1 = box + (-gap, -gap, gap, gap)
            if not (x0 >= frame.x0 and x1 <= frame.x1 and y0 >= frame.y0 and y1 <= frame.y1):
                continue
            t = taken[:n]  # overlapping interiors, as Bbox.overlaps
            if not ((x0 < t[:, 2]) & (t[:, 0] < x1) & (y0 < t[:, 3]) & (t[:, 1] < y1)).any():
                taken[n] = (x0, y0, x1, y1)
                n += 1
                ann.xyann = (dx, dy)
                ann.set_horizontalalignment(ha)
                ann.set_verticalalignment(va)
                break
        else:
            ann.set_visible(False)
            hidden.append(ann)
    return hidden


def spot_boxes(ann, spots: list[tuple], renderer) -> np.ndarray:
    """The display box ``(x0, y0, x1, y1)`` an unrotated annotation in offset points would cover at
    each spot ``(dx, dy, ha, va)``, from one measure of its text (not a layout per spot)."""
    box = ann.get_window_extent(renderer)
    w, h = box.width, box.height
    px, py = ann.axes.transData.transform(ann.xy)
    scale = ann.figure.dpi / 72.0
    out = np.empty((len(spots), 4))
    for i, (dx, dy, ha, va) in enumerate(spots):
        x = px + dx * scale - {"left": 0.0, "center": w / 2, "right": w}[ha]
        y = py + dy * scale - {"bottom": 0.0, "center": h / 2, "top": h}[va]
        out[i] = (x, y, x + w, y + h)
    return out


def _extent(artist, renderer):
    """The box an artist covers: an annotation's with its frame (a number's circle), else its own."""
    from matplotlib.transforms import Bbox

    box = artist.get_window_extent(renderer)
    patch = getattr(artist, "get_bbox_patch", lambda: None)()
    return Bbox.union([box, patch.get_window_extent(renderer)]) if patch is not None else box


def _fmt(v, digits: int = 1) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "–"
    if isinstance(v, float | np.floating):
        return f"{v:,.{digits}f}"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    return str(v)


def _whole(v) -> str:
    """A count or a population: thousands separated, no decimals (198,339 not 198,339.0)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "–"
    return f"{round(float(v)):,}"


def short_gi(label: str) -> str:
    """``"Hot Spot - 99% Confidence"`` -> ``"hot spot (99%)"``; other labels lower-cased."""
    m = re.match(r"^\s*(hot|cold) spot\W+(\d+)%", str(label), flags=re.IGNORECASE)
    return f"{m.group(1).lower()} spot ({m.group(2)}%)" if m else str(label).lower()


def group_name(group) -> str:
    """``public_order`` -> "Public order offences"; ``asb`` -> "Anti-social behaviour"; the serious
    violence measures by their one name (:data:`features.figures.MEASURE_NAMES`)."""
    if str(group) in MEASURE_NAMES:
        return MEASURE_NAMES[str(group)]
    text = GROUP_LABELS.get(str(group), str(group).replace("_", " "))
    return text[:1].upper() + text[1:]


def _join(v, limit: int | None = None) -> str:
    """A list (or a "; "-joined text) as "a, b, c and 4 more" (at most ``limit`` names)."""
    if isinstance(v, str) and "; " in v:
        v = v.split("; ")
    if isinstance(v, list | tuple | np.ndarray):
        items = [str(x) for x in v]
        if limit is not None and len(items) > limit:
            return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
        return ", ".join(items) or "–"
    return _fmt(v)


def _first(v) -> str:
    """The first of a list or a "; "-joined text."""
    if isinstance(v, list | tuple | np.ndarray):
        return str(v[0]) if len(v) else "–"
    return "–" if v is None or pd.isna(v) or not str(v) else str(v).split("; ")[0]


def in_area_order(areas: pd.DataFrame) -> pd.DataFrame:
    """Clear Hold Build areas in the order of their ids (A1, A2, ..., A10), the order they were ranked in."""
    if "area_id" not in areas:
        return areas
    number = pd.to_numeric(areas["area_id"].astype(str).str.extract(r"(\d+)$")[0], errors="coerce")
    return areas.assign(_n=number).sort_values(["_n", "area_id"], kind="stable").drop(columns="_n")


def distinct_places(rows: list[dict]) -> list[dict]:
    """Make the ``place`` of each row of a top list unique, in place: rows sharing a place (two
    units by the same station in one ward) get their unit's name, else its id, in brackets."""
    seen = pd.Series([r["place"] for r in rows]).value_counts()
    for r in rows:
        if seen.get(r["place"], 0) > 1:
            own = r["name"] if r["name"] not in ("–", r["place"]) and r["name"] not in r["place"] else r["unit_id"]
            r["place"] = f"{r['place']} ({own})"
            r["name"] = r["place"]  # the name is now in the place: the template shows it once
    if len({r["place"] for r in rows}) < len(rows):  # the same name twice: the ids tell them apart
        for r in rows:
            r["place"] = f"{r['place']} · {r['unit_id']}"
            r["name"] = r["place"]
    return rows


def _changes(ranking: pd.DataFrame, top_n: int) -> dict:
    if "rank_change" not in ranking or ranking["rank_change"].isna().all():
        return {"has_previous": False}
    r = ranking.assign(change=pd.to_numeric(ranking["rank_change"], errors="coerce"))
    r = r[r["change"].notna()]
    prev = r["rank"] + r["change"]
    name = (r["name"] if "name" in r else r["unit_id"]).astype(str)
    place = r["place"].astype(str) if "place" in r else name
    label = pd.Series([p if p == n else f"{p} ({n})" for p, n in zip(place, name, strict=True)], index=r.index)
    entered = label[(r["rank"] <= top_n) & (prev > top_n)].tolist()
    left = int(((r["rank"] > top_n) & (prev <= top_n)).sum())
    order = r.assign(label=label).sort_values(["change", "rank"], ascending=[False, True])
    up = [f"{x.label}: up {int(x.change)} to #{int(x.rank)}" for x in order[order["change"] > 0].head(5).itertuples()]
    order = order.sort_values(["change", "rank"], ascending=[True, True])
    down = [f"{x.label}: down {int(-x.change)} to #{int(x.rank)}" for x in order[order["change"] < 0].head(5).itertuples()]
    return {"has_previous": True, "entered": entered, "left_count": left, "up": up, "down": down}


def age_text(period: dict) -> dict:
    """How old an analysis' data is, as the briefing says it: ``{"text", "warning"}``."""
    age = period.get("age_months")
    if age is None:
        return {"text": "", "warning": ""}
    what = "area tables" if period.get("source") == "areas" else "point events"
    return {"text": f"{what} {period.get('start')} to {period.get('end')}; the newest month was "
                    f"{age} month{'s' if age != 1 else ''} old when this was made",
            "warning": period.get("warning", "")}


KNIFE_WARDS = 10
"""Wards listed in the briefing's knife-crime table (most knife crime first)."""
LEAD_GAP_MONTHS = 3
"""A forecast beside the run's own leads the briefing when its data end more than this many months later."""


def ledger_context(ledger: dict | None) -> dict | None:
    """The forecast ledger as the briefing shows it: the last scored forecast in one sentence, drift
    warnings, and the last scored forecasts on these units as rows of text."""
    if not ledger:
        return None
    pct = lambda v: "–" if v is None or pd.isna(v) else f"{float(v):.1%}"  # noqa: E731
    rows = [{"months": r["months"], "horizon": horizon_words(int(r["horizon"])), "events": _whole(r["events"]),
             "hit": pct(r["hit_rate_5"]), "count_hit": pct(r["count_hit_rate_5"]),
             "pei": _fmt(r["pei_5"], 2), "count_pei": _fmt(r["count_pei_5"], 2),
             "coverage": pct(r.get("range_coverage_80")), "revised": "revised" if r.get("revised") else ""}
            for r in ledger.get("recent") or []]
    return {"last": ledger.get("last") or "", "warnings": ledger.get("warnings") or [], "rows": rows}


def current_leads(meta: dict) -> bool:
    """Whether the run's fresher area forecast leads the briefing: only when the run's own analysis is
    from an older period (e.g. points that end years earlier), not when both are current."""
    current = meta.get("current") or {}
    ends = [(p or {}).get("end") for p in (meta.get("data_period"), current.get("data_period"))]
    if not all(ends):
        return bool(current)
    return months_apart(ends[0], ends[1]) > LEAD_GAP_MONTHS


def current_context(run, top_n: int = TOP_N, *, layers=None, context=None) -> dict | None:
    """The forecast from the freshest area tables, when the run has one (it leads the briefing):
    its rows, its data age, and a static map of it (``map_png``, ``legend``) like page 1's."""
    current = run.meta.get("current")
    if not current or "current_ranking" not in run.tables:
        return None
    ranking = run.tables["current_ranking"].sort_values(["rank", "unit_id"], kind="stable")
    rows = []
    for _, r in ranking.head(top_n).iterrows():
        name = _fmt(r.get("name", r["unit_id"]))
        rows.append({"rank": int(r["rank"]), "name": name, "unit_id": r["unit_id"],
                     "place": _fmt(r.get("place")) if pd.notna(r.get("place")) else name,
                     "expected": _fmt(float(r["expected"])),
                     "interval": (f"{float(r['expected_lo']):.0f} - {float(r['expected_hi']):.0f}"
                                  if pd.notna(r.get("expected_lo")) and pd.notna(r.get("expected_hi")) else ""),
                     "reasons": [str(r[c]) for c in ("reason_1", "reason_2")
                                 if c in r and pd.notna(r[c]) and str(r[c])]})
    distinct_places(rows)
    out = {"units": current["units"], "cutoff": current["cutoff"], "model_version": current.get("model_version"),
           "age": age_text(current.get("data_period") or {}), "top": rows, "map_png": "", "legend": [],
           "leads": current_leads(run.meta), "coverage_note": coverage_note(current.get("target_coverage") or {})}
    layers = run_layers(run) if layers is None else layers
    if "current_ranked_units" in layers:
        own = {"ranked_units": layers["current_ranked_units"], **({"hubs": layers["hubs"]} if "hubs" in layers else {})}
        png, legend = static_map(own, dict(run.meta, **current), context=context or context_layers(run),
                                 top_n=top_n, max_height_mm=CURRENT_MAP_HEIGHT_MM,
                                 ward_labels_below=current.get("units", "").startswith("ward"))
        out["map_png"] = base64.b64encode(png).decode("ascii")
        out["legend"] = [{"label": lab, "colour": col, "shape": shape} for lab, col, shape in legend]
    return out


def horizons_context(meta: dict) -> list[dict]:
    """The run's forecasts by horizon (``run.json["horizons"]``) with their measured skill, as strings."""
    out = []
    for h in meta.get("horizons") or []:
        k = (h.get("skill") or {})
        horizon = int(h.get("horizon", 1))
        start = str(meta.get("cutoff", ""))
        try:
            end = f"{pd.Timestamp(f'{start}-01') + pd.DateOffset(months=horizon - 1):%Y-%m}"
        except ValueError:
            end = ""
        span = start if horizon == 1 or not end else f"{start} to {end}"

        def num(v, fmt="{:.2f}"):
            return "–" if v is None else fmt.format(v)

        diff = "–"
        if k.get("mean_diff") is not None and k.get("lo") is not None:
            diff = (f"{k['mean_diff']:+.3f} ({k['lo']:+.3f} to {k['hi']:+.3f}); better in {k['wins']} of "
                    f"{k['n_origins']} months, worse in {k['losses']}")
            if k.get("ties"):
                diff += f", tied in {k['ties']}"
        method = str(h.get("method") or "")
        if k.get("chosen"):
            method += f" ({k['chosen']})"
        out.append({
            "forecast": f"{k.get('horizon_text') or h.get('horizon')} ({span})", "use": h.get("use", ""),
            "method": method, "model_version": h.get("model_version", ""),
            "pei": num(k.get("pei")), "reference": num(k.get("reference_pei")), "diff": diff,
            "ceiling": "–" if k.get("ceiling_pei") is None else
            f"~{k['ceiling_pei']:.2f} ({num(k.get('share'), '{:.0%}')})",
            "verdict": k.get("verdict", ""),
        })
    return out


def briefing_context(run, *, scheme: str = "top_area", value: str = "expected", top_n: int = TOP_N) -> dict:
    """Everything the template shows, as plain strings and lists (testable without HTML)."""
    meta = run.meta
    layers = run_layers(run)
    context = context_layers(run)
    ranking = run.ranking
    horizon = int(meta.get("horizon", 1) or 1)
    previous = has_previous(ranking, meta)
    top = []
    for _, r in ranking.head(top_n).iterrows():
        ch = r.get("rank_change")
        ch = None if ch is None or pd.isna(ch) else int(ch)
        name = _fmt(r.get("name", r["unit_id"]))
        place = _fmt(r.get("place")) if pd.notna(r.get("place")) else name
        top.append({
            "rank": int(r["rank"]), "place": place, "name": name, "unit_id": r["unit_id"],
            "unit": name if name == str(r["unit_id"]) else f"{name} · {r['unit_id']}",
            "expected": _fmt(float(r["expected"])),
            "interval": (f"{float(r['expected_lo']):,.0f} - {float(r['expected_hi']):,.0f}"
                         if pd.notna(r.get("expected_lo")) and pd.notna(r.get("expected_hi")) else ""),
            "change": "–" if ch is None else (f"+{ch}" if ch > 0 else str(ch)),
            "change_text": rank_change_text(ch, previous),
            "change_class": "" if not ch else ("up" if ch > 0 else "down"),
            "reasons": [str(r[c]) for c in ("reason_1", "reason_2", "reason_3")
                        if c in r and pd.notna(r[c]) and str(r[c])],
            "gi_class": "" if pd.isna(r.get("gi_class")) or str(r.get("gi_class")).lower() == "not significant"
            else str(r.get("gi_class")),
            "emerging": str(r["emerging"]) if "emerging" in r and pd.notna(r["emerging"])
            and str(r["emerging"]).lower() not in gl.NO_PATTERN else "",
        })
        top[-1]["hotspot"] = "; ".join(x for x in (short_gi(top[-1]["gi_class"]), top[-1]["emerging"].lower())
                                       if x) or "–"
    distinct_places(top)
    areas = []
    if "areas" in run.tables:
        for _, a in in_area_order(run.tables["areas"]).iterrows():
            areas.append({
                "area_id": _fmt(a.get("area_id")), "n_units": _fmt(a.get("n_units")),
                "expected": _fmt(a.get("expected")),
                "harm_share": f"{float(a['harm_share']):.0%}" if pd.notna(a.get("harm_share")) else "–",
                "wards": _join(a.get("wards")), "hubs": _join(a.get("hubs"), limit=3),
                # the commonest first reason of its places (all of them are in the GIS layers)
                "reasons": _first(a.get("reasons")),
            })
    youth = []
    if "youth_list" in run.tables:
        for _, y in run.tables["youth_list"].sort_values("youth_rank").head(5).iterrows():
            name = _fmt(y.get("name", y["unit_id"]))
            youth.append({"youth_rank": int(y["youth_rank"]),
                          "place": _fmt(y.get("place")) if pd.notna(y.get("place")) else name, "name": name,
                          "reasons": _join(y.get("reasons"))})
    figures = None
    if run.figures:
        figures = {
            "period_end": run.figures.get("period_end", ""),
            "population": _whole(run.figures.get("population")) if run.figures.get("population") else "",
            "rows": [{"group": group_name(f.get("group")), "count_12m": _whole(f.get("count_12m")),
                      "rate_per_1000": _fmt(f.get("rate_per_1000"), 2),
                      "change_pct": "–" if f.get("change_pct") is None
                      else f"{float(f['change_pct']):+.1f}%"}
                     for f in run.figures.get("rows", [])],
        }
    knife = None
    if run.figures and run.figures.get("knife"):
        k = run.figures["knife"]
        knife = {"period": f"{k['period_start']} to {k['period_end']}",
                 "previous": f"{k['previous_start']} to {k['previous_end']}", "note": k.get("note", ""),
                 "borough": [{"measure": r["measure"], "count": _whole(r["count"]), "previous": _whole(r["previous"]),
                              "change": "–" if r.get("change_pct") is None else f"{float(r['change_pct']):+.1f}%"}
                             for r in k.get("borough", [])],
                 "wards": [{"name": w["name"], "knife_crime": _whole(w["knife_crime"]),
                            "with_injury": _whole(w.get("knife_crime_with_injury", 0)),
                            "victims": _whole(w.get("knife_injury_victims_1_24", 0)),
                            "change": "–" if w.get("knife_crime_change_pct") is None
                            else f"{float(w['knife_crime_change_pct']):+.0f}%"}
                           for w in k.get("wards", [])[:KNIFE_WARDS]]}
    fairness = None
    if run.fairness:
        fairness = {
            "top_n": run.fairness.get("top_n", top_n), "note": run.fairness.get("note", ""),
            "rows": [{"measure": f.get("measure"), "top_places": _fmt(f.get("top_places"), 2),
                      "borough": _fmt(f.get("borough"), 2), "ratio": _fmt(f.get("ratio"), 2)}
                     for f in run.fairness.get("rows", [])],
        }
    police = bool(meta.get("police_generated_used", False))
    diagnostics = (meta.get("hotspots") or {}).get("diagnostics") or {}
    hotspot_text = " ".join([diagnostics.get("no_significance_reason") or (
        f"{diagnostics['summary']}." if diagnostics.get("summary") else "")]
        + [f"Warning: {w}." for w in diagnostics.get("warnings", [])])
    ledger = ledger_context(meta.get("ledger"))
    # every note page 1 carries above the map takes room the top 10 needs below it
    notes = (bool(ledger and ledger["last"]) + len(ledger["warnings"] if ledger else [])
             + bool(coverage_note(meta.get("target_coverage") or {}) or meta.get("points"))
             + bool(meta.get("current") and not current_leads(meta)))
    png, legend = static_map(layers, meta, context=context, scheme=scheme, value=value, top_n=top_n,
                             max_height_mm=max(MIN_MAP_HEIGHT_MM, MAP_HEIGHT_MM - NOTE_HEIGHT_MM * notes))
    return {
        "age": age_text(meta.get("data_period") or {}),
        "current": current_context(run, top_n, layers=layers, context=context),
        "coverage_note": coverage_note(meta.get("target_coverage") or {}) or "",
        "ledger": ledger,
        "points_note": meta.get("points") or "",
        "meta": {"area_name": "", "method": "", "units": "", "model_version": "", **meta},
        "period": gl.data_period(meta).replace("/", " to "),
        "horizon_text": f"the next {horizon} month" + ("s" if horizon != 1 else ""),
        "value_label": value_label(value, horizon),
        "legend_title": {"top_area": "classes: the top-ranked places covering 1%, 5%, 10% and 25% of the borough's area",
                         "rate_bands": "fixed bands of rate per 1,000",
                         "quantile": "quantile classes"}.get(scheme, scheme),
        "map_png": base64.b64encode(png).decode("ascii"),
        "legend": [{"label": lab, "colour": col, "shape": shape} for lab, col, shape in legend],
        "map_href": rc.MAP.path,
        "top": top, "areas": areas, "youth": youth, "changes": _changes(ranking, top_n),
        "hotspot_text": hotspot_text,
        "has_previous": previous,
        "figures": figures, "fairness": fairness, "knife": knife,
        "target_groups": ", ".join(group_name(g).lower() for g in meta.get("target_groups") or []) or "–",
        "police_generated_text": (
            "Police-generated data (stop and search, possession offences) WAS used in this run at "
            "an analyst's request: it reflects where police already look, so the ranking may "
            "send more police where police already go."
            if police else
            "No police-generated data (stop and search, possession offences) was used: the "
            "model learns from victim-reported harm only."
        ),
        "attribution": gl.attribution_text(meta),
        "forecast_example": forecast_text(ranking["expected"].iloc[0], horizon=horizon) if len(ranking) else "",
        "horizons": horizons_context(meta), "horizons_note": meta.get("horizons_note") or "",
        "areas_horizon": horizon_words(meta.get("areas_horizon", horizon)),
        # the Clear Hold Build areas come from the planning forecast (next quarter) when the run has one
        "areas_value_label": value_label(value, int(meta.get("areas_horizon", horizon) or horizon)),
    }


def render_briefing(run, *, template_dir=None, scheme: str = "top_area", value: str = "expected") -> str:
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
