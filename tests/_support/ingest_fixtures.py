"""Small hand-made inputs for ingest tests: two 1 km LSOA squares and police.uk CSV rows."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
from pyproj import Transformer
from shapely.geometry import box

STREET_HEADER = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
                 "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context"]
TO_WGS = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)
# Two LSOAs side by side: E01900001 covers x 530000-531000, E01900002 covers 531000-532000; y 180000-181000.
LSOAS = {"E01900001": box(530000, 180000, 531000, 181000), "E01900002": box(531000, 180000, 532000, 181000)}


def write_boundaries(folder: Path, crs: str = "EPSG:27700", edition_col: str = "LSOA11CD") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    gdf = gpd.GeoDataFrame({edition_col: list(LSOAS), "LSOA11NM": ["Fixture 001A", "Fixture 001B"]},
                           geometry=list(LSOAS.values()), crs="EPSG:27700")
    path = folder / "lsoa2011.gpkg"
    if crs != "EPSG:27700":
        gdf = gdf.set_crs(crs, allow_override=True)  # deliberately wrong label
    gdf.to_file(path, driver="GPKG")
    return path


def lonlat(x: float, y: float) -> tuple[str, str]:
    lon, lat = TO_WGS.transform(x, y)
    return f"{lon:.6f}", f"{lat:.6f}"


def street_row(crime_id: str, month: str, x: float, y: float, crime_type="Violence and sexual offences",
               lsoa="E01900001") -> list[str]:
    lon, lat = lonlat(x, y)
    return [crime_id, month, "Fixture Police", "Fixture Police", lon, lat, "On or near Fixture Street", lsoa,
            "Fixture 001A", crime_type, "Under investigation", ""]


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


API_HEADER = ["id", "persistent_id", "month", "category", "latitude", "longitude", "street_name", "outcome_category"]


def api_row(rid: str, pid: str, month: str, category: str, x: float, y: float) -> list[str]:
    lon, lat = lonlat(x, y)
    return [rid, pid, month, category, lat, lon, "On or near Fixture Street", ""]


def csv_text(header: list[str], rows: list[list[str]], delimiter: str = ",", newline: str = "\n") -> str:
    """A CSV document as text (csv module quoting), with the given delimiter and line ending."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def fixture_folder(root: Path) -> Path:
    """A data folder with the two-LSOA boundary and nothing else yet."""
    data = root / "data"
    write_boundaries(data / "boundaries")
    return data


def read_report(store: Path) -> dict | None:
    path = store / "ingest_report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def assert_accounted(report: dict, data: Path, store: Path) -> None:
    """Every file under ``data`` is in the report once, counts reconcile per input and with rejects.parquet."""
    import pandas as pd

    found = {str(p.relative_to(data)) for p in data.rglob("*") if p.is_file() and not p.name.startswith(".")
             and not any(part.startswith(".") for part in p.relative_to(data).parts)}
    listed = [f["path"] for f in report["files"]]
    assert len(listed) == len(set(listed)), listed
    assert found <= set(listed), sorted(found - set(listed))
    for f in report["files"]:
        assert f["status"] in ("ingested", "unrecognised", "damaged"), f
        if f["status"] != "ingested":
            assert f["why"], f
    for item in report["inputs"]:
        assert item["rows_read"] == item["accepted"] + item["rejected"], item["source"]
        assert sum(item["rejected_by_reason"].values()) == item["rejected"], item["source"]
    assert report["reconciled"] is True
    rejects = pd.read_parquet(store / "rejects.parquet")
    assert len(rejects) == report["totals"]["rejected"]


def run_cli_without_root_override(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``svrisk ARGS`` in a new process that file permissions apply to.

    Root ignores permission bits (capabilities DAC_OVERRIDE and DAC_READ_SEARCH), so a
    test running as root drops those two from the child's bounding set with ``setpriv``;
    anyone else just runs the command.
    """
    cmd = [sys.executable, "-c", "from service.cli import main; main()", *args]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def ingest_cli(data: Path, store: Path, *extra: str, env: dict | None = None):
    """(exit code, error lines, report or None) of `svrisk ingest`; fails on any traceback."""
    from typer.testing import CliRunner

    from service.cli import app

    result = CliRunner().invoke(app, ["ingest", "--data", str(data), "--out", str(store), *extra], env=env)
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    if result.exit_code:
        assert len(errors) == 1, result.output  # one line, whatever went wrong
    return result.exit_code, (errors[0] if errors else ""), read_report(store), result.output


def street_rows(n: int, month: str = "2017-01", seed: int = 1) -> list[list[str]]:
    rng = random.Random(seed)
    return [street_row(f"{rng.getrandbits(256):064x}", month, 530050 + rng.random() * 1900,
                       180050 + rng.random() * 900, rng.choice(["Violence and sexual offences", "Robbery",
                                                                "Burglary", "Public order"]))
            for _ in range(n)]
