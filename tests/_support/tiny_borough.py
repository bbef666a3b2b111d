"""A tiny hand-made borough for tests: four square LSOAs whose numbers you can check by hand.

::

      y=181000 +---------+---------+
               |  C      |  D      |      LSOA 2011: A B C D, each 500 m x 500 m
               | ...03   | ...04   |      LSOA 2021: A B C unchanged; D split into D1 (west) and D2 (east)
      y=180500 +---------+---------+      wards 2022: W (west: A, C) and E (east: B, D)
               |  A      |  B      |
               | ...01   | ...02   |
      y=180000 +---------+---------+
            x=530000  530500    531000

Events (month, group, point) are listed in :data:`EVENTS`; IMD, population,
a station, bus stops, schools, lights and a park are set so every feature has an
expected value that can be worked out on paper (see tests/features/test_build.py).
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from geo.crs import WORKING_CRS

X0, Y0 = 530000.0, 180000.0
CODES = {"A": "E01000001", "B": "E01000002", "C": "E01000003", "D": "E01000004"}
CENTRES = {"A": (X0 + 250, Y0 + 250), "B": (X0 + 750, Y0 + 250), "C": (X0 + 250, Y0 + 750), "D": (X0 + 750, Y0 + 750)}

# (month, group, x, y, harm)
EVENTS = [
    ("2017-01", "violence", *CENTRES["A"], 150.0),
    ("2017-06", "violence", *CENTRES["A"], 150.0),
    ("2017-12", "violence", *CENTRES["A"], 150.0),
    ("2017-12", "robbery", *CENTRES["A"], 290.0),
    ("2017-11", "burglary", *CENTRES["B"], 300.0),
    ("2017-12", "drugs", *CENTRES["B"], 30.0),
    ("2016-06", "violence", *CENTRES["D"], 150.0),
    ("2018-01", "violence", *CENTRES["A"], 150.0),
    ("2018-01", "violence", *CENTRES["C"], 150.0),
    ("2018-02", "sexual", *CENTRES["D"], 250.0),
    ("2017-12", "violence", X0 + 2000, Y0 + 2000, 150.0),  # outside every unit
]


# (month, x, y): stop and search records (police-generated)
STOP_SEARCH = [("2017-12", *CENTRES["B"]), ("2017-10", *CENTRES["B"]), ("2016-01", *CENTRES["B"])]


def stop_search_frame(rows=STOP_SEARCH) -> gpd.GeoDataFrame:
    """The stop_search table (schema ``stop_search``) for a list of (month, x, y)."""
    ss = pd.DataFrame(rows, columns=["month", "x", "y"])
    month = pd.to_datetime(ss["month"] + "-01").astype("datetime64[ns]")
    return gpd.GeoDataFrame(
        {
            "month": month, "date": month.dt.tz_localize("UTC"), "type": "Person search",
            "object_of_search": "Offensive weapons", "outcome": "Nothing found",
            "source_file": "fixture.csv", "source_row": range(1, len(ss) + 1),
        },
        geometry=gpd.points_from_xy(ss["x"], ss["y"]),
        crs=WORKING_CRS,
    )


def _box(x, y, w, h):
    return shapely.box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def _units(rows, edition):
    return gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows], "edition": edition},
        geometry=[shapely.MultiPolygon([r[2]]) for r in rows],
        crs=WORKING_CRS,
    ).astype({"code": "string", "name": "string", "edition": "string"})


def events_frame(events=EVENTS) -> gpd.GeoDataFrame:
    """The events table (schema ``events``) for a list of (month, group, x, y, harm)."""
    ev = pd.DataFrame(events, columns=["month", "group", "x", "y", "harm"])
    police = {"drugs", "weapons"}
    sv = {"violence", "robbery", "sexual"}
    return gpd.GeoDataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(ev))],
            "crime_id": pd.array([pd.NA] * len(ev), dtype="string"),
            "month": pd.to_datetime(ev["month"] + "-01").astype("datetime64[ns]"),
            "category": ev["group"],
            "group": ev["group"],
            "serious_violence": ev["group"].isin(sv),
            "police_generated": ev["group"].isin(police),
            "harm": ev["harm"].astype(float),
            "lsoa_code": pd.array([pd.NA] * len(ev), dtype="string"),
            "location": "On or near a street",
            "outcome": pd.array([pd.NA] * len(ev), dtype="string"),
            "source_file": "fixture.csv",
            "source_row": range(1, len(ev) + 1),
        },
        geometry=gpd.points_from_xy(ev["x"], ev["y"]),
        crs=WORKING_CRS,
    )


def tiny_store(events=EVENTS, exclusions: bool = True, stop_search=STOP_SEARCH) -> dict[str, pd.DataFrame]:
    """The tables of the tiny borough, as a mapping for :class:`sources.memstore.MemoryStore`."""
    lsoa11 = _units([(CODES[k], f"Tiny {k}", _box(*off, 500, 500)) for k, off in
                     {"A": (0, 0), "B": (500, 0), "C": (0, 500), "D": (500, 500)}.items()], "lsoa2011")
    lsoa21 = _units([
        ("E01100001", "Tiny A", _box(0, 0, 500, 500)),
        ("E01100002", "Tiny B", _box(500, 0, 500, 500)),
        ("E01100003", "Tiny C", _box(0, 500, 500, 500)),
        ("E01100041", "Tiny D1", _box(500, 500, 250, 500)),
        ("E01100042", "Tiny D2", _box(750, 500, 250, 500)),
    ], "lsoa2021")
    wards = _units([("E05000001", "West", _box(0, 0, 500, 1000)), ("E05000002", "East", _box(500, 0, 500, 1000))], "ward2022")
    borough = _units([("E09000099", "Tiny", _box(0, 0, 1000, 1000))], "borough")
    lookup = pd.DataFrame({
        "lsoa11": [CODES["A"], CODES["B"], CODES["C"], CODES["D"], CODES["D"]],
        "lsoa21": ["E01100001", "E01100002", "E01100003", "E01100041", "E01100042"],
        "change": ["U", "U", "U", "S", "S"],
    }, dtype="string")
    imd = pd.DataFrame({
        "lsoa11": list(CODES.values()),
        "imd_score": [10.0, 20.0, 30.0, 40.0],
        "imd_rank": [4000.0, 3000.0, 2000.0, 1000.0],
        "imd_decile": [4.0, 3.0, 2.0, 1.0],
        "income_score": [0.1, 0.2, 0.3, 0.4],
    }).astype({"lsoa11": "string"})
    # every LSOA: 0-15: 100, 16-29: 140, 30+: 260 -> 500 residents, 10-24 = 100*6/16 + 140*9/14 = 127.5
    # year 2017 only for A and B; 2019 has 1000 residents in every LSOA (all 30+)
    pop_rows = []
    for code in CODES.values():
        for a, b, n in ((0, 15, 100.0), (16, 29, 140.0), (30, 120, 260.0)):
            pop_rows.append((code, "lsoa2011", 2017, a, b, n))
        pop_rows.append((code, "lsoa2011", 2019, 30, 120, 1000.0))
    population = pd.DataFrame(pop_rows, columns=["code", "edition", "year", "age_from", "age_to", "count"]).astype(
        {"code": "string", "edition": "string", "year": "int64", "age_from": "int64", "age_to": "int64"})
    stations = gpd.GeoDataFrame(
        {"station_key": ["alpha", "beta"], "name": ["Alpha", "Beta"], "network": ["LU", "LU"]},
        geometry=gpd.points_from_xy([X0 + 250, X0 + 1750], [Y0 + 250, Y0 + 250]), crs=WORKING_CRS,
    ).astype({"station_key": "string", "name": "string", "network": "string"})
    footfall = pd.DataFrame({
        "station_key": ["alpha", "alpha", "beta"], "year": [2016, 2017, 2016],
        "entries_exits": [1_000_000.0, 2_000_000.0, 500_000.0],
    }).astype({"station_key": "string"})
    bus = gpd.GeoDataFrame({"stop_code": ["s1", "s2", "s3"], "name": ["S1", "S2", "S3"]},
                           geometry=gpd.points_from_xy([X0 + 100, X0 + 200, X0 + 900], [Y0 + 100, Y0 + 100, Y0 + 900]),
                           crs=WORKING_CRS).astype({"stop_code": "string", "name": "string"})
    schools = gpd.GeoDataFrame(
        {"urn": ["100", "200", "300"], "name": ["One", "Two", "Shut"], "phase": "Secondary",
         "type": "Academy", "status": ["Open", "Open", "Closed"]},
        geometry=gpd.points_from_xy([X0 + 250, X0 + 750, X0 + 260], [Y0 + 650, Y0 + 750, Y0 + 250]), crs=WORKING_CRS,
    ).astype({"urn": "string", "name": "string", "phase": "string", "type": "string", "status": "string"})
    lights = gpd.GeoDataFrame({"asset_id": ["l1", "l2"]}, geometry=gpd.points_from_xy([X0 + 10, X0 + 990], [Y0 + 10, Y0 + 990]),
                              crs=WORKING_CRS).astype({"asset_id": "string"})
    parks = gpd.GeoDataFrame({"name": ["Green"], "town": ["Tiny"], "postcode_district": ["N1"], "facilities": [1]},
                             geometry=[_box(0, 0, 250, 500)], crs=WORKING_CRS)
    tables = {
        "events": events_frame(events),
        "units_lsoa2011": lsoa11, "units_lsoa2021": lsoa21, "units_ward2022": wards, "units_borough": borough,
        "lookup_lsoa11_lsoa21": lookup, "imd": imd, "population": population,
        "stations": stations, "station_footfall": footfall, "bus_stops": bus, "schools": schools,
        "street_lights": lights, "parks": parks, "stop_search": stop_search_frame(stop_search),
    }
    if exclusions:
        tables["school_exclusions"] = pd.DataFrame({
            "urn": ["100", "200", "100"], "year": ["2016/17", "2016/17", "2017/18"],
            "headcount": [1000.0, 500.0, 1000.0], "suspensions": [40.0, 10.0, 90.0],
            "permanent_exclusions": [10.0, 0.0, 10.0],
        }).astype({"urn": "string", "year": "string"})
    return tables


def ward_counts(rows) -> pd.DataFrame:
    """An ``area_counts`` table of monthly counts by 2022 ward from ``(month, ward, group, count)`` rows.

    Wards are ``"W"`` (west, E05000001) and ``"E"`` (east, E05000002); harm is 100 an offence.
    """
    code = {"W": "E05000001", "E": "E05000002"}
    return pd.DataFrame({
        "unit_code": [code[w] for _, w, _, _ in rows], "edition": "ward2022",
        "period_start": pd.to_datetime([f"{m}-01" for m, _, _, _ in rows]), "period": "month",
        "category": [g.title() for _, _, g, _ in rows], "subcategory": pd.NA,
        "group": [g for _, _, g, _ in rows], "count": [float(n) for _, _, _, n in rows], "harm": 100.0,
        "serious_violence": True, "release": pd.NA, "source_file": "wards.csv",
    }).astype({"unit_code": "string", "edition": "string", "period": "string", "category": "string",
               "subcategory": "string", "group": "string", "release": "string"})
