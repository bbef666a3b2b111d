"""reports.layers on a 2 x 2 grid of 100 m cells: names, styles and round trips."""

import sqlite3
import xml.etree.ElementTree as ET

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point, box

from reports import layers as gl

META = {"run_id": "r1", "model_version": "m1", "data_period": {"start": "2020-01", "end": "2020-12"}}


def grid():
    cells = [box(500_000 + 100 * c, 180_000 + 100 * r, 500_100 + 100 * c, 180_100 + 100 * r)
             for r in range(2) for c in range(2)]
    return gpd.GeoDataFrame({"unit_id": ["a", "b", "c", "d"], "expected": [4.0, 3.0, 2.0, 1.0],
                             "Gi_Bin": [3, 0, 0, -2], "gi_class": ["hot", "ns", "ns", "cold"],
                             "ids": [["x", "y"], [], ["z"], ["w"]]},
                            geometry=cells, crs="EPSG:27700")


def test_shapefile_names_are_short_and_unique():
    names = gl.shapefile_field_names(["expected_lo", "expected_l", "expected_lx", "rank"])
    assert names == {"expected_lo": "expected_l", "expected_l": "expected_1",
                     "expected_lx": "expected_2", "rank": "rank"}


def test_quantile_breaks_by_hand():
    assert gl.quantile_breaks([1, 2, 3, 4, None], k=2) == [2.5, 4.0]
    assert gl.quantile_breaks([5, 5, 5], k=4) == [5.0]
    assert gl.quantile_breaks([], k=3) == []


def test_stamp_and_flatten():
    out = gl.flatten(gl.stamp(grid(), META))
    assert out["data_period"].tolist() == ["2020-01/2020-12"] * 4
    assert out["ids"].tolist() == ["x; y", "", "z", "w"]
    with pytest.raises(ValueError, match="data_period"):
        gl.stamp(grid(), {"run_id": "r2"})


def test_style_of_gi_bins_uses_data_labels():
    st = gl.layer_style("hotspots", grid())
    assert st.kind == "categorized" and st.attr == "Gi_Bin"
    assert [(c.value, c.label) for c in st.classes] == [(3, "hot"), (0, "ns"), (-2, "cold")]
    root = ET.fromstring(gl.qml(st).split(">", 1)[1])
    assert [c.get("value") for c in root.iter("category")] == ["3", "0", "-2"]
    assert len(list(root.iter("symbol"))) == 3
    sld = ET.fromstring(gl.sld(st))
    ns = {"se": "http://www.opengis.net/se"}
    assert [r.text for r in sld.findall(".//se:Rule/se:Name", ns)] == ["hot", "ns", "cold"]


def test_style_of_ranked_units_is_graduated_by_quantiles():
    st = gl.layer_style("ranked_units", grid())
    assert st.kind == "graduated"
    # quantiles of 1, 2, 3, 4 at 0.2 .. 1.0: 1.6, 2.2, 2.8, 3.4, 4.0
    assert [round(c.upper, 2) for c in st.classes] == [1.6, 2.2, 2.8, 3.4, 4.0]
    assert st.classes[0].lower == 1.0
    root = ET.fromstring(gl.qml(st).split(">", 1)[1])
    assert root.find("renderer-v2").get("type") == "graduatedSymbol"


def test_gpkg_round_trip_with_styles(tmp_path):
    hubs = gpd.GeoDataFrame({"kind": ["station", "school"]},
                            geometry=[Point(500_050, 180_050), Point(500_150, 180_150)], crs=27700)
    path = gl.write_gpkg({"ranked_units": grid(), "hubs": hubs}, tmp_path / "x.gpkg")
    assert [n for n, _ in pyogrio.list_layers(path)] == ["ranked_units", "hubs", "layer_styles"]
    back = pyogrio.read_dataframe(path, layer="ranked_units")
    assert back.crs.to_epsg() == 27700
    assert back.geometry.area.tolist() == [10_000.0] * 4
    assert back["ids"].tolist() == ["x; y", "", "z", "w"]
    styles = gl.read_gpkg_styles(path)
    assert styles["f_table_name"].tolist() == ["ranked_units", "hubs"]
    assert "SimpleMarker" in styles["styleQML"].iloc[1]
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM gpkg_contents").fetchone()[0] == 3
    con.close()


def test_gpkg_reprojects_other_crs_to_bng(tmp_path):
    wgs = grid().to_crs(4326)
    back = pyogrio.read_dataframe(gl.write_gpkg({"g": wgs}, tmp_path / "g.gpkg", styles=False))
    assert back.crs.to_epsg() == 27700
    assert back.geometry.area.round(1).tolist() == [10_000.0] * 4


def test_writers_refuse_frames_without_crs(tmp_path):
    bad = gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0)])
    with pytest.raises(ValueError, match="'bad' has no CRS"):
        gl.write_csv_wkt({"bad": bad}, tmp_path)
    with pytest.raises(TypeError, match="DataFrame"):
        gl.write_geojson({"plain": pd.DataFrame({"a": [1]})}, tmp_path)
    with pytest.raises(ValueError, match="empty"):
        gl.write_kml({}, tmp_path / "x.kml")


def test_csv_wkt_round_trip(tmp_path):
    p = gl.write_csv_wkt({"ranked_units": grid()}, tmp_path)["ranked_units"]
    frame = pd.read_csv(p)
    assert frame["WKT"].iloc[0] == "POLYGON ((500100 180000, 500100 180100, 500000 180100, 500000 180000, 500100 180000))"


def test_cold_emerging_categories_are_blue_and_hot_ones_red():
    from reports.layers import emerging_colour

    hot, cold = emerging_colour("New Hot Spot"), emerging_colour("New Cold Spot")
    assert hot != cold
    r_hot, b_hot = int(hot[1:3], 16), int(hot[5:7], 16)
    r_cold, b_cold = int(cold[1:3], 16), int(cold[5:7], 16)
    assert r_hot > b_hot and b_cold > r_cold
