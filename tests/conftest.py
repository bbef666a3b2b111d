"""Shared fixtures: where the real data lives, and a store built from it once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from intervention_demo import planted_demo as _planted_demo
from run_folder import make_run_dir


def shared_dir(variable: str, name: str) -> Path:
    """The folder named by the environment ``variable``, else ``../shared/<name>`` beside the repository."""
    configured = os.environ.get(variable)
    return Path(configured) if configured else Path(__file__).resolve().parents[1].parent / "shared" / name


def real_data_dir() -> Path:
    """SVRISK_REAL_DATA, else ../shared/data beside the repository."""
    return shared_dir("SVRISK_REAL_DATA", "data")


def london_data_dir() -> Path:
    """SVRISK_LONDON_DATA, else ../shared/london beside the repository (the comparison folder)."""
    return shared_dir("SVRISK_LONDON_DATA", "london")


def _folder_or_skip(path: Path, what: str, variable: str) -> Path:
    if not path.is_dir():
        pytest.skip(f"{what} not found at {path}; set {variable} to run this test")
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    return _folder_or_skip(real_data_dir(), "real data folder", "SVRISK_REAL_DATA")


@pytest.fixture(scope="session")
def real_store(real_data, tmp_path_factory) -> Path:
    from sources.ingest import ingest

    out = tmp_path_factory.mktemp("real") / "store"
    ingest(real_data, out)
    return out


@pytest.fixture(scope="session")
def london_data() -> Path:
    return _folder_or_skip(london_data_dir(), "comparison folder", "SVRISK_LONDON_DATA")


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """The demo borough (seed 7, 2016-01..2018-12) ingested once per session; its folder holds truth.json."""
    from sources.demo.borough import generate_demo
    from sources.ingest import ingest

    root = tmp_path_factory.mktemp("demo-borough")
    ingest(generate_demo(root / "data"), root / "store")
    return root / "store"


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    """An ``out/runs`` folder with two runs; the later one (``run-2024-01``) is the latest."""
    runs = tmp_path / "out" / "runs"
    make_run_dir(runs, "run-2023-12", created="2023-12-05T09:00:00+00:00", previous=False)
    make_run_dir(runs, "run-2024-01", created="2024-01-05T09:00:00+00:00")
    return runs


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """One complete run folder (see the module docstring for its numbers)."""
    return make_run_dir(tmp_path / "out" / "runs", "run-2024-01")


@pytest.fixture(scope="session")
def make_run():
    """The run-folder factory itself: ``make_run(runs_dir, run_id, police_generated=..., ...)``."""
    return make_run_dir


@pytest.fixture(scope="session")
def planted_demo(tmp_path_factory) -> dict:
    """A small demo borough with a planted intervention, ingested (see ``intervention_demo``)."""
    return _planted_demo(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="session")
def plain_demo(tmp_path_factory) -> dict:
    """The planted demo's borough without the intervention (its counterfactual)."""
    return _planted_demo(tmp_path_factory.mktemp("plain"), planted=False)


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory):
    """Two pipeline runs on the demo borough (seed 7) in one out folder: ``(first, second, truth)``;
    the second ranks with the first's model (v0001). Shared by every test of a whole demo run."""
    import json

    from service.run import make_run
    from service.settings import get_settings
    from sources.demo.borough import generate_demo

    out = tmp_path_factory.mktemp("demo-run")
    data = generate_demo(out / "data", seed=7)
    settings = get_settings(out_dir=out / "out", data_dir=data)
    first = make_run(settings)
    second = make_run(settings, model_version="v0001")
    truth = json.loads((data / "truth.json").read_text())
    return first, second, truth


@pytest.fixture(scope="session")
def demo_assessment(demo_store):
    """The needs assessment of the demo borough (``demo_store``), seed 1."""
    from models.needs.assessment import assess
    from sources.store import Store

    return assess(Store(demo_store), seed=1)


@pytest.fixture(scope="session")
def demo_pack(demo_assessment, tmp_path_factory):
    """The demo's evidence pack folder and files (the PDF where Chromium is installed)."""
    from reports.needs_pack import write_pack
    from reports.pdf import find_browser

    out = tmp_path_factory.mktemp("pack") / "demo-pack"
    paths = write_pack(demo_assessment, out, pdf=find_browser() is not None)
    return out, paths


@pytest.fixture(scope="session")
def real_run(real_data, real_store, tmp_path_factory):
    """One pipeline run on the real data folder (the default units and cutoff), for the session."""
    from service.run import make_run
    from service.settings import get_settings

    out = tmp_path_factory.mktemp("real-run") / "out"
    return make_run(get_settings(out_dir=out, data_dir=real_data), store_dir=real_store)


@pytest.fixture(scope="session")
def real_pack(real_data, real_store, london_data, tmp_path_factory):
    """``svrisk assess`` on the real folder with the London comparison, period to 2026-03: (folder, output)."""
    from typer.testing import CliRunner

    from service.cli import app

    out = tmp_path_factory.mktemp("assess") / "pack"
    mp = pytest.MonkeyPatch()
    mp.setenv("SVRISK_MODEL__PERMUTATIONS", "99")
    mp.setenv("SVRISK_OUT_DIR", str(out.parent / "out"))
    try:
        result = CliRunner().invoke(app, ["assess", "--data", str(real_data), "--store", str(real_store),
                                          "--compare", str(london_data), "--period-end", "2026-03", "--out", str(out)])
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    return out, result.output
