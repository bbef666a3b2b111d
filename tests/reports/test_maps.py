"""reports.maps: legend classes by hand, tiles, and what the rendered HTML holds."""

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
    assert "Testham Central" in html  # station label
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
    # wards, borough, hubs (layer and each marker's style), 4 numbers, 2 ward and 1 station label
    assert html.count('"interactive": false') == 3 + 1 + 4 + 2 + 1
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
