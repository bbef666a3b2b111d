"""Shared fixtures: where the real data lives, and a store built from it once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
    from features.ingest import ingest

    out = tmp_path_factory.mktemp("real") / "store"
    ingest(real_data, out)
    return out
