"""reports.maps: legend classes by hand, tiles, and what the rendered HTML holds."""

import json
import re

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from reports import layers as gl
from reports import maps

META = {"run_id": "r1", "model_version": "m-7", "cutoff": "2020-02", "area_name": "Testham", "horizon": 1,
        "created": "2020-03-01T09:00:00+00:00", "data_period": {"start": "2019-01", "end": "2020-01"}}


def layers():
    cells = [box(500_000 + 100 * c, 180_000, 500_100 + 100 * c, 180_100) for c in range(4)]
    ranked = gpd.GeoDataFrame(
        {"unit_id": list("abcd"), "name": ["A St", "B St", "C St", "D St"],
         "place": ["North Ward, by Testham Central station", "North Ward, 150 m from Testham Central station",
                   "South Ward, 250 m from Testham Central station", "South Ward"],
         "rank": [1, 2, 3, 4], "expected": [4.0, 3.0, 2.0, 1.0], "rate_per_1000": [6.0, 2.5, 1.0, 0.2],
         "reason_1": ["Many knife crimes", "x", "y", "z"]}, geometry=cells, crs=27700)
    hubs = gpd.GeoDataFrame({"kind": ["station"], "name": ["Testham Central"], "footfall": [1e6]},
                            geometry=[Point(500_050, 180_050)], crs=27700)
    return {"ranked_units": ranked, "hubs": hubs}


def context():
    wards = gpd.GeoDataFrame({"code": ["W1", "W2"], "name": ["North Ward", "South Ward"]},
                             geometry=[box(500_000, 180_000, 500_200, 180_100),
                                       box(500_200, 180_000, 500_400, 180_100)], crs=27700)
    borough = gpd.GeoDataFrame({"code": ["B"], "name": ["Testham"]},
                               geometry=[box(500_000, 180_000, 500_400, 180_100)], crs=27700)
    return {"wards": wards, "borough": borough}


def test_rate_bands_by_hand():
    idx, labels, colours = maps.classify([0.5, 1.0, 1.2, 2.5, 3.0, 7.0, np.nan], "rate_bands")
    assert idx.tolist() == [0, 0, 1, 3, 3, 5, -1]
    assert labels == ["< 1", "1 - 1.5", "1.5 - 2", "2 - 3", "3 - 5", "> 5"]
    assert len(colours) == 6


def test_quantile_classes_by_hand():
    idx, labels, _ = maps.classify([1, 2, 3, 4], "quantile", k=2)
    assert idx.tolist() == [0, 0, 1, 1]
    assert labels == ["1.00 - 2.50", "2.50 - 4.00"]
    with pytest.raises(ValueError, match="'jenks'"):
        maps.classify([1, 2], "jenks")


def test_top_area_classes_follow_the_ranks_not_the_density():
    # a large place with the highest count is rank 1 but has a low density: it still leads the top class,
    # and every class is a run of consecutive ranks
    g = gpd.GeoDataFrame({"unit_id": ["big", "a", "b", "c"], "expected": [10.0, 6.0, 5.0, 1.0],
                          "rank": [1, 2, 3, 4]},
                         geometry=[box(0, 0, 3, 3), box(3, 0, 4, 1), box(4, 0, 5, 1), box(5, 0, 96, 1)], crs=27700)
    # areas 9, 1, 1, 91 of 102 (cumulative 8.8%, 9.8%, 10.8%, 100%): "big" alone is the top 1% (larger than
    # the budget, so the class is that one place); 1-5% is empty; a is within 10%, b within 25%, c the rest
    idx, labels, _ = maps.top_area_classes(g, unit="expected")
    assert idx.tolist() == [0, 1, 2, 3]
    assert [lab.split(":")[0] for lab in labels] == ["Top 1% of area", "5-10% of area", "10-25% of area", "Rest"]


def test_top_area_classes_are_the_backtest_slices():
    # 200 equal cells, expected = 200, 199, ..., 1: the top 1% of the area is 2 cells, 1-5% the
    # next 8, 5-10% the next 10, 10-25% the next 30, and the rest 150: the top places stand out
    n = 200
    g = gpd.GeoDataFrame({"unit_id": [f"u{i:03d}" for i in range(n)], "expected": np.arange(n, 0, -1.0)},
                         geometry=[box(i, 0, i + 1, 1) for i in range(n)], crs=27700)
    idx, labels, colours = maps.top_area_classes(g, unit="expected")
    assert np.bincount(idx).tolist() == [2, 8, 10, 30, 150]
    assert labels[0] == "Top 1% of area: 2 places, 199.0 - 200.0 expected"
    assert labels[-1] == "Rest: 150 places, 1.0 - 150.0 expected"
    assert colours[0] == "#800026" and len(set(colours)) == 5


def test_tile_source_none_osm_or_a_forces_own_server():
    assert maps.tile_source(None) is None and maps.tile_source("none") is None
    url, credit = maps.tile_source("osm")
    assert "openstreetmap.org" in url and "OpenStreetMap" in credit
    assert maps.tile_source("https://tiles.force.example/{z}/{x}/{y}.png", "Force GIS") == (
        "https://tiles.force.example/{z}/{x}/{y}.png", "Force GIS")
    with pytest.raises(ValueError, match="tile URL template"):
        maps.tile_source("https://tiles.force.example/map.png")


def test_map_html_holds_orientation_numbers_legend_and_credits():
    html = maps.render_html(maps.risk_map(layers(), META, context=context()))
    assert "Testham: serious violence forecast for next month from 2020-02" in html
    assert "Data 2019-01 to 2020-01" in html and "model m-7" in html
    assert "Risk: expected events next month" in html and "Stations" in html
    assert "North Ward" in html and "South Ward" in html  # ward labels
    assert "Testham Central" in html  # the station, in the places' texts
    assert "Many knife crimes" in html  # popup data
    assert "4.0 expected events next month" in html  # units on the number
    assert "no earlier run to compare" in html  # rank change filled, not blank
    assert len(re.findall(r'class_name": "svrisk-num"|svrisk-num', html)) >= 4
    assert "Open Government Licence v3.0" in html and "police.uk" in html
    sections = re.findall(r'data-layer="(\w+)"', html)
    assert sections == ["risk", "top", "wards", "borough", "hubs_station"]  # no Gi*, emerging: nothing to draw
    assert re.findall(r"<script[^>]*\bsrc=", html) == []
    assert "L.tileLayer" not in html


def test_context_layers_take_no_clicks():
    html = maps.render_html(maps.risk_map(layers(), META, context=context()))
    panes = re.findall(r'createPane\(\s*"(svrisk-[a-z]+)"\);\s*\S+\.style\.zIndex = (\d+);\s*'
                       r"\S+\.style\.pointerEvents = 'none'", html)
    assert panes == [("svrisk-context", "420"), ("svrisk-hubs", "430"), ("svrisk-labels", "640")]
    # wards, borough, hubs (layer and each marker's style), 4 numbers, 2 ward labels (the station's name
    # gives way to number 1 on top of it)
    assert html.count('"interactive": false') == 3 + 1 + 4 + 2
    assert re.search(r'"interactive": false, "pane": "svrisk-hubs", "radius"', html)  # the hub markers themselves


def test_tiles_when_asked_with_their_credit():
    html = maps.render_html(maps.risk_map(layers(), META, tiles="osm"))
    assert "L.tileLayer" in html and "tile.openstreetmap.org" in html and "OpenStreetMap" in html


def test_rate_bands_option_needs_a_rate_column():
    html = maps.render_html(maps.risk_map(layers(), META, scheme="rate_bands", value="rate_per_1000"))
    assert "(rate per 1,000)" in html and "1.5 - 2" in html
    with pytest.raises(ValueError, match="rate column"):
        maps.risk_map(layers(), META, scheme="rate_bands")
    with pytest.raises(ValueError, match="'rate_2021'"):
        maps.risk_map(layers(), META, scheme="rate_bands", value="rate_2021")


def test_colours_a_reader_could_confuse_are_not_used_together():
    hub = {f"hub {k}": c for k, c in gl.HUB_COLOURS.items()}
    risk = {f"risk {i}": c for i, c in enumerate(maps.TOP_AREA_COLOURS)}
    emerging = {f"emerging {k}": c for k, c in gl.EMERGING_COLOURS.items()}
    lines = {"area": gl.AREA_COLOUR, "ward": gl.WARD_COLOUR, "borough": gl.BOROUGH_COLOUR}
    # what the map shows at once: risk classes with the context; youth places beside the emerging
    # categories (it was orange, as "sporadic"); Gi* classes among themselves
    assert gl.close_colours({**risk, **hub, **lines, "youth": gl.YOUTH_COLOUR}) == []
    assert gl.close_colours({**emerging, "youth": gl.YOUTH_COLOUR, **hub}) == []
    assert gl.close_colours({str(k): c for k, c in gl.GI_BIN_COLOURS.items()}) == []
    assert gl.close_colours({"a": "#fd8d3c", "b": "#fd8d3d"}) == [("a", "b", pytest.approx(0.3, abs=0.3))]


def test_save_map_writes_one_file(tmp_path):
    p = maps.save_map(maps.risk_map(layers(), META), tmp_path / "sub" / "m.html")
    assert p.read_text().startswith("<!DOCTYPE html>")
    assert list((tmp_path / "sub").iterdir()) == [p]


def test_gi_legend_only_when_something_is_significant():
    base = layers()
    hot = base["ranked_units"][["unit_id", "geometry"]].copy()
    hot["gi_class"], hot["Gi_Bin"] = "Not Significant", 0
    html = maps.render_html(maps.risk_map({**base, "hotspots": hot}, META))
    assert "Gi* hot and cold spots" not in html  # no layer, no empty legend section
    hot.loc[0, ["gi_class", "Gi_Bin"]] = ["Hot Spot - 99% Confidence", 3]
    html = maps.render_html(maps.risk_map({**base, "hotspots": hot}, META))
    assert "Gi* hot and cold spots" in html and "Hot Spot - 99% Confidence" in html


def crowded():
    """Six small places 40 m apart in a 4 km borough: their numbers overlap at the fitted zoom."""
    cells = [box(530_000 + 40 * c, 190_000, 530_030 + 40 * c, 190_030) for c in range(6)]
    ranked = gpd.GeoDataFrame({"unit_id": [f"u{c}" for c in range(6)], "rank": range(1, 7),
                               "expected": [9.0, 8.0, 7.0, 6.0, 5.0, 4.0]}, geometry=cells, crs=27700)
    borough = gpd.GeoDataFrame({"name": ["Testham"]}, geometry=[box(528_000, 188_000, 532_000, 192_000)], crs=27700)
    # a ward and a station named right on the numbers, a station whose name would run into number 1,
    # and a station far from them
    wards = gpd.GeoDataFrame({"name": ["Crowded Ward", "Quiet Ward"]},
                             geometry=[box(530_000, 190_000, 530_230, 190_030),
                                       box(528_000, 188_000, 529_000, 189_000)], crs=27700)
    hubs = gpd.GeoDataFrame({"kind": ["station"] * 3, "name": ["Crowded", "Leftside", "Faraway"]},
                            geometry=[Point(530_060, 190_015), Point(529_880, 190_015), Point(531_800, 191_800)],
                            crs=27700)
    return {"ranked_units": ranked, "hubs": hubs}, {"borough": borough, "wards": wards}


def number_labels(html: str, layer: str = "ranked_units") -> list[dict]:
    """Each numbered label of ``layer``: its marker's lon/lat, pixel offset and whether it has a leader line."""
    where = dict((m, (float(lat), float(lon))) for m, lat, lon in
                 re.findall(r"var (marker_\w+) = L\.marker\(\s*\[([-\d.e]+),\s*([-\d.e]+)\]", html))
    icons = {name: body for name, body in re.findall(r"var (div_icon_\w+) = L\.divIcon\((\{.*?\})\);", html, re.S)}
    out = []
    for marker, icon in re.findall(r"(marker_\w+)\.setIcon\((div_icon_\w+)\)", html):
        body = json.loads(re.sub(r",\s*}", "}", icons[icon]))["html"]
        if f'data-layer="{layer}"' not in body:
            continue
        dx = re.search(r'data-dx="([-\d.]+)"', body)
        dy = re.search(r'data-dy="([-\d.]+)"', body)
        lead = re.search(r'<polyline points="0,0 ([-\d.]+),([-\d.]+)"', body)
        out.append({"lat": where[marker][0], "lon": where[marker][1],
                    "dx": float(dx.group(1)) if dx else 0.0, "dy": float(dy.group(1)) if dy else 0.0,
                    "leader": (float(lead.group(1)), float(lead.group(2))) if lead else None})
    return out


def pixel_boxes(labels: list[dict], zoom: int) -> list:
    """The labels' 24 px boxes (the 20 px disc and its 2 px border) in pixels at ``zoom``, computed apart from
    the map code: Web Mercator metres over the zoom's metres per pixel, plus each label's offset."""
    from pyproj import Transformer

    metres_per_px = 2 * np.pi * 6_378_137 / (256 * 2 ** zoom)
    to_web = Transformer.from_crs(4326, 3857, always_xy=True)
    boxes = []
    for lab in labels:
        x, y = to_web.transform(lab["lon"], lab["lat"])
        cx, cy = x / metres_per_px + lab["dx"], -y / metres_per_px + lab["dy"]
        boxes.append(box(cx - 12, cy - 12, cx + 12, cy + 12))
    return boxes


def overlapping(boxes: list) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if boxes[i].intersection(boxes[j]).area > 0]


def test_fitted_zoom_is_leaflets_by_hand():
    # 0.17 deg of longitude is 0.121 px at zoom 0 (1000 px: 2^13.0); 51.55-51.67 N is 0.137 px (700 px: 2^12.3)
    assert maps.fitted_zoom((-0.30, 51.55, -0.13, 51.67)) == 12
    assert maps.fitted_zoom((-0.30, 51.55, -0.13, 51.67), size=(2000, 1400)) == 13


def test_numbers_close_together_are_placed_apart_with_leader_lines():
    lay, ctx = crowded()
    html = maps.render_html(maps.risk_map(lay, META, context=ctx))
    labels = number_labels(html)
    assert len(labels) == 6
    # the borough's 4 km are 0.0578 deg of longitude (2^14.6 in 1000 px) and 0.036 deg of latitude at
    # 51.6 N (2^14.05 in 700 px): Leaflet fits it at zoom 14
    zoom = 14
    for lab in labels:
        if (lab["dx"], lab["dy"]) != (0.0, 0.0):
            assert lab["leader"] == (lab["dx"], lab["dy"])  # an offset label has its leader line to its place
        else:
            assert lab["leader"] is None
    assert overlapping(pixel_boxes(labels, zoom)) == []
    assert labels[0]["dx"] == labels[0]["dy"] == 0.0  # number 1 stays on its place
    # the markers stay on their places (only the label moves): checks against the briefing still hold
    cells = lay["ranked_units"].to_crs(4326).geometry
    assert all(c.buffer(1e-9).contains(Point(lab["lon"], lab["lat"])) for c, lab in zip(cells, labels, strict=True))
    # deterministic
    assert number_labels(maps.render_html(maps.risk_map(lay, META, context=ctx))) == labels


def label_texts(html: str, cls: str) -> dict[str, str]:
    """The map's name labels of class ``cls`` (ward or station names): text -> where (its other classes)."""
    icons = [json.loads(re.sub(r",\s*}", "}", body)) for body in re.findall(r"L\.divIcon\((\{.*?\})\);", html, re.S)]
    return {re.sub(r"<[^>]+>", "", i["html"]): i["className"].replace(f"svrisk-label {cls}", "").strip()
            for i in icons if cls in i["className"]}


def test_ward_and_station_names_give_way_to_numbers():
    lay, ctx = crowded()
    html = maps.render_html(maps.risk_map(lay, META, context=ctx))
    assert label_texts(html, "svrisk-ward-label") == {"Quiet Ward": ""}
    # Leftside's name would run into number 1 on its right: it goes left of its dot
    assert label_texts(html, "svrisk-station-label") == {"Leftside": "svrisk-left", "Faraway": ""}
    assert "Crowded Ward" in html  # the ward itself is still drawn (its boundary's properties)


def test_latest_data_numbers_show_and_hide_with_their_layer():
    lay, ctx = crowded()
    current = lay["ranked_units"].assign(unit_id=lambda d: "c" + d["unit_id"])
    meta = {**META, "current": {"units": "hex", "cutoff": "2020-06", "model_version": "m-8",
                                "data_period": {"start": "2019-05", "end": "2020-05"}}}
    html = maps.render_html(maps.risk_map({**lay, "current_ranked_units": current}, meta, context=ctx))
    name = "Latest data: hex forecast for 2020-06"
    control = re.search(r"overlays\s*:\s*\{(.*?)\}", html, re.S).group(1)
    group = re.search(re.escape(json.dumps(name)) + r"\s*:\s*(\w+)", control).group(1)
    numbered = [m for m, icon in re.findall(r"(marker_\w+)\.setIcon\((div_icon_\w+)\)", html)
                if 'data-layer=\\"current_ranked_units\\"' in re.search(
                    rf"var {icon} = L\.divIcon\((.*?)\);", html, re.S).group(1)]
    assert len(numbered) == 6
    for marker in numbered:  # each number is in the layer the control switches, not a layer of its own
        assert re.search(rf"var {marker} = L\.marker\([^;]*\)\.addTo\({group}\);", html, re.S)
    assert re.search(rf"\.addTo\({group}\);", html) and not re.search(rf"{group}\.addTo\(map_\w+\)", html)
    assert f"{name}: top" not in control  # no separate, hidden numbers layer
    assert "current_top" not in html
    # on the same places as the lead's numbers, they are placed clear of them (zoom 14: see above)
    both = number_labels(html) + number_labels(html, "current_ranked_units")
    assert len(both) == 12 and overlapping(pixel_boxes(both, 14)) == []
