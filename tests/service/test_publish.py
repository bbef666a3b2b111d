"""Published runs: written whole or not at all, published on purpose, never replaced by a demo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from fastapi.testclient import TestClient
from run_folder import make_run_dir

from service.publish import PARTIAL, auto_publish, complete_run, publish, published, stage_run


def fill(folder, run_id, *, demo=False):
    """Write a hand-made run's files into a staged folder under ``run_id``."""
    src = make_run_dir(folder.parent.parent / "scratch", "src")
    for f in src.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    meta = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**meta, "run_id": run_id, "demo": demo}))


def finish(runs, run_id, *, demo=False):
    """Stage a run, write it and complete it, as make_run does."""
    rid, folder = stage_run(runs, run_id)
    fill(folder, rid, demo=demo)
    return complete_run(folder, demo=demo)


def test_two_runs_with_the_same_name_get_different_ids(tmp_path):
    runs = tmp_path / "runs"
    a, fa = stage_run(runs, "20240105T090000-grid250-2024-01")
    b, fb = stage_run(runs, "20240105T090000-grid250-2024-01")
    assert (a, b) == ("20240105T090000-grid250-2024-01", "20240105T090000-grid250-2024-01-2")
    assert fa.name == f"{PARTIAL}{a}" and fb.name == f"{PARTIAL}{b}"
    with pytest.raises(ValueError, match="not a valid run id"):
        stage_run(runs, "2024\n-x")


def test_a_run_appears_only_when_complete_and_the_first_publishes_itself(tmp_path):
    from service.api.repository import RunRepository

    runs = tmp_path / "runs"
    repo = RunRepository(runs)
    rid, folder = stage_run(runs, "r1")
    fill(folder, rid)
    assert repo.list() == [] and published(runs) is None  # every file written, not yet visible
    final = complete_run(folder)
    assert final == runs / "r1" and not folder.exists()
    assert [m["run_id"] for m in repo.list()] == ["r1"]
    assert published(runs)["run_id"] == "r1"


def test_demo_runs_never_publish_over_a_real_run(tmp_path):
    runs = tmp_path / "runs"
    finish(runs, "demo-1", demo=True)
    assert published(runs)["run_id"] == "demo-1"  # nothing was published: the demo may show
    finish(runs, "real-1")
    assert published(runs)["run_id"] == "real-1"  # a real run replaces a demo
    finish(runs, "demo-2", demo=True)
    finish(runs, "real-2")
    assert published(runs)["run_id"] == "real-1"  # neither replaces a real run by itself
    assert publish(runs, "real-2", by="k1")["by"] == "k1"
    assert published(runs)["run_id"] == "real-2"
    with pytest.raises(ValueError, match="no complete run"):
        publish(runs, f"{PARTIAL}x")
    assert auto_publish(runs, "demo-2", demo=True) is None


@pytest.fixture
def own_client(tmp_path, api_keys, api_settings):
    """A service over its own runs folder (tests here change what is published)."""
    from service.api import create_app

    runs = tmp_path / "out" / "runs"
    make_run_dir(runs, "run-a", created="2024-01-05T09:00:00+00:00")
    make_run_dir(runs, "run-b", created="2024-02-05T09:00:00+00:00")
    publish(runs, "run-a")
    settings = api_settings.model_copy(update={"out_dir": tmp_path / "out"})
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        yield c, runs


def test_analysts_publish_through_the_api(own_client, api_keys):
    c, runs = own_client
    viewer, analyst = {"X-API-Key": api_keys["viewer"]}, {"X-API-Key": api_keys["analyst"]}
    # the newest run is run-b, but GIS sees the published run-a
    assert "run-a" in c.get("/ogc/collections", headers=viewer).json()["collections"][0]["description"]
    assert c.post("/runs/run-b/publish", headers=viewer).status_code == 403
    r = c.post("/runs/run-b/publish", headers=analyst)
    assert r.status_code == 200 and r.json()["run_id"] == "run-b"
    assert "run-b" in c.get("/ogc/collections", headers=viewer).json()["collections"][0]["description"]
    assert c.get("/runs", headers=viewer).json()["published"] == "run-b"
    assert c.post("/runs/nope/publish", headers=analyst).status_code == 404


CHILD = textwrap.dedent("""
    import shutil, sys, time
    from pathlib import Path
    from service.publish import stage_run
    runs, source = Path(sys.argv[1]), Path(sys.argv[2])
    rid, folder = stage_run(runs, "20240301T090000-grid250-2024-03")
    for name in ("run.json", "ranking.parquet", "hotspots.parquet"):
        shutil.copy(source / name, folder / name)
    (folder / "areas.parquet").write_bytes((source / "areas.parquet").read_bytes()[:100])  # half-written
    print("staged", flush=True)
    time.sleep(60)
""")


def test_a_killed_rank_leaves_the_published_run_served_and_no_500(own_client, api_keys):
    c, runs = own_client
    viewer = {"X-API-Key": api_keys["viewer"]}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(runs), str(runs / "run-a")],
                            stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stdout.readline().strip() == "staged"
        os.kill(proc.pid, signal.SIGKILL)  # killed half-way through writing its tables
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert any(p.name.startswith(PARTIAL) for p in runs.iterdir())
    paths = ["/health", "/runs", "/runs/latest", "/runs/published", "/ogc", "/ogc/collections",
             "/ogc/collections/ranked_units/items?limit=5", "/map", "/briefing",
             "/runs/latest/ranking", "/ogc/runs/latest/collections"]
    codes = {p: c.get(p, headers=viewer).status_code for p in paths}
    assert all(code < 500 for code in codes.values()), codes
    assert codes["/ogc/collections"] == 200 and codes["/runs"] == 200
    assert [r["run_id"] for r in c.get("/runs", headers=viewer).json()["runs"]] == ["run-b", "run-a"]
    assert "run-a" in c.get("/ogc/collections", headers=viewer).json()["collections"][0]["description"]


def test_damaged_and_vanished_runs_are_503_not_500(own_client, api_keys):
    c, runs = own_client
    viewer = {"X-API-Key": api_keys["viewer"]}
    (runs / "run-b" / "ranking.parquet").write_bytes(b"PAR1 not really")
    r = c.get("/runs/run-b/ranking", headers=viewer)
    assert r.status_code == 503 and "damaged" in r.json()["detail"]
    assert str(runs) not in r.text
    # the published run removed from disk under a running server
    for f in (runs / "run-a").iterdir():
        f.unlink()
    (runs / "run-a").rmdir()
    r = c.get("/ogc/collections", headers=viewer)
    assert r.status_code == 503 and "run-a" in r.json()["detail"]


def test_the_run_cache_is_bounded(tmp_path):
    from service.api.repository import RunRepository

    runs = tmp_path / "runs"
    for i in range(3):
        make_run_dir(runs, f"run-{i}")
    repo = RunRepository(runs, cache_size=2)
    for i in range(3):
        repo.get(f"run-{i}")
    assert repo.cached_ids() == ["run-1", "run-2"]
    repo.get("run-1")
    assert repo.cached_ids() == ["run-2", "run-1"]


def test_run_metadata_shows_no_server_settings(client, api_keys):
    meta = client.get("/runs/run-2024-01", headers={"X-API-Key": api_keys["viewer"]}).json()
    assert "settings" not in meta and meta["published"] is True
    assert "keys_file" not in json.dumps(meta)


def test_publish_from_the_command_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from service.cli import app

    runs = tmp_path / "out" / "runs"
    make_run_dir(runs, "run-a")
    monkeypatch.setenv("SVRISK_OUT_DIR", str(tmp_path / "out"))
    r = CliRunner().invoke(app, ["publish", "run-a"])
    assert r.exit_code == 0 and "published run-a" in r.output
    assert published(runs)["by"] == "cli"
    r = CliRunner().invoke(app, ["publish", "nope"])
    assert r.exit_code == 2 and "no complete run 'nope'" in r.output


def test_run_metadata_names_inputs_but_no_server_folders():
    from service.api.runs import public_meta

    meta = {"run_id": "r", "settings": {"units": {}}, "data": {
        "data_dir": "/srv/partnership/data", "store": "/srv/svrisk/out/stores/data-1a2b",
        "ingested": "2026-12-01T08:00:00+00:00",
        "inputs": {"/srv/partnership/data/crime/2024-01-street.csv": "ab" * 32,
                   "/elsewhere/boundaries.zip!lsoa.shp": "cd" * 32}},
            "quality_flags": [{"message": "/srv/partnership/data/crime/x.csv: 7 releases overlap"}]}
    shown = public_meta(meta)
    assert shown["quality_flags"][0]["message"] == "crime/x.csv: 7 releases overlap"
    assert "settings" not in shown and "/srv" not in json.dumps(shown)
    assert shown["data"]["inputs"] == {"crime/2024-01-street.csv": "ab" * 32, "boundaries.zip": "cd" * 32}
