"""`svrisk update --run` end to end: the next Met LSOA release is fetched, placed beside the first, the
service re-runs, and the ledger scores the earlier run's forecast against the release just fetched."""

from __future__ import annotations

import io
import json

import geopandas as gpd
import pandas as pd
import pytest
from publishers import serve
from shapely.geometry import box
from typer.testing import CliRunner

from service.cli import app
from sources.catalogue import MANIFEST_NAME

runner = CliRunner()
CODES = [f"E0190{i:04d}" for i in range(9)]
CATALOGUE = """
[[source]]
name = "LSOA 2021"
kind = "boundary_lsoa2021"
path = "boundaries/lsoa2021.gpkg"

[[source]]
name = "Met LSOA crime"
kind = "met_lsoa_monthly"
path = "crime/met-lsoa"
update = "london-datastore"
dataset = "recorded_crime_summary"
resource_pattern = "LSOA Level Crime"
"""


def violence(i: int, m: int) -> int:
    """Violence in LSOA ``i`` in month ``m`` (0 = 2023-01): distinct levels and a little wobble."""
    return 2 + 3 * i + (m * (i + 1)) % 4


def release(first: str, last: str) -> bytes:
    """The Met's LSOA table in the London Datastore wide layout, for nine fixture LSOAs."""
    months = pd.date_range(first + "-01", last + "-01", freq="MS")
    frame = pd.DataFrame([[code, "Fixture", "E09000099", "VIOLENCE AGAINST THE PERSON", "VIOLENCE WITH INJURY",
                           *[violence(i, (m.year - 2023) * 12 + m.month - 1) for m in months]]
                          for i, code in enumerate(CODES)],
                         columns=["LSOA Code", "LSOA Name", "Borough", "Major Category", "Minor Category",
                                  *[f"{m:%Y%m}" for m in months]])
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


@pytest.mark.slow
def test_update_run_places_the_next_release_and_the_ledger_scores_the_earlier_forecast(tmp_path):
    data = tmp_path / "data"
    (data / "boundaries").mkdir(parents=True)
    cells = [box(530000 + 500 * (i % 3), 180000 + 500 * (i // 3), 530500 + 500 * (i % 3), 180500 + 500 * (i // 3))
             for i in range(9)]
    gpd.GeoDataFrame({"LSOA21CD": CODES, "LSOA21NM": CODES}, geometry=cells, crs="EPSG:27700") \
        .to_file(data / "boundaries" / "lsoa2021.gpkg")
    (data / "crime" / "met-lsoa").mkdir(parents=True)
    (data / "crime" / "met-lsoa" / "MPS LSOA Level Crime 2024-07-18.csv").write_bytes(release("2022-01", "2024-06"))
    (data / "catalogue.toml").write_text(CATALOGUE)
    with serve() as pubs:
        env = {"SVRISK_CONFIG": str(tmp_path / "none.toml"), "SVRISK_OUT_DIR": str(tmp_path / "out"),
               "SVRISK_MODEL__PERMUTATIONS": "99", "SVRISK_MAP__PDF": "false", "SVRISK_UNITS__DEFAULT": "lsoa2021",
               "SVRISK_UPDATE__LONDON_DATASTORE_URL": f"{pubs.base}/ckan"}
        first = runner.invoke(app, ["run", "--data", str(data)], env=env)
        assert first.exit_code == 0, first.output
        name = "MPS LSOA Level Crime (most recent 24 months).csv"
        pubs.files[name] = release("2023-08", "2024-07")  # the next release: the truth for 2024-07
        pubs.package("recorded_crime_summary", [pubs.resource(name, "2024-08-18T08:00:00")])
        result = runner.invoke(app, ["update", "--data", str(data), "--run"], env=env)
    assert result.exit_code == 0, result.output
    placed = data / "crime" / "met-lsoa" / "MPS LSOA Level Crime (most recent 24 months) 2024-08-18.csv"
    assert placed.is_file() and (data / "crime" / "met-lsoa" / "MPS LSOA Level Crime 2024-07-18.csv").is_file()
    [entry] = json.loads((data / MANIFEST_NAME).read_text())["files"]
    assert entry["file"] == "crime/met-lsoa/" + placed.name and entry["kind"] == "met_lsoa_monthly"
    runs = sorted(p for p in (tmp_path / "out" / "runs").iterdir() if (p / "run.json").is_file())
    assert len(runs) == 2
    earlier, rerun = (json.loads((r / "run.json").read_text()) for r in runs)
    assert earlier["cutoff"] == "2024-07" and rerun["cutoff"] == "2024-08"
    [scored] = [r for r in rerun["ledger"]["recent"] if r["horizon"] == 1]
    assert scored["cutoff"] == "2024-07"
    assert scored["events"] == sum(violence(i, 18) for i in range(9))  # 2024-07 from the fetched release
