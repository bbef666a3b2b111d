"""The hotspot map: one self-contained folium HTML file that reads offline.

Vector layers over a plain background (no base tiles unless asked for), Leaflet's JS and
CSS inlined from the ``django-js-lib-leaflet`` package instead of a CDN, so the map opens
from a USB stick in a meeting room with no network. What a tasking meeting needs to find
its way and read it at a glance:

* **orientation offline**: the borough outline, ward boundaries with their names and
  station names, drawn from the run's ``borough``/``wards``/``hubs`` tables; optional base
  tiles (:func:`tile_source`: OpenStreetMap or a force's own tile server) with their
  attribution; the data attribution (OGL, OS boundaries, police.uk) always shown;
* **classes that separate the top places**: by default the top 1%, 5%, 10% and 25% of the
  area (the backtest's slices, :func:`models.evaluation.top_slice`), not quantiles of all
  places; the top 10 numbered on the map as in the list;
* **legends only for what is shown**: each layer's legend section is visible while its
  layer is on (a layer with nothing to draw has neither); units on every number;
* **context never in the way**: wards, outline, stations and schools and their labels sit
  in panes that take no clicks, so a click always reaches the place under it.

Examples
--------
>>> m = risk_map(layers, meta, context=context_layers(run))   # doctest: +SKIP
>>> save_map(m, "out/runs/r1/map.html")                       # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import itertools
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.places import station_label
from reports import layers as gl

#: The needs assessment's fixed bands of rate per 1,000 residents.
RATE_BANDS = (1.0, 1.5, 2.0, 3.0, 5.0)
RATE_BAND_LABELS = ("< 1", "1 - 1.5", "1.5 - 2", "2 - 3", "3 - 5", "> 5")
TOP_SHARES = gl.TOP_SHARES
TOP_AREA_COLOURS = gl.TOP_AREA_COLOURS
SCHEMES = ("top_area", "quantile", "rate_bands")
TOP_N = 10
"""Places numbered on the map and listed in the briefing."""

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'

POPUP_FIELDS = (
    ("rank_txt", "Rank"), ("place", "Place"), ("unit_txt", "Unit"), ("expected_txt", "Forecast"),
    ("reason_1", "Why"), ("reason_2", "Why"), ("reason_3", "Why"),
    ("gi_class", "Hot spot (Gi*)"), ("emerging", "Trend"), ("rank_change_txt", "Rank change"),
)
_PANES = (("svrisk-context", 420), ("svrisk-hubs", 430), ("svrisk-labels", 640))
"""Panes above the places that take no pointer events (z-index: overlays 400, markers 600)."""


def classify(values, scheme: str = "quantile", k: int = 5) -> tuple[np.ndarray, list[str], list[str]]:
    """Class index, class labels and colours of ``values`` under a value-only legend scheme.

    ``quantile``: ``k`` quantile classes (fewer if values tie); class i holds values up to
    its upper bound, inclusive. ``rate_bands``: the fixed bands <1, 1-1.5, 1.5-2, 2-3, 3-5,
    >5 (a value on a bound goes to the lower band). NaN gets class -1. (``top_area``
    needs the places' areas: see :func:`risk_classes`.)

    >>> classify([0.5, 1.0, 2.5, 7.0], "rate_bands")[0].tolist()
    [0, 0, 3, 5]
    """
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    if scheme == "rate_bands":
        bounds = list(RATE_BANDS)
        labels = list(RATE_BAND_LABELS)
        colours = list(gl.RISK_COLOURS)
    elif scheme == "quantile":
        bounds = gl.quantile_breaks(v, k)[:-1]
        finite = v[np.isfinite(v)]
        lo = float(finite.min()) if finite.size else 0.0
        tops = [*bounds, float(finite.max()) if finite.size else 0.0]
        labels = []
        for hi in tops:
            labels.append(f"{lo:.2f} - {hi:.2f}")
            lo = hi
        colours = list(gl.RISK_COLOURS[len(gl.RISK_COLOURS) - len(labels):])
    else:
        raise ValueError(f"scheme={scheme!r} is not one of {SCHEMES[1:]} (top_area: use risk_classes)")
    idx = np.searchsorted(np.asarray(bounds, dtype=float), v, side="left")
    idx = np.where(np.isfinite(v), idx, -1)
    return idx, labels, colours


def top_area_classes(ranked: gpd.GeoDataFrame, value: str = "expected", shares=TOP_SHARES,
                     unit: str = "") -> tuple[np.ndarray, list[str], list[str]]:
    """Classes by share of the area: the top 1%, 1-5%, 5-10%, 10-25% of the area, and the rest.

    The classes follow the ranking's order (:func:`reports.layers.area_class_index`): the
    top-ranked places covering 1%, 5%, 10% and 25% of the area, so rank 1 is always in the
    darkest class and the numbered top 10 read down the classes. Labels give the places in the class
    and their range of ``value`` followed by ``unit``. Classes that hold no place are left out.

    >>> from shapely.geometry import box
    >>> g = gpd.GeoDataFrame({"unit_id": list("abcd"), "expected": [9.0, 1.0, 3.0, 2.0]},
    ...                      geometry=[box(0, 0, 1, 1)] * 4, crs=27700)
    >>> idx, labels, _ = top_area_classes(g, shares=(0.25, 0.5))
    >>> idx.tolist(), labels
    ([0, 2, 1, 2], ['Top 25% of area: 1 place, 9.0', '25-50% of area: 1 place, 3.0', 'Rest: 2 places, 1.0 - 2.0'])
    """
    scores = pd.to_numeric(ranked[value], errors="coerce").fillna(0.0).to_numpy(float)
    idx = gl.area_class_index(ranked, value, shares)
    names = gl.area_class_names(shares)
    colours = list(TOP_AREA_COLOURS[: len(shares)]) + [TOP_AREA_COLOURS[-1]]
    labels, keep_colours, remap = [], [], np.full(len(names), -1)
    for c, name in enumerate(names):
        members = scores[idx == c]
        if not len(members):
            continue
        lo, hi = float(members.min()), float(members.max())
        rng = f"{lo:,.1f}" if f"{lo:,.1f}" == f"{hi:,.1f}" else f"{lo:,.1f} - {hi:,.1f}"
        n = len(members)
        labels.append(f"{name}: {n} place{'s' if n != 1 else ''}, {rng}{(' ' + unit) if unit else ''}")
        keep_colours.append(colours[c])
        remap[c] = len(labels) - 1
    return remap[idx], labels, keep_colours


def risk_classes(ranked: gpd.GeoDataFrame, scheme: str = "top_area", value: str = "expected", k: int = 5,
                 unit: str = "") -> tuple[np.ndarray, list[str], list[str]]:
    """Class index, labels and colours of the ranked places under any of :data:`SCHEMES`."""
    if scheme == "top_area":
        return top_area_classes(ranked, value, unit=unit)
    return classify(ranked[value], scheme, k)


def value_label(value: str, horizon: int = 1) -> str:
    """What the choropleth's number is, with its unit: "expected events next month"."""
    if value == "expected":
        return "expected events " + ("next month" if horizon == 1 else f"in the next {horizon} months")
    return value.replace("_", " ")


def tile_source(tiles: str | None, attribution: str | None = None) -> tuple[str, str] | None:
    """(URL template, attribution) of the base tiles to draw, or None for none (offline).

    ``tiles`` is ``None``/``"none"`` (no tiles: the map needs no network), ``"osm"``
    (OpenStreetMap's standard tiles), or a force's own XYZ URL template with ``{z}``,
    ``{x}`` and ``{y}``. A custom server without an ``attribution`` is credited by its
    host name, so the map always says whose tiles it shows.

    >>> tile_source("none") is None
    True
    >>> tile_source("https://maps.example.police.uk/{z}/{x}/{y}.png")[1]
    'Base map: maps.example.police.uk'
    """
    if tiles is None or str(tiles).strip().lower() in ("", "none", "off"):
        return None
    text = str(tiles).strip()
    if text.lower() in ("osm", "openstreetmap"):
        return OSM_TILES, attribution or OSM_ATTRIBUTION
    if not all(part in text for part in ("{z}", "{x}", "{y}")) or not text.startswith(("http://", "https://")):
        raise ValueError(f"tiles={tiles!r}: expected 'none', 'osm' or a tile URL template "
                         "'https://.../{z}/{x}/{y}.png'")
    return text, attribution or f"Base map: {urlparse(text).hostname}"


def _to_web(gdf: gpd.GeoDataFrame, columns) -> gpd.GeoDataFrame:
    keep = [c for c in columns if c in gdf.columns]
    out = gdf[[*keep, gdf.geometry.name]].to_crs(gl.WEB_CRS)
    for col in keep:  # JSON-safe: NA -> None, numpy scalars -> Python
        s = out[col]
        if pd.api.types.is_float_dtype(s):
            out[col] = s.astype(float).round(3).astype(object).where(s.notna(), None)
        else:
            out[col] = s.astype(object).where(s.notna(), None)
    return out


def rank_change_text(change, has_previous: bool) -> str:
    """``+3`` -> "up 3 places"; NA -> "new to the ranking", or "no earlier run" without one."""
    if change is None or pd.isna(change):
        return "new to the ranking" if has_previous else "no earlier run to compare"
    change = int(change)
    if change == 0:
        return "no change"
    return f"{'up' if change > 0 else 'down'} {abs(change)} place{'s' if abs(change) != 1 else ''}"


def has_previous(ranked: pd.DataFrame, meta: Mapping) -> bool:
    """Whether the run was compared with an earlier one (its rank changes mean something)."""
    return bool(meta.get("previous_run")) or (
        "rank_change" in ranked.columns and bool(pd.to_numeric(ranked["rank_change"], errors="coerce").notna().any()))


def forecast_text(expected, lo=None, hi=None, horizon: int = 1) -> str:
    """"12.0 expected events next month (80% range 6 - 18)"."""
    if expected is None or pd.isna(expected):
        return "–"
    text = f"{float(expected):,.1f} {value_label('expected', horizon)}"
    if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
        text += f" (80% range {float(lo):,.0f} - {float(hi):,.0f})"
    return text


def attribution(meta: Mapping, tiles_attribution: str | None = None) -> str:
    """The data credits every map and briefing shows (HTML)."""
    text = gl.attribution_text(meta)
    return f"{tiles_attribution} | {html.escape(text)}" if tiles_attribution else html.escape(text)


def _legend_html(sections: list[tuple[str, str, list[tuple[str, str, str]]]]) -> str:
    parts = []
    for key, title, items in sections:
        if not items:
            continue  # a layer with nothing to show has no legend
        rows = "".join(
            f'<div class="svrisk-legend-row"><span class="svrisk-swatch svrisk-{shape}" '
            f'style="background:{colour}; border-color:{colour}"></span>{html.escape(label)}</div>'
            for label, colour, shape in items
        )
        parts.append(f'<div class="svrisk-legend-section" data-layer="{key}"><b>{html.escape(title)}</b>'
                     f"{rows}</div>")
    return f'<div class="svrisk-legend" id="svrisk-legend">{"".join(parts)}</div>'


_CSS = """
<style>
html, body {height: 100%; margin: 0;}
.leaflet-container {background: #f4f4f1;}
.svrisk-title {position: absolute; top: 8px; left: 60px; z-index: 1000; max-width: calc(100% - 460px);
  background: rgba(255,255,255,0.92); padding: 6px 12px; border: 1px solid #999; border-radius: 4px;
  font: 14px/1.3 Arial, sans-serif;}
.svrisk-title small {color: #444;}
.svrisk-legend {position: absolute; bottom: 64px; left: 10px; z-index: 1000; max-height: 62%;
  overflow-y: auto; background: rgba(255,255,255,0.94); padding: 6px 10px; border: 1px solid #999;
  border-radius: 4px; font: 12px/1.4 Arial, sans-serif; max-width: 330px;}
.svrisk-legend-section {margin-bottom: 4px;}
.svrisk-legend-section b {display: block;}
.svrisk-swatch {display: inline-block; width: 14px; height: 10px; margin-right: 6px;
  border: 1px solid; vertical-align: middle; opacity: 0.9;}
.svrisk-swatch.svrisk-line {background: transparent !important; border-width: 0 0 3px 0; height: 4px;}
.svrisk-swatch.svrisk-thin {background: transparent !important; border-width: 0 0 1px 0; border-style: dashed; height: 6px;}
.svrisk-swatch.svrisk-dot {width: 10px; border-radius: 50%;}
.svrisk-swatch.svrisk-num {width: 14px; height: 14px; border-radius: 50%; background: #fff !important;
  border: 2px solid #111 !important; box-sizing: border-box;}
.svrisk-label {white-space: nowrap; font: 11px/1.1 Arial, sans-serif; color: #333; pointer-events: none;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff;}
.svrisk-label span {position: absolute; transform: translate(-50%, -50%);}
.svrisk-ward-label {font-size: 11px; font-style: italic; color: #4d4d4d; letter-spacing: 0.02em;}
.svrisk-station-label span {transform: translate(7px, -50%); font-weight: bold; color: #08306b;}
.svrisk-ward-label.svrisk-above span {transform: translate(-50%, calc(-50% - 16px));}
.svrisk-ward-label.svrisk-below span {transform: translate(-50%, calc(-50% + 16px));}
.svrisk-station-label.svrisk-left span {transform: translate(calc(-100% - 7px), -50%);}
.svrisk-num {pointer-events: none;}
.svrisk-swatch.svrisk-num.svrisk-num-beside {background: #111 !important;}
.svrisk-num span {position: absolute; transform: translate(-50%, -50%); display: block; width: 20px; height: 20px;
  border-radius: 50%; background: #fff; border: 2px solid #111; font: bold 11px/20px Arial, sans-serif;
  text-align: center; box-shadow: 0 0 2px #fff;}
.svrisk-num-beside span {background: #111; color: #fff; border-color: #fff; box-shadow: 0 0 0 1px #111;}
.svrisk-leader {position: absolute; left: 0; top: 0; overflow: visible;}
.svrisk-leader polyline {stroke: #111; stroke-width: 1.2; fill: none;}
.svrisk-leader circle {fill: #111;}
.leaflet-control-attribution {font-size: 10px; max-width: 70%;}
</style>
"""


def _label(location, text: str, cls: str):
    import folium

    return folium.Marker(
        location, interactive=False, keyboard=False, pane="svrisk-labels",
        icon=folium.DivIcon(html=f"<span>{html.escape(text)}</span>", class_name=f"svrisk-label {cls}",
                            icon_size=(0, 0), icon_anchor=(0, 0)),
    )


def beside_title(meta: Mapping) -> str:
    """The map title's line for the forecast beside the lead (its own units, month, data and model), or ""."""
    cur = meta.get("current")
    if not cur or not cur.get("data_period"):
        return ""
    own = dict(meta, **{k: v for k, v in cur.items() if v is not None})
    return (f'<br><small id="svrisk-title-current">Layer "Latest data": {html.escape(str(cur.get("units", "")))} '
            f'forecast for {html.escape(str(cur.get("cutoff", "")))} &middot; data '
            f'{html.escape(gl.data_period(own).replace("/", " to "))} &middot; model '
            f'{html.escape(str(cur.get("model_version", "")))}</small>')


MAP_SIZE = (1000, 700)
"""Nominal map size in pixels at which labels are placed apart (the fitted zoom's view)."""
NUMBER_BOX = 26
"""Side in pixels of a number's box: the 20 px disc, its 2 px border and a 1 px gap."""
_RINGS = (0, 28, 38, 50, 64, 80)
_DIRECTIONS = ((1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1))


def fitted_zoom(bounds, size=MAP_SIZE, max_zoom: int = 18) -> int:
    """Leaflet's ``fitBounds`` zoom (whole steps, no padding) for lon/lat ``bounds`` in a ``size`` map.

    >>> fitted_zoom((-0.30, 51.55, -0.13, 51.67))
    12
    """
    xmin, ymin, xmax, ymax = bounds
    x0, y0 = web_pixels(xmin, ymax, 0)
    x1, y1 = web_pixels(xmax, ymin, 0)
    scale = min(size[0] / max(x1 - x0, 1e-12), size[1] / max(y1 - y0, 1e-12))
    return int(np.clip(np.floor(np.log2(scale)), 0, max_zoom))


def web_pixels(lon, lat, zoom: int) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator pixel coordinates (x right, y down) of lon/lat degrees at ``zoom``."""
    world = 256.0 * 2.0 ** zoom
    lon, lat = np.asarray(lon, dtype=float), np.radians(np.asarray(lat, dtype=float))
    x = (lon + 180.0) / 360.0 * world
    y = (0.5 - np.log(np.tan(np.pi / 4 + lat / 2)) / (2 * np.pi)) * world
    return x, y


def _square(x: float, y: float, side: float = NUMBER_BOX):
    from shapely.geometry import box

    return box(x - side / 2, y - side / 2, x + side / 2, y + side / 2)


def label_offsets(x, y, side: float = NUMBER_BOX, taken=()) -> np.ndarray:
    """Pixel offsets ``(dx, dy)`` that keep the number labels at ``(x, y)`` from overlapping.

    Greedy in the given order (rank order: number 1 stays on its place): each label takes the
    first free box among rings of 8 positions around its point, nearest ring first, starting
    up-right and going clockwise; with no free box it takes the one overlapping least. ``taken``:
    pixel boxes already drawn (another layer's numbers) to keep clear of as well. The same points
    give the same offsets.

    >>> label_offsets([0, 5, 100], [0, 0, 0]).tolist()
    [[0.0, 0.0], [28.0, -28.0], [0.0, 0.0]]
    """
    placed, out = list(taken), []
    for px, py in zip(np.asarray(x, float), np.asarray(y, float), strict=True):
        best, best_overlap = None, np.inf
        for r in _RINGS:
            for ux, uy in (_DIRECTIONS if r else ((0, 0),)):
                cand = _square(px + ux * r, py + uy * r, side)
                overlap = sum(cand.intersection(b).area for b in placed)
                if overlap < best_overlap:
                    best, best_overlap = (float(ux * r), float(uy * r)), overlap
                if overlap == 0:
                    break
            if best_overlap == 0:
                break
        placed.append(_square(px + best[0], py + best[1], side))
        out.append(best)
    return np.asarray(out, dtype=float).reshape(-1, 2)


def place_numbers(top: gpd.GeoDataFrame, zoom: int, taken=()) -> pd.DataFrame:
    """Where each numbered label of ``top`` goes: its place's point (lon, lat), rank, unit id and
    the pixel offset ``(dx, dy)`` of its label at ``zoom`` clear of ``taken`` boxes (:func:`label_offsets`)."""
    pts = top.geometry.representative_point().to_crs(gl.WEB_CRS)
    ranks = top["rank"] if "rank" in top else range(1, len(top) + 1)
    out = pd.DataFrame({"rank": [int(r) for r in ranks], "unit_id": top["unit_id"].astype(str).to_numpy(),
                        "lon": pts.x.to_numpy(), "lat": pts.y.to_numpy()})
    x, y = web_pixels(out["lon"], out["lat"], zoom)
    offsets = label_offsets(x, y, taken=taken)
    out["dx"], out["dy"], out["x"], out["y"] = offsets[:, 0], offsets[:, 1], x, y
    return out


def number_boxes(placed: pd.DataFrame) -> list:
    """The pixel boxes of the placed number labels (:func:`place_numbers`)."""
    return [_square(x + dx, y + dy) for x, y, dx, dy in placed[["x", "y", "dx", "dy"]].itertuples(index=False)]


def _number_html(layer: str, unit: str, rank: int, dx: float, dy: float) -> str:
    """A number's label; moved off its point by (dx, dy) px, with a thin leader line back to the point."""
    span = (f'<span data-layer="{layer}" data-unit="{html.escape(unit)}">{int(rank)}</span>')
    if not dx and not dy:
        return span
    leader = (f'<svg class="svrisk-leader" width="1" height="1"><circle cx="0" cy="0" r="2"/>'
              f'<polyline points="0,0 {dx:g},{dy:g}"/></svg>')
    return leader + span.replace("<span ", f'<span style="left:{dx:g}px; top:{dy:g}px" data-dx="{dx:g}" '
                                             f'data-dy="{dy:g}" ', 1)


def numbered_places(top: gpd.GeoDataFrame, layer: str, name: str, *, show: bool = True, zoom: int | None = None,
                    group=None, taken=(), css: str = "svrisk-num"):
    """A layer of numbered labels, one per place of ``top`` at its representative point.

    Each label's HTML carries the place (``data-unit``) and the layer it numbers (``data-layer``),
    so the map can be checked against the briefing's list of the same forecast. With ``zoom``
    (the map's starting zoom) labels that would overlap there are moved apart
    (:func:`label_offsets`) with a leader line to their place; the marker stays on the place.
    ``group``: add the labels to this layer instead of a new one (so they show and hide with it);
    ``taken``: pixel boxes of numbers already drawn to keep clear of; ``css``: the labels' classes.
    """
    import folium

    group = folium.FeatureGroup(name=name, show=show) if group is None else group
    placed = place_numbers(top, zoom if zoom is not None else 0, taken)
    if zoom is None:
        placed["dx"], placed["dy"] = 0.0, 0.0
    for p in placed.itertuples(index=False):
        folium.Marker([p.lat, p.lon], interactive=False, keyboard=False, pane="svrisk-labels",
                      icon=folium.DivIcon(html=_number_html(layer, p.unit_id, p.rank, p.dx, p.dy),
                                          class_name=css, icon_size=(0, 0),
                                          icon_anchor=(0, 0))).add_to(group)
    return group


_NAME_SPOTS = {"svrisk-ward-label": (("", 0, 0), ("svrisk-above", 0, -16), ("svrisk-below", 0, 16)),
               "svrisk-station-label": (("", 1, 0), ("svrisk-left", -1, 0))}
"""Where a ward name (centred, above, below) or a station name (right or left of its dot) may go:
(CSS class, side, vertical shift in px); the first free one is taken."""


def _name_box(x: float, y: float, text: str, side: int, dy: float):
    """The pixel box of a name, by a nominal 6.5 px a character: centred (side 0) or 7 px right/left of its dot."""
    from shapely.geometry import box

    w, h = 6.5 * len(text) + 4, 14
    left = x - w / 2 if side == 0 else (x + 7 if side > 0 else x - 7 - w)
    return box(left, y + dy - h / 2, left + w, y + dy + h / 2)


def name_spot(lon, lat, text: str, cls: str, numbers: tuple) -> str | None:
    """The CSS class placing a ward or station name clear of the numbers, or None: it gives way.

    ``numbers`` is ``(zoom, boxes)`` of the numbered labels (:func:`number_boxes`); the name
    takes its first spot of :data:`_NAME_SPOTS` whose box overlaps no number's.
    """
    spots = _NAME_SPOTS[cls]
    if not numbers or not numbers[1]:
        return spots[0][0]
    zoom, boxes = numbers
    x, y = (float(v) for v in web_pixels(lon, lat, zoom))
    for css, side, dy in spots:
        own = _name_box(x, y, text, side, dy)
        if not any(own.intersects(b) for b in boxes):
            return css
    return None


def _legend_sync(m, layers: dict, credits: str):
    """A script run after every layer: each legend section shows while its layer is on; credits."""
    from branca.element import MacroElement
    from jinja2 import Template

    class LegendSync(MacroElement):
        _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
          var layers = { {%- for key, layer in this.layers.items() %}
            {{ key|tojson }}: {{ layer.get_name() }}{{ "," if not loop.last }}{% endfor %} };
          function sync() {
            var any = false;
            document.querySelectorAll("#svrisk-legend [data-layer]").forEach(function (el) {
              var on = layers[el.dataset.layer] !== undefined && map.hasLayer(layers[el.dataset.layer]);
              el.style.display = on ? "" : "none";
              any = any || on;
            });
            document.getElementById("svrisk-legend").style.display = any ? "" : "none";
          }
          map.on("overlayadd overlayremove", sync);
          sync();
          map.attributionControl.setPrefix(false);
          map.attributionControl.addAttribution({{ this.credits|tojson }});
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """)

        def __init__(self):
            super().__init__()
            self._name = "LegendSync"
            self.layers = layers
            self.credits = credits

    LegendSync().add_to(m)


def risk_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    meta: Mapping,
    *,
    context: Mapping[str, gpd.GeoDataFrame] | None = None,
    scheme: str = "top_area",
    value: str = "expected",
    k: int = 5,
    tiles: str | None = None,
    tiles_attribution: str | None = None,
    top_n: int = TOP_N,
):
    """Build the hotspot map of a run.

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        Export layers by name (see :func:`reports.run_folder.run_layers`); ``ranked_units`` is
        required, ``hotspots``, ``emerging``, ``areas`` and ``hubs`` are drawn when present.
    meta : mapping
        The run's ``run.json`` (title: area name, data period, cutoff, horizon, model version).
    context : mapping of str to GeoDataFrame, optional
        Orientation layers (:func:`reports.run_folder.context_layers`): ``borough`` (outline)
        and ``wards`` (boundaries with ``name``, labelled).
    scheme : {"top_area", "quantile", "rate_bands"}
        Choropleth classes: the top 1/5/10/25% of the area (default), ``k`` quantiles of
        ``value``, or the fixed rate-per-1,000 bands (then ``value`` must be a rate per
        1,000 column, e.g. ``"rate_per_1000"``).
    value : str
        Column of ``ranked_units`` the choropleth shows.
    tiles, tiles_attribution : str, optional
        Base tiles (:func:`tile_source`): None/"none" (default) keeps the map offline.
    top_n : int
        Places numbered on the map.

    Returns
    -------
    folium.Map
    """
    import folium

    if "ranked_units" not in layers:
        raise ValueError(f"risk_map needs a 'ranked_units' layer; got {sorted(layers)}")
    ranked = layers["ranked_units"].sort_values("rank", kind="stable") if "rank" in layers["ranked_units"] \
        else layers["ranked_units"]
    if value not in ranked.columns:
        raise ValueError(
            f"column {value!r} not in ranked_units (run {meta.get('run_id')!r}); "
            f"columns are {list(ranked.columns)}"
        )
    if scheme == "rate_bands" and value == "expected":
        raise ValueError("scheme='rate_bands' bands a rate per 1,000: pass value='<rate column>'")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme={scheme!r} is not one of {SCHEMES}")
    source = tile_source(tiles, tiles_attribution)
    context = dict(context or {})
    horizon = int(meta.get("horizon", 1) or 1)
    what = value_label(value, horizon)
    unit = "" if scheme != "top_area" else ("expected" if value == "expected" else "")

    web, labels, colours = _ranked_web(ranked, meta, scheme, value, k, unit, horizon)

    bounds_src = context.get("borough") if context.get("borough") is not None and len(context["borough"]) else None
    xmin, ymin, xmax, ymax = (bounds_src.to_crs(gl.WEB_CRS) if bounds_src is not None else web).total_bounds
    zoom = fitted_zoom((xmin, ymin, xmax, ymax))
    # the lead's numbers, placed apart at the starting zoom; ward and station names give way to them
    numbers = (zoom, number_boxes(place_numbers(ranked.head(top_n), zoom)))
    m = folium.Map(location=[(ymin + ymax) / 2, (xmin + xmax) / 2], tiles=None,
                   control_scale=True, prefer_canvas=False, zoom_start=13)
    m.fit_bounds([[ymin, xmin], [ymax, xmax]])
    if source is not None:
        folium.TileLayer(source[0], attr=source[1], name="Base map", control=False, max_zoom=19).add_to(m)
    for pane, z in _PANES:
        folium.map.CustomPane(pane, z_index=z, pointer_events=False).add_to(m)

    # each overlay in the order it is drawn (and listed): (legend key, layer, legend section)
    overlays = itertools.chain(
        _risk_overlay(web, labels, colours, what, scheme),
        _hotspot_overlay(layers.get("hotspots")),
        _emerging_overlay(layers.get("emerging")),
        _area_overlay(layers.get("areas"), horizon),
        _top_overlay(ranked, top_n, zoom),
        _ward_overlay(context.get("wards"), numbers),
        _borough_overlay(context.get("borough")),
        _hub_overlays(layers.get("hubs"), context.get("borough"), numbers),
        _current_overlay(layers.get("current_ranked_units"), meta, scheme, k, horizon, what, top_n, numbers),
    )
    toggles, sections = {}, []
    for key, layer, section in overlays:
        layer.add_to(m)
        toggles[key] = layer
        sections.append((key, *section))

    folium.LayerControl(collapsed=False).add_to(m)
    _legend_sync(m, toggles, attribution(meta, source[1] if source else None))
    root = m.get_root()
    root.header.add_child(folium.Element(_CSS), name="svrisk_css")
    root.html.add_child(folium.Element(_title_html(meta, horizon) + _legend_html(sections)), name="svrisk_overlay")
    return m


def _ranked_web(ranked: gpd.GeoDataFrame, meta: Mapping, scheme: str, value: str, k: int, unit: str,
                horizon: int) -> tuple[gpd.GeoDataFrame, list[str], list[str]]:
    """The ranked places in EPSG:4326 with their class colour and popup texts; the class labels and colours."""
    idx, labels, colours = risk_classes(ranked, scheme, value, k, unit=unit)
    web = ranked.copy()
    web["_colour"] = [colours[i] if i >= 0 else "#cccccc" for i in idx]
    web["_opacity"] = [0.35 if (scheme == "top_area" and i == len(colours) - 1 and labels[i].startswith("Rest"))
                       else 0.8 for i in idx]
    previous = has_previous(ranked, meta)
    if "place" not in web.columns:
        web["place"] = web["name"] if "name" in web.columns else web["unit_id"]
    web["unit_txt"] = [f"{n} ({u})" if n is not None and pd.notna(n) and str(n) != str(u) else str(u)
                       for n, u in zip(web["name"] if "name" in web else web["unit_id"], web["unit_id"], strict=True)]
    if "rank" in web:
        web["rank_txt"] = [f"{int(r)} of {len(web)}" for r in web["rank"]]
    if "expected" in web:
        web["expected_txt"] = [forecast_text(e, lo, hi, horizon) for e, lo, hi in zip(
            web["expected"], web.get("expected_lo", [None] * len(web)), web.get("expected_hi", [None] * len(web)),
            strict=True)]
    web["rank_change_txt"] = [rank_change_text(c, previous) for c in web.get("rank_change", [None] * len(web))]
    return _to_web(web, ["_colour", "_opacity", *(f for f, _ in POPUP_FIELDS)]), labels, colours


def _risk_overlay(web, labels, colours, what: str, scheme: str):
    """The choropleth of the ranked places, with popups (why) and tooltips (rank, place)."""
    import folium

    fields = [(f, a) for f, a in POPUP_FIELDS if f in web.columns]
    risk_name = f"Risk: {what}"
    risk = folium.GeoJson(
        web, name=risk_name,
        style_function=lambda f: {"fillColor": f["properties"]["_colour"], "color": "#7a7a7a",
                                  "weight": 0.4, "fillOpacity": f["properties"]["_opacity"]},
        highlight_function=lambda f: {"weight": 2.5, "color": "#000000"},
        popup=folium.GeoJsonPopup(fields=[f for f, _ in fields], aliases=[a for _, a in fields],
                                  localize=False, labels=True, max_width=440),
        tooltip=folium.GeoJsonTooltip(fields=[f for f in ("rank_txt", "place") if f in web.columns],
                                      aliases=["Rank", "Place"][: 2], sticky=True),
    )
    legend_title = risk_name + (" (rate per 1,000)" if scheme == "rate_bands" else "")
    yield "risk", risk, (legend_title, [(lab, col, "box") for lab, col in zip(labels, colours, strict=True)])


def _hotspot_overlay(hot):
    """Gi* hot and cold spots, only the significant ones (none: no layer and no legend)."""
    import folium

    if hot is None or "Gi_Bin" not in hot.columns or not len(hot):
        return
    sig = hot[pd.to_numeric(hot["Gi_Bin"], errors="coerce").fillna(0) != 0].copy()
    if not len(sig):
        return
    style = gl.layer_style("hotspots", sig)
    colour_of = {c.value: c.colour for c in style.classes}
    sig["_colour"] = [colour_of.get(int(b), "#999999") for b in sig["Gi_Bin"]]
    layer = folium.GeoJson(
        _to_web(sig, ["_colour", "unit_id", "gi_class", "Gi_Bin", "Zs", "p_sim", "q_value"]),
        name="Gi* hot and cold spots", show=False,
        style_function=lambda f: {"fillColor": f["properties"]["_colour"], "color": "#444444",
                                  "weight": 0.5, "fillOpacity": 0.7},
        popup=folium.GeoJsonPopup(fields=[c for c in ("unit_id", "gi_class", "Zs", "q_value")
                                          if c in sig.columns]),
    )
    yield "gi", layer, ("Gi* hot and cold spots (FDR-corrected)",
                        [(c.label, c.colour, "box") for c in style.classes if c.value != 0])


def _emerging_overlay(emerging):
    import folium

    if emerging is None or not len(emerging):
        return
    em = emerging.copy()
    em["_colour"] = [gl.emerging_colour(c) for c in em["emerging"]]
    layer = folium.GeoJson(
        _to_web(em, ["_colour", "unit_id", "emerging"]), name="Emerging hot spots", show=False,
        style_function=lambda f: {"fillColor": f["properties"]["_colour"], "color": "#252525",
                                  "weight": 1, "fillOpacity": 0.6, "dashArray": "4"},
        popup=folium.GeoJsonPopup(fields=["unit_id", "emerging"], aliases=["Unit", "Trend"]),
    )
    cats = sorted({str(c) for c in em["emerging"]})
    yield "emerging", layer, ("Emerging hot spots", [(c, gl.emerging_colour(c), "box") for c in cats])


def _area_overlay(areas, horizon: int):
    import folium

    if areas is None or not len(areas):
        return
    flat = gl.flatten(areas)
    flat["expected_txt"] = [forecast_text(e, horizon=horizon) for e in flat.get("expected", [None] * len(flat))]
    cols = [(c, a) for c, a in (("area_id", "Area"), ("n_units", "Places"), ("expected_txt", "Forecast"),
                                ("wards", "Wards"), ("hubs", "Hubs"), ("reasons", "Why")) if c in flat]
    layer = folium.GeoJson(
        _to_web(flat, [c for c, _ in cols]), name="Clear Hold Build areas",
        style_function=lambda f: {"fill": False, "color": gl.AREA_COLOUR, "weight": 3},
        popup=folium.GeoJsonPopup(fields=[c for c, _ in cols], aliases=[a for _, a in cols]),
    )
    yield "areas", layer, ("Clear Hold Build areas", [("Area outline (click for details)", gl.AREA_COLOUR, "line")])


def _top_overlay(ranked, top_n: int, zoom: int | None = None):
    """The top places numbered: labels only (no clicks), so the click reaches the place under them;
    placed apart at the starting ``zoom``."""

    top = ranked.head(top_n)
    if not len(top):
        return
    group = numbered_places(top, "ranked_units", f"Top {len(top)} numbered", zoom=zoom)
    yield "top", group, (f"Top {len(top)} places", [("Rank in the list (1 = highest forecast)", "#111111", "num")])


def _ward_overlay(wards, numbers: tuple = ()):
    """Ward boundaries and names; a name moves above or below a number in its way (``numbers``: zoom,
    boxes), or is left out (:func:`name_spot`)."""
    import folium

    if wards is None or not len(wards):
        return
    group = folium.FeatureGroup(name="Wards")
    folium.GeoJson(_to_web(wards, ["name"]), pane="svrisk-context", interactive=False,
                   style_function=lambda f: {"fill": False, "color": gl.WARD_COLOUR, "weight": 1.2,
                                             "dashArray": "5 3"}).add_to(group)
    if "name" in wards.columns:
        pts = wards.geometry.representative_point().to_crs(gl.WEB_CRS)
        for name, pt in zip(wards["name"], pts, strict=True):
            spot = name_spot(pt.x, pt.y, str(name), "svrisk-ward-label", numbers) if pd.notna(name) else None
            if spot is not None:
                _label([pt.y, pt.x], str(name), f"svrisk-ward-label {spot}".strip()).add_to(group)
    yield "wards", group, ("Wards", [("Ward boundary (name in italics)", gl.WARD_COLOUR, "thin")])


def _borough_overlay(borough):
    import folium

    if borough is None or not len(borough):
        return
    group = folium.FeatureGroup(name="Borough boundary")
    folium.GeoJson(_to_web(borough, ["name"]), pane="svrisk-context", interactive=False,
                   style_function=lambda f: {"fill": False, "color": gl.BOROUGH_COLOUR,
                                             "weight": 2.5}).add_to(group)
    yield "borough", group, ("Borough", [("Borough boundary", gl.BOROUGH_COLOUR, "line")])


def _hub_overlays(hubs, borough, numbers: tuple = ()):
    """One layer per kind of hub near the borough: stations first and shown (named), the rest hidden.

    A station name moves left of its dot for a number in its way (``numbers``: zoom, boxes), or is left
    out (:func:`name_spot`); its dot stays."""
    import folium

    if hubs is None or not len(hubs) or "kind" not in hubs.columns:
        return
    hubs = gl.hubs_near(hubs, borough)
    kinds = [kd for kd in gl.HUB_KINDS if (hubs["kind"].astype(str) == kd).any()]
    kinds += sorted({str(kd) for kd in hubs["kind"].dropna()} - set(kinds))
    for n, kd in enumerate(kinds):
        part = hubs[hubs["kind"].astype(str) == kd].copy()
        label = "Stations" if kd == "station" else f"{kd.capitalize()}s"
        # the first kind (stations) shows; schools are many and start hidden
        group = folium.FeatureGroup(name=label, show=n == 0)
        colour = gl.HUB_COLOURS.get(kd, "#525252")
        part["geometry"] = part.geometry.representative_point()
        # drawn above the places for visibility, in a pane that takes no clicks; the marker's own
        # options drop pane and interactive, so they ride in the style, which is merged into them
        folium.GeoJson(
            _to_web(part, []), pane="svrisk-hubs", interactive=False,
            marker=folium.CircleMarker(radius=5, color="#ffffff", weight=1.2, fill=True, fill_opacity=0.95),
            style_function=lambda f, c=colour, r=5 if kd == "station" else 3.5: {
                "fillColor": c, "radius": r, "pane": "svrisk-hubs", "interactive": False},
        ).add_to(group)
        if kd == "station" and "name" in part.columns:
            web_st = part.to_crs(gl.WEB_CRS)
            for name, pt in zip(web_st["name"], web_st.geometry, strict=True):
                text = station_label(str(name)).removesuffix(" station") if pd.notna(name) else ""
                spot = name_spot(pt.x, pt.y, text, "svrisk-station-label", numbers) if text else None
                if spot is not None:
                    _label([pt.y, pt.x], text, f"svrisk-station-label {spot}".strip()).add_to(group)
        yield f"hubs_{kd}", group, (label, [("Station (name in bold)" if kd == "station" else kd.capitalize(),
                                            colour, "dot")])


def _current_overlay(current, meta: Mapping, scheme: str, k: int, horizon: int, what: str, top_n: int,
                     numbers: tuple = ()):
    """The forecast from the latest data beside the run's own (another unit set) with its top places numbered,
    hidden at first: one layer, so its numbers show and hide with it. Its numbers are dark discs placed
    clear of the lead's (``numbers``: zoom, boxes), so the two lists read apart when both are on."""
    import folium

    if current is None or not len(current) or not meta.get("current"):
        return
    cur = meta["current"]
    cidx, clabels, ccolours = risk_classes(current, scheme if scheme != "rate_bands" else "top_area", "expected",
                                           k, unit="expected")
    cw = current.copy()
    cw["_colour"] = [ccolours[i] if i >= 0 else "#cccccc" for i in cidx]
    if "place" not in cw.columns:
        cw["place"] = cw["name"] if "name" in cw.columns else cw["unit_id"]
    cw["rank_txt"] = [f"{int(r)} of {len(cw)}" for r in cw["rank"]]
    cw["expected_txt"] = [forecast_text(e, lo, hi, horizon) for e, lo, hi in zip(
        cw["expected"], cw.get("expected_lo", [None] * len(cw)), cw.get("expected_hi", [None] * len(cw)),
        strict=True)]
    cfields = [(c, a) for c, a in (("rank_txt", "Rank"), ("place", "Place"), ("expected_txt", "Forecast"),
                                   ("reason_1", "Why"), ("reason_2", "Why")) if c in cw.columns]
    cname = f"Latest data: {cur['units']} forecast for {cur['cutoff']}"
    group = folium.FeatureGroup(name=cname, show=False)
    folium.GeoJson(
        _to_web(cw, ["_colour", *(c for c, _ in cfields)]),
        style_function=lambda f: {"fillColor": f["properties"]["_colour"], "color": "#252525",
                                  "weight": 1, "fillOpacity": 0.7},
        popup=folium.GeoJsonPopup(fields=[c for c, _ in cfields], aliases=[a for _, a in cfields],
                                  localize=False, labels=True, max_width=440),
    ).add_to(group)
    # its own top places, numbered as in the briefing's list of this forecast, in the same layer
    ctop = current.sort_values(["rank", "unit_id"], kind="stable").head(top_n)
    zoom, taken = numbers if numbers else (None, ())
    numbered_places(ctop, "current_ranked_units", cname, zoom=zoom, group=group, taken=taken,
                    css="svrisk-num svrisk-num-beside")
    yield "current", group, (f"{cname}: {what}", [
        *((lab, col, "box") for lab, col in zip(clabels, ccolours, strict=True)),
        (f"Top {len(ctop)} places: rank in that forecast's list", "#111111", "num svrisk-num-beside")])


def _title_html(meta: Mapping, horizon: int) -> str:
    """The title box: area, what is forecast from when, the data period, model and run."""
    period = gl.data_period(meta).replace("/", " to ")
    age = (meta.get("data_period") or {}).get("age_months")
    if age is not None:
        period += f", newest month {age} months old at the run"
    return (
        f'<div class="svrisk-title" id="svrisk-title"><b>{html.escape(str(meta.get("area_name", "")))}'
        f": serious violence forecast for {html.escape(value_label('expected', horizon).removeprefix('expected events '))}"
        f" from {html.escape(str(meta.get('cutoff', '')))}</b><br>"
        f"<small>Data {html.escape(period)} &middot; model {html.escape(str(meta.get('model_version', '')))}"
        f" &middot; run {html.escape(str(meta.get('run_id', '')))} &middot; click a place for why</small>"
        f"{beside_title(meta)}</div>"
    )


def _leaflet_assets() -> tuple[str, str] | None:
    """Leaflet's JS and CSS (images inlined as data URIs) from django-js-lib-leaflet, or None."""
    from importlib import resources

    try:
        base = resources.files("js_lib_leaflet") / "static" / "js_lib_leaflet"
        js = (base / "leaflet.js").read_text(encoding="utf-8")
        css = (base / "leaflet.css").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return None

    def inline(match: re.Match) -> str:
        img = base / "images" / match.group(1)
        data = base64.b64encode(img.read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    css = re.sub(r"url\(images/([\w.\-]+\.png)\)", inline, css)
    return js, css


def render_html(m) -> str:
    """The map as one HTML string with Leaflet inlined (CDN links only if Leaflet is missing)."""
    import folium

    assets = _leaflet_assets()
    if assets is None:
        warnings.warn(
            "django-js-lib-leaflet is not installed: the map loads Leaflet from a CDN and "
            "will not open offline (pip install django-js-lib-leaflet)",
            RuntimeWarning, stacklevel=2,
        )
        return m.get_root().render()
    js, css = assets
    m.default_js = []
    m.default_css = []
    root = m.get_root()
    # </script> cannot occur inside leaflet.js; guard anyway so the page cannot break.
    root.header.add_child(folium.Element(f"<style>{css}</style>"), name="leaflet_css_inline")
    root.header.add_child(
        folium.Element("<script>" + js.replace("</script", "<\\/script") + "</script>"),
        name="leaflet_js_inline",
    )
    return root.render()


def save_map(m, path) -> Path:
    """Write the map to ``path`` as one self-contained HTML file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(m), encoding="utf-8")
    return path


__all__ = ["RATE_BANDS", "RATE_BAND_LABELS", "SCHEMES", "TOP_SHARES", "attribution", "classify", "forecast_text",
           "rank_change_text", "render_html", "risk_classes", "risk_map", "save_map", "tile_source",
           "top_area_classes", "value_label"]
