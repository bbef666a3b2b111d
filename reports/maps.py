"""The hotspot map: one self-contained folium HTML file that reads offline.

Vector layers only over a plain background (no base tiles by default), Leaflet's JS and
CSS inlined from the ``django-js-lib-leaflet`` package instead of a CDN, so the map opens
from a USB stick in a meeting room with no network. Layers: risk choropleth (quantile
classes, or the strategy's fixed bands of rate per 1,000), Gi* hot and cold spots,
emerging hot spot categories, Clear Hold Build areas, stations and schools; popups carry
rank, expected count and the reasons; a legend and a layer control; a title with the
data period and model version.

Examples
--------
>>> m = risk_map(layers, meta)          # doctest: +SKIP
>>> save_map(m, "out/runs/r1/map.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from reports import layers as gl

#: The needs assessment's fixed bands of rate per 1,000 residents.
RATE_BANDS = (1.0, 1.5, 2.0, 3.0, 5.0)
RATE_BAND_LABELS = ("< 1", "1 - 1.5", "1.5 - 2", "2 - 3", "3 - 5", "> 5")
SCHEMES = ("quantile", "rate_bands")

POPUP_FIELDS = (
    ("rank", "Rank"), ("name", "Place"), ("unit_id", "Unit"), ("expected_txt", "Expected"),
    ("reason_1", "Why (1)"), ("reason_2", "Why (2)"), ("reason_3", "Why (3)"),
    ("gi_class", "Gi*"), ("emerging", "Trend"), ("rank_change", "Rank change"),
)


def classify(values, scheme: str = "quantile", k: int = 5) -> tuple[np.ndarray, list[str], list[str]]:
    """Class index, class labels and colours of ``values`` under a legend scheme.

    ``quantile``: ``k`` quantile classes (fewer if values tie); class i holds values up to
    its upper bound, inclusive. ``rate_bands``: the fixed bands <1, 1-1.5, 1.5-2, 2-3, 3-5,
    >5 (a value on a bound goes to the lower band). NaN gets class -1.

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
        raise ValueError(f"scheme={scheme!r} is not one of {SCHEMES}")
    idx = np.searchsorted(np.asarray(bounds, dtype=float), v, side="left")
    idx = np.where(np.isfinite(v), idx, -1)
    return idx, labels, colours


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


def _legend_html(sections: list[tuple[str, list[tuple[str, str, str]]]]) -> str:
    parts = []
    for title, items in sections:
        rows = "".join(
            f'<div class="svrisk-legend-row"><span class="svrisk-swatch svrisk-{shape}" '
            f'style="background:{colour}; border-color:{colour}"></span>{html.escape(label)}</div>'
            for label, colour, shape in items
        )
        parts.append(f'<div class="svrisk-legend-section"><b>{html.escape(title)}</b>{rows}</div>')
    return f'<div class="svrisk-legend" id="svrisk-legend">{"".join(parts)}</div>'


_CSS = """
<style>
html, body {height: 100%; margin: 0;}
.leaflet-container {background: #ffffff;}
.svrisk-title {position: absolute; top: 8px; left: 50%; transform: translateX(-50%); z-index: 1000;
  background: rgba(255,255,255,0.92); padding: 6px 12px; border: 1px solid #999; border-radius: 4px;
  font: 14px/1.3 Arial, sans-serif; text-align: center;}
.svrisk-title small {color: #444;}
.svrisk-legend {position: absolute; bottom: 18px; right: 10px; z-index: 1000; max-height: 70%;
  overflow-y: auto; background: rgba(255,255,255,0.92); padding: 6px 10px; border: 1px solid #999;
  border-radius: 4px; font: 12px/1.4 Arial, sans-serif;}
.svrisk-legend-section {margin-bottom: 4px;}
.svrisk-legend-section b {display: block;}
.svrisk-swatch {display: inline-block; width: 14px; height: 10px; margin-right: 6px;
  border: 1px solid; vertical-align: middle; opacity: 0.85;}
.svrisk-swatch.svrisk-line {background: transparent !important; border-width: 3px; height: 6px;}
.svrisk-swatch.svrisk-dot {width: 10px; border-radius: 50%;}
</style>
"""


def risk_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    meta: Mapping,
    *,
    scheme: str = "quantile",
    value: str = "expected",
    k: int = 5,
    tiles: str | None = None,
):
    """Build the hotspot map of a run.

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        Export layers by name (see :func:`reports.run_folder.run_layers`); ``ranked_units`` is
        required, ``hotspots``, ``emerging``, ``areas`` and ``hubs`` are drawn when present.
    meta : mapping
        The run's ``run.json`` (title: area name, data period, cutoff, model version).
    scheme : {"quantile", "rate_bands"}
        Choropleth classes: ``k`` quantiles of ``value``, or the fixed rate-per-1,000 bands
        (then ``value`` must be a rate per 1,000 column, e.g. ``"rate_per_1000"``).
    value : str
        Column of ``ranked_units`` the choropleth shows.
    tiles : str or None
        A folium tile name for an optional base map; None (default) keeps the map offline.

    Returns
    -------
    folium.Map
    """
    import folium

    if "ranked_units" not in layers:
        raise ValueError(f"risk_map needs a 'ranked_units' layer; got {sorted(layers)}")
    ranked = layers["ranked_units"]
    if value not in ranked.columns:
        raise ValueError(
            f"column {value!r} not in ranked_units (run {meta.get('run_id')!r}); "
            f"columns are {list(ranked.columns)}"
        )
    if scheme == "rate_bands" and value == "expected":
        raise ValueError("scheme='rate_bands' bands a rate per 1,000: pass value='<rate column>'")

    idx, labels, colours = classify(ranked[value], scheme, k)
    web = ranked.copy()
    web["_colour"] = [colours[i] if i >= 0 else "#cccccc" for i in idx]
    if "expected" in web:
        lo = web.get("expected_lo")
        hi = web.get("expected_hi")
        web["expected_txt"] = [
            f"{e:.1f}" + (f" (80%: {a:.1f} - {b:.1f})" if lo is not None and pd.notna(a) else "")
            for e, a, b in zip(web["expected"], lo if lo is not None else [None] * len(web),
                               hi if hi is not None else [None] * len(web), strict=True)
        ]
    web = _to_web(web, ["_colour", *(f for f, _ in POPUP_FIELDS)])

    xmin, ymin, xmax, ymax = web.total_bounds
    m = folium.Map(location=[(ymin + ymax) / 2, (xmin + xmax) / 2], tiles=tiles,
                   control_scale=True, prefer_canvas=False, zoom_start=13)
    m.fit_bounds([[ymin, xmin], [ymax, xmax]])

    fields = [(f, a) for f, a in POPUP_FIELDS if f in web.columns]
    value_label = "Expected count" if value == "expected" else value.replace("_", " ")
    folium.GeoJson(
        web, name=f"Risk: {value_label}",
        style_function=lambda f: {"fillColor": f["properties"]["_colour"], "color": "#636363",
                                  "weight": 0.5, "fillOpacity": 0.75},
        highlight_function=lambda f: {"weight": 2.5, "color": "#000000"},
        popup=folium.GeoJsonPopup(fields=[f for f, _ in fields], aliases=[a for _, a in fields],
                                  localize=False, labels=True, max_width=420),
        tooltip=folium.GeoJsonTooltip(fields=[f for f in ("rank", "name") if f in web.columns],
                                      aliases=["Rank", "Place"][: 2]),
    ).add_to(m)
    sections = [(f"Risk: {value_label}" + (" (rate per 1,000)" if scheme == "rate_bands" else ""),
                 [(lab, col, "box") for lab, col in zip(labels, colours, strict=True)])]

    hot = layers.get("hotspots")
    if hot is not None and "Gi_Bin" in hot.columns and len(hot):
        sig = hot[pd.to_numeric(hot["Gi_Bin"], errors="coerce").fillna(0) != 0].copy()
        style = gl.layer_style("hotspots", hot)
        colour_of = {c.value: c.colour for c in style.classes}
        sig["_colour"] = [colour_of.get(int(b), "#999999") for b in sig["Gi_Bin"]]
        if len(sig):
            folium.GeoJson(
                _to_web(sig, ["_colour", "unit_id", "gi_class", "Gi_Bin", "Zs", "p_sim", "q_value"]),
                name="Gi* hot and cold spots", show=False,
                style_function=lambda f: {"fillColor": f["properties"]["_colour"], "color": "#444444",
                                          "weight": 0.5, "fillOpacity": 0.7},
                popup=folium.GeoJsonPopup(fields=[c for c in ("unit_id", "gi_class", "Zs", "q_value")
                                                  if c in sig.columns]),
            ).add_to(m)
        entries = [(c.label, c.colour, "box") for c in style.classes if c.value != 0]
        if entries:  # nothing significant: no layer, so no legend either
            sections.append(("Gi* hot and cold spots", entries))

    emerging = layers.get("emerging")
    if emerging is not None and len(emerging):
        em = emerging.copy()
        em["_colour"] = [gl.emerging_colour(c) for c in em["emerging"]]
        folium.GeoJson(
            _to_web(em, ["_colour", "unit_id", "emerging"]), name="Emerging hot spots", show=False,
            style_function=lambda f: {"fillColor": f["properties"]["_colour"], "color": "#252525",
                                      "weight": 1, "fillOpacity": 0.6, "dashArray": "4"},
            popup=folium.GeoJsonPopup(fields=["unit_id", "emerging"], aliases=["Unit", "Trend"]),
        ).add_to(m)
        cats = sorted({str(c) for c in em["emerging"]})
        sections.append(("Emerging hot spots", [(c, gl.emerging_colour(c), "box") for c in cats]))

    areas = layers.get("areas")
    if areas is not None and len(areas):
        folium.GeoJson(
            _to_web(gl.flatten(areas), ["area_id", "n_units", "expected", "wards", "hubs", "reasons"]),
            name="Clear Hold Build areas",
            style_function=lambda f: {"fill": False, "color": gl.AREA_COLOUR, "weight": 3},
            popup=folium.GeoJsonPopup(
                fields=[c for c in ("area_id", "n_units", "expected", "wards", "reasons") if c in areas],
                aliases=[a for c, a in (("area_id", "Area"), ("n_units", "Places"),
                                        ("expected", "Expected"), ("wards", "Wards"),
                                        ("reasons", "Why")) if c in areas]),
        ).add_to(m)
        sections.append(("Clear Hold Build areas", [("Area outline", gl.AREA_COLOUR, "line")]))

    hubs = layers.get("hubs")
    if hubs is not None and len(hubs):
        hb = hubs.copy()
        hb["_colour"] = [gl.HUB_COLOURS.get(str(k), "#525252") for k in hb.get("kind", [""] * len(hb))]
        hb["_radius"] = [6 if str(k) == "station" else 5 for k in hb.get("kind", [""] * len(hb))]
        if "footfall" in hb:
            hb["footfall_txt"] = [f"{float(v):,.0f} a year" if pd.notna(v) else "" for v in hb["footfall"]]
        hb["geometry"] = hb.geometry.representative_point()
        fields = [(c, a) for c, a in (("name", "Name"), ("kind", "Kind"), ("footfall_txt", "Footfall"))
                  if c in hb.columns]
        # GeoJson + CircleMarker keeps popups in plain Leaflet (folium.Popup needs jQuery).
        folium.GeoJson(
            _to_web(hb, ["_colour", "_radius", *(c for c, _ in fields)]), name="Stations and schools",
            marker=folium.CircleMarker(radius=6, color="#ffffff", weight=1.5, fill=True,
                                       fill_opacity=0.95),
            style_function=lambda f: {"fillColor": f["properties"]["_colour"],
                                      "radius": f["properties"]["_radius"]},
            popup=folium.GeoJsonPopup(fields=[c for c, _ in fields], aliases=[a for _, a in fields]),
            tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=["Hub"]) if "name" in hb else None,
        ).add_to(m)
        kinds = sorted({str(k) for k in hubs["kind"].dropna()}) if "kind" in hubs else []
        sections.append(("Hubs", [(k.capitalize(), gl.HUB_COLOURS.get(k, "#525252"), "dot")
                                  for k in kinds]))

    current = layers.get("current_ranked_units")
    if current is not None and len(current) and meta.get("current"):
        cur = meta["current"]
        cidx, clabels, ccolours = classify(current["expected"], "quantile", k)
        cw = current.copy()
        cw["_colour"] = [ccolours[i] if i >= 0 else "#cccccc" for i in cidx]
        cname = f"Latest data: {cur['units']} forecast for {cur['cutoff']}"
        folium.GeoJson(
            _to_web(cw, ["_colour", "rank", "name", "expected", "reason_1"]), name=cname, show=False,
            style_function=lambda f: {"fillColor": f["properties"]["_colour"], "color": "#252525",
                                      "weight": 1, "fillOpacity": 0.7},
            popup=folium.GeoJsonPopup(fields=[c for c in ("rank", "name", "expected", "reason_1") if c in cw],
                                      aliases=[a for c, a in (("rank", "Rank"), ("name", "Place"),
                                                              ("expected", "Expected next month"),
                                                              ("reason_1", "Why")) if c in cw]),
        ).add_to(m)
        sections.append((cname, [(lab, col, "box") for lab, col in zip(clabels, ccolours, strict=True)]))

    folium.LayerControl(collapsed=False).add_to(m)

    period = gl.data_period(meta).replace("/", " to ")
    age = (meta.get("data_period") or {}).get("age_months")
    if age is not None:
        period += f", newest month {age} months old at the run"
    title = (
        f'<div class="svrisk-title" id="svrisk-title"><b>{html.escape(str(meta.get("area_name", "")))}'
        f" serious violence risk, from {html.escape(str(meta.get('cutoff', '')))}</b><br>"
        f"<small>Data {html.escape(period)} &middot; model {html.escape(str(meta.get('model_version', '')))}"
        f" &middot; run {html.escape(str(meta.get('run_id', '')))}</small></div>"
    )
    root = m.get_root()
    root.header.add_child(folium.Element(_CSS), name="svrisk_css")
    root.html.add_child(folium.Element(title + _legend_html(sections)), name="svrisk_overlay")
    return m


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


__all__ = ["RATE_BANDS", "RATE_BAND_LABELS", "classify", "render_html", "risk_map", "save_map"]
