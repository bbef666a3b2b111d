"""Fixtures for the API tests: a TestClient over two hand-made runs (see ``run_folder``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_folder import make_run_dir


@pytest.fixture(scope="module")
def api_runs_dir(tmp_path_factory) -> Path:
    """Like ``runs_dir`` but shared by a test module (outputs take a second or two to write)."""
    runs = tmp_path_factory.mktemp("api") / "out" / "runs"
    make_run_dir(runs, "run-2023-12", created="2023-12-05T09:00:00+00:00", previous=False)
    make_run_dir(runs, "run-2024-01", created="2024-01-05T09:00:00+00:00")
    return runs


@pytest.fixture(scope="module")
def api_settings(api_runs_dir):
    """Settings over ``api_runs_dir``'s ``out`` folder, keys file inside it, page size 20."""
    from service.settings import get_settings

    out = api_runs_dir.parent
    return get_settings(out_dir=out, service={"keys_file": out / "api_keys.json", "max_page_size": 20})


@pytest.fixture(scope="module")
def api_keys(api_settings) -> dict[str, str]:
    """Plain keys by role: ``viewer``, ``analyst`` and a ``revoked`` viewer key."""
    from service.keys import KeyStore

    store = KeyStore(api_settings.service.keys_file)
    keys = {"viewer": store.create("test viewer", "viewer"),
            "analyst": store.create("test analyst", "analyst"),
            "revoked": store.create("old laptop", "viewer")}
    store.revoke(keys["revoked"].split("_")[1])
    return keys


@pytest.fixture(scope="module")
def job_calls() -> list:
    """Records the calls of the injected job callables."""
    return []


@pytest.fixture(scope="module")
def client(api_settings, api_keys, job_calls):
    """A TestClient over the two-run folder, with outputs written for the latest run."""
    from fastapi.testclient import TestClient

    from reports.outputs import write_outputs
    from service.api import create_app

    write_outputs(api_settings.runs_dir / "run-2024-01")

    def rank(params):
        job_calls.append(("rank", params))
        return {"ranked": True}

    def train(params):
        raise RuntimeError("no training data")

    app = create_app(api_settings, jobs={"rank": rank, "train": train})
    with TestClient(app) as c:
        yield c
