"""A comparison folder is read by recognising its columns, whatever its files are called."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo.crs import WORKING_CRS
from sources.compare import read_compare_folder
from sources.readers import DataError


def _folder(tmp_path, with_counts=True):
    root = tmp_path / "region"
    root.mkdir()
    if with_counts:
        rows = []
        for code, name, n in (("E09000101", "Alpha", 3), ("E09000102", "Beta", 5), ("E09000199", "Police unit", 7)):
            for m in ("2021-01", "2021-02"):
                rows.append({"la_code": code, "la_name": name, "is_borough": code != "E09000199", "month": m,
                             "major_category": "Robbery", "minor_category": "Robbery of Personal Property", "value": n})
                rows.append({"la_code": code, "la_name": name, "is_borough": code != "E09000199", "month": m,
                             "major_category": "Made-up Crimes", "minor_category": "x", "value": 1})
        pd.DataFrame(rows).to_csv(root / "totals.csv", index=False)
    pd.DataFrame({"code": ["E09000101", "E09000102"], "year": [2021, 2021], "population": [1000, 4000],
                  "aged_10_to_24": [200, 600]}).to_csv(root / "people.csv", index=False)
    pd.DataFrame({"code": ["E09000101", "E09000102"], "imd_score_popweighted": [10.0, 30.0]}).to_csv(
        root / "dep.csv", index=False)
    gpd.GeoDataFrame({"GSS": ["E09000101", "E09000102"]}, geometry=[shapely.box(0, 0, 1000, 1000),
                     shapely.box(1000, 0, 3000, 1000)], crs=WORKING_CRS).to_file(root / "areas.gpkg")
    pd.DataFrame({"ward_code": ["E05000001"], "month": ["2021-01"], "count": [1]}).to_csv(root / "wards.csv", index=False)
    return root


def test_files_are_recognised_by_their_columns(tmp_path):
    d = read_compare_folder(_folder(tmp_path))
    assert set(d.files) == {"monthly counts", "population", "deprivation", "boundaries"}
    m = d.monthly.groupby("area_code")["count"].sum()
    assert m.to_dict() == {"E09000101": 6.0, "E09000102": 10.0}  # police unit and unknown category left out
    assert any("not attributed to an authority" in n and "Police unit" in n for n in d.notes)
    assert any("Made-up Crimes" in n for n in d.notes)
    assert set(d.monthly["group"]) == {"robbery"} and d.monthly["serious_violence"].all()
    assert d.population.set_index("area_code")["age_10_24"].to_dict() == {"E09000101": 200, "E09000102": 600}
    assert d.imd_column == "imd_score_popweighted" and d.area_km2["E09000102"] == pytest.approx(2.0)
    assert d.names["E09000102"] == "Beta"
    assert any("wards.csv" in u for u in d.unused)


def test_a_folder_without_monthly_counts_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="no table of monthly offence counts"):
        read_compare_folder(_folder(tmp_path, with_counts=False))
    with pytest.raises(DataError, match="not found"):
        read_compare_folder(tmp_path / "missing")


def test_a_most_similar_groups_table_is_read_and_damaged_ones_are_refused_naming_the_row(tmp_path):
    root = _folder(tmp_path)
    (root / "msg.csv").write_text("area_code,similar_codes,source\nE09000101,E09000102;E09000103,Home Office MSG 2023\n"
                                  "E09000102,E09000101,Home Office MSG 2023\n")
    d = read_compare_folder(root)
    assert d.msg == {"E09000101": ["E09000102", "E09000103"], "E09000102": ["E09000101"]}
    assert d.msg_source == "Home Office MSG 2023" and "most similar groups" in d.files
    for body, message in (("E09000101,E09000102;Barnet\n", r"row 1.*not authority GSS codes: Barnet"),
                          ("E09000101,E09000102\nE09000101,E09000102\n", r"row 2.*given twice"),
                          ("E09000101,E09000101\n", r"row 1.*itself")):
        (root / "msg.csv").write_text("area_code,similar_codes\n" + body)
        with pytest.raises(DataError, match=message):
            read_compare_folder(root)
