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
