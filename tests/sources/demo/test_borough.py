"""The demo borough generator: reproducible, in the public formats, with the planted structure.

One default borough (seed 7, 36 months from 2016-01, 120 LSOAs) is generated once
per module; the process's numbers (hot-spot centres, radii, intercept) come from its
``truth.json``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import tomllib
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from sources.demo.borough import DemoProcess, generate_demo

SV_TYPES = ["Violence and sexual offences", "Robbery"]

STREET = [
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
]
STOP_SEARCH = [
    "Type",
    "Date",
    "Part of a policing operation",
    "Policing operation",
    "Latitude",
    "Longitude",
    "Gender",
    "Age range",
    "Self-defined ethnicity",
    "Officer-defined ethnicity",
    "Legislation",
    "Object of search",
    "Outcome",
    "Outcome linked to object of search",
    "Removal of more than just outer clothing",
]
IMD_DOMAINS = [
    ("Income Score (rate)", "Income"),
    ("Employment Score (rate)", "Employment"),
    ("Education, Skills and Training Score", "Education, Skills and Training"),
    ("Health Deprivation and Disability Score", "Health Deprivation and Disability"),
    ("Crime Score", "Crime"),
    ("Barriers to Housing and Services Score", "Barriers to Housing and Services"),
    ("Living Environment Score", "Living Environment"),
    (
        "Income Deprivation Affecting Children Index (IDACI) Score (rate)",
        "Income Deprivation Affecting Children Index (IDACI)",
    ),
    (
        "Income Deprivation Affecting Older People (IDAOPI) Score (rate)",
        "Income Deprivation Affecting Older People (IDAOPI)",
    ),
]
IMD = (
    [
        "LSOA code (2011)",
        "LSOA name (2011)",
        "Local Authority District code (2019)",
        "Local Authority District name (2019)",
        "Index of Multiple Deprivation (IMD) Score",
        "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)",
        "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)",
    ]
    + [
        c
        for score, stem in IMD_DOMAINS
        for c in (
            score,
            f"{stem} Rank (where 1 is most deprived)",
            f"{stem} Decile (where 1 is most deprived 10% of LSOAs)",
        )
    ]
    + ["Total population: mid 2015 (excluding prisoners)"]
)
MYE = ["LSOA11CD", "LSOA11NM", "MSOA11CD", "MSOA11NM", "LAD11CD", "LAD11NM"] + [
    f"{s}_{b}"
    for s in ("Persons", "Males", "Females")
    for b in ("All-Ages", "0-15", "16-29", "30-44", "45-64", "65+")
]
TS007A = (
    ["date", "LSOA21NM", "LSOA21CD", "Total", "Aged 4 years and under"]
    + [f"Aged {a} to {a + 4} years" for a in range(5, 85, 5)]
    + ["Aged 85 years and over"]
)

# every file the generator writes (crime folder apart) -> its exact public columns
COLUMNS = {
    "boundaries/lsoa2011.gpkg": [
        "LSOA11CD",
        "LSOA11NM",
        "LAD11CD",
        "LAD11NM",
        "USUALRES",
        "geometry",
    ],
    "boundaries/lsoa2021.gpkg": ["LSOA21CD", "LSOA21NM", "geometry"],
    "boundaries/wards2022.gpkg": ["WD22CD", "WD22NM", "geometry"],
    "boundaries/borough.gpkg": ["NAME", "GSS_CODE", "geometry"],
    "other/parks.gpkg": ["id", "name", "function", "geometry"],
    "boundaries/lookup_lsoa11_lsoa21.csv": [
        "LSOA11CD",
        "LSOA11NM",
        "LSOA21CD",
        "LSOA21NM",
        "CHGIND",
    ],
    "boundaries/lookup_lsoa21_ward22.csv": [
        "LSOA21CD",
        "LSOA21NM",
        "WD22CD",
        "WD22NM",
        "LTLA22CD",
        "LTLA22NM",
    ],
    "deprivation/imd2019_lsoa11.csv": IMD,
    "population/mye2019_lsoa11.csv": MYE,
    "population/census2021_ts007a_lsoa21.csv": TS007A,
    "transport/stations.csv": [
        "FID",
        "OBJECTID",
        "Station",
        "EASTING",
        "NORTHING",
        "LINES",
        "NETWORK",
        "Zone",
    ],
    "transport/station_entries_exits.csv": [
        "year",
        "mode",
        "nlc",
        "asc",
        "station",
        "coverage",
        "source",
        "annualised_entries_exits",
    ],
    "transport/bus_stops.csv": [
        "Stop_Code_LBSL",
        "Bus_Stop_Code",
        "Naptan_Atco",
        "Stop_Name",
        "Location_Easting",
        "Location_Northing",
        "Heading",
        "Stop_Area",
        "Virtual_Bus_Stop",
    ],
    "schools/schools.csv": [
        "URN",
        "EstablishmentName",
        "TypeOfEstablishment (name)",
        "PhaseOfEducation (name)",
        "EstablishmentStatus (name)",
        "Easting",
        "Northing",
        "Postcode",
    ],
    "schools/exclusions.csv": [
        "time_period",
        "time_identifier",
        "geographic_level",
        "school_urn",
        "school_name",
        "headcount",
        "perm_excl",
        "perm_excl_rate",
        "susp",
        "susp_rate",
    ],
    "other/street_lighting.csv": ["Asset_ID", "Asset_XCords", "Asset_YCords"],
}


def file_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_months(root: Path, suffix: str) -> pd.DataFrame:
    files = sorted(glob.glob(str(root / "crime" / "*" / f"*-{suffix}.csv")))
    return pd.concat(
        [pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True
    )


def to_bng(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    t = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
    return t.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("demo") / "data")


@pytest.fixture(scope="module")
def truth(demo) -> dict:
    return json.loads((demo / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def street(demo) -> pd.DataFrame:
    return read_months(demo, "street")


@pytest.fixture(scope="module")
def borough(demo) -> shapely.Geometry:
    return gpd.read_file(demo / "boundaries" / "borough.gpkg").geometry.iloc[0]


# --------------------------------------------------------------------------- reproducible


def test_same_seed_gives_byte_identical_files(demo, tmp_path):
    again = generate_demo(tmp_path / "again")
    first, second = file_hashes(demo), file_hashes(again)
    assert len(first) == 16 + 2 + 2 * 36  # 16 sources, catalogue + truth, 2 files a month
    assert first == second


def test_rerun_is_idempotent_and_drops_its_own_stale_months(tmp_path):
    small = dict(months=3, n_lsoa=30, start="2019-11")
    fresh = file_hashes(generate_demo(tmp_path / "fresh", seed=3, **small))
    reused = tmp_path / "reused"
    generate_demo(reused, seed=3, **{**small, "months": 4})  # leaves 2020-02 behind
    (reused / "notes.txt").write_text("the analyst's own file\n")
    generate_demo(reused, seed=3, **small)
    again = file_hashes(reused)
    assert again.pop("notes.txt")  # files the generator does not own are kept
    assert again == fresh
    assert not (reused / "crime" / "2020-02").exists()
    assert sorted(p.name for p in (reused / "crime").iterdir()) == ["2019-11", "2019-12", "2020-01"]


def test_another_seed_gives_another_borough(demo, tmp_path):
    other = generate_demo(tmp_path / "other", seed=8, months=1)
    a = gpd.read_file(demo / "boundaries" / "lsoa2011.gpkg")
    b = gpd.read_file(other / "boundaries" / "lsoa2011.gpkg")
    assert list(a["LSOA11CD"]) == list(b["LSOA11CD"])  # same code range
    assert not a.geometry.geom_equals(b.geometry).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2016-13"}, "start must be a month 'YYYY-MM', got '2016-13'"),
        ({"months": 0}, "months must be a positive integer, got 0"),
        ({"n_lsoa": 5}, "n_lsoa must be an integer from 30 to 989"),
        (
            {"process": DemoProcess(branching_ratio=1.2)},
            "branching_ratio must be in [0, 1), got 1.2",
        ),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_demo(tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad" / "truth.json").exists()


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("rel", sorted(COLUMNS))
def test_file_has_exactly_the_public_columns(demo, rel):
    path = demo / rel
    if rel.endswith(".gpkg"):
        frame = gpd.read_file(path)
        assert frame.crs.to_epsg() == 27700
        assert set(frame.geom_type) == {"MultiPolygon"}
    else:
        frame = pd.read_csv(path, dtype=str)
    assert list(frame.columns) == COLUMNS[rel]
    assert len(frame) > 0


def test_monthly_police_files_have_the_bulk_layouts(demo, street):
    months = sorted(p.name for p in (demo / "crime").iterdir())
    assert len(months) == 36 and months[0] == "2016-01" and months[-1] == "2018-12"
    for m in (months[0], months[-1]):
        for suffix, columns in (("street", STREET), ("stop-and-search", STOP_SEARCH)):
            head = (
                (demo / "crime" / m / f"{m}-demo-constabulary-{suffix}.csv")
                .read_text()
                .splitlines()[0]
            )
            assert head == ",".join(columns)
    # each file holds its own month only
    assert sorted(street["Month"].unique()) == months


def test_crime_ids_are_hex_for_crimes_and_blank_for_asb(street):
    asb = street["Crime type"] == "Anti-social behaviour"
    assert (street.loc[asb, "Crime ID"] == "").all()
    ids = street.loc[~asb, "Crime ID"]
    assert ids.str.fullmatch(r"[0-9a-f]{64}").all()
    assert ids.is_unique
    assert set(street["Crime type"]) == {
        "Violence and sexual offences",
        "Robbery",
        "Anti-social behaviour",
        "Burglary",
        "Vehicle crime",
        "Other theft",
        "Shoplifting",
        "Criminal damage and arson",
        "Public order",
        "Drugs",
        "Possession of weapons",
        "Theft from the person",
        "Bicycle theft",
        "Other crime",
    }
    assert street["Location"].str.startswith("On or near ").all()


def test_monthly_volumes_are_in_the_promised_ranges(street, truth):
    per_month = street.groupby("Month").size()
    sv = street[street["Crime type"].isin(SV_TYPES)].groupby("Month").size()
    assert 250 <= sv.mean() <= 400
    assert 1500 <= per_month.mean() <= 2500
    assert list(sv) == truth["serious_violence"]["monthly_counts"]
    assert list(per_month) == truth["monthly_rows"]["street"]


def test_ranks_and_deciles_are_national_like(demo):
    imd = pd.read_csv(demo / "deprivation" / "imd2019_lsoa11.csv")
    rank = imd["Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)"]
    score = imd["Index of Multiple Deprivation (IMD) Score"]
    dec = imd["Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)"]
    assert rank.between(1, 32844).all() and rank.is_unique
    assert dec.between(1, 10).all()
    # higher score = more deprived = smaller rank
    assert (np.diff(rank.to_numpy()[np.argsort(-score.to_numpy(), kind="stable")]) > 0).all()


def test_populations_add_up(demo):
    mye = pd.read_csv(demo / "population" / "mye2019_lsoa11.csv")
    bands = ["0-15", "16-29", "30-44", "45-64", "65+"]
    assert (mye[[f"Persons_{b}" for b in bands]].sum(axis=1) == mye["Persons_All-Ages"]).all()
    assert (mye["Males_All-Ages"] + mye["Females_All-Ages"] == mye["Persons_All-Ages"]).all()
    ts = pd.read_csv(demo / "population" / "census2021_ts007a_lsoa21.csv")
    assert (ts[TS007A[4:]].sum(axis=1) == ts["Total"]).all()


# --------------------------------------------------------------------------- geography


def test_codes_are_fake_and_editions_hang_together(demo, street):
    l11 = gpd.read_file(demo / "boundaries" / "lsoa2011.gpkg")
    l21 = gpd.read_file(demo / "boundaries" / "lsoa2021.gpkg")
    lookup = pd.read_csv(demo / "boundaries" / "lookup_lsoa11_lsoa21.csv")
    wards = pd.read_csv(demo / "boundaries" / "lookup_lsoa21_ward22.csv")
    assert list(l11["LSOA11CD"][:2]) == ["E01900001", "E01900002"]
    assert l11["LSOA11NM"].iloc[0] == "Demoborough 001A"
    assert l11["LSOA11CD"].str.fullmatch(r"E01900\d{3}").all()
    assert (l11["LAD11CD"] == "E09900001").all()
    # 5 LSOAs split in two: 115 unchanged + 10 new = 125
    assert lookup["CHGIND"].value_counts().to_dict() == {"U": 115, "S": 10}
    assert len(l21) == 125 and set(l21["LSOA21CD"]) == set(lookup["LSOA21CD"])
    assert set(wards["LSOA21CD"]) == set(l21["LSOA21CD"])
    assert wards["WD22CD"].str.fullmatch(r"E05900\d{3}").all() and wards["WD22CD"].nunique() == 20
    # police.uk used 2011 codes
    assert set(street["LSOA code"]) <= set(l11["LSOA11CD"])


def test_units_tile_the_borough_and_wards_are_contiguous(demo, borough):
    area = borough.area
    assert 25e6 < area < 60e6  # about 8 km x 6 km
    for name in ("lsoa2011", "lsoa2021", "wards2022"):
        units = gpd.read_file(demo / "boundaries" / f"{name}.gpkg")
        assert units.area.sum() == pytest.approx(area, rel=1e-6)
        assert shapely.union_all(units.geometry.to_numpy()).symmetric_difference(borough).area < 1.0
    wards = gpd.read_file(demo / "boundaries" / "wards2022.gpkg")
    assert [len(g.geoms) for g in wards.geometry] == [1] * 20


def test_every_point_is_inside_the_borough(demo, street, borough):
    def inside(x, y):
        return shapely.contains_xy(borough.buffer(1.0), np.asarray(x, float), np.asarray(y, float))

    assert inside(*to_bng(street["Longitude"], street["Latitude"])).all()
    stops = read_months(demo, "stop-and-search")
    placed = stops[stops["Latitude"] != ""]
    assert 0 < len(placed) < len(stops)  # some records have no coordinates, as in the real files
    assert inside(*to_bng(placed["Longitude"], placed["Latitude"])).all()
    for rel, x, y in [
        ("transport/stations.csv", "EASTING", "NORTHING"),
        ("transport/bus_stops.csv", "Location_Easting", "Location_Northing"),
        ("schools/schools.csv", "Easting", "Northing"),
        ("other/street_lighting.csv", "Asset_XCords", "Asset_YCords"),
    ]:
        f = pd.read_csv(demo / rel)
        assert inside(f[x], f[y]).all(), rel


# --------------------------------------------------------------------------- the planted process


def sv_points(street: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sv = street[street["Crime type"].isin(SV_TYPES)]
    x, y = to_bng(sv["Longitude"], sv["Latitude"])
    return x, y, sv["Month"].to_numpy()


def test_persistent_hotspots_are_much_denser_than_the_borough(street, truth):
    x, y, _ = sv_points(street)
    borough_density = len(x) / truth["borough"]["area_m2"]
    persistent = [h for h in truth["hotspots"] if h["kind"] == "persistent"]
    assert len(persistent) == 4
    for h in persistent:
        r = h["radius_m"]
        inside = np.hypot(x - h["x"], y - h["y"]) <= r
        assert inside.sum() / (np.pi * r * r) > 2 * borough_density, h


def test_emerging_hotspot_switches_on_at_its_start_month(street, truth):
    x, y, month = sv_points(street)
    (h,) = [h for h in truth["hotspots"] if h["kind"] == "emerging"]
    assert h["start_month"] == "2018-01"  # two thirds of 36 months from 2016-01
    inside = np.hypot(x - h["x"], y - h["y"]) <= h["radius_m"]
    before, after = month < h["start_month"], month >= h["start_month"]
    share_before = inside[before].sum() / before.sum()
    share_after = inside[after].sum() / after.sum()
    assert share_after > 2 * share_before


def test_expected_lsoa_rates_rank_the_realised_counts(street, truth):
    expected = pd.Series(truth["serious_violence"]["expected_background_per_lsoa11_per_month"])
    sv = street[street["Crime type"].isin(SV_TYPES)]
    realised = sv["LSOA code"].value_counts().reindex(expected.index, fill_value=0)
    assert expected.corr(realised, method="spearman") > 0.8
    # contagion adds about branching / (1 - branching) on top of the background
    eta = truth["process"]["branching_ratio"]
    ratio = realised.sum() / (expected.sum() * 36)
    assert 1.0 < ratio < 1.0 / (1 - eta) + 0.15


def test_stop_search_has_one_sparse_month(demo, truth):
    stops = read_months(demo, "stop-and-search")
    month = stops["Date"].str[:7]
    blank = (stops["Latitude"] == "").groupby(month).mean()
    assert blank.idxmax() == truth["stop_search_sparse_month"]
    assert blank.max() > 0.8 and blank.drop(blank.idxmax()).max() < 0.3


# --------------------------------------------------------------------------- catalogue


def test_catalogue_parses_and_lists_every_file(demo):
    doc = tomllib.loads((demo / "catalogue.toml").read_text(encoding="utf-8"))
    assert doc["catalogue"]["name"] == "Demoborough (synthetic)"
    sources = doc["source"]
    assert {s["kind"] for s in sources} == {
        "boundary_lsoa2011",
        "boundary_lsoa2021",
        "boundary_ward2022",
        "boundary_borough",
        "lookup_lsoa11_lsoa21",
        "lookup_lsoa21_ward22",
        "policeuk_street",
        "policeuk_stop_search",
        "imd",
        "population_mye",
        "population_census_ts007a",
        "stations",
        "station_footfall",
        "bus_stops",
        "schools_gias",
        "school_exclusions",
        "street_lighting",
        "parks",
    }
    for s in sources:
        assert set(s) == {"name", "kind", "path", "format"}
        assert (demo / s["path"]).exists(), s
        assert s["format"] == (
            "folder" if (demo / s["path"]).is_dir() else Path(s["path"]).suffix[1:]
        )
    covered = [Path(s["path"]) for s in sources]
    for rel in file_hashes(demo):
        if rel in ("catalogue.toml", "truth.json"):
            continue
        assert any(Path(rel) == c or c in Path(rel).parents for c in covered), rel


# --------------------------------------------------------------------------- against the real files


@pytest.fixture(scope="module")
def real_data(request) -> Path:
    root = Path(
        os.environ.get("SVRISK_REAL_DATA", request.config.rootpath / ".." / "shared" / "data")
    )
    if not root.is_dir():
        pytest.skip(f"real data folder {root} not found (set SVRISK_REAL_DATA)")
    return root


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("demo_file", "real_file"),
    [
        ("boundaries/lookup_lsoa21_ward22.csv", "boundaries/lookup_lsoa21_ward2022_barnet.csv"),
        (
            "deprivation/imd2019_lsoa11.csv",
            "deprivation/barnet_iod2019_lsoa11_scores_ranks_deciles.csv",
        ),
        ("population/mye2019_lsoa11.csv", "population/barnet_mye2019_lsoa11_broad_age.csv"),
        (
            "population/census2021_ts007a_lsoa21.csv",
            "population/barnet_census2021_ts007a_age5_lsoa21.csv",
        ),
        ("transport/stations.csv", "transport/barnet_area_rail_stations_locations.csv"),
        (
            "transport/station_entries_exits.csv",
            "transport/barnet_area_tfl_station_annual_entries_exits_2017_2023.csv",
        ),
        ("transport/bus_stops.csv", "transport/barnet_tfl_bus_stops.csv"),
        ("other/street_lighting.csv", "other/barnet_street_lighting_assets.csv"),
    ],
)
def test_demo_columns_are_the_real_files_columns(demo, real_data, demo_file, real_file):
    real = pd.read_csv(real_data / real_file, nrows=0).columns
    ours = pd.read_csv(demo / demo_file, nrows=0).columns
    # the real extracts carry a few columns added by their packagers; ours are the published ones
    assert [c for c in real if c in set(ours)] == list(ours)


@pytest.mark.realdata
def test_stop_search_columns_are_the_real_files_columns(demo, real_data):
    real = set(
        pd.read_csv(
            real_data / "crime" / "barnet_stop_and_search_2015_2025.csv.gz", nrows=0
        ).columns
    )
    assert set(STOP_SEARCH) <= real


def test_a_planted_intervention_changes_only_the_area_and_its_ring(tmp_path):
    from sources.demo.borough import DemoIntervention

    small = {"seed": 5, "months": 6, "n_lsoa": 30}
    plain = generate_demo(tmp_path / "plain", **small)
    iv = DemoIntervention(start_index=3, reduction=0.5, displaced_share=0.5, buffer_m=300.0)
    planted = generate_demo(tmp_path / "planted", **small, process=DemoProcess(intervention=iv))
    assert "intervention" not in json.loads((plain / "truth.json").read_text())  # default truth unchanged
    truth = json.loads((planted / "truth.json").read_text())["intervention"]
    assert truth["start_month"] == "2016-04" and truth["rate_ratio"] == 0.5
    # before the start the police.uk files are the same bytes
    for m in ("2016-01", "2016-02", "2016-03"):
        rel = f"crime/{m}/{m}-demo-constabulary-street.csv"
        assert (plain / rel).read_bytes() == (planted / rel).read_bytes()
    a = pd.concat(pd.read_csv(p) for p in sorted(plain.glob("crime/*/*-street.csv")))
    b = pd.concat(pd.read_csv(p) for p in sorted(planted.glob("crime/*/*-street.csv")))
    other = ~a["Crime type"].isin(SV_TYPES)
    assert a[other].groupby("Crime type").size().equals(b[~b["Crime type"].isin(SV_TYPES)].groupby("Crime type").size())
    # in the area, the written files hold exactly the truth's counts, and they fell by what was removed
    sv = b[b["Crime type"].isin(SV_TYPES)]
    months = ["2016-01", "2016-02", "2016-03", "2016-04", "2016-05", "2016-06"]
    in_area = sv[sv["LSOA code"].isin(truth["area_lsoa11"])].groupby("Month").size()
    assert in_area.reindex(months, fill_value=0).tolist() == truth["area_counts"]
    assert [w - r for w, r in zip(truth["area_counts_without"], truth["removed"], strict=True)] == truth["area_counts"]
    assert sum(truth["removed"][:3]) == 0 and sum(truth["removed"][3:]) > 0
    # removed events vanish unless displaced; displaced ones land outside the area, in the ring
    assert len(sv) == len(a[~other]) - sum(truth["removed"]) + sum(truth["displaced"])
    assert not set(truth["ring_lsoa11"]) <= set(truth["area_lsoa11"])
