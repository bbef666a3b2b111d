"""A normal (non-editable) install works: the wheel carries its data and finds it without the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import sources.taxonomy as taxonomy, reports.templating as templating
assert taxonomy.__file__.startswith(sys.argv[1]), taxonomy.__file__
assert len(taxonomy.load_taxonomy().table) > 10
env = templating.environment()
assert "<html" in env.loader.get_source(env, "briefing.html.j2")[0]
print(env.loader.list_templates())
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build a wheel here (no network or build backend?): {done.stderr[-500:]}")
    return next(out.glob("svrisk-*.whl"))


def test_the_wheel_holds_the_packages_and_their_data_but_no_tests(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"geo", "sources", "features", "models", "reports", "service",
                                                 "svrisk-0.1.0.dist-info"}
    assert "sources/data/offence_taxonomy.csv" in names
    assert "reports/templates/briefing.html.j2" in names
    assert "service/api/templates/login.html.j2" in names
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/") or "_support" in n]


def test_installed_code_finds_templates_and_taxonomy_inside_the_wheel(wheel, tmp_path):
    done = subprocess.run([sys.executable, "-I", "-c", PROBE, str(wheel)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "briefing.html.j2" in done.stdout
