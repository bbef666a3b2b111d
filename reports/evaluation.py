"""The evaluation of a place-based intervention: what ``--area`` means, and what is written.

:func:`parse_area` reads the three kinds of area an analyst can name:

* a polygon file in any format OGR reads (reprojected to EPSG:27700; its units are those
  with at least half their area inside, :func:`models.interventions.units_in_polygon`);
* an operational area of a run: ``A1`` (the latest run under ``runs_dir``) or
  ``<run_id>/A1``, read from the run's ``areas.parquet`` (its units are the run's);
* a comma-separated list of unit ids of one edition.

:func:`write_evaluation` writes an evaluation folder:

===================  ==============================================================
``summary.html``     one printable A4 page for a partnership board
``summary.pdf``      the same page printed by headless Chromium (:mod:`reports.pdf`)
``series.csv``       the monthly series (area, buffer, comparison, synthetic, rest)
``evaluation.json``  every estimate, rule, parameter and warning
===================  ==============================================================

:func:`write_plan` writes a plan folder before an intervention starts (``svrisk evaluate
--plan``): ``plan.html``, one page with the detectable effect, the power and what to
record, and ``plan.json``.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from features.months import month
from geo.units import UnitSet
from models.hotspots.regions import SEPARATOR
from models.interventions import InterventionEvaluation, units_in_polygon
from reports import layers as gl
from reports import run_catalogue as rc
from reports.pdf import PdfError, html_to_pdf
from reports.run_folder import load_run, read_meta
from reports.templating import environment
from sources.loaders.areas import read_polygon

TEMPLATE = "evaluation.html.j2"
PLAN_TEMPLATE = "evaluation_plan.html.j2"
MIN_WARD_SHARE = 0.1
"""A ward names an area when at least this share of the area lies in it."""
RUN_AREA = re.compile(r"^(?:(?P<run>[A-Za-z0-9][A-Za-z0-9._-]*)/)?(?P<area>A\d+)$")
BUFFER_COLOUR = "#e6550d"
COMPARISON_COLOUR = "#737373"
SYNTHETIC_COLOUR = "#2171b5"


@dataclass
class AreaSpec:
    """An intervention area as the analyst named it (see :func:`parse_area`)."""

    kind: str  # "polygon", "run_area" or "units"
    label: str
    source: str
    edition: str | None = None
    unit_ids: list[str] | None = None
    polygon: shapely.Geometry | None = None
    run: dict | None = None
    wards: str = ""

    def units_edition(self, units: str | None, default: str) -> str:
        """The unit edition to evaluate on: the run's for a run area, else ``units`` or ``default``."""
        if self.edition and units and units != self.edition:
            raise ValueError(f"area {self.source!r} is made of {self.edition} units (its run's); "
                             f"it cannot be evaluated on --units {units}")
        return self.edition or units or default

    def unit_ids_in(self, units: UnitSet) -> list[str]:
        """The area's unit ids among ``units`` (an error names any the units lack)."""
        if self.polygon is not None:
            return units_in_polygon(units, self.polygon)
        known = set(units.ids.astype(str))
        missing = [u for u in self.unit_ids or [] if u not in known]
        if missing:
            raise ValueError(f"area {self.source!r}: unit id(s) {missing[:5]} are not {units.edition} "
                             "units of the store" + (" (was the run made from another data folder?)"
                                                    if self.kind == "run_area" else ""))
        return list(self.unit_ids or [])

    def warnings(self, start) -> list[str]:
        """What the reader must know about how the area was chosen."""
        out = []
        if self.run is not None:
            cutoff = self.run.get("cutoff")
            if cutoff and month(cutoff) > month(start):
                out.append(
                    f"{self.label} was picked by run {self.run.get('run_id')} from data before {cutoff}, which "
                    f"is after the start {month(start):%Y-%m}: it was chosen partly for high counts in the months "
                    "being evaluated, so the comparison leans towards a rise")
        return out


def latest_run_dir(runs_dir) -> Path:
    """The run folder under ``runs_dir`` with the latest ``created`` (then run id)."""
    runs_dir = Path(runs_dir)
    metas = [read_meta(p) for p in sorted(runs_dir.iterdir()) if (p / rc.RUN_JSON.path).is_file()] \
        if runs_dir.is_dir() else []
    if not metas:
        raise FileNotFoundError(f"no runs in {runs_dir}: make one with `svrisk run` or name a polygon file")
    latest = max(metas, key=lambda m: (str(m.get("created", "")), str(m["run_id"])))
    return runs_dir / str(latest["run_id"])


def parse_area(text: str, runs_dir, run: str | None = None) -> AreaSpec:
    """What ``--area`` names: a polygon file, a run's operational area, or unit ids (module docstring)."""
    text = (text or "").strip()
    if not text:
        raise ValueError("--area is empty: give a polygon file, a run area such as A1, or unit ids")
    path = Path(text)
    if path.exists():
        return AreaSpec("polygon", path.stem, str(path), polygon=read_polygon(path))
    m = RUN_AREA.match(text)
    if m:
        run_id = m.group("run") or run
        run_dir = Path(runs_dir) / run_id if run_id and run_id != "latest" else latest_run_dir(runs_dir)
        loaded = load_run(run_dir)
        areas = loaded.tables.get("areas")
        if areas is None:
            raise FileNotFoundError(f"{run_dir / rc.AREAS.path} not found: run {loaded.run_id} has no areas")
        row = areas[areas["area_id"].astype(str) == m.group("area")]
        if row.empty:
            raise ValueError(f"run {loaded.run_id} has no area {m.group('area')!r}; it has "
                             f"{areas['area_id'].astype(str).tolist()}")
        r = row.iloc[0]
        ids = r["unit_ids"] if not isinstance(r["unit_ids"], str) else r["unit_ids"].split(SEPARATOR)
        wards = r.get("wards", "")
        wards = SEPARATOR.join(wards) if isinstance(wards, list | tuple | np.ndarray) else str(wards or "")
        return AreaSpec("run_area", f"Area {m.group('area')}", f"{loaded.run_id}/{m.group('area')}",
                        edition=str(loaded.meta.get("units")), unit_ids=[str(u) for u in ids],
                        run=loaded.meta, wards=wards)
    ids = [u.strip() for u in text.split(",") if u.strip()]
    label = ids[0] if len(ids) == 1 else f"{ids[0]} and {len(ids) - 1} more"
    return AreaSpec("units", label, text, unit_ids=ids)


def evaluation_id(spec: AreaSpec, start, created: datetime) -> str:
    """``<YYYYmmddTHHMMSS>-<area>-<start>``: sortable, and safe in a path or a URL."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", spec.label).strip("-")[:40] or "area"
    return f"{created:%Y%m%dT%H%M%S}-{slug}-{month(start):%Y-%m}"


# --------------------------------------------------------------------------- pictures


def series_png(series: pd.DataFrame, start: str, buffer_m: float, *, width_in: float = 7.4,
               dpi: int = 130) -> bytes:
    """Monthly counts: the area against its expected and synthetic series, and the buffer (two panels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, MonthLocator
    from matplotlib.figure import Figure

    s = series.assign(when=pd.to_datetime(series["month"] + "-01"))
    used = (s["period"] != "left out").to_numpy()
    has_buffer = s["buffer"].notna().any()
    fig = Figure(figsize=(width_in, 2.1), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2 if has_buffer else 1, squeeze=False)[0]
    edge = pd.Timestamp(f"{start}-01") - pd.Timedelta(days=15)
    when = s["when"][used]
    span = (s["when"].max() - s["when"].min()).days / 30.4
    step = 6 if span > 30 else 3

    def panel(ax, title, actual, lines):
        ax.axvspan(edge, s["when"].max() + pd.Timedelta(days=15), color="#eeeeee", zorder=0)
        ax.axvline(edge, color="#444444", linestyle="--", linewidth=1)
        for values, label, colour, style in lines:
            ax.plot(when, values[used], color=colour, linestyle=style, linewidth=1.3, label=label)
        ax.plot(when, actual[used], color="#111111", marker="o", markersize=2.2, linewidth=1.3, label="Recorded")
        ax.set_title(title, fontsize=8.5, loc="left")
        ax.set_ylim(0, max(1.0, float(np.nanmax([actual[used].max()] + [v[used].max() for v, *_ in lines]))) * 1.12)
        ax.text(edge, ax.get_ylim()[1], f" start {start}", fontsize=6.5, va="top", color="#444444")
        ax.xaxis.set_major_locator(MonthLocator(bymonth=range(1, 13, step)))
        ax.xaxis.set_major_formatter(DateFormatter("%b\n%Y"))
        ax.tick_params(labelsize=6.5)
        ax.set_ylabel("events a month", fontsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    lines = [(s["expected"].astype(float), "Expected from similar places", COMPARISON_COLOUR, "--")]
    if s["synthetic"].notna().any():
        lines.append((s["synthetic"].astype(float), "Synthetic comparison", SYNTHETIC_COLOUR, "-"))
    panel(axes[0], "The area", s["area"].astype(float), lines)
    if has_buffer:
        panel(axes[1], f"Around it (within {buffer_m:.0f} m)", s["buffer"].astype(float),
              [(s["buffer_expected"].astype(float), "Expected from similar places", COMPARISON_COLOUR, "--")])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.tight_layout(pad=0.4, rect=(0, 0.08, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def event_png(series: pd.DataFrame, start: str, *, width_in: float = 5.4, dpi: int = 130) -> bytes:
    """Month by month: the area's change against similar places, with intervals (the event study)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, MonthLocator
    from matplotlib.figure import Figure

    s = series.assign(when=pd.to_datetime(series["month"] + "-01"))
    s = s[s["effect_pct"].notna()]
    fig = Figure(figsize=(width_in, 1.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    edge = pd.Timestamp(f"{start}-01") - pd.Timedelta(days=15)
    ax.axhline(0, color="#444444", linewidth=0.8)
    ax.axvline(edge, color="#444444", linestyle="--", linewidth=1)
    after = (s["period"] == "after").to_numpy()
    for mask, colour, label in ((~after, COMPARISON_COLOUR, "before the start (should hover around 0)"),
                                (after, gl.AREA_COLOUR, "after the start")):
        part = s[mask]
        ax.errorbar(part["when"], part["effect_pct"],
                    yerr=[part["effect_pct"] - part["effect_lo_pct"], part["effect_hi_pct"] - part["effect_pct"]],
                    fmt="o", markersize=2.5, color=colour, elinewidth=0.8, capsize=1.5, label=label)
    lo = float(np.nanmin(s["effect_lo_pct"])) if len(s) else -100.0
    hi = float(np.nanmax(s["effect_hi_pct"])) if len(s) else 100.0
    ax.set_ylim(max(-100.0, lo - 5), min(max(hi + 5, 10.0), 300.0))
    ax.set_ylabel("% change vs similar places", fontsize=7)
    ax.xaxis.set_major_locator(MonthLocator(bymonth=range(1, 13, 3)))
    ax.xaxis.set_major_formatter(DateFormatter("%b\n%Y"))
    ax.tick_params(labelsize=6.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=6.5, frameon=False, loc="upper left", ncol=2)
    fig.tight_layout(pad=0.4)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def places_png(units: UnitSet, est: dict, *, width_in: float = 2.6, dpi: int = 130) -> bytes:
    """A small map: the area, its buffer and the comparison places among all units."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    frame = units.frame.assign(unit_id=units.frame["unit_id"].astype(str))
    xmin, ymin, xmax, ymax = frame.total_bounds
    aspect = (ymax - ymin) / max(xmax - xmin, 1.0)
    fig = Figure(figsize=(width_in, max(1.6, min(width_in * aspect, 2.5))), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    frame.plot(ax=ax, color="#f7f7f7", edgecolor="#d9d9d9", linewidth=0.2)
    groups = [("comparison", COMPARISON_COLOUR, "Comparison places"), ("buffer", BUFFER_COLOUR, "Buffer"),
              ("area", gl.AREA_COLOUR, "Intervention area")]
    handles = []
    for key, colour, label in groups:
        ids = set(est[key]["unit_ids"])
        part = frame[frame["unit_id"].isin(ids)]
        if len(part):
            part.plot(ax=ax, color=colour, edgecolor=colour, linewidth=0.3, alpha=0.85)
            handles.append(Patch(facecolor=colour, label=label))
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.legend(handles=handles, loc="lower left", fontsize=6, framealpha=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------- the page


def _pct(v, signed: bool = True) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:+.0f}%" if signed else f"{v:.0f}%"


def _interval(d: dict) -> str:
    return f"{100 * (d['lo'] - 1):+.0f}% to {100 * (d['hi'] - 1):+.0f}%"


def summary_context(ev: InterventionEvaluation, spec: AreaSpec, meta: dict, units: UnitSet) -> dict:
    """Everything the summary page shows, as plain strings and lists (testable without HTML)."""
    est = ev.estimates
    meta = {"evaluation_id": "", "created": "", "area_name": "", "offences": "serious violence",
            "data_period": "–", "seed": "–", **meta}
    d, trend, scm = est["did"], est["pre_trend"], est["synthetic_control"]
    disp = est["displacement"]
    level = f"{100 * d['level']:.0f}%"
    s = ev.series
    used = s[s["period"] != "left out"]
    before, after = used[used["period"] == "before"], used[used["period"] == "after"]

    def per_month(col):
        b = before[col].astype(float).mean() if before[col].notna().any() else float("nan")
        a = after[col].astype(float).mean() if after[col].notna().any() else float("nan")
        return b, a

    rows = []
    for col, name, n in (("area", "The area", est["area"]["n_units"]),
                         ("buffer", f"Within {est['buffer']['buffer_m']:.0f} m (buffer)", est["buffer"]["n_units"]),
                         ("comparison", "Similar places (comparison)", est["comparison"]["n_units"]),
                         ("rest", "Rest of the borough", None)):
        if s[col].isna().all():
            continue
        b, a = per_month(col)
        rows.append({"name": name, "units": "–" if n is None else str(n), "before": f"{b:,.1f}",
                     "after": f"{a:,.1f}", "change": _pct(100 * (a / b - 1)) if b > 0 else "–"})
    figures = [{"label": "Change in the area, compared with similar places",
                "value": _pct(d["change_pct"]), "detail": f"{level} interval {_interval(d)}"}]
    if scm is not None:
        band = scm["placebo_effect_pct_band"]
        figures.append({"label": "Change against a synthetic comparison", "value": _pct(scm["effect_pct"]),
                        "detail": (f"placebo test p = {scm['p_value']:.2f}; where nothing was done, "
                                   f"{_pct(band[0])} to {_pct(band[1])}") if np.isfinite(scm["p_value"]) else ""})
    b = disp["buffer_did"]
    if b is not None:
        figures.append({"label": f"Change within {est['buffer']['buffer_m']:.0f} m, compared with similar places",
                        "value": _pct(b["change_pct"]), "detail": f"{level} interval {_interval(b)}"})
    r = est["rest_of_borough"]
    figures.append({"label": "Change in the rest of the borough", "value": _pct(r["change_pct"]),
                    "detail": (f"{r['before_per_month']:,.0f} to {r['after_per_month']:,.0f} a month"
                               if r["change_pct"] is not None else "")})
    w, t = disp["wdq"], disp.get("test")
    wdq = None
    if w is not None and t is not None:
        meaningful = bool(disp["wdq_informative"])
        band = w.get("interval") or [float("nan")] * 2
        value = f"{w['wdq']:+.2f}" + (f" ({band[0]:+.2f} to {band[1]:+.2f})" if np.all(np.isfinite(band)) else "")
        wdq = {"value": value if meaningful else "not meaningful",
               "reading": w["reading"] if meaningful else disp["wdq_reason"],
               "success": f"{w['success_measure']:+.3f}", "buffer": f"{w['buffer_measure']:+.3f}",
               "prevented": _events(t["prevented"], t["prevented_interval"]),
               "displaced": _events(t["displaced"], t["displaced_interval"]),
               "net": _events(t["net_effect"], t["net_effect_interval"]),
               "p_value": f"{t['p_value']:.2f}", "informative": meaningful, "level": level}
    comp = est["comparison"]
    checks = [
        _trend_check(trend, level),
        f"How small a change these counts can show: {est['minimum_detectable_effect']['text']}.",
        (f"Comparison: the {comp['n_units']} places (of {comp['n_eligible']} far enough away) most like the area "
         f"before the start, {comp['comparison_level_per_unit']:.1f} events a month each against the area's "
         f"{comp['area_level_per_unit']:.1f} per unit."),
    ]
    st = est.get("staggered")
    if st:
        checks.append(f"All {len(st['areas'])} areas together, each from its own start "
                      f"({', '.join(a['start'] for a in st['areas'])}), against places not yet or never treated "
                      f"(Callaway & Sant'Anna): {st['overall_pct']:+.0f}% ({level} interval "
                      f"{st['interval_pct'][0]:+.0f}% to {st['interval_pct'][1]:+.0f}%).")
    months_text = (f"{est['months_before'][0]} to {est['months_before'][-1]} "
                   f"({len(est['months_before'])} months) against {est['months_after'][0]} to "
                   f"{est['months_after'][-1]} ({len(est['months_after'])} months)")
    title = _named(spec)
    n_placebos = scm["n_placebos"] if scm is not None else 0
    method = (
        f"Similar places are the {comp['n_units']} places, neither in nor next to the area or its buffer, whose level "
        "and trend of serious violence before the start were closest to the area's. The estimate is a Poisson model "
        "of the monthly counts of the area and of those places with an effect for every month, so what changed for "
        "both (season, recording, borough trends) cancels out; its interval allows for overdispersed counts and for "
        "months that run together. The synthetic comparison is a weighted mix of similar places that tracked the "
        f"area before the start, tested by doing the same for {n_placebos} places where nothing was done. "
        f"Displacement is judged on the units within {est['buffer']['buffer_m']:.0f} m with the Weighted "
        "Displacement Quotient (Bowers & Johnson 2003).")
    return {
        "title": title, "area_name": meta.get("area_name", ""), "start": est["start"],
        "offences": meta.get("offences", ""), "months_text": months_text, "verdict": est["verdict"],
        "figures": figures, "rows": rows, "wdq": wdq, "checks": checks,
        # the minimum detectable effect is already a check: not said twice
        "warnings": [w for w in ev.warnings if not w.startswith("small counts:")],
        "chart_png": base64.b64encode(series_png(s, est["start"], est["buffer"]["buffer_m"])).decode("ascii"),
        "map_png": base64.b64encode(places_png(units, est)).decode("ascii"),
        "event_png": (base64.b64encode(event_png(s, est["start"])).decode("ascii")
                      if "effect_pct" in s and s["effect_pct"].notna().any() else None),
        "method": method, "meta": meta, "area_source": spec.source, "evidence": evidence(est, spec),
        "n_units": est["area"]["n_units"], "edition": est["area"]["edition"],
        "area_km2": f"{est['area']['area_km2']:.2f}",
    }


def _events(value: float, interval) -> str:
    """``+76 (+31 to +121)``: a number of events with its interval."""
    return f"{value:+,.0f} ({interval[0]:+,.0f} to {interval[1]:+,.0f})"


TIGHT_TREND_PCT = 15.0
"""A pre-trend check vouches for the comparison only when its interval stays within this many % a year."""

MARYLAND = {
    3: ("Maryland Scientific Methods Scale level 3 of 5 (before and after, area and comparison places; "
        "not randomised)"),
    2: ("Maryland Scientific Methods Scale level 2 of 5 in effect (the comparison places were not moving with "
        "the area before the start)"),
}


def evidence(est: dict, spec: AreaSpec) -> dict:
    """The evidence level in words: design, comparison, Maryland scale level, what the design cannot rule out."""
    comp, scm = est["comparison"], est.get("synthetic_control")
    design = "before and after against similar places"
    if scm is not None:
        design += f" and a synthetic comparison ({scm['n_placebos']} placebo places)"
    if est.get("in_time_placebo") is not None:
        design += ", with an in-time placebo"
    level = 3 if est["pre_trend"]["parallel"] else 2
    cannot = [
        "something else that changed only in this area at the same time (another operation, a new venue, a "
        "closed station, a change in reporting or recording there)",
        f"violence moved further than {est['buffer']['buffer_m']:.0f} m, or to other kinds of offence or times",
    ]
    if spec.run is not None:
        cannot.append("the area was chosen for its high counts, which tend to fall back anyway (regression to the "
                      "mean) if it was chosen on months close to the start")
    if est["buffer"].get("ring_outside_share", 0) > 0.1:
        cannot.append("displacement across the borough edge (part of the ring around the area has no data)")
    cannot.append("police.uk places each crime at an approximate street point, so events near the edge of the area "
                  "may be counted on the wrong side")
    return {"design": design,
            "comparison": f"the {comp['n_units']} places most like the area before the start",
            "maryland_level": level, "maryland": MARYLAND[level], "cannot_rule_out": cannot}


def _trend_check(trend: dict, level: str) -> str:
    interval = _interval_year(trend)
    if not trend["parallel"]:
        return (f"Before the start the area drifted from its comparison by {trend['change_pct_per_year']:+.0f}% a year "
                f"({level} interval {interval}): the comparison may not be a fair yardstick.")
    if max(abs(100 * (trend["lo"] - 1)), abs(100 * (trend["hi"] - 1))) <= TIGHT_TREND_PCT:
        return (f"Before the start the area and its comparison moved in parallel (difference "
                f"{trend['change_pct_per_year']:+.0f}% a year, {level} interval {interval}): a fair yardstick.")
    return (f"Before the start no clear drift between the area and its comparison was seen, but the check is too "
            f"imprecise to vouch for it: anything from {interval} a year fits the counts.")


def _interval_year(t: dict) -> str:
    return f"{100 * (t['lo'] - 1):+.0f}% to {100 * (t['hi'] - 1):+.0f}%"


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, pd.Timestamp):
        return f"{v:%Y-%m}"
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _finite(obj):
    """NaN and infinities become None (JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float | np.floating) and not math.isfinite(float(obj)):
        return None
    return obj


@dataclass
class Written:
    """The files of an evaluation folder, and what could not be written (the PDF without Chromium)."""

    folder: Path
    paths: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def write_evaluation(ev: InterventionEvaluation, folder, spec: AreaSpec, units: UnitSet, *, meta: dict,
                     pdf: bool = True, browser=None) -> Written:
    """Write ``summary.html``, ``summary.pdf``, ``series.csv`` and ``evaluation.json`` to ``folder``.

    ``meta`` (evaluation id, created, data period, offences, ...) goes into the JSON and
    the page. The PDF needs Chromium; without it the HTML is still written and the
    problem is returned in ``problems``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = Written(folder)
    doc = {"meta": meta, "area_source": spec.source, "area_kind": spec.kind, "area_label": spec.label,
           **ev.estimates, "warnings": ev.warnings}
    out.paths["json"] = folder / "evaluation.json"
    out.paths["json"].write_text(json.dumps(_finite(doc), indent=1, default=_json_default), encoding="utf-8")
    out.paths["csv"] = folder / "series.csv"
    ev.series.to_csv(out.paths["csv"], index=False, lineterminator="\n")
    html = environment().get_template(TEMPLATE).render(**summary_context(ev, spec, meta, units))
    out.paths["html"] = folder / "summary.html"
    out.paths["html"].write_text(html, encoding="utf-8")
    if pdf:
        try:
            out.paths["pdf"] = html_to_pdf(out.paths["html"], folder / "summary.pdf", browser=browser)
        except PdfError as err:
            out.problems.append(str(err))
    return out


def read_evaluation(folder) -> dict:
    """``evaluation.json`` of an evaluation folder (an error names the file if it is broken)."""
    path = Path(folder) / "evaluation.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {folder} is not an evaluation folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err



# --------------------------------------------------------------------------- place names and the plan


def area_wards(units: UnitSet, area_ids, wards) -> str:
    """The wards covering at least :data:`MIN_WARD_SHARE` of the area, largest share first (``SEPARATOR``-joined).

    ``wards`` has ``name`` and geometry in EPSG:27700 (``None`` or empty: ``""``). A board
    knows Burnt Oak, not E05013630.
    """
    if wards is None or len(wards) == 0:
        return ""
    frame = units.frame
    area = shapely.union_all(frame.geometry[frame["unit_id"].astype(str).isin([str(u) for u in area_ids])].to_numpy())
    if area.is_empty:
        return ""
    share = shapely.area(shapely.intersection(wards.geometry.to_numpy(), area)) / area.area
    order = pd.DataFrame({"name": wards["name"].astype(str).to_numpy(), "share": share})
    order = order[order["share"] >= MIN_WARD_SHARE].sort_values(["share", "name"], ascending=[False, True],
                                                                 kind="stable")
    return SEPARATOR.join(order["name"])


def _named(spec: AreaSpec) -> str:
    """Place names first; a list of codes only as a last resort."""
    wards = spec.wards.replace(SEPARATOR, ", ") if spec.wards else ""
    if spec.kind == "units" and wards:
        return f"{wards} ({spec.label})"
    return spec.label + (f" ({wards})" if wards else "")


RECORD = (
    "The exact start date, and the date of any pause, change of tactics or end, month by month.",
    "The streets or boundary actually covered (a map), if it differs from the area planned.",
    "What was done each month: patrol hours, arrests, youth-work sessions, CCTV or lighting installed.",
    "Anything else that started in or next to the area in the same months (another operation, "
    "a new venue, a closed station): the evaluation cannot tell it apart from the intervention.",
    "Changes in recording or reporting in the area (a new reporting route, a recording audit).",
    "Keep the comparison places and the buffer ring free of the intervention, or note where they were not.",
)


def plan_context(plan: dict, spec: AreaSpec, meta: dict) -> dict:
    """Everything the one-page plan shows, as plain strings (testable without HTML)."""
    meta = {"evaluation_id": "", "created": "", "area_name": "", "offences": "serious violence", **meta}
    mde = plan["mde"]
    months = plan["months_after"]
    powers = [{"effect": k, "power": f"{100 * v:.0f}%",
               "reading": ("likely to be seen" if v >= 0.8 else "a fair chance" if v >= 0.5 else "likely to be missed")}
              for k, v in plan["power"].items()]
    headline = (f"Over {months} months, only a fall of about {100 * mde:.0f}% or more in {meta['offences']} would "
                f"reliably be told apart from chance ({100 * plan['parameters']['power']:.0f}% of the time); "
                "a smaller effect may be real but go unseen." if mde < 1 else
                f"Over {months} months the counts in this area are too few for any effect to be told apart from "
                "chance: evaluate a larger area, for longer, or a broader outcome.")
    advice = []
    if mde > 0.5:
        advice.append("The area is too small or the period too short for the counts to say anything: a real effect "
                      "is likely to be missed. Consider a larger area, a longer period, or a broader outcome.")
    elif mde > 0.3:
        advice.append("Only a large effect would be seen. If the intervention is expected to do less, plan a longer "
                      "period or a larger area, or judge it on what was delivered rather than on crime counts.")
    return {
        "title": _named(spec), "headline": headline, "powers": powers, "advice": advice, "record": list(RECORD),
        "area_per_month": f"{plan['area_per_month']:.1f}",
        "buffer_per_month": "–" if plan["buffer_per_month"] is None else f"{plan['buffer_per_month']:.1f}",
        "comparison_n": plan["comparison"]["n_units"], "months_before": plan["months_before"],
        "months_after": months, "mde": f"{100 * mde:.0f}%", "dispersion": f"{plan['dispersion']:.2f}",
        "buffer_m": f"{plan['buffer']['buffer_m']:.0f}", "n_units": plan["area"]["n_units"],
        "edition": plan["area"]["edition"], "meta": meta, "area_source": spec.source,
        "notes": list(plan.get("notes", [])),
    }


def write_plan(plan: dict, folder, spec: AreaSpec, *, meta: dict) -> Written:
    """Write ``plan.html`` (one page) and ``plan.json`` to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = Written(folder)
    out.paths["json"] = folder / "plan.json"
    doc = {"meta": meta, "area_source": spec.source, "area_label": spec.label, "wards": spec.wards, **plan}
    out.paths["json"].write_text(json.dumps(_finite(doc), indent=1, default=_json_default), encoding="utf-8")
    out.paths["html"] = folder / "plan.html"
    out.paths["html"].write_text(environment().get_template(PLAN_TEMPLATE).render(**plan_context(plan, spec, meta)),
                                 encoding="utf-8")
    return out
