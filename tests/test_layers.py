"""The one-way house: each top-level package is one stage, and imports only point downstream.

``service -> reports -> models -> features -> geo``: a module may import its own package
and the packages after it in that chain, never one before it. Inside ``features``, the
raw-file stage ``features.sources`` imports nothing of the feature builder that reads
its store. Our own modules are imported at the top of a file (an import inside a
function hides a loop), except where the line says why with ``# import here:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("geo", "features", "models", "reports", "service")
"""Downstream first: a package may import the ones before it in this tuple, and itself."""
EXCUSE = "# import here:"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _own(name: str) -> bool:
    return name.split(".")[0] in LAYERS


def violations(module: str, source: str) -> list[str]:
    """Every import in ``source`` (the text of ``module``) that breaks the house rules."""
    tree = ast.parse(source)
    lines = source.splitlines()
    top = {id(node) for node in tree.body}
    here = module.split(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in filter(_own, names):
            there = name.split(".")[0]
            where = f"{module}:{node.lineno} imports {name}"
            if LAYERS.index(there) > LAYERS.index(here):
                out.append(f"{where}: {here} is upstream of {there}")
            if module.startswith("features.sources") and name.startswith("features.") \
                    and not name.startswith("features.sources"):
                out.append(f"{where}: features.sources is upstream of the rest of features")
            if id(node) not in top and EXCUSE not in lines[node.lineno - 1]:
                out.append(f"{where} inside a function (say why with '{EXCUSE}')")
    return out


def _modules():
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield _module_name(path), path


@pytest.mark.parametrize("package", LAYERS)
def test_every_import_points_downstream_and_sits_at_the_top(package):
    found = [v for module, path in _modules() if module.split(".")[0] == package
             for v in violations(module, path.read_text(encoding="utf-8"))]
    assert found == []


def test_the_check_fails_on_an_upstream_import():
    assert violations("geo.units", "from features.units import build_units\n") == [
        "geo.units:1 imports features.units: geo is upstream of features"]
    assert violations("models.ranking", "import service.settings\n") == [
        "models.ranking:1 imports service.settings: models is upstream of service"]
    assert violations("features.sources.ingest", "from features.build import FeatureBuilder\n") == [
        "features.sources.ingest:1 imports features.build: features.sources is upstream of the rest of features"]


def test_the_check_fails_on_a_hidden_import_unless_it_says_why():
    hidden = "def f():\n    from geo.crs import WORKING_CRS\n"
    assert violations("models.x", hidden) == [
        f"models.x:2 imports geo.crs inside a function (say why with '{EXCUSE}')"]
    assert violations("models.x", hidden.replace("CRS\n", f"CRS  {EXCUSE} optional\n")) == []


def test_downstream_and_third_party_imports_pass():
    source = "import numpy\nfrom geo.crs import WORKING_CRS\nfrom models.registry import load_model\n"
    assert violations("reports.model_card", source) == []


def test_every_package_is_found():
    found = {module.split(".")[0] for module, _ in _modules()}
    assert found == set(LAYERS)
