"""GIS layer export: GeoPackage (styled for QGIS), zipped Shapefile, GeoJSON, KML, CSV with WKT.

Every writer takes ``layers``, a mapping of layer name -> GeoDataFrame in the working CRS
(EPSG:27700), and writes them without changing their attributes except where a format
forces it (Shapefile's 10-character field names, list cells flattened to text). The
GeoPackage keeps British National Grid; GeoJSON and KML are written in EPSG:4326 as their
specifications require; CSV keeps EPSG:27700 with the geometry as WKT in a ``WKT`` column.

Styles are described once (:func:`layer_style`) and rendered both as QGIS QML and as
OGC SLD into the GeoPackage's ``layer_styles`` table (the table QGIS itself writes), so a
police GIS team opening ``layers.gpkg`` in QGIS sees the same colours as the web map.

Examples
--------
>>> write_gpkg({"ranked_units": ranking}, "layers.gpkg")  # doctest: +SKIP
>>> pyogrio.read_dataframe("layers.gpkg", layer="layer_styles")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import WEB_CRS, WORKING_CRS
from models.evaluation import rank_order

#: Layers an output run exports, in the order GIS tools list them.
LAYER_NAMES = ("current_ranked_units", "ranked_units", "hotspots", "emerging", "areas", "hubs", "youth_places")

#: Attributes stamped on every exported feature so a layer can be traced to its run.
RUN_FIELDS = ("run_id", "model_version", "data_period", "data_age_months")

# Gi* bins as esda/ArcGIS code them: +/-3 = 99%, +/-2 = 95%, +/-1 = 90% confidence.
GI_BIN_COLOURS = {
    3: "#d7301f",
    2: "#fc8d59",
    1: "#fdcc8a",
    0: "#f0f0f0",
    -1: "#c6dbef",
    -2: "#6baed6",
    -3: "#2171b5",
}
GI_BIN_LABELS = {
    3: "Hot spot (99%)",
    2: "Hot spot (95%)",
    1: "Hot spot (90%)",
    0: "Not significant",
    -1: "Cold spot (90%)",
    -2: "Cold spot (95%)",
    -3: "Cold spot (99%)",
}
# Emerging hot spot categories (space-time Gi* + Mann-Kendall), matched on the first word.
EMERGING_COLOURS = {
    "new": "#67000d",
    "consecutive": "#a50f15",
    "intensifying": "#ef3b2c",
    "persistent": "#fb6a4a",
    "diminishing": "#fcbba1",
    "sporadic": "#fd8d3c",
    "oscillating": "#fdae6b",
    "historical": "#bcbddc",
}
#: Cold counterparts in blues, darkest for the most urgent pattern as for hot spots.
EMERGING_COLD_COLOURS = {
    "new": "#08306b",
    "consecutive": "#08519c",
    "intensifying": "#2171b5",
    "persistent": "#4292c6",
    "diminishing": "#c6dbef",
    "sporadic": "#6baed6",
    "oscillating": "#9ecae1",
    "historical": "#deebf7",
}
#: Emerging labels that mean "no pattern": left out of the emerging layer.
NO_PATTERN = frozenset({"", "none", "no pattern", "no pattern detected", "not significant", "nan",
                        "not enough periods"})
RISK_COLOURS = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026", "#800026")
HUB_COLOURS = {"station": "#08519c", "school": "#006d2c"}
AREA_COLOUR = "#6a3d9a"
#: Youth-work places: a magenta no hot-spot, emerging or risk class uses (it was orange, as "sporadic").
YOUTH_COLOUR = "#c51b7d"
WARD_COLOUR = "#525252"
BOROUGH_COLOUR = "#000000"
#: Shares of the area the risk classes stop at (the backtest's 1%, 5%, 10%, and 25%).
TOP_SHARES = (0.01, 0.05, 0.10, 0.25)
TOP_AREA_COLOURS = ("#800026", "#e31a1c", "#fd8d3c", "#fed976", "#fff7ec")
#: Hub kinds drawn on the maps; kinds after the first start hidden on the web map (schools are many).
HUB_KINDS = ("station", "school")
#: Hubs this far (metres) outside the borough are still drawn (a station just over the border).
HUB_MARGIN_M = 300.0
GPKG_VERSION = "1.2"
"""GeoPackage version written: 1.2 opens without warnings in GDAL 3.6 / QGIS 3.22, still common in forces."""
SHAPEFILE_TEXT_BYTES = 254
LABELLED_RANKS = 10
"""Ranked places labelled with their rank in the QGIS and SLD styles: the top 10 the map and briefing number."""
"""Longest text a dBASE field holds; longer text is shortened deliberately, in full in ``long_text.csv``."""


def attribution_text(meta: Mapping) -> str:
    """The credits every output carries: crime data, boundaries and the licence they come under."""
    created = str(meta.get("created") or "")
    end = str((meta.get("data_period") or {}).get("end") or "")
    year = created[:4] if created[:4].isdigit() else end[:4]
    sources = {str((p or {}).get("source")) for p in (meta.get("data_period"), (meta.get("current") or {}).get("data_period"))
               if p}
    crime = " and ".join(name for key, name in (("points", "police.uk"),
                                                ("areas", "Metropolitan Police Service via the London Datastore"))
                         if key in sources) or "police.uk"
    return (f"Crime data: {crime}. Boundaries: Office for National Statistics, contains OS data "
            f"\N{COPYRIGHT SIGN} Crown copyright and database right {year}. "
            "Contains public sector information licensed under the Open Government Licence v3.0.")


def area_class_names(shares=TOP_SHARES) -> list[str]:
    """``["Top 1% of area", "1-5% of area", ..., "Rest"]`` for the risk classes."""
    names, prev = [], 0.0
    for share in shares:
        names.append(f"Top {share:.0%} of area" if prev == 0 else f"{prev * 100:g}-{share:.0%} of area")
        prev = share
    return [*names, "Rest"]


def area_class_index(ranked: gpd.GeoDataFrame, value: str = "expected", shares=TOP_SHARES) -> np.ndarray:
    """Risk class of each place: 0 for the top-ranked places covering ``shares[0]`` of the area, ...,
    ``len(shares)`` for the rest.

    Classes follow the ranking's own order (``rank``; without it ``value`` descending, ties by
    ``recent_count`` then ``unit_id``, the ranking's rule), so rank 1 is always in the top class
    and a class is a run of consecutive ranks, as the top-10 list and the map must agree. Places
    are taken in rank order while the cumulative area stays within the share; the first place
    that would overflow it ends the class (never split), and every class but the rest holds at
    least one place.
    """
    ids = ranked["unit_id"].astype(str).to_numpy()
    if "rank" in ranked.columns:
        order = np.lexsort((ids, pd.to_numeric(ranked["rank"], errors="coerce").fillna(np.inf).to_numpy(float)))
    else:
        scores = pd.Series(pd.to_numeric(ranked[value], errors="coerce").fillna(0.0).to_numpy(float), index=ids)
        recent = (pd.Series(pd.to_numeric(ranked["recent_count"], errors="coerce").fillna(0).to_numpy(float),
                            index=ids) if "recent_count" in ranked.columns else None)
        position = {u: k for k, u in enumerate(rank_order(scores, recent))}
        order = np.argsort([position[u] for u in ids], kind="stable")
    areas = np.clip(ranked.geometry.area.to_numpy(float), 1e-6, None)[order]
    cum = np.cumsum(areas) / areas.sum()
    idx_sorted = np.full(len(ids), len(shares), dtype=int)
    for i in range(len(shares) - 1, -1, -1):
        n = max(1, int(np.searchsorted(cum, shares[i] * (1 + 1e-9), side="right")))
        idx_sorted[:n] = i
    idx = np.empty(len(ids), dtype=int)
    idx[order] = idx_sorted
    return idx


def with_risk_class(ranked: gpd.GeoDataFrame, value: str = "expected") -> gpd.GeoDataFrame:
    """``ranked`` with ``risk_class`` (e.g. "Top 1% of area"), the classes the maps colour by."""
    out = ranked.copy()
    names = area_class_names()
    out["risk_class"] = pd.array([names[i] for i in area_class_index(ranked, value)], dtype="string")
    return out


def hubs_near(hubs: gpd.GeoDataFrame, borough: gpd.GeoDataFrame | None, margin_m: float = HUB_MARGIN_M):
    """The hubs within ``margin_m`` of the borough (all of them without a borough outline)."""
    if borough is None or not len(borough) or not len(hubs):
        return hubs
    area = borough.to_crs(hubs.crs).geometry.union_all().buffer(margin_m)
    return hubs[hubs.geometry.intersects(area)]


def _lab(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    rgb = np.array([int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)])
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def colour_distance(a: str, b: str) -> float:
    """CIE76 colour difference (Delta E in CIELAB) of two ``#rrggbb`` colours; about 2.3 is just noticeable.

    >>> round(colour_distance("#000000", "#ffffff"))
    100
    """
    return float(np.linalg.norm(_lab(a) - _lab(b)))


def close_colours(named: Mapping[str, str], min_delta: float = 12.0) -> list[tuple[str, str, float]]:
    """Pairs of legend entries whose colours are closer than ``min_delta`` (Delta E): ones a reader
    could confuse. Entries sharing one colour on purpose should be given once."""
    items = list(named.items())
    out = []
    for i, (na, ca) in enumerate(items):
        for nb, cb in items[i + 1:]:
            d = colour_distance(ca, cb)
            if d < min_delta:
                out.append((na, nb, round(d, 1)))
    return out


# --------------------------------------------------------------------------- preparing


def data_period(meta: Mapping) -> str:
    """The run's data period as ``"YYYY-MM/YYYY-MM"`` (ISO 8601 interval of months)."""
    period = meta.get("data_period") or {}
    start, end = period.get("start"), period.get("end")
    if not start or not end:
        raise ValueError(
            f"run.json of run {meta.get('run_id')!r} has data_period={period!r}; "
            "expected {'start': 'YYYY-MM', 'end': 'YYYY-MM'}"
        )
    return f"{start}/{end}"


def stamp(gdf: gpd.GeoDataFrame, meta: Mapping) -> gpd.GeoDataFrame:
    """Return a copy of ``gdf`` with ``run_id``, ``model_version``, ``data_period`` and, when known,
    ``data_age_months`` (how old the newest month of data was on the run date) columns."""
    out = gdf.copy()
    out["run_id"] = str(meta["run_id"])
    out["model_version"] = str(meta.get("model_version", ""))
    out["data_period"] = data_period(meta)
    age = (meta.get("data_period") or {}).get("age_months")
    if age is not None:
        out["data_age_months"] = int(age)
    return out


def _flat_cell(value):
    if isinstance(value, list | tuple | np.ndarray):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    return value


def flatten(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Turn list, tuple, array or dict cells into ``"; "``-joined text, which every format holds.

    Columns of other types are returned unchanged.
    """
    out = gdf.copy()
    geom = out.geometry.name
    for col in out.columns:
        if col == geom or out[col].dtype != object:
            continue
        if out[col].map(lambda v: isinstance(v, list | tuple | np.ndarray | dict)).any():
            out[col] = out[col].map(_flat_cell).astype("string")
    return out


def _check_layers(layers: Mapping[str, gpd.GeoDataFrame]) -> None:
    if not layers:
        raise ValueError("no layers to write: layers is empty")
    for name, gdf in layers.items():
        if not isinstance(gdf, gpd.GeoDataFrame):
            raise TypeError(f"layer {name!r} is a {type(gdf).__name__}, expected a GeoDataFrame")
        if gdf.crs is None:
            raise ValueError(f"layer {name!r} has no CRS; expected {WORKING_CRS}")


# --------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class StyleClass:
    """One legend entry: features where ``attr`` equals ``value`` or lies in ``[lower, upper]``."""

    label: str
    colour: str
    value: object = None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class LayerStyle:
    """How a layer is drawn; rendered to QML and SLD by :func:`qml` and :func:`sld`.

    ``kind`` is ``"single"``, ``"categorized"`` or ``"graduated"``; ``geometry`` is
    ``"fill"`` (polygons) or ``"marker"`` (points).
    """

    layer: str
    kind: str
    geometry: str
    attr: str | None = None
    classes: tuple[StyleClass, ...] = field(default_factory=tuple)
    colour: str = "#999999"
    outline: str = "#4d4d4d"
    outline_width_mm: float = 0.2
    fill: bool = True
    label: Label | None = None


@dataclass(frozen=True)
class Label:
    """A style's labels: the ``field`` shown, only where ``where`` = ``(attr, op, value)`` holds
    (``op`` ``"<="`` or ``"="``) when given, in ``colour`` with a white halo."""

    field: str
    where: tuple[str, str, object] | None = None
    colour: str = "#111111"
    size_pt: float = 9.0
    bold: bool = True

    def expression(self) -> str:
        """The QGIS expression of the label text."""
        if self.where is None:
            return f'"{self.field}"'
        attr, op, value = self.where
        lit = f"'{value}'" if isinstance(value, str) else str(value)
        return f'CASE WHEN "{attr}" {op} {lit} THEN "{self.field}" END'


def quantile_breaks(values, k: int = 5) -> list[float]:
    """Upper bounds of ``k`` quantile classes of ``values`` (duplicates dropped, NaN ignored).

    >>> quantile_breaks([1, 2, 3, 4], k=2)
    [2.5, 4.0]
    """
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype=float)
    if v.size == 0:
        return []
    qs = np.quantile(v, np.linspace(0, 1, k + 1)[1:])
    return [float(x) for x in np.unique(qs)]


def emerging_colour(category) -> str:
    """Colour of an emerging hot spot category (matched on its first word), grey if unknown."""
    text = str(category).strip().lower() if category is not None else ""
    word = text.split(" ")[0]
    palette = EMERGING_COLD_COLOURS if "cold" in text else EMERGING_COLOURS
    return palette.get(word, "#969696")


def layer_style(name: str, gdf: gpd.GeoDataFrame) -> LayerStyle:
    """The style of one exported layer, with classes taken from its data."""
    if name in ("ranked_units", "current_ranked_units") and "risk_class" in gdf:
        order = area_class_names()
        colours = dict(zip(order, TOP_AREA_COLOURS, strict=True))
        present = [c for c in order if c in set(gdf["risk_class"].dropna().astype(str))]
        return LayerStyle(name, "categorized", "fill", "risk_class",
                          tuple(StyleClass(c, colours[c], c) for c in present), outline="#9a9a9a",
                          label=_rank_label(gdf))
    if name in ("ranked_units", "current_ranked_units") and "expected" in gdf:
        breaks = quantile_breaks(gdf["expected"], k=5)
        lo = float(pd.to_numeric(gdf["expected"], errors="coerce").min()) if breaks else 0.0
        classes = []
        for i, hi in enumerate(breaks):
            colour = RISK_COLOURS[min(i + max(0, 5 - len(breaks)), len(RISK_COLOURS) - 1)]
            classes.append(StyleClass(f"{lo:.2f} - {hi:.2f}", colour, lower=lo, upper=hi))
            lo = hi
        return LayerStyle(name, "graduated", "fill", "expected", tuple(classes), label=_rank_label(gdf))
    if name == "hotspots" and "Gi_Bin" in gdf:
        labels = {}
        if "gi_class" in gdf:
            for b, c in zip(gdf["Gi_Bin"], gdf["gi_class"], strict=True):
                if pd.notna(b) and pd.notna(c):
                    labels.setdefault(int(b), str(c))
        present = sorted({int(b) for b in gdf["Gi_Bin"].dropna()}, reverse=True)
        classes = tuple(
            StyleClass(labels.get(b, GI_BIN_LABELS.get(b, str(b))), GI_BIN_COLOURS.get(b, "#999999"), b)
            for b in present
        )
        return LayerStyle(name, "categorized", "fill", "Gi_Bin", classes)
    if name == "emerging" and "emerging" in gdf:
        cats = sorted({str(c) for c in gdf["emerging"].dropna()})
        classes = tuple(StyleClass(c, emerging_colour(c), c) for c in cats)
        return LayerStyle(name, "categorized", "fill", "emerging", classes)
    if name == "hubs" and "kind" in gdf:
        cats = sorted({str(c) for c in gdf["kind"].dropna()})
        classes = tuple(StyleClass(c, HUB_COLOURS.get(c, "#525252"), c) for c in cats)
        label = Label("name", ("kind", "=", "station"), colour=HUB_COLOURS["station"], size_pt=8.0) \
            if "name" in gdf else None
        return LayerStyle(name, "categorized", "marker", "kind", classes, label=label)
    if name == "areas":
        return LayerStyle(name, "single", "fill", colour=AREA_COLOUR, outline=AREA_COLOUR,
                          outline_width_mm=0.8, fill=False,
                          label=Label("area_id", colour=AREA_COLOUR, size_pt=10.0) if "area_id" in gdf else None)
    if name in ("wards", "borough"):
        colour = WARD_COLOUR if name == "wards" else BOROUGH_COLOUR
        return LayerStyle(name, "single", "fill", colour=colour, outline=colour,
                          outline_width_mm=0.3 if name == "wards" else 0.8, fill=False)
    geom = "marker" if gdf.geom_type.isin(["Point", "MultiPoint"]).all() and len(gdf) else "fill"
    return LayerStyle(name, "single", geom, colour=YOUTH_COLOUR if name == "youth_places" else "#999999",
                      outline=YOUTH_COLOUR if name == "youth_places" else "#4d4d4d")


def _rank_label(gdf: gpd.GeoDataFrame) -> Label | None:
    return Label("rank", ("rank", "<=", LABELLED_RANKS)) if "rank" in gdf else None


def _qml_labeling(style: LayerStyle) -> str:
    """QGIS simple labelling: the label's text (an expression), font, white halo, placement."""
    lab = style.label
    if lab is None:
        return ""
    placement = 1 if style.geometry == "fill" else 0  # over the polygon's point / around a marker
    return (
        '<labeling type="simple"><settings calloutType="simple">'
        f'<text-style fieldName="{escape(lab.expression(), {chr(34): "&quot;"})}" isExpression="1" '
        f'fontFamily="Arial" fontSize="{lab.size_pt:g}" fontSizeUnit="Point" '
        f'fontWeight="{75 if lab.bold else 50}" textColor="{_rgba(lab.colour)}" textOpacity="1" '
        'multilineHeight="1" allowHtml="0">'
        '<text-buffer bufferDraw="1" bufferSize="0.8" bufferSizeUnits="MM" bufferColor="255,255,255,255" '
        'bufferOpacity="0.9" bufferJoinStyle="128"/></text-style>'
        f'<placement placement="{placement}" dist="0.5" distUnits="MM" priority="5" '
        'overrunDistance="0" fitInPolygonOnly="0"/>'
        '<rendering obstacle="1" displayAll="0" upsidedownLabels="0" labelPerPart="0" '
        'mergeLines="0" scaleVisibility="0" drawLabels="1"/>'
        "</settings></labeling>"
    )


def _sld_label_rule(style: LayerStyle) -> str:
    """An SLD rule drawing the style's labels (with its filter), or ""."""
    lab = style.label
    if lab is None:
        return ""
    flt = ""
    if lab.where is not None:
        attr, op, value = lab.where
        tag = {"<=": "PropertyIsLessThanOrEqualTo", "=": "PropertyIsEqualTo"}[op]
        flt = (f"<ogc:Filter><ogc:{tag}><ogc:PropertyName>{attr}</ogc:PropertyName>"
               f"<ogc:Literal>{escape(str(value))}</ogc:Literal></ogc:{tag}></ogc:Filter>")
    return (
        f"<se:Rule><se:Name>labels</se:Name>{flt}<se:TextSymbolizer>"
        f"<se:Label><ogc:PropertyName>{lab.field}</ogc:PropertyName></se:Label>"
        '<se:Font><se:SvgParameter name="font-family">Arial</se:SvgParameter>'
        f'<se:SvgParameter name="font-size">{lab.size_pt * 4 / 3:.0f}</se:SvgParameter>'
        f'<se:SvgParameter name="font-weight">{"bold" if lab.bold else "normal"}</se:SvgParameter></se:Font>'
        '<se:Halo><se:Radius>1.5</se:Radius><se:Fill><se:SvgParameter name="fill">#ffffff</se:SvgParameter>'
        f'</se:Fill></se:Halo><se:Fill><se:SvgParameter name="fill">{lab.colour}</se:SvgParameter></se:Fill>'
        "</se:TextSymbolizer></se:Rule>"
    )


def _rgba(hex_colour: str, alpha: int = 255) -> str:
    h = hex_colour.lstrip("#")
    return f"{int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha}"


def _qml_symbol(style: LayerStyle, name: str, colour: str) -> str:
    if style.geometry == "marker":
        opts = {
            "name": "circle", "color": _rgba(colour), "size": "2.6", "size_unit": "MM",
            "outline_color": "255,255,255,255", "outline_width": "0.3", "outline_style": "solid",
        }
        cls, typ = "SimpleMarker", "marker"
    else:
        opts = {
            "color": _rgba(colour, 190 if style.fill else 0),
            "style": "solid" if style.fill else "no",
            "outline_color": _rgba(style.outline), "outline_style": "solid",
            "outline_width": f"{style.outline_width_mm}", "outline_width_unit": "MM",
            "joinstyle": "bevel",
        }
        cls, typ = "SimpleFill", "fill"
    options = "".join(
        f'<Option type="QString" name="{k}" value="{escape(v)}"/>' for k, v in opts.items()
    )
    props = "".join(f'<prop k="{k}" v="{escape(v)}"/>' for k, v in opts.items())
    return (
        f'<symbol type="{typ}" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="{cls}" enabled="1" locked="0" pass="0">'
        f'<Option type="Map">{options}</Option>{props}</layer></symbol>'
    )


def qml(style: LayerStyle) -> str:
    """The style as a QGIS QML document (renderer-v2: single, categorized or graduated)."""
    head = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
    if style.kind == "single":
        renderer = (
            '<renderer-v2 type="singleSymbol" forceraster="0" symbollevels="0" enableorderby="0">'
            f'<symbols>{_qml_symbol(style, "0", style.colour)}</symbols></renderer-v2>'
        )
    else:
        symbols = "".join(_qml_symbol(style, str(i), c.colour) for i, c in enumerate(style.classes))
        if style.kind == "categorized":
            items = "".join(
                f'<category value="{escape(str(c.value))}" symbol="{i}" '
                f'label="{escape(c.label)}" render="true"/>'
                for i, c in enumerate(style.classes)
            )
            renderer = (
                f'<renderer-v2 type="categorizedSymbol" attr="{style.attr}" forceraster="0" '
                f'symbollevels="0" enableorderby="0"><categories>{items}</categories>'
                f"<symbols>{symbols}</symbols></renderer-v2>"
            )
        else:
            items = "".join(
                f'<range lower="{c.lower:.6f}" upper="{c.upper:.6f}" symbol="{i}" '
                f'label="{escape(c.label)}" render="true"/>'
                for i, c in enumerate(style.classes)
            )
            renderer = (
                f'<renderer-v2 type="graduatedSymbol" attr="{style.attr}" graduatedMethod="GraduatedColor" '
                f'forceraster="0" symbollevels="0" enableorderby="0"><ranges>{items}</ranges>'
                f"<symbols>{symbols}</symbols><mode name=\"quantile\"/></renderer-v2>"
            )
    labels = style.label is not None
    return (
        f'{head}<qgis version="3.28.0" styleCategories="{"Symbology|Labeling" if labels else "Symbology"}" '
        f'labelsEnabled="{int(labels)}">{renderer}{_qml_labeling(style)}'
        "<blendMode>0</blendMode><featureBlendMode>0</featureBlendMode>"
        "<layerOpacity>1</layerOpacity></qgis>"
    )


def _sld_symbolizer(style: LayerStyle, colour: str) -> str:
    if style.geometry == "marker":
        return (
            "<se:PointSymbolizer><se:Graphic><se:Mark><se:WellKnownName>circle</se:WellKnownName>"
            f'<se:Fill><se:SvgParameter name="fill">{colour}</se:SvgParameter></se:Fill>'
            '<se:Stroke><se:SvgParameter name="stroke">#ffffff</se:SvgParameter></se:Stroke>'
            "</se:Mark><se:Size>10</se:Size></se:Graphic></se:PointSymbolizer>"
        )
    fill = (
        f'<se:Fill><se:SvgParameter name="fill">{colour}</se:SvgParameter>'
        '<se:SvgParameter name="fill-opacity">0.75</se:SvgParameter></se:Fill>'
        if style.fill else ""
    )
    width = max(1.0, style.outline_width_mm * 3.78)
    return (
        f"<se:PolygonSymbolizer>{fill}<se:Stroke>"
        f'<se:SvgParameter name="stroke">{style.outline}</se:SvgParameter>'
        f'<se:SvgParameter name="stroke-width">{width:.1f}</se:SvgParameter>'
        "</se:Stroke></se:PolygonSymbolizer>"
    )


def sld(style: LayerStyle) -> str:
    """The same style as an OGC SLD 1.1 document (for ArcGIS, GeoServer and QGIS fallbacks)."""
    rules = []
    if style.kind == "single":
        rules.append(f"<se:Rule><se:Name>{escape(style.layer)}</se:Name>"
                     f"{_sld_symbolizer(style, style.colour)}</se:Rule>")
    for c in style.classes:
        if style.kind == "categorized":
            flt = (f"<ogc:PropertyIsEqualTo><ogc:PropertyName>{style.attr}</ogc:PropertyName>"
                   f"<ogc:Literal>{escape(str(c.value))}</ogc:Literal></ogc:PropertyIsEqualTo>")
        else:
            flt = (f"<ogc:PropertyIsBetween><ogc:PropertyName>{style.attr}</ogc:PropertyName>"
                   f"<ogc:LowerBoundary><ogc:Literal>{c.lower}</ogc:Literal></ogc:LowerBoundary>"
                   f"<ogc:UpperBoundary><ogc:Literal>{c.upper}</ogc:Literal></ogc:UpperBoundary>"
                   "</ogc:PropertyIsBetween>")
        rules.append(
            f"<se:Rule><se:Name>{escape(c.label)}</se:Name><ogc:Filter>{flt}</ogc:Filter>"
            f"{_sld_symbolizer(style, c.colour)}</se:Rule>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:ogc="http://www.opengis.net/ogc" xmlns:se="http://www.opengis.net/se" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<NamedLayer><se:Name>{escape(style.layer)}</se:Name><UserStyle>"
        f"<se:Name>{escape(style.layer)}</se:Name><se:FeatureTypeStyle>{''.join(rules)}{_sld_label_rule(style)}"
        "</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>"
    )


# --------------------------------------------------------------------------- writers

_LAYER_STYLES_DDL = """
CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256),
    f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
    useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
    update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
)
"""


def gpkg_timestamp(when: dt.datetime | None = None) -> str:
    """A GeoPackage DATETIME: ``YYYY-MM-DDTHH:MM:SS.SSSZ`` in UTC (the standard's form, milliseconds).

    >>> gpkg_timestamp(dt.datetime(2024, 1, 5, 9, 0, 0, 123456, tzinfo=dt.UTC))
    '2024-01-05T09:00:00.123Z'
    """
    when = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"



def write_gpkg(layers: Mapping[str, gpd.GeoDataFrame], path, *, styles: bool = True) -> Path:
    """Write every layer to one GeoPackage (version :data:`GPKG_VERSION`) in EPSG:27700, with QGIS
    default styles.

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame
        Layer name -> features; reprojected to EPSG:27700 if they are in another CRS.
    path : path-like
        The ``.gpkg`` to create (replaced if it exists).
    styles : bool
        Add the ``layer_styles`` table (QGIS's schema) with one default style per layer,
        registered in ``gpkg_contents`` as an attributes table.

    Returns
    -------
    Path
    """
    import pyogrio

    _check_layers(layers)
    path = Path(path)
    path.unlink(missing_ok=True)
    for name, gdf in layers.items():
        out = flatten(gdf).to_crs(WORKING_CRS)
        first = not path.exists()
        pyogrio.write_dataframe(out, path, layer=name, driver="GPKG", append=not first,
                                promote_to_multi=bool(out.geom_type.str.contains("Polygon").any()),
                                dataset_options={"VERSION": GPKG_VERSION} if first else None)
    if styles:
        now = gpkg_timestamp()
        with sqlite3.connect(path) as con:
            geom_cols = dict(con.execute(
                "SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall())
            con.execute(_LAYER_STYLES_DDL)
            con.execute(
                "INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, "
                "description, last_change) VALUES ('layer_styles', 'attributes', "
                "'layer_styles', 'QGIS layer styles', ?)", (now,))
            for name, gdf in layers.items():
                st = layer_style(name, gdf)
                con.execute(
                    "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                    "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, "
                    "description, owner, ui, update_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    ("", "", name, geom_cols.get(name, "geom"), name, qml(st), sld(st), 1,
                     f"svrisk default style for {name}", "", None, now),
                )
        con.close()
    return path


def shapefile_field_names(columns) -> dict[str, str]:
    """Map column names to unique Shapefile (dBASE) names of at most 10 characters.

    Names are cut to 10 characters; a cut name already taken gets a numeric suffix.

    >>> shapefile_field_names(["expected_lo", "expected_hi", "model_version"])
    {'expected_lo': 'expected_l', 'expected_hi': 'expected_h', 'model_version': 'model_vers'}
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for col in columns:
        short = str(col)[:10]
        i = 1
        while short.lower() in taken:
            suffix = f"_{i}"
            short = str(col)[: 10 - len(suffix)] + suffix
            i += 1
        taken.add(short.lower())
        out[str(col)] = short
    return out


def shorten(text, limit: int = SHAPEFILE_TEXT_BYTES, mark: str = " [...]") -> str:
    """``text`` cut at a word boundary to at most ``limit`` UTF-8 bytes, ending in ``mark`` when cut.

    >>> shorten("alpha beta gamma", 14)
    'alpha [...]'
    """
    text = str(text)
    if len(text.encode("utf-8")) <= limit:
        return text
    room = limit - len(mark.encode("utf-8"))
    cut = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ;,") + mark


def _long_text(name: str, out: gpd.GeoDataFrame, limit: int) -> tuple[gpd.GeoDataFrame, list[dict]]:
    """Shorten text cells longer than ``limit`` bytes; the full texts as rows for ``long_text.csv``."""
    rows = []
    geom = out.geometry.name
    key = next((k for k in ("unit_id", "area_id", "name") if k in out.columns), None)
    out = out.copy()
    for col in out.columns:
        if col == geom or not (pd.api.types.is_string_dtype(out[col]) or out[col].dtype == object):
            continue
        # a plain bool array: Series.map on a string column can hand back a string column
        long_ = np.array([isinstance(v, str) and len(v.encode("utf-8")) > limit for v in out[col]], dtype=bool)
        for i in np.flatnonzero(long_):
            rows.append({"layer": name, "row": int(i), "key": None if key is None else out[key].iloc[i],
                         "field": col, "text": out[col].iloc[i]})
        if long_.any():
            short = [shorten(v, limit) if isinstance(v, str) else v for v in out[col]]
            out[col] = pd.array(short, dtype=out[col].dtype)
    return out, rows


def write_shapefile_zip(layers: Mapping[str, gpd.GeoDataFrame], path) -> pd.DataFrame:
    """Write each layer as an EPSG:27700 Shapefile into one zip, with ``field_names.csv``.

    The CSV (also returned) has columns ``layer``, ``field`` (full name) and
    ``shapefile_field`` (the 10-character name in the ``.dbf``). dBASE holds at most 254
    bytes of text: longer cells (reasons, hubs, wards of a big area) are shortened at a
    word and end in ``[...]``, and ``long_text.csv`` in the zip has them in full
    (``layer``, ``row``, ``key`` = unit_id/area_id, ``field``, ``text``), so nothing is cut
    silently and GDAL has nothing to warn about.
    """
    import pyogrio

    _check_layers(layers)
    path = Path(path)
    rows, long_rows = [], []
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED
    ) as zf:
        for name, gdf in layers.items():
            out, cut = _long_text(name, flatten(gdf).to_crs(WORKING_CRS), SHAPEFILE_TEXT_BYTES)
            long_rows += cut
            geom = out.geometry.name
            names = shapefile_field_names([c for c in out.columns if c != geom])
            rows += [{"layer": name, "field": k, "shapefile_field": v} for k, v in names.items()]
            out = out.rename(columns=names)
            for col in out.columns:
                if col != geom and out[col].dtype == bool:
                    out[col] = out[col].astype("int32")  # dBASE logicals read back badly
            shp = Path(tmp) / f"{name}.shp"
            pyogrio.write_dataframe(out, shp, driver="ESRI Shapefile", encoding="UTF-8")
            for part in sorted(Path(tmp).glob(f"{name}.*")):
                zf.write(part, arcname=part.name)
        fmap = pd.DataFrame(rows, columns=["layer", "field", "shapefile_field"])
        zf.writestr("field_names.csv", fmap.to_csv(index=False))
        if long_rows:
            zf.writestr("long_text.csv", pd.DataFrame(long_rows).to_csv(index=False))
    return fmap


def write_geojson(layers: Mapping[str, gpd.GeoDataFrame], folder) -> dict[str, Path]:
    """Write ``<folder>/<layer>.geojson`` per layer in EPSG:4326 (RFC 7946, lon/lat)."""
    import pyogrio

    _check_layers(layers)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, gdf in layers.items():
        p = folder / f"{name}.geojson"
        p.unlink(missing_ok=True)
        pyogrio.write_dataframe(flatten(gdf).to_crs(WEB_CRS), p, driver="GeoJSON",
                                layer_options={"RFC7946": "YES", "WRITE_NAME": "NO"})
        paths[name] = p
    return paths


def _kml_numbers(out: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """64-bit integers as 32-bit (GDAL's KML schema types Integer64 as string, so 10 sorts before 2)."""
    for col in out.columns:
        s = out[col]
        if col == out.geometry.name or not pd.api.types.is_integer_dtype(s):
            continue
        v = pd.to_numeric(s, errors="coerce")
        if v.notna().any() and (v.abs().max() >= 2**31):
            out[col] = v.astype("float64")  # too big for int: a real, still numeric
        elif s.isna().any():
            out[col] = s.astype("Int32")
        else:
            out[col] = s.astype("int32")
    return out


def write_kml(layers: Mapping[str, gpd.GeoDataFrame], path) -> Path:
    """Write all layers into one KML file (one folder per layer) in EPSG:4326, via GDAL's driver.

    Integer fields are typed ``int`` and reals ``float`` in the KML schema (not strings), so
    Google Earth and GIS tools sort ``rank`` and ``Gi_Bin`` as numbers.
    """
    import pyogrio

    _check_layers(layers)
    path = Path(path)
    path.unlink(missing_ok=True)
    for name, gdf in layers.items():
        out = _kml_numbers(flatten(gdf).to_crs(WEB_CRS))
        if "name" not in out.columns and "unit_id" in out.columns:
            out = out.assign(name=out["unit_id"])  # KML shows <name> as the placemark label
        pyogrio.write_dataframe(out, path, layer=name, driver="KML", append=path.exists())
    return path


def write_csv_wkt(layers: Mapping[str, gpd.GeoDataFrame], folder) -> dict[str, Path]:
    """Write ``<folder>/<layer>.csv`` per layer: attributes plus ``WKT`` geometry in EPSG:27700."""
    import shapely

    _check_layers(layers)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, gdf in layers.items():
        out = flatten(gdf).to_crs(WORKING_CRS)
        geom = out.geometry.name
        frame = pd.DataFrame(out.drop(columns=geom))
        frame["WKT"] = shapely.to_wkt(out.geometry.values, rounding_precision=3, trim=True)
        p = folder / f"{name}.csv"
        frame.to_csv(p, index=False)
        paths[name] = p
    return paths


def read_gpkg_styles(path) -> pd.DataFrame:
    """The ``layer_styles`` table of a GeoPackage (empty frame if it has none)."""
    with sqlite3.connect(Path(path)) as con:
        has = con.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='layer_styles'"
        ).fetchone()[0]
        frame = (pd.read_sql_query("SELECT * FROM layer_styles ORDER BY id", con) if has
                 else pd.DataFrame(columns=["f_table_name", "styleName", "styleQML"]))
    con.close()
    return frame


__all__ = [
    "GPKG_VERSION", "LAYER_NAMES", "RUN_FIELDS", "TOP_SHARES", "LayerStyle", "StyleClass", "area_class_index",
    "area_class_names", "attribution_text", "hubs_near", "with_risk_class",
    "close_colours", "colour_distance", "data_period", "emerging_colour", "flatten", "gpkg_timestamp",
    "layer_style", "shorten", "qml", "quantile_breaks", "read_gpkg_styles", "shapefile_field_names",
    "sld", "stamp", "write_csv_wkt", "write_geojson", "write_gpkg", "write_kml",
    "write_shapefile_zip",
]
