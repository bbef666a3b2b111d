"""Shared fixtures: where the real data lives, and a store built from it once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from intervention_demo import planted_demo as _planted_demo
from run_folder import make_run_dir


def real_data_dir() -> Path:
    """SVRISK_REAL_DATA, else ../shared/data beside the repository."""
    configured = os.environ.get("SVRISK_REAL_DATA")
    return Path(configured) if configured else Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = real_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder not found at {path}; set SVRISK_REAL_DATA to run this test")
    return path


@pytest.fixture(scope="session")
def real_store(real_data, tmp_path_factory) -> Path:
    from features.sources.ingest import ingest

    out = tmp_path_factory.mktemp("real") / "store"
    ingest(real_data, out)
    return out


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
