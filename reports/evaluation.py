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
from features.sources.loaders.areas import read_polygon
from geo.units import UnitSet
from models.hotspots.regions import SEPARATOR
from models.interventions import InterventionEvaluation, units_in_polygon
from reports import layers as gl
from reports.pdf import PdfError, html_to_pdf
from reports.run_folder import load_run, read_meta
from reports.templating import environment

TEMPLATE = "evaluation.html.j2"
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
    metas = [read_meta(p) for p in sorted(runs_dir.iterdir()) if (p / "run.json").is_file()] \
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
            raise FileNotFoundError(f"{run_dir / 'areas.parquet'} not found: run {loaded.run_id} has no areas")
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
    fig = Figure(figsize=(width_in, 2.35), dpi=dpi)
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
    w = disp["wdq"]
    wdq = None
    if w is not None:
        wdq = {"value": "not defined" if w["wdq"] is None else f"{w['wdq']:+.2f}", "reading": w["reading"],
               "success": f"{w['success_measure']:+.3f}", "buffer": f"{w['buffer_measure']:+.3f}",
               "prevented": f"{w['prevented_in_area']:+,.0f}", "displaced": f"{w['displaced_to_buffer']:+,.0f}",
               "net": f"{w['net_effect']:+,.0f}",
               "informative": disp["wdq_informative"]}
    comp = est["comparison"]
    checks = [
        (f"Before the start the area and its comparison moved in parallel (difference "
         f"{trend['change_pct_per_year']:+.0f}% a year, {level} interval {_interval_year(trend)}): a fair yardstick."
         if trend["parallel"] else
         f"Before the start the area drifted from its comparison by {trend['change_pct_per_year']:+.0f}% a year "
         f"({level} interval {_interval_year(trend)}): the comparison may not be a fair yardstick."),
        f"How small a change these counts can show: {est['minimum_detectable_effect']['text']}.",
        (f"Comparison: the {comp['n_units']} places (of {comp['n_eligible']} far enough away) most like the area "
         f"before the start, {comp['comparison_level_per_unit']:.1f} events a month each against the area's "
         f"{comp['area_level_per_unit']:.1f} per unit."),
    ]
    months_text = (f"{est['months_before'][0]} to {est['months_before'][-1]} "
                   f"({len(est['months_before'])} months) against {est['months_after'][0]} to "
                   f"{est['months_after'][-1]} ({len(est['months_after'])} months)")
    title = spec.label + (f" ({spec.wards.replace(SEPARATOR, ', ')})" if spec.wards else "")
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
        "figures": figures, "rows": rows, "wdq": wdq, "checks": checks, "warnings": list(ev.warnings),
        "chart_png": base64.b64encode(series_png(s, est["start"], est["buffer"]["buffer_m"])).decode("ascii"),
        "map_png": base64.b64encode(places_png(units, est)).decode("ascii"),
        "method": method, "meta": meta, "area_source": spec.source,
        "n_units": est["area"]["n_units"], "edition": est["area"]["edition"],
        "area_km2": f"{est['area']['area_km2']:.2f}",
    }


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

