"""End to end on the real data: `svrisk update --run` fetches the newest LSOA release the folder lacks and re-runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from publishers import catalogue_from_discovery, serve
from typer.testing import CliRunner

from service.cli import app
from sources.catalogue import MANIFEST_NAME
from sources.fingerprint import sha256

OLDER = "crime/barnet_mps_lsoa_crime_monthly_202308_202507.csv"
NEWEST = "crime/barnet_mps_lsoa_crime_monthly_202403_202602.csv"
PUBLISHED = "MPS LSOA Level Crime (most recent 24 months).csv"


@pytest.mark.realdata
@pytest.mark.slow
def test_update_run_fetches_the_missing_lsoa_release_places_it_and_runs(real_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(real_data, data, copy_function=shutil.copyfile)
    body = (data / NEWEST).read_bytes()
    (data / NEWEST).unlink()  # the folder lacks the newest release
    (data / "crime" / "met-lsoa").mkdir()
    (data / OLDER).rename(data / "crime" / "met-lsoa" / Path(OLDER).name)
    (data / "catalogue.toml").write_text(catalogue_from_discovery(data, {
        f"crime/met-lsoa/{Path(OLDER).name}": {"name": "Met LSOA crime", "path": "crime/met-lsoa",
                                                "update": "london-datastore", "dataset": "recorded_crime_summary",
                                                "resource_pattern": "LSOA Level Crime .most recent"}}))
    with serve() as pubs:
        pubs.files[PUBLISHED] = body
        pubs.files["MPS Ward Level Crime (most recent 24 months).csv"] = b"WardCode\n"
        pubs.package("recorded_crime_summary", [
            pubs.resource("MPS Ward Level Crime (most recent 24 months).csv", "2026-03-18T08:00:00"),
            pubs.resource(PUBLISHED, "2026-03-18T08:00:00")])
        env = {"SVRISK_CONFIG": str(tmp_path / "none.toml"), "SVRISK_OUT_DIR": str(tmp_path / "out"),
               "SVRISK_UPDATE__LONDON_DATASTORE_URL": f"{pubs.base}/ckan", "SVRISK_MAP__PDF": "false",
               "SVRISK_UPDATE__POLICE_UK_URL": f"{pubs.base}/police"}
        result = CliRunner().invoke(app, ["update", "--data", str(data), "--run"], env=env)
        assert [r["path"] for r in pubs.requests_to("/files/")] == [f"/files/{PUBLISHED}"]  # only the LSOA table
    assert result.exit_code == 0, result.output
    placed = data / "crime" / "met-lsoa" / "MPS LSOA Level Crime (most recent 24 months) 2026-03-18.csv"
    assert placed.read_bytes() == body
    [entry] = json.loads((data / MANIFEST_NAME).read_text())["files"]
    assert entry["sha256"] == sha256(placed) and entry["kind"] == "met_lsoa_monthly"
    assert entry["rows_accepted"] > 100_000  # 4,474 LSOA-category lines x 24 months
    [run_dir] = [p for p in (tmp_path / "out" / "runs").iterdir() if (p / "run.json").is_file()]
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["data"]["inputs"][str(placed)] == entry["sha256"]  # the run read the placed release
    assert f"run written to {run_dir}" in result.output


@pytest.mark.realdata
def test_a_real_police_uk_month_for_barnet_is_split_and_placed_whole(real_data, tmp_path):
    import pandas as pd
    from publishers import crime_record

    from sources.update import Endpoints, update_folder

    data = tmp_path / "data"
    (data / "boundaries").mkdir(parents=True)
    shutil.copyfile(real_data / "boundaries" / "barnet_borough.gpkg", data / "boundaries" / "borough.gpkg")
    (data / "catalogue.toml").write_text(
        '[[source]]\nkind = "boundary_borough"\npath = "boundaries/borough.gpkg"\n\n[[source]]\nname = "police.uk"\n'
        'kind = "policeuk_api"\npath = "crime/api"\nupdate = "police-uk-api"\npolygon = "boundaries/borough.gpkg"\n')
    api = pd.read_csv(real_data / "crime" / "barnet_policeuk_api_street_crimes_2024-04.csv", dtype=str)
    with serve() as pubs:  # every record of the month lies in Barnet (see MANIFEST.md)
        pubs.months, pubs.max_per_polygon = ["2024-03", "2024-04"], 1_000
        pubs.crimes = [crime_record(int(r.id), r.month, float(r.longitude), float(r.latitude), r.category)
                       for r in api.itertuples()]
        report = update_folder(data, tmp_path / "cache", endpoints=Endpoints(f"{pubs.base}/ckan", f"{pubs.base}/police"))
        asks = pubs.requests_to("/police/crimes-street/all-crime")
    [entry] = report["placed"]
    assert entry["release"] == {"month": "2024-04", "records": len(api)}  # the newest month only, every record once
    assert len(asks) > 3  # 2,784 crimes over a 1,000 limit: the borough was split
    assert all(len(a["query"]["poly"].split(":")) <= 100 for a in asks)
    from sources.ingest import ingest

    store = ingest(data, tmp_path / "store")
    [item] = [i for i in store["inputs"] if i["kind"] == "policeuk_api"]
    assert item["rows_read"] == len(api) and item["accepted"] > 0.95 * len(api)
