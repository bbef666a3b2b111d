"""reports.maps: legend classes by hand, and what the rendered HTML holds."""

import re

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from reports import maps

META = {"run_id": "r1", "model_version": "m-7", "cutoff": "2020-02", "area_name": "Testham",
        "data_period": {"start": "2019-01", "end": "2020-01"}}


def layers():
    cells = [box(500_000 + 100 * c, 180_000, 500_100 + 100 * c, 180_100) for c in range(4)]
    ranked = gpd.GeoDataFrame(
        {"unit_id": list("abcd"), "name": ["A St", "B St", "C St", "D St"], "rank": [1, 2, 3, 4],
         "expected": [4.0, 3.0, 2.0, 1.0], "rate_per_1000": [6.0, 2.5, 1.0, 0.2],
         "reason_1": ["+ many knife crimes", "x", "y", "z"]}, geometry=cells, crs=27700)
    hubs = gpd.GeoDataFrame({"kind": ["station"], "name": ["Testham Central"], "footfall": [1e6]},
                            geometry=[Point(500_050, 180_050)], crs=27700)
    return {"ranked_units": ranked, "hubs": hubs}


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


def test_map_html_holds_layers_legend_title_and_popups():
    html = maps.render_html(maps.risk_map(layers(), META))
    assert "Testham serious violence risk, from 2020-02" in html
    assert "Data 2019-01 to 2020-01" in html and "model m-7" in html
    assert "Risk: Expected count" in html and "Stations and schools" in html
    assert "+ many knife crimes" in html  # popup data
    assert "1.00 - 1.60" in html  # first quantile class of 1, 2, 3, 4 (k = 5)
    assert re.findall(r"<script[^>]*\bsrc=", html) == []
    assert "L.tileLayer" not in html


def test_rate_bands_option_needs_a_rate_column():
    html = maps.render_html(maps.risk_map(layers(), META, scheme="rate_bands", value="rate_per_1000"))
    assert "(rate per 1,000)" in html and "1.5 - 2" in html
    with pytest.raises(ValueError, match="rate column"):
        maps.risk_map(layers(), META, scheme="rate_bands")
    with pytest.raises(ValueError, match="'rate_2021'"):
        maps.risk_map(layers(), META, scheme="rate_bands", value="rate_2021")


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
