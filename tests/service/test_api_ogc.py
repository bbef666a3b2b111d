"""OGC API - Features Part 1 required responses (core + GeoJSON), checked field by field."""

import pytest

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON_CLASS = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"


@pytest.fixture(scope="module")
def H(api_keys):
    return {"X-API-Key": api_keys["viewer"]}


def rels(doc):
    """Links by relation; the first of a relation wins (JSON before its HTML alternate)."""
    return {ln["rel"]: ln for ln in reversed(doc["links"])}


def test_landing_page_links(client, H):
    doc = client.get("/ogc", headers=H).json()
    links = rels(doc)
    # /req/core/root-success: self, service-desc or service-doc, conformance, data
    assert {"self", "conformance", "data", "service-desc", "service-doc"} <= set(links)
    assert links["conformance"]["href"].endswith("/ogc/conformance")
    assert links["data"]["href"].endswith("/ogc/collections")
    assert client.get(links["service-desc"]["href"]).status_code == 200


def test_conformance_declares_core_and_geojson(client, H):
    doc = client.get("/ogc/conformance", headers=H).json()
    assert CORE in doc["conformsTo"] and GEOJSON_CLASS in doc["conformsTo"]


def test_collections_are_the_published_runs_layers(client, H):
    doc = client.get("/ogc/collections", headers=H).json()
    assert "self" in rels(doc)
    ids = [c["id"] for c in doc["collections"]]
    assert ids == ["ranked_units", "hotspots", "emerging", "areas", "hubs", "youth_places"]
    ranked = doc["collections"][0]
    assert "items" in rels(ranked) and rels(ranked)["items"]["type"] == "application/geo+json"
    minx, miny, maxx, maxy = ranked["extent"]["spatial"]["bbox"][0]
    # the 1.5 km grid at BNG (522000, 190000): about 0.022 degrees of longitude wide
    assert -0.25 < minx < maxx < -0.2 and 51.59 < miny < maxy < 51.62
    assert ranked["extent"]["temporal"]["interval"] == [["2021-01-01T00:00:00Z", "2023-12-31T23:59:59Z"]]
    assert "description" in ranked and "run-2024-01" in ranked["description"]


def test_one_collection_and_unknown_collection(client, H):
    assert client.get("/ogc/collections/areas", headers=H).json()["id"] == "areas"
    r = client.get("/ogc/collections/roads", headers=H)
    assert r.status_code == 404 and "roads" in r.json()["detail"]


def test_items_feature_collection_structure(client, H):
    r = client.get("/ogc/collections/ranked_units/items?limit=5", headers=H)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert fc["numberMatched"] == 36 and fc["numberReturned"] == 5 == len(fc["features"])
    assert "timeStamp" in fc
    f = fc["features"][0]
    assert f["type"] == "Feature" and f["id"] == "G11" and f["geometry"]["type"] == "Polygon"
    assert f["properties"]["rank"] == 1 and f["properties"]["model_version"] == "svrisk-0.1.0+test"
    links = rels(fc)
    assert "self" in links and "next" in links and "prev" not in links
    assert "offset=5" in links["next"]["href"] and "limit=5" in links["next"]["href"]


def test_following_next_links_visits_every_feature_once(client, H):
    url, seen = "/ogc/collections/ranked_units/items?limit=10", []
    while url:
        fc = client.get(url, headers=H).json()
        seen += [f["id"] for f in fc["features"]]
        nxt = rels(fc).get("next")
        url = nxt["href"].replace("https://testserver", "") if nxt else None
    assert len(seen) == 36 == len(set(seen))


def test_prev_link_on_later_pages(client, H):
    fc = client.get("/ogc/collections/ranked_units/items?limit=10&offset=30", headers=H).json()
    assert fc["numberReturned"] == 6
    assert "next" not in rels(fc) and "offset=20" in rels(fc)["prev"]["href"]


def test_limit_above_maximum_is_lowered_not_an_error(client, H):
    fc = client.get("/ogc/collections/ranked_units/items?limit=1000", headers=H).json()
    assert fc["numberReturned"] == 20  # the fixture's max_page_size


def test_bbox_selects_the_intersecting_cells(client, H):
    # the centre of cell G11 (row 1, col 1) in lon/lat: take it from the item itself
    g = client.get("/ogc/collections/ranked_units/items/G11", headers=H).json()["geometry"]
    xs = [p[0] for p in g["coordinates"][0]]
    ys = [p[1] for p in g["coordinates"][0]]
    cx, cy = sum(xs[:4]) / 4, sum(ys[:4]) / 4
    d = 0.0001  # about 7-11 m: a box inside the cell touches nothing else
    fc = client.get(f"/ogc/collections/ranked_units/items?bbox={cx - d},{cy - d},{cx + d},{cy + d}",
                    headers=H).json()
    assert [f["id"] for f in fc["features"]] == ["G11"]
    far = client.get("/ogc/collections/ranked_units/items?bbox=1,50,2,51", headers=H).json()
    assert far["numberMatched"] == 0 and far["features"] == []


def test_datetime_outside_the_data_period_matches_nothing(client, H):
    inside = client.get("/ogc/collections/hubs/items?datetime=2022-06-01T00:00:00Z", headers=H).json()
    assert inside["numberMatched"] == 4
    after = client.get("/ogc/collections/hubs/items?datetime=2024-02-01T00:00:00Z/..", headers=H).json()
    assert after["numberMatched"] == 0


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "offset=-1", "bbox=1,2,3", "bbox=a,b,c,d",
                                   "colour=red", "datetime=yesterday", "f=xml", "crs=EPSG:4326",
                                   "bbox-crs=EPSG:3857", "rank=first", "bbox=-1,60,1,50"])
def test_bad_parameters_are_400_with_detail(client, H, query):
    r = client.get(f"/ogc/collections/ranked_units/items?{query}", headers=H)
    assert r.status_code == 400
    assert r.json()["detail"]


def test_single_feature_and_missing_feature(client, H):
    f = client.get("/ogc/collections/areas/items/A1", headers=H).json()
    assert f["type"] == "Feature" and f["properties"]["n_units"] == 4
    assert f["properties"]["unit_ids"] == "G00; G01; G10; G11"
    assert {"self", "collection"} <= set(rels(f))
    r = client.get("/ogc/collections/areas/items/A9", headers=H)
    assert r.status_code == 404 and "A9" in r.json()["detail"]


def test_ogc_needs_a_key(client):
    assert client.get("/ogc/collections").status_code == 401


BNG = "http://www.opengis.net/def/crs/EPSG/0/27700"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def test_part2_crs_is_declared_with_bng_as_storage_crs(client, H):
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in \
        client.get("/ogc/conformance", headers=H).json()["conformsTo"]
    c = client.get("/ogc/collections/ranked_units", headers=H).json()
    assert c["crs"] == [CRS84, BNG] and c["storageCrs"] == BNG


def test_items_in_british_national_grid(client, H):
    r = client.get(f"/ogc/collections/ranked_units/items/G11?crs={BNG}", headers=H)
    assert r.headers["content-crs"] == f"<{BNG}>"
    ring = r.json()["geometry"]["coordinates"][0]
    # G11 is row 1, col 1 of the 250 m grid from (522000, 190000): easting first, in metres
    xs, ys = sorted({p[0] for p in ring}), sorted({p[1] for p in ring})
    assert xs == [522250.0, 522500.0] and ys == [190250.0, 190500.0]
    default = client.get("/ogc/collections/ranked_units/items/G11", headers=H)
    assert default.headers["content-crs"] == f"<{CRS84}>"
    assert default.json()["geometry"]["coordinates"][0][0][0] < 0  # longitude west of Greenwich


def test_bbox_crs_selects_in_metres(client, H):
    # a 10 m box inside G11, given in British National Grid
    url = (f"/ogc/collections/ranked_units/items?bbox=522370,190370,522380,190380"
           f"&bbox-crs={BNG}&crs={BNG}")
    fc = client.get(url, headers=H).json()
    assert [f["id"] for f in fc["features"]] == ["G11"]
    assert "bbox-crs=" in rels(fc)["self"]["href"]  # paging keeps the CRS choices


def test_queryables_list_property_types(client, H):
    r = client.get("/ogc/collections/ranked_units/queryables", headers=H)
    assert r.headers["content-type"].startswith("application/schema+json")
    props = r.json()["properties"]
    assert props["rank"]["type"] == "integer" and props["expected"]["type"] == "number"
    assert props["gi_class"]["type"] == "string" and "geometry" in props
    link = rels(client.get("/ogc/collections/ranked_units", headers=H).json())
    assert link["http://www.opengis.net/def/rel/ogc/1.0/queryables"]["href"].endswith("/queryables")


def test_property_filters(client, H):
    one = client.get("/ogc/collections/ranked_units/items?rank=1", headers=H).json()
    assert [f["id"] for f in one["features"]] == ["G11"] and one["numberMatched"] == 1
    # the 8 neighbours of G11 carry 6.0 and Gi_Bin 2: both filters together
    six = client.get("/ogc/collections/ranked_units/items?expected=6&Gi_Bin=2", headers=H).json()
    assert six["numberMatched"] == 8
    hot = client.get("/ogc/collections/ranked_units/items", headers=H,
                     params={"gi_class": "Hot spot (99%)"}).json()
    assert [f["id"] for f in hot["features"]] == ["G11"]
    assert client.get("/ogc/collections/ranked_units/items?rank=99", headers=H).json()["numberMatched"] == 0


def test_html_pages_for_a_browser(client, H):
    landing = client.get("/ogc?f=html", headers=H)
    assert landing.headers["content-type"].startswith("text/html")
    assert "https://testserver/ogc/collections?f=html" in landing.text
    items = client.get("/ogc/collections/ranked_units/items?limit=3", headers={**H, "Accept": "text/html"})
    assert items.headers["content-type"].startswith("text/html")
    assert items.text.count("<tr>") == 4 and "G11" in items.text  # header + 3 rows
    item = client.get("/ogc/collections/areas/items/A1?f=html", headers=H).text
    assert "G00; G01; G10; G11" in item
    # GIS clients asking for JSON still get JSON
    gis = client.get("/ogc/collections", headers={**H, "Accept": "application/json, text/html"})
    assert gis.headers["content-type"] == "application/json"


def test_every_run_is_reachable_under_ogc_runs(client, H):
    runs = client.get("/ogc/runs", headers=H).json()["runs"]
    assert {r["run_id"]: r["published"] for r in runs} == {"run-2024-01": True, "run-2023-12": False}
    doc = client.get("/ogc/runs/run-2023-12/collections", headers=H).json()
    assert "run-2023-12" in doc["collections"][0]["description"]
    assert rels(doc)["self"]["href"] == "https://testserver/ogc/runs/run-2023-12/collections"
    fc = client.get("/ogc/runs/run-2023-12/collections/ranked_units/items?limit=2", headers=H).json()
    assert fc["features"][0]["properties"]["run_id"] == "run-2023-12"
    assert rels(fc)["next"]["href"].startswith("https://testserver/ogc/runs/run-2023-12/")
    assert client.get("/ogc/runs/nope/collections", headers=H).status_code == 404


def test_a_layer_beside_the_lead_describes_its_own_forecast_not_the_run_s():
    from service.api.ogc import layer_meta, layer_title

    meta = {"run_id": "r", "units": "lsoa2021", "cutoff": "2026-03", "model_version": "v0001",
            "data_period": {"start": "2023-08", "end": "2026-02"},
            "current": {"units": "ward2022", "cutoff": "2026-04", "model_version": "v0003",
                        "data_period": {"start": "2010-04", "end": "2026-03"}}}
    beside = layer_meta(meta, "current_ranked_units")
    assert (beside["model_version"], beside["data_period"]["end"], beside["cutoff"]) == ("v0003", "2026-03", "2026-04")
    assert layer_meta(meta, "ranked_units")["model_version"] == "v0001"
    assert layer_title(beside, "current_ranked_units") == \
        "Ranked places (forecast risk): ward2022 forecast for 2026-04 (beside the lead)"
    assert layer_title(meta, "ranked_units") == "Ranked places (forecast risk): lsoa2021 forecast for 2026-03"
