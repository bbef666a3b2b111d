"""Fixtures for the API tests: a TestClient over two hand-made runs (see ``run_folder``).

They are made once per session (writing a run's map and briefing takes seconds); a test
that changes what is published or which keys exist uses its own folder instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from run_folder import make_run_dir


@pytest.fixture(scope="session")
def api_runs_dir(tmp_path_factory) -> Path:
    """Like ``runs_dir`` but shared by the session, with outputs written for ``run-2024-01``."""
    from reports.outputs import write_outputs

    runs = tmp_path_factory.mktemp("api") / "out" / "runs"
    make_run_dir(runs, "run-2023-12", created="2023-12-05T09:00:00+00:00", previous=False)
    make_run_dir(runs, "run-2024-01", created="2024-01-05T09:00:00+00:00")
    write_outputs(runs / "run-2024-01")
    return runs


BASE = "https://testserver"


@pytest.fixture(scope="session")
def api_settings(api_runs_dir):
    """Settings over ``api_runs_dir``'s ``out`` folder, keys file inside it, page size 20,
    public URL ``https://testserver`` (the TestClient's), ``run-2024-01`` published."""
    from service.publish import publish
    from service.settings import get_settings

    out = api_runs_dir.parent
    publish(api_runs_dir, "run-2024-01")
    return get_settings(out_dir=out, service={"keys_file": out / "api_keys.json", "max_page_size": 20,
                                              "public_url": BASE})


@pytest.fixture(scope="session")
def api_keys(api_settings) -> dict[str, str]:
    """Plain keys: ``viewer``, ``analyst``, a ``revoked`` viewer key and a ``ranker`` (analyst
    limited to the ``read`` and ``rank`` scopes)."""
    from service.keys import KeyStore

    store = KeyStore(api_settings.service.keys_file)
    keys = {"viewer": store.create("test viewer", "viewer"),
            "analyst": store.create("test analyst", "analyst"),
            "revoked": store.create("old laptop", "viewer"),
            "ranker": store.create("scheduler", "analyst", scopes=["read", "rank"])}
    store.revoke(keys["revoked"].split("_")[1])
    return keys


@pytest.fixture(scope="session")
def job_calls() -> list:
    """Records the calls of the injected job callables."""
    return []


@pytest.fixture(scope="session")
def client(api_settings, api_keys, job_calls):
    """A TestClient over the two-run folder, with outputs written for the latest run."""
    from fastapi.testclient import TestClient

    from service.api import create_app

    def rank(params):
        job_calls.append(("rank", params))
        return {"ranked": True}

    def train(params):
        raise RuntimeError("no training data")

    app = create_app(api_settings, jobs={"rank": rank, "train": train})
    with TestClient(app, base_url=BASE) as c:
        yield c
