"""`svrisk keys`, `svrisk serve --data` and the option checks the CLI shares with the API's jobs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.months import month
from service.cli import app
from service.inputs import check_cutoff, check_units
from service.settings import get_settings


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("SVRISK_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("SVRISK_SERVICE__KEYS_FILE", str(tmp_path / "keys.json"))
    return tmp_path


def test_month_is_strict_about_trailing_newlines():
    assert month("2018-07") == month(pd.Timestamp("2018-07-19"))
    for bad in ("2018-07\n", " 2018-07", "2018-7", "2018/07", "2018-07/../x"):
        with pytest.raises(ValueError, match="not a month"):
            month(bad)


def test_units_names_and_grid_limits():
    s = get_settings()
    assert check_units("grid250", s) == "grid250" and check_units("ward2022", s) == "ward2022"
    with pytest.raises(ValueError, match="no finer than 50 m"):
        check_units("grid1", s)
    with pytest.raises(ValueError, match="not a unit set name"):
        check_units("grid250/../../x", s)
    assert check_cutoff("2018-07") == "2018-07"


def test_cli_refuses_what_the_api_refuses(env):
    r = CliRunner().invoke(app, ["train", "--units", "grid1"])
    assert r.exit_code == 2 and "1 m cells" in r.output
    r = CliRunner().invoke(app, ["rank", "--cutoff", "2018-07\n", "--model", "v0001"])
    assert r.exit_code == 2 and "not a month" in r.output


def test_keys_have_scopes_and_expiry(env):
    r = CliRunner().invoke(app, ["keys", "create", "scheduler", "--role", "analyst", "--scope", "read",
                                 "--scope", "rank", "--days", "30"])
    assert r.exit_code == 0, r.output
    key = r.output.strip()
    assert key.startswith("svk_")
    listed = CliRunner().invoke(app, ["keys", "list"]).output
    assert "scopes=read,rank" in listed and "expires=20" in listed
    assert key.split("_", 2)[2] not in (env / "keys.json").read_text()
    stored = json.loads((env / "keys.json").read_text())["keys"][0]
    assert stored["scopes"] == ["read", "rank"] and stored["expires"] > stored["created"]
    r = CliRunner().invoke(app, ["keys", "create", "x", "--role", "viewer", "--scope", "rank"])
    assert r.exit_code == 2 and "not open to the 'viewer' role" in r.output
    r = CliRunner().invoke(app, ["keys", "create", "x", "--expires", "2001-01-01"])
    assert r.exit_code == 2 and "not in the future" in r.output


def test_serve_needs_an_existing_data_folder(env):
    r = CliRunner().invoke(app, ["serve", "--data", str(env / "missing")])
    assert r.exit_code == 2 and "no such folder" in r.output
