"""write_outputs: every format read back and compared with the ranking it came from."""

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from reports.outputs import write_outputs
from reports.run_folder import load_run, run_layers

LAYERS = ["ranked_units", "hotspots", "emerging", "areas", "hubs", "youth_places"]


@pytest.fixture(scope="module")
def written(tmp_path_factory, make_run):
    run = make_run(tmp_path_factory.mktemp("outputs") / "runs", "run-2024-01")
    return run, write_outputs(run), gpd.read_parquet(run / "ranking.parquet")


def _same_geoms(a: gpd.GeoSeries, b: gpd.GeoSeries, tol: float) -> None:
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert len(a) == len(b)
    d = shapely.hausdorff_distance(np.asarray(a.values), np.asarray(b.values))
    assert np.all(d < tol), f"max geometry difference {np.max(d)} >= {tol}"


def _by_unit(frame, ranking):
    return frame.set_index(frame["unit_id"].astype(str)).loc[list(ranking["unit_id"])]


def test_every_output_is_written(written):
    run, paths, _ = written
    for key in ["map", "briefing", "gpkg", "shp_zip", "shp_fields", "kml",
                *(f"geojson:{n}" for n in LAYERS), *(f"csv:{n}" for n in LAYERS)]:
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
        assert paths[key].parent in (run, run / "geojson", run / "csv")


def test_gpkg_layers_crs_geometry_and_attributes(written):
    _, paths, ranking = written
    listed = pyogrio.list_layers(paths["gpkg"])
    assert [n for n, _ in listed if n != "layer_styles"] == LAYERS
    back = pyogrio.read_dataframe(paths["gpkg"], layer="ranked_units")
    assert back.crs.to_epsg() == 27700
    _same_geoms(back.geometry, ranking.geometry, 1e-6)
    assert list(back["unit_id"]) == list(ranking["unit_id"])
    assert list(back["rank"]) == list(range(1, 37))
    np.testing.assert_allclose(back["expected"], ranking["expected"])
    assert back["rank_change"].isna().sum() == ranking["rank_change"].isna().sum() == 8
    assert set(back["run_id"]) == {"run-2024-01"}
    assert set(back["model_version"]) == {"svrisk-0.1.0+test"}
    assert set(back["data_period"]) == {"2021-01/2023-12"}


def test_gpkg_emerging_layer_keeps_only_patterns(written):
    _, paths, _ = written
    em = pyogrio.read_dataframe(paths["gpkg"], layer="emerging")
    assert sorted(em["unit_id"]) == ["G01", "G11", "G44"]
    areas = pyogrio.read_dataframe(paths["gpkg"], layer="areas")
    assert list(areas["unit_ids"]) == ["G00; G01; G10; G11", "G44; G45; G54; G55"]
    assert areas.geometry.area.round(3).tolist() == [250_000.0, 250_000.0]  # 4 cells of 250 m


def test_gpkg_has_qgis_styles(written):
    _, paths, _ = written
    styles = pyogrio.read_dataframe(paths["gpkg"], layer="layer_styles", read_geometry=False)
    assert list(styles["f_table_name"]) == LAYERS
    assert set(styles["useAsDefault"].astype(int)) == {1}
    with sqlite3.connect(paths["gpkg"]) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
        kind = con.execute("SELECT data_type FROM gpkg_contents WHERE table_name='layer_styles'").fetchone()
        geom = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
    con.close()
    for c in ["f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", "styleName",
              "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui", "update_time"]:
        assert c in cols
    assert kind == ("attributes",)
    assert dict(zip(styles["f_table_name"], styles["f_geometry_column"], strict=True)) == geom
    hot = styles.set_index("f_table_name").loc["hotspots"]
    qml = ET.fromstring(hot["styleQML"].split(">", 1)[1])  # after the DOCTYPE
    cats = qml.find("renderer-v2")
    assert cats.get("type") == "categorizedSymbol" and cats.get("attr") == "Gi_Bin"
    assert [c.get("value") for c in cats.iter("category")] == ["3", "2", "0", "-1"]
    assert [c.get("label") for c in cats.iter("category")][0] == "Hot spot (99%)"
    ET.fromstring(hot["styleSLD"])  # well-formed
    # places in QGIS take the web map's classes: the top 1/5/10/25% of the area, by risk_class
    ranked = ET.fromstring(styles.set_index("f_table_name").loc["ranked_units", "styleQML"].split(">", 1)[1])
    r = ranked.find("renderer-v2")
    assert r.get("type") == "categorizedSymbol" and r.get("attr") == "risk_class"
    # 36 equal cells: the top cell is 2.8% of the area (1-5% is then empty), 2 more reach 8.3%
    assert [c.get("value") for c in r.iter("category")] == ["Top 1% of area", "5-10% of area",
                                                            "10-25% of area", "Rest"]


def test_gpkg_styles_label_the_top_ranks_the_areas_and_the_stations(written):
    """QGIS shows labels from the default styles: ranks 1-10 (as the map numbers them), area ids and
    station names; the other layers stay unlabelled. The SLD carries the same labels."""
    _, paths, _ = written
    styles = pyogrio.read_dataframe(paths["gpkg"], layer="layer_styles", read_geometry=False) \
        .set_index("f_table_name")
    ns = {"se": "http://www.opengis.net/se", "ogc": "http://www.opengis.net/ogc"}
    want = {"ranked_units": 'CASE WHEN "rank" <= 10 THEN "rank" END', "areas": '"area_id"',
            "hubs": "CASE WHEN \"kind\" = 'station' THEN \"name\" END"}
    for layer in LAYERS:
        qml = ET.fromstring(styles.loc[layer, "styleQML"].split(">", 1)[1])
        text = qml.find("labeling/settings/text-style")
        sld = ET.fromstring(styles.loc[layer, "styleSLD"])
        label = sld.find(".//se:TextSymbolizer/se:Label/ogc:PropertyName", ns)
        if layer not in want:
            assert qml.get("labelsEnabled") == "0" and text is None and label is None, layer
            continue
        assert qml.get("labelsEnabled") == "1" and "Labeling" in qml.get("styleCategories"), layer
        assert text.get("fieldName") == want[layer] and text.get("isExpression") == "1", layer
        assert text.find("text-buffer").get("bufferDraw") == "1"  # a white halo, readable on dark classes
        assert label.text == {"ranked_units": "rank", "areas": "area_id", "hubs": "name"}[layer]
    rule = ET.fromstring(styles.loc["ranked_units", "styleSLD"]).find(".//se:Rule[se:TextSymbolizer]", ns)
    cond = rule.find("ogc:Filter/ogc:PropertyIsLessThanOrEqualTo", ns)
    assert [cond.find("ogc:PropertyName", ns).text, cond.find("ogc:Literal", ns).text] == ["rank", "10"]


def test_gpkg_is_version_1_2_with_conformant_styles_and_opens_without_warnings(written):
    _, paths, _ = written
    with sqlite3.connect(paths["gpkg"]) as con:
        app_id, version = (con.execute("PRAGMA application_id").fetchone()[0],
                           con.execute("PRAGMA user_version").fetchone()[0])
        times = [t for (t,) in con.execute("SELECT update_time FROM layer_styles")]
        changed = con.execute("SELECT last_change FROM gpkg_contents").fetchall()
    con.close()
    assert app_id.to_bytes(4, "big") == b"GPKG" and version == 10200  # GDAL 3.6 / QGIS 3.22 read 1.2 quietly
    iso_ms = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # the standard's DATETIME form
    assert times and all(iso_ms.match(t) for t in times), times
    assert all(iso_ms.match(t) for (t,) in changed), changed
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for layer, _ in pyogrio.list_layers(paths["gpkg"]):
            info = pyogrio.read_info(paths["gpkg"], layer=layer)
            pyogrio.read_dataframe(paths["gpkg"], layer=layer)
            if layer != "layer_styles":
                assert info["crs"] == "EPSG:27700", layer
    assert [str(w.message) for w in caught] == []
    info = pyogrio.read_info(paths["gpkg"], layer="ranked_units")
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types["rank"] == "int64" and types["expected"] == "float64" and types["place"] == "object"


def test_shapefile_keeps_long_text_whole_beside_it_and_warns_nothing(tmp_path):
    import warnings

    from reports import layers as gl

    long_ = "; ".join(f"12-month serious violence {i} events, 3.5x the borough median" for i in range(6))
    frame = gpd.GeoDataFrame({"unit_id": ["a", "b"], "reasons": [long_, "short"]},
                             geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=27700)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # an empty layer with a text column (no emerging pattern found) is written too
        empty = frame.iloc[:0].astype({"reasons": "string"})
        gl.write_shapefile_zip({"areas": frame, "emerging": empty}, tmp_path / "s.zip")
    assert [str(w.message) for w in caught] == []
    back = pyogrio.read_dataframe(f"/vsizip/{tmp_path / 's.zip'}/areas.shp")
    assert len(back["reasons"][0].encode()) <= 254 and back["reasons"][0].endswith(" [...]")
    assert long_.startswith(back["reasons"][0].removesuffix(" [...]")) and back["reasons"][1] == "short"
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        full = pd.read_csv(zf.open("long_text.csv"))
    assert full.to_dict("records") == [{"layer": "areas", "row": 0, "key": "a", "field": "reasons", "text": long_}]


def test_shapefile_zip_with_field_map(written):
    run, paths, ranking = written
    with zipfile.ZipFile(paths["shp_zip"]) as zf:
        names = set(zf.namelist())
        fmap = pd.read_csv(zf.open("field_names.csv"))
    for layer in LAYERS:
        assert {f"{layer}.{ext}" for ext in ("shp", "shx", "dbf", "prj")} <= names
    assert (fmap["shapefile_field"].str.len() <= 10).all()
    m = fmap[fmap["layer"] == "ranked_units"].set_index("field")["shapefile_field"]
    assert m["expected_lo"] == "expected_l" and m["model_version"] == "model_vers"
    back = pyogrio.read_dataframe(f"/vsizip/{paths['shp_zip']}/ranked_units.shp")
    assert back.crs.to_epsg() == 27700
    back = back.rename(columns={v: k for k, v in m.items()})
    _same_geoms(back.geometry, ranking.geometry, 1e-6)
    assert list(back["unit_id"]) == list(ranking["unit_id"])
    np.testing.assert_allclose(back["expected_hi"], ranking["expected_hi"])
    assert list(back["reason_1"]) == list(ranking["reason_1"])
    assert pd.read_csv(paths["shp_fields"]).equals(fmap)


def test_geojson_is_wgs84_and_matches_after_reprojection(written):
    _, paths, ranking = written
    raw = json.loads(paths["geojson:ranked_units"].read_text())
    lon, lat = raw["features"][0]["geometry"]["coordinates"][0][0]
    assert -0.3 < lon < -0.2 and 51.5 < lat < 51.7
    back = gpd.read_file(paths["geojson:ranked_units"])
    assert back.crs.to_epsg() == 4326
    # 7 decimals of a degree (RFC 7946 writer) is about 1 cm
    _same_geoms(back.to_crs(27700).geometry, ranking.geometry, 0.05)
    assert list(back["unit_id"]) == list(ranking["unit_id"])
    assert list(back["gi_class"]) == list(ranking["gi_class"])


def test_kml_has_every_layer_in_wgs84(written):
    _, paths, ranking = written
    assert [n for n, _ in pyogrio.list_layers(paths["kml"])] == LAYERS
    back = pyogrio.read_dataframe(paths["kml"], layer="ranked_units")
    assert back.crs.to_epsg() == 4326
    back = back.set_geometry(shapely.force_2d(back.geometry.values))
    _same_geoms(back.to_crs(27700).geometry, ranking.geometry, 0.05)
    assert list(back["Name"]) == list(ranking["name"])
    assert [int(r) for r in back["rank"]] == list(ranking["rank"])
    # numbers are typed as numbers in the KML schema, so 10 sorts after 2
    info = pyogrio.read_info(paths["kml"], layer="ranked_units")
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert {types[c] for c in ("rank", "Gi_Bin", "rank_change", "recent_count")} == {"int32"}
    assert types["expected"] == "float64"
    assert back["rank"].sort_values().tolist()[:11] == list(range(1, 12))
    hubs = pyogrio.read_dataframe(paths["kml"], layer="hubs")
    assert list(hubs["Name"]) == ["Colindale", "Burnt Oak", "Orion Primary", "Colindale High"]


def test_csv_with_wkt_in_bng(written):
    _, paths, ranking = written
    frame = pd.read_csv(paths["csv:ranked_units"])
    geoms = gpd.GeoSeries.from_wkt(frame["WKT"], crs=27700)
    _same_geoms(geoms, ranking.geometry, 1e-3)
    assert list(frame["unit_id"]) == list(ranking["unit_id"])
    np.testing.assert_allclose(frame["risk_share"], ranking["risk_share"])
    assert frame["data_period"].unique().tolist() == ["2021-01/2023-12"]


def test_map_is_self_contained_with_title_and_legend(written):
    _, paths, _ = written
    html = paths["map"].read_text()
    # nothing is fetched: no <script src>, no <link href>, no tile URL template
    assert re.findall(r"<script[^>]*\bsrc=", html) == []
    assert re.findall(r"<link[^>]*\bhref=", html) == []
    assert "tile.openstreetmap" not in html and "L.tileLayer" not in html
    assert "Data 2021-01 to 2023-12" in html and "svrisk-0.1.0+test" in html
    assert "svrisk-legend" in html and "Clear Hold Build areas" in html
    assert "Stations" in html and "Schools" in html and "Emerging hot spots" in html


def test_briefing_content(written):
    _, paths, _ = written
    html = paths["briefing"].read_text()
    assert "data:image/png;base64," in html
    for text in ("Top 10 places", "Cell 1-1", "Clear Hold Build areas", "Colindale North",
                 "What changed since the last run",
                 "New to the top 10: Colindale North, 300 m from Colindale station (Cell 2-2)",
                 "Needs assessment", "+5.0%", "Who lives in the top 10 places", "1.74",
                 "places, never people", "No police-generated data", "2021-01 to 2023-12"):
        assert text in html, text
    assert "Cell 0-3" in html and "Cell 3-3" not in html.split('id="changes"')[0]


def test_briefing_warns_when_police_generated_data_was_used(tmp_path, make_run):
    from reports.briefing import render_briefing

    run = make_run(tmp_path, "r", police_generated=True, previous=False)
    html = render_briefing(run)
    assert "WAS used in this run" in html
    assert "No earlier run on these units to compare with" in html
    assert "rank changes start with the next run" in html  # said once, not a blank column


def test_run_layers_stamps_and_load_run_checks(tmp_path, make_run):
    run = make_run(tmp_path, "r")
    layers = run_layers(load_run(run))
    assert list(layers) == LAYERS
    assert all((g["run_id"] == "r").all() for g in layers.values())
    meta = json.loads((run / "run.json").read_text())
    del meta["data_period"]
    (run / "run.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="data_period"):
        load_run(run)
    with pytest.raises(FileNotFoundError, match="run.json"):
        load_run(tmp_path / "nothing")


def test_briefing_says_how_hot_spots_were_found_or_why_none(tmp_path, make_run):
    from reports.briefing import render_briefing

    run = make_run(tmp_path, "r", previous=False)
    meta = json.loads((run / "run.json").read_text())
    meta["hotspots"] = {"diagnostics": {"summary": "Gi* on fixed distance band 2,320 m (first peak): 30 hot",
                                        "no_significance_reason": None}}
    (run / "run.json").write_text(json.dumps(meta))
    assert "Hot spots: Gi* on fixed distance band 2,320 m (first peak): 30 hot." in render_briefing(run)
    reason = "No place is a significant Gi* hot or cold spot: the smallest q-value is 0.14."
    meta["hotspots"]["diagnostics"]["no_significance_reason"] = reason
    (run / "run.json").write_text(json.dumps(meta))
    html = render_briefing(run)
    assert f"Hot spots: {reason}" in html and "30 hot" not in html
