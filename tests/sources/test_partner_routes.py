"""Partner data routes: the shipped templates, valid and damaged hand-made files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from ingest_fixtures import write_boundaries

from sources.catalogue import recognise_columns
from sources.ingest import ingest
from sources.loaders.context import IngestContext
from sources.loaders.partner import ROUTES, load_partner, parse_counts
from sources.readers import DataError
from sources.taxonomy import load_taxonomy

TEMPLATES = Path(__file__).resolve().parents[2] / "docs" / "templates"


def ctx(**codes) -> IngestContext:
    c = IngestContext(taxonomy=load_taxonomy(None), today=pd.Timestamp("2026-03-15"))
    c.codes.update(codes)
    return c


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(ROUTES))
def test_each_shipped_template_is_recognised_and_its_example_is_a_comment(kind):
    path = TEMPLATES / ROUTES[kind].template
    header = path.read_text().splitlines()[0].split(",")
    assert recognise_columns(header) == kind
    res = load_partner(path, ctx(), kind)
    assert res.rows_read == 1 and len(res.frame) == 0
    assert res.rejects["reason"].tolist() == ["comment line"]


def test_suppression_markers_are_unknown_not_zero():
    value, suppressed, bound, bad = parse_counts(pd.Series(["0", "12", "*", "<5", "[c]", "x", "-1", "2.5", "abc", None]))
    assert suppressed.tolist() == [False, False, True, True, True, True, False, False, False, False]
    assert value.iloc[:2].tolist() == [0.0, 12.0] and value.iloc[2:6].isna().all()
    assert bound.iloc[3] == 4.0 and pd.isna(bound.iloc[2])
    assert bad.tolist() == [False] * 6 + [True, True, True, False]


def test_ae_file_valid_and_damaged_rows_are_kept_with_reasons(tmp_path):
    path = write(tmp_path / "ae.csv", "month,area_code,service,assault_attendances\n"
                 "# 2025-04,E05012345,ae,12\n"
                 "2025-04,E01900001,ae,12\n"
                 "2025-04,E01900001,ambulance,<5\n"
                 "2025-05,E01900002,ae,*\n"
                 "2025-05,E01900002,ae,3\n"      # repeat of the row above
                 "2025-06,E01999999,ae,4\n"      # not in the boundaries
                 "2025-06,E01900001,walk-in,4\n"  # unknown service
                 "2025-06,E01900001,ae,-3\n"     # negative
                 "2025-13,E01900001,ae,4\n"      # not a month
                 "2026-09,E01900001,ae,4\n"      # future
                 "2025-06,E02000001,ae,4\n")     # an MSOA: not a borough, ward or LSOA
    res = load_partner(path, ctx(lsoa2011={"E01900001", "E01900002"}), "partner_ae_assaults")
    assert res.rows_read == 11 and res.accepted_rows == 3 and len(res.rejects) == 8
    reasons = dict(zip(res.rejects["source_row"], res.rejects["reason"], strict=True))
    assert reasons == {1: "comment line", 5: "duplicate row", 6: "lsoa code not in any loaded boundary",
                       7: "unknown service", 8: "bad assault_attendances", 9: "unparseable month",
                       10: "month in the future", 11: "not a borough, ward or LSOA code"}
    detail = res.rejects.set_index("source_row")["detail"]
    assert "assault_attendances -3" in detail[8] and "E01999999" in detail[6]
    f = res.frame.sort_values("source_row")
    assert f["value"].tolist()[0] == 12.0 and f["suppressed"].tolist() == [False, True, True]
    assert f["suppressed_below"].tolist()[1] == 4.0 and f["service"].tolist() == ["ae", "ambulance", "ae"]
    assert any(fl["check"] == "suppressed_cells" and fl["cells"] == 2 for fl in res.flags)


def test_a_file_missing_a_required_column_is_refused_naming_it(tmp_path):
    path = write(tmp_path / "yj.csv", "month,area_code,first_time_entrants\n2025-04,E09000099,3\n")
    with pytest.raises(DataError, match=r"proven_offences.*youth_justice\.csv"):
        load_partner(path, ctx(), "partner_youth_justice")


def test_marac_rows_without_an_area_are_the_boroughs(tmp_path):
    path = write(tmp_path / "marac.csv", "month,marac_cases,repeat_cases\n2025-04,41,13\n2025-05,38,\n2025-06,,\n")
    res = load_partner(path, ctx(), "partner_marac")
    assert res.accepted_rows == 2 and res.rejects["reason"].tolist() == ["no counts"]
    assert set(res.frame["area_level"]) == {"borough"}
    assert res.frame.groupby("measure")["value"].sum().to_dict() == {"marac_cases": 79.0, "repeat_cases": 13.0}


def test_education_rows_take_one_of_area_or_school(tmp_path):
    path = write(tmp_path / "edu.csv",
                 "academic_year,area_code,school_urn,pupils,suspensions,permanent_exclusions,neet_16_17,cohort_16_17\n"
                 "2024/25,E09000099,,3120,214,*,18,402\n"
                 "2024/25,,101234,900,40,2,,\n"
                 "2024/25,E09000099,101234,900,40,2,,\n"   # both
                 "2024/25,,12,900,40,2,,\n"                # not a URN
                 "2024/26,E09000099,,1,1,1,1,1\n"          # not an academic year
                 "2027/28,E09000099,,1,1,1,1,1\n")         # future
    res = load_partner(path, ctx(), "partner_education")
    assert res.rejects["reason"].tolist() == ["both an area and a school", "not a school URN",
                                              "unparseable academic_year", "academic year in the future"]
    assert set(res.frame["area_level"]) == {"borough", "school"} and set(res.frame["period"]) == {"2024/25"}
    excl = res.frame[res.frame["measure"] == "permanent_exclusions"].set_index("area_code")
    assert bool(excl.loc["E09000099", "suppressed"]) and excl.loc["101234", "value"] == 2.0


def test_a_folder_with_partner_files_ingests_them_into_one_table_reconciled(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    write(data / "partners" / "ae.csv", "month,area_code,service,assault_attendances\n2025-04,E01900001,ae,7\n"
          "2025-04,E01900009,ae,2\n")
    write(data / "partners" / "marac.csv", "month,marac_cases,repeat_cases\n# 2025-04,41,13\n2025-04,41,13\n")
    report = ingest(data, tmp_path / "store")
    table = pd.read_parquet(tmp_path / "store" / "partner_counts.parquet")
    assert sorted(set(table["route"])) == ["partner_ae_assaults", "partner_marac"]
    assert table.groupby("measure")["value"].sum().to_dict() == {"assault_attendances": 7.0, "marac_cases": 41.0,
                                                                 "repeat_cases": 13.0}
    rejects = pd.read_parquet(tmp_path / "store" / "rejects.parquet")
    assert sorted(rejects["reason"]) == ["comment line", "lsoa code not in any loaded boundary"]
    assert report["reconciled"]
