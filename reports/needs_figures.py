"""The evidence pack's figures (matplotlib, no pyplot state): each written as PNG and SVG.

Every figure carries its own footer naming the source, the period and the population base,
so a figure copied out of the pack into a slide still says what it shows.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from models.needs import spatial
from models.needs.trends import label as measure_label
from reports import layers as gl

DPI = 150
MAP_MEASURES = ("serious violence", "violence", "robbery", "sexual", "weapons", "drugs")
INK, GREY, ACCENT = "#222222", "#8c8c8c", "#b2182b"
SIMILAR_COLOUR, REGION_COLOUR = "#2166ac", "#4d4d4d"
DECILE_COLOURS = ("#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#d1e5f0", "#92c5de", "#4393c3",
                  "#2166ac", "#053061")


@dataclass
class FigureFile:
    """One written figure and what the pack says about it."""

    stem: str
    title: str
    caption: str
    source: str
    period: str
    population: str
    files: dict[str, str] = field(default_factory=dict)  # format -> path relative to the pack

    @property
    def footer(self) -> str:
        return f"Source: {self.source}  |  Period: {self.period}  |  Population base: {self.population}"


def _figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, spec: FigureFile, folder: Path) -> FigureFile:
    """Stamp the footer on ``fig`` and write ``<stem>.png`` and ``<stem>.svg`` into ``folder``."""
    import matplotlib as mpl

    width = int(fig.get_figwidth() * 24)  # characters of 6 pt text across the figure
    fig.supxlabel("\n".join(textwrap.wrap(spec.footer, width)), x=0.005, ha="left", fontsize=6, color="#555555")
    folder.mkdir(parents=True, exist_ok=True)
    with mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "svrisk"}):
        for fmt in ("png", "svg"):
            path = folder / f"{spec.stem}.{fmt}"
            fig.savefig(path, format=fmt, dpi=DPI, metadata={"Date": None} if fmt == "svg" else None)
            spec.files[fmt] = f"{folder.name}/{path.name}"
    return spec


def _style(ax, grid: str = "y") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=7, colors=INK)
    if grid:
        ax.grid(axis=grid, color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)


def _map_axes(ax, gdf) -> None:
    xmin, ymin, xmax, ymax = gdf.total_bounds
    pad = 0.02 * max(xmax - xmin, ymax - ymin)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _simple(gdf, tolerance_m: float = 8.0):
    """Geometries simplified for drawing (a few metres: invisible at page scale, much smaller SVGs)."""
    out = gdf.copy()
    out["geometry"] = gdf.geometry.simplify(tolerance_m, preserve_topology=True)
    return out


def _colours(n: int) -> list[str]:
    return list(gl.RISK_COLOURS[len(gl.RISK_COLOURS) - n:]) if n <= len(gl.RISK_COLOURS) else \
        [gl.RISK_COLOURS[min(i, len(gl.RISK_COLOURS) - 1)] for i in range(n)]


def _banded_map(ax, gdf, values, bounds, title: str, legend_title: str) -> None:
    from matplotlib.patches import Patch

    idx = spatial.band_of(values, bounds)
    labels = spatial.band_labels(bounds)
    colours = _colours(len(labels))
    face = [colours[i] if i >= 0 else "#d9d9d9" for i in idx]
    _simple(gdf).plot(ax=ax, color=face, edgecolor="white", linewidth=0.5)
    _map_axes(ax, gdf)
    ax.set_title(title, fontsize=8.5, loc="left", color=INK)
    present = set(int(i) for i in idx if i >= 0)
    handles = [Patch(facecolor=c, edgecolor="#999999", linewidth=0.3, label=lab + ("" if i in present else " (none)"))
               for i, (lab, c) in enumerate(zip(labels, colours, strict=True))]
    ax.legend(handles=handles, title=legend_title, fontsize=5.5, title_fontsize=6, loc="upper center",
              bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False, handlelength=1.0, borderaxespad=0.2,
              columnspacing=0.8)


# --------------------------------------------------------------------------- profile


def age_structure(age: pd.DataFrame, spec: FigureFile, folder: Path) -> FigureFile:
    fig = _figure(3.4, 3.3)
    ax = fig.add_subplot()
    youth = (age["age_to"] >= 10) & (age["age_from"] <= 24)
    colours = [ACCENT if y else "#9ecae1" for y in youth]
    ax.barh(age["band"], 100 * age["share"], color=colours, height=0.75)
    ax.invert_yaxis()
    ax.set_xlabel("% of residents", fontsize=7)
    ax.set_title("Residents by age (red: ages 10-24)", fontsize=8, loc="left")
    ax.tick_params(axis="y", labelsize=6)
    _style(ax, "x")
    return save(fig, spec, folder)


def profile_maps(lsoas, wards, spec: FigureFile, folder: Path) -> FigureFile:
    from matplotlib.patches import Patch

    fig = _figure(6.3, 3.4)
    ax1, ax2 = fig.subplots(1, 2)
    dec = pd.to_numeric(lsoas["imd_decile"], errors="coerce").to_numpy()
    face = [DECILE_COLOURS[int(d) - 1] if np.isfinite(d) else "#d9d9d9" for d in dec]
    _simple(lsoas).plot(ax=ax1, color=face, edgecolor="white", linewidth=0.15)
    _simple(wards).boundary.plot(ax=ax1, color="#333333", linewidth=0.4)
    _map_axes(ax1, lsoas)
    ax1.set_title("Deprivation: national IMD decile of each LSOA", fontsize=8, loc="left")
    present = sorted({int(d) for d in dec if np.isfinite(d)})
    ax1.legend(handles=[Patch(color=DECILE_COLOURS[d - 1], label=f"{d}" + (" most deprived" if d == 1 else
                                                                           " least deprived" if d == 10 else ""))
                        for d in present], fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               frameon=False, ncol=3, title="national decile", title_fontsize=6)
    share = 100 * wards["aged_10_24"] / wards["population"]
    bounds = tuple(np.round(np.quantile(share.dropna(), [0.2, 0.4, 0.6, 0.8]), 1))
    _banded_map(ax2, wards, share.to_numpy(), tuple(dict.fromkeys(bounds)), "Share of residents aged 10-24, by ward",
                "% aged 10-24 (quintiles)")
    return save(fig, spec, folder)


def deprivation_deciles(deciles: pd.DataFrame, spec: FigureFile, folder: Path) -> FigureFile:
    fig = _figure(3.4, 3.3)
    ax = fig.add_subplot()
    ax.set_title("LSOAs by national IMD decile", fontsize=8, loc="left")
    ax.bar(deciles["national_imd_decile"].astype(str), deciles["lsoas"],
           color=[DECILE_COLOURS[int(d) - 1] for d in deciles["national_imd_decile"]])
    ax.set_xlabel("national decile (1 = most deprived 10% of England)", fontsize=6.5)
    ax.set_ylabel("LSOAs", fontsize=7)
    ax.axhline(deciles["lsoas"].sum() / 10, color=GREY, linestyle="--", linewidth=0.8)
    ax.text(9.4, deciles["lsoas"].sum() / 10, "England: 10% each", fontsize=5.5, color=GREY, va="bottom", ha="right")
    _style(ax)
    return save(fig, spec, folder)


# --------------------------------------------------------------------------- trends


def _time_axis(ax, title: str) -> None:
    import matplotlib.dates as mdates

    ax.set_title(title, fontsize=8, loc="left")
    ax.set_ylim(bottom=0)
    # a year a tick for short series; longer histories (the ward tables go back to 2010) every few years
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=8))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    _style(ax)


def _finish_grid(axes, used: int) -> None:
    """Hide the panels of a small-multiples grid left empty; the legend goes in the first."""
    for ax in axes[used:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=6, frameon=False, loc="lower left")


def monthly_trends(series: pd.DataFrame, window: tuple[str, str], changes: Sequence[str], spec: FigureFile,
                   folder: Path, measures: Sequence[str] = MAP_MEASURES,
                   recording: Sequence[tuple[str, str]] = ()) -> FigureFile:
    """Monthly counts and 12-month averages per measure; dotted lines at category-scheme changes,
    dashed red lines labelled at known recording changes (``recording``: (``YYYY-MM``, short name))."""
    present = [m for m in measures if m in set(series["measure"])]
    rows = int(np.ceil(len(present) / 2))
    fig = _figure(6.3, 1.75 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, 2, sharex=True)).ravel()
    w0, w1 = pd.Timestamp(window[0] + "-01"), pd.Timestamp(window[1] + "-01") + pd.offsets.MonthEnd(0)
    for ax, m in zip(axes, present, strict=False):
        s = series[series["measure"] == m]
        ax.axvspan(w0, w1, color="#fee8c8", linewidth=0)
        ax.plot(s["month"], s["count"], color="#9e9e9e", linewidth=0.7, label="month")
        ax.plot(s["month"], s["rolling_12m"] / 12, color=ACCENT, linewidth=1.4, label="12-month average")
        for c in changes:
            ax.axvline(pd.Timestamp(c + "-01"), color="#6a51a3", linestyle=":", linewidth=0.8)
        for when, short in recording:
            ax.axvline(pd.Timestamp(when + "-01"), color="#cb181d", linestyle="--", linewidth=0.9)
            ax.annotate(short, (pd.Timestamp(when + "-01"), 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -2), textcoords="offset points", fontsize=5.5, color="#cb181d", va="top")
        _time_axis(ax, measure_label(m).split(" (")[0])
    _finish_grid(axes, len(present))
    title = "Offences per month; shaded: the latest 12 months"
    if changes:
        title += "; dotted: changes in the Met's category scheme"
    if recording:
        title += "; red dashed: recording changes (" + ", ".join(f"{s} {w}" for w, s in recording) + ")"
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=7.5, x=0.005, ha="left")
    return save(fig, spec, folder)


def stl_panels(stl: pd.DataFrame, spec: FigureFile, folder: Path,
               recording: Sequence[tuple[str, str]] = ()) -> FigureFile:
    """STL panels; dashed red lines labelled at known recording changes (``recording``)."""
    fig = _figure(6.3, 4.4)
    axes = fig.subplots(4, 1, sharex=True)
    for when, short in recording:
        for ax in axes:
            ax.axvline(pd.Timestamp(when + "-01"), color="#cb181d", linestyle="--", linewidth=0.9)
        axes[0].annotate(short, (pd.Timestamp(when + "-01"), 1.0), xycoords=("data", "axes fraction"),
                         xytext=(2, -2), textcoords="offset points", fontsize=5.5, color="#cb181d", va="top")
    for ax, col, title in zip(axes, ("observed", "trend", "seasonal", "resid"),
                              ("Observed (offences a month)", "Trend", "Seasonal effect", "Remainder"), strict=True):
        if col in ("seasonal", "resid"):
            ax.axhline(0, color=GREY, linewidth=0.6)
        ax.plot(stl["month"], stl[col], color=ACCENT if col == "trend" else INK, linewidth=1.0 if col != "trend" else 1.5)
        ax.set_title(title, fontsize=7.5, loc="left")
        _style(ax)
    return save(fig, spec, folder)


# --------------------------------------------------------------------------- spatial


def ward_rate_maps(wards, bands: pd.DataFrame, spec: FigureFile, folder: Path,
                   measures: Sequence[str] = MAP_MEASURES) -> FigureFile:
    present = [m for m in measures if f"{m}__rate" in wards]
    rows = int(np.ceil(len(present) / 3))
    fig = _figure(6.3, 2.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, 3)).ravel()
    b = bands.set_index("measure")
    for ax, m in zip(axes, present, strict=False):
        bounds = tuple(float(x) for x in str(b.loc[m, "bounds"]).split(";") if x)
        _banded_map(ax, wards, wards[f"{m}__rate"].to_numpy(), bounds, measure_label(m), "per 1,000 residents")
    for ax in axes[len(present):]:
        ax.set_visible(False)
    return save(fig, spec, folder)


def raw_vs_smoothed(wards, bounds, measure: str, spec: FigureFile, folder: Path) -> FigureFile:
    fig = _figure(6.3, 3.3)
    ax1, ax2 = fig.subplots(1, 2)
    _banded_map(ax1, wards, wards[f"{measure}__rate"].to_numpy(), bounds, "Recorded rate", "per 1,000 residents")
    _banded_map(ax2, wards, wards[f"{measure}__eb"].to_numpy(), bounds, "Empirical-Bayes smoothed rate",
                "per 1,000 residents")
    return save(fig, spec, folder)


def hotspot_maps(table, areas, spec: FigureFile, folder: Path) -> FigureFile:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = _figure(6.3, 3.4)
    ax1, ax2 = fig.subplots(1, 2)
    bins = table["Gi_Bin"].fillna(0).astype(int)
    table = _simple(table)
    table.plot(ax=ax1, color=[gl.GI_BIN_COLOURS.get(b, "#f0f0f0") for b in bins], edgecolor="white", linewidth=0.3)
    _map_axes(ax1, table)
    ax1.set_title("Gi* hot and cold spots (FDR-controlled)", fontsize=8, loc="left")
    present = sorted(set(bins), reverse=True)
    handles = [Patch(color=gl.GI_BIN_COLOURS[b], label=gl.GI_BIN_LABELS[b]) for b in present]
    em = table["emerging"].astype(str)
    none = em.str.lower().isin(gl.NO_PATTERN)
    table.plot(ax=ax2, color=["#f0f0f0" if n else gl.emerging_colour(e) for e, n in zip(em, none, strict=True)],
               edgecolor="white", linewidth=0.3)
    _map_axes(ax2, table)
    ax2.set_title("Emerging hot spots (quarters, Mann-Kendall)", fontsize=8, loc="left")
    cats = sorted(set(em[~none]))
    h2 = [Patch(color=gl.emerging_colour(c), label=c) for c in cats] or [Patch(color="#f0f0f0", label="no pattern")]
    if areas is not None and len(areas):
        for ax in (ax1, ax2):
            areas.boundary.plot(ax=ax, color=gl.AREA_COLOUR, linewidth=1.4)
        handles.append(Line2D([], [], color=gl.AREA_COLOUR, linewidth=1.4, label="operational area"))
    for ax, h in ((ax1, handles), (ax2, h2)):
        ax.legend(handles=h, fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
    return save(fig, spec, folder)


def lorenz_curves(curves: dict[str, Sequence[float]], spec: FigureFile, folder: Path) -> FigureFile:
    fig = _figure(4.2, 3.2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=0.8, label="equal spread")
    palette = ("#b2182b", "#2166ac", "#1b7837", "#762a83")
    for (name, values), colour in zip(curves.items(), palette, strict=False):
        x, y = spatial.lorenz(values)
        ax.plot(100 * x, 100 * y, color=colour, linewidth=1.4, label=name)
    ax.plot([0, 100], [0, 100], alpha=0)
    ax.axvline(100 * spatial.TOP_SHARE, color=GREY, linewidth=0.6)
    ax.set_xlabel("% of places (most harm first)", fontsize=7)
    ax.set_ylabel("% of serious violence", fontsize=7)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=6, frameon=False, loc="lower right")
    _style(ax, "both")
    return save(fig, spec, folder)


# --------------------------------------------------------------------------- comparison


def region_ranks(rates: pd.DataFrame, code: str, similar: Sequence[str], measures: Sequence[str], spec: FigureFile,
                 folder: Path) -> FigureFile:
    present = [m for m in measures if m in set(rates["measure"])]
    fig = _figure(6.3, 4.6)
    axes = np.atleast_1d(fig.subplots(1, len(present)))
    for ax, m in zip(axes, present, strict=True):
        part = rates[(rates["measure"] == m) & rates["rate_per_1000"].notna()].sort_values("rate_per_1000")
        colours = [ACCENT if c == code else SIMILAR_COLOUR if c in set(similar) else "#cfcfcf" for c in part["area_code"]]
        ax.barh(part["name"].astype(str), part["rate_per_1000"], color=colours, height=0.7)
        pooled = 1000 * part["count"].sum() / part["population"].sum()
        ax.axvline(pooled, color=REGION_COLOUR, linestyle="--", linewidth=0.9)
        ax.text(pooled, -1.2, " region", fontsize=6, color=REGION_COLOUR, va="top")
        # wrapped to the panel's width: a long measure name must not run into the next panel's title
        ax.set_title("\n".join(textwrap.wrap(measure_label(m), int(14 * 6.3 / len(present)))), fontsize=8, loc="left")
        ax.set_xlabel("per 1,000 residents", fontsize=6.5)
        ax.tick_params(axis="y", labelsize=5.5)
        _style(ax, "x")
    return save(fig, spec, folder)


def region_trends(roll: pd.DataFrame, name: str, spec: FigureFile, folder: Path,
                  measures: Sequence[str] = MAP_MEASURES) -> FigureFile:
    present = [m for m in measures if m in set(roll["measure"])]
    rows = int(np.ceil(len(present) / 2))
    fig = _figure(6.3, 1.7 * rows + 0.3)
    axes = np.atleast_1d(fig.subplots(rows, 2, sharex=True)).ravel()
    for ax, m in zip(axes, present, strict=False):
        s = roll[roll["measure"] == m]
        ax.plot(s["month"], s["borough"], color=ACCENT, linewidth=1.5, label=name)
        ax.plot(s["month"], s["similar"], color=SIMILAR_COLOUR, linewidth=1.1, label="similar boroughs")
        ax.plot(s["month"], s["region"], color=REGION_COLOUR, linewidth=1.0, linestyle="--", label="region")
        _time_axis(ax, measure_label(m))
    _finish_grid(axes, len(present))
    fig.suptitle("Rolling 12-month rate per 1,000 residents", fontsize=7.5, x=0.005, ha="left")
    return save(fig, spec, folder)


# --------------------------------------------------------------------------- risk


def forest(table: pd.DataFrame, spec: FigureFile, folder: Path) -> FigureFile:
    """Rate ratios with intervals, one block of rows per model (finest areas first), log scale."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks, labels, bold, points = [], [], [], []
    y = 0
    for level in dict.fromkeys(table["level"]):
        t = table[table["level"] == level]
        ticks.append(y)
        labels.append(f"{t['units'].iloc[0]}: {int(t['n'].iloc[0])} areas, {t['period'].iloc[0]}")
        bold.append(True)
        y += 1
        for r in t.itertuples():
            colour = ACCENT if r.direction == "higher" else SIMILAR_COLOUR if r.direction == "lower" else GREY
            points.append((y, r.rate_ratio, r.lo, r.hi, colour))
            ticks.append(y)
            labels.append(f"{r.label} ({r.per})")
            bold.append(False)
            y += 1
        y += 0.5
    fig = _figure(6.3, 0.2 * y + 0.8)
    ax = fig.add_subplot()
    ys, rr, lo, hi, colours = (list(v) for v in zip(*points, strict=True))
    ax.hlines(ys, lo, hi, color=colours, linewidth=1.8)
    ax.scatter(rr, ys, color=colours, s=16, zorder=3)
    ax.axvline(1.0, color=INK, linewidth=0.7)
    ax.set_yticks(ticks, labels, fontsize=6)
    for tick, b in zip(ax.get_yticklabels(), bold, strict=True):
        if b:
            tick.set_fontweight("bold")
            tick.set_fontsize(7)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(y - 0.5, -0.6)
    ax.set_xscale("log")
    span = (min(lo), max(hi))
    steps = [t for t in (0.25, 0.5, 0.8, 1.0, 1.25, 2.0, 4.0)
             if span[0] / 1.05 <= t <= span[1] * 1.05] or [1.0]
    ax.xaxis.set_major_locator(FixedLocator(steps))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.set_xlabel("rate ratio, 95% interval (log scale)", fontsize=6.5)
    _style(ax, "x")
    return save(fig, spec, folder)


def assets_map(wards, layers: dict, spec: FigureFile, folder: Path) -> FigureFile:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = _figure(6.3, 4.0)
    ax = fig.add_subplot()
    handles = []
    if "street_lights_per_km2" in wards:
        v = wards["street_lights_per_km2"].to_numpy(dtype=float)
        bounds = tuple(dict.fromkeys(np.round(np.quantile(v[np.isfinite(v)], [0.2, 0.4, 0.6, 0.8]), 0)))
        idx = spatial.band_of(v, bounds)
        greys = ("#f7f7f7", "#d9d9d9", "#bdbdbd", "#969696", "#737373", "#525252")[: len(bounds) + 1]
        _simple(wards).plot(ax=ax, color=[greys[i] if i >= 0 else "white" for i in idx], edgecolor="white", linewidth=0.6)
        handles += [Patch(color=c, label=f"lights/km² {lab}") for c, lab in zip(greys, spatial.band_labels(bounds), strict=True)]
    else:
        wards.plot(ax=ax, color="#f0f0f0", edgecolor="white", linewidth=0.6)
    if "parks" in layers:
        _simple(layers["parks"]).plot(ax=ax, color="#a1d99b", edgecolor="#41ab5d", linewidth=0.3)
        handles.append(Patch(color="#a1d99b", label="parks and open spaces"))
    for key, colour, marker, lab in (("schools", gl.HUB_COLOURS["school"], "o", "schools"),
                                     ("stations", gl.HUB_COLOURS["station"], "s", "stations")):
        if key in layers and len(layers[key]):
            pts = layers[key]
            ax.scatter(pts.geometry.x, pts.geometry.y, s=7 if key == "schools" else 14, color=colour, marker=marker,
                       edgecolor="white", linewidth=0.3, zorder=3)
            handles.append(Line2D([], [], marker=marker, linestyle="", color=colour, label=lab, markersize=4))
    _map_axes(ax, wards)
    ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return save(fig, spec, folder)


def funnel_plot(funnel: pd.DataFrame, panels: Sequence[tuple[str, str]], spec: FigureFile, folder: Path,
                levels: Sequence[str] = ("95", "99.8")) -> FigureFile:
    """Ward rates against residents with Poisson 95% and 99.8% limits around the borough rate, one panel per
    (``measure``, title) of ``panels``; wards outside the 99.8% limits are labelled."""
    fig = _figure(6.3, 2.6)
    axes = np.atleast_1d(fig.subplots(1, len(panels))).ravel()
    for ax, (m, title) in zip(axes, panels, strict=True):
        f = funnel[funnel["measure"] == m].sort_values("population")
        if not len(f):
            ax.set_visible(False)
            continue
        for lvl, style in ((lv, "--" if lv == "95" else "-") for lv in levels):
            ax.plot(f["population"], f[f"lo_{lvl}"], color=GREY, linestyle=style, linewidth=0.8)
            ax.plot(f["population"], f[f"hi_{lvl}"], color=GREY, linestyle=style, linewidth=0.8,
                    label=f"{lvl}% limits")
        rate = float(f["borough_rate_per_1000"].iloc[0]) if "borough_rate_per_1000" in f else \
            float(f["wards_rate_per_1000"].iloc[0])
        ax.axhline(rate, color=INK, linewidth=0.8, label="borough rate")
        out = f["outside"].str.contains("99.8", na=False)
        ax.scatter(f["population"], f["rate_per_1000"], s=10, color=np.where(out, ACCENT, SIMILAR_COLOUR), zorder=3)
        for r in f[out].itertuples():
            ax.annotate(str(r.name), (r.population, r.rate_per_1000), fontsize=5, xytext=(2, 2), textcoords="offset points")
        ax.set_title(title, fontsize=7.5, loc="left")
        ax.set_xlabel("residents", fontsize=6.5)
        ax.set_ylabel("per 1,000", fontsize=6.5)
        _style(ax)
    axes[0].legend(fontsize=5.5, frameon=False)
    return save(fig, spec, folder)
