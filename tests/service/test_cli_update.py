"""`svrisk update` through the CLI: what it prints, its exit codes, and a killed update that leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from publishers import folder, publish_ward, serve, ward_release
from typer.testing import CliRunner

from service.cli import app
from sources.catalogue import MANIFEST_NAME
from sources.fingerprint import data_files, fingerprint
from sources.update import PART_SUFFIX

runner = CliRunner()
NAME = "MPS Ward Level Crime (most recent 24 months).csv"


def env_for(pubs, tmp_path) -> dict:
    return {"SVRISK_CONFIG": str(tmp_path / "none.toml"), "SVRISK_OUT_DIR": str(tmp_path / "out"),
            "SVRISK_UPDATE__LONDON_DATASTORE_URL": f"{pubs.base}/ckan",
            "SVRISK_UPDATE__POLICE_UK_URL": f"{pubs.base}/police",
            "SVRISK_UPDATE__BACKOFF_S": "0.01", "SVRISK_UPDATE__RETRIES": "2", "SVRISK_UPDATE__TIMEOUT_S": "5"}


def test_update_places_the_new_release_and_says_so(tmp_path):
    data = folder(tmp_path)
    with serve() as pubs:
        publish_ward(pubs, ward_release(["2024-01", "2024-02"]), "2024-03-18T09:00:00")
        result = runner.invoke(app, ["update", "--data", str(data)], env=env_for(pubs, tmp_path))
        again = runner.invoke(app, ["update", "--data", str(data)], env=env_for(pubs, tmp_path))
    assert result.exit_code == 0, result.output
    assert "placed crime/met-ward/MPS Ward Level Crime (most recent 24 months) 2024-03-18.csv" in result.output
    assert "8 of 8 rows valid" in result.output and "1 file(s) placed" in result.output
    assert again.exit_code == 0 and "nothing new for Met ward crime" in again.output
    assert "the folder is unchanged" in again.output
    # the download cache lives under the output folder, never in the data folder
    assert (tmp_path / "out" / "update-cache").is_dir()


def test_a_failing_source_is_one_line_naming_it_and_exit_2(tmp_path):
    data = folder(tmp_path)
    before = fingerprint(data)
    with serve() as pubs:
        publish_ward(pubs, b"Borough,Budget\nX,1\n", "2024-03-18T09:00:00")
        result = runner.invoke(app, ["update", "--data", str(data)], env=env_for(pubs, tmp_path))
    assert result.exit_code == 2
    [error] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert error.startswith("error: Met ward crime: ") and "no loader recognises it" in error
    assert "Traceback" not in result.output
    assert fingerprint(data) == before


def test_offline_prints_what_it_would_fetch(tmp_path):
    data = folder(tmp_path)
    with serve() as pubs:
        result = runner.invoke(app, ["update", "--data", str(data), "--offline"], env=env_for(pubs, tmp_path))
        assert pubs.log == []
    assert result.exit_code == 0, result.output
    assert result.output.startswith("would fetch for Met ward crime (london-datastore, into ")


def test_the_demo_borough_has_nothing_to_update(tmp_path):
    with serve() as pubs:
        result = runner.invoke(app, ["update"], env=env_for(pubs, tmp_path))
    assert result.exit_code == 2 and "needs a data folder" in result.output


def test_a_killed_update_leaves_no_partial_file_and_the_next_one_resumes(tmp_path):
    data = folder(tmp_path)
    before = fingerprint(data)
    body = ward_release([f"{y}-{m:02d}" for y in (2022, 2023) for m in range(1, 13)])
    with serve() as pubs:
        publish_ward(pubs, body, "2024-01-18T09:00:00")
        pubs.stall.add(NAME)  # sends half the file, then hangs
        env = {**os.environ, **env_for(pubs, tmp_path)}
        child = subprocess.Popen([sys.executable, "-c", "from service.cli import main; main()", "update", "--data",
                                  str(data)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not pubs.requests_to(f"/files/{NAME}") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let it write what it has received
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert pubs.requests_to(f"/files/{NAME}"), "the update never asked for the file"
        assert fingerprint(data) == before  # nothing landed, not even hidden: the download was outside
        assert not [p for p in data.rglob("*") if p.name.endswith((PART_SUFFIX, ".part"))]
        partial = list((tmp_path / "out" / "update-cache").rglob("*.part"))
        assert len(partial) == 1
        held = partial[0].stat().st_size
        assert 0 < held < len(body)
        pubs.stall.clear()
        result = runner.invoke(app, ["update", "--data", str(data)], env=env_for(pubs, tmp_path))
        ranges = [r["range"] for r in pubs.requests_to(f"/files/{NAME}")]
    assert result.exit_code == 0, result.output
    assert ranges == [None, f"bytes={held}-"]  # resumed where the killed one stopped
    placed = [p for p in data_files(data) if p.parent.name == "met-ward"]
    assert [p.read_bytes() for p in placed] == [body] and (data / MANIFEST_NAME).is_file()
