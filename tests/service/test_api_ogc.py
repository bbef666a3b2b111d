"""OGC API - Features Part 1 required responses (core + GeoJSON), checked field by field."""

import pytest

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON_CLASS = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"


@pytest.fixture(scope="module")
def H(api_keys):
    return {"X-API-Key": api_keys["viewer"]}


def rels(doc):
    return {ln["rel"]: ln for ln in doc["links"]}


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


def test_collections_are_the_latest_runs_layers(client, H):
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
        url = nxt["href"].replace("http://testserver", "") if nxt else None
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
                                   "colour=red", "datetime=yesterday", "f=html"])
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
