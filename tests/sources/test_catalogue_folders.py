"""A catalogue source whose path is a folder: one source per release of its kind; the rest accounted for."""

from __future__ import annotations

from publishers import ward_release

from sources.catalogue import MANIFEST_NAME, load_catalogue

CATALOGUE = """
[[source]]
name = "Met ward crime"
kind = "met_ward_monthly"
path = "ward"
{extra}
"""


def test_a_folder_source_reads_each_release_of_its_kind_and_names_the_stranger(tmp_path):
    (tmp_path / "ward").mkdir()
    (tmp_path / "ward" / "a.csv").write_bytes(ward_release(["2024-01"]))
    (tmp_path / "ward" / "b.csv").write_bytes(ward_release(["2024-02"]))
    (tmp_path / "ward" / "other.csv").write_text("Crime ID,Month,LSOA code,Crime type\nx,2024-01,E01000001,Robbery\n")
    (tmp_path / MANIFEST_NAME).write_text('{"files": []}')
    (tmp_path / "catalogue.toml").write_text(CATALOGUE.format(extra=""))
    cat = load_catalogue(tmp_path)
    assert [(s.name, s.path.name) for s in cat.sources] == [("Met ward crime (a.csv)", "a.csv"),
                                                            ("Met ward crime (b.csv)", "b.csv")]
    assert cat.files["ward/a.csv"] == {"status": "source", "source": "Met ward crime (a.csv)"}
    assert "its columns are crime_records_by_lsoa" in cat.files["ward/other.csv"]["why"]
    assert "update's record" in cat.files[MANIFEST_NAME]["why"]


def test_an_updatable_source_with_no_folder_yet_gives_no_source(tmp_path):
    (tmp_path / "catalogue.toml").write_text(CATALOGUE.format(extra='update = "london-datastore"\ndataset = "d"')
                                             + '\n[[source]]\nkind = "imd"\npath = "imd.csv"\n')
    assert [s.kind for s in load_catalogue(tmp_path).sources] == ["imd"]
