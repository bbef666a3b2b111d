"""The one-way house: each top-level package is one stage, and imports only point downstream.

``service -> reports -> models -> features -> sources -> geo``: a module may import its own
package and the packages after it in that chain, never one before it (``sources`` is ingest
and the demo generator: raw files in, a store out). Our own modules are imported at the top
of a file (an import inside a function hides a loop), except where the line says why with
``# import here:``. Relative imports and ``importlib.import_module("...")`` count as imports,
and no chain of imports between our modules may come back to where it started.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("geo", "sources", "features", "models", "reports", "service")
"""Downstream first: a package may import the ones before it in this tuple, and itself."""
EXCUSE = "# import here:"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _own(name: str) -> bool:
    return name.split(".")[0] in LAYERS


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name of a (possibly relative) ``from ... import`` in ``module``."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*base, node.module] if node.module else base)


def _dynamic(node: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x")`` or ``__import__("x")``, if a literal."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called in ("import_module", "__import__") and node.args \
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


def imports(module: str, tree: ast.Module, is_package: bool = False) -> list[tuple[ast.AST, str]]:
    """Every import in ``tree`` as ``(node, absolute module name)``, ours and others'."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            found += [(node, base)] + [(node, f"{base}.{a.name}") for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Call) and (name := _dynamic(node)):
            found.append((node, name))
    return found


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """Every import in ``source`` (the text of ``module``) that breaks the house rules."""
    tree = ast.parse(source)
    lines = source.splitlines()
    top = {id(node) for node in tree.body}
    here = module.split(".")[0]
    out = []
    for node, name in imports(module, tree, is_package):
        if not _own(name) or (isinstance(node, ast.ImportFrom) and name != _absolute(module, is_package, node)):
            continue  # names imported from a module are judged with the module
        there = name.split(".")[0]
        where = f"{module}:{node.lineno} imports {name}"
        if LAYERS.index(there) > LAYERS.index(here):
            out.append(f"{where}: {here} is upstream of {there}")
        hidden = id(node) not in top or isinstance(node, ast.Call)
        if hidden and EXCUSE not in lines[node.lineno - 1]:
            out.append(f"{where} inside a function (say why with '{EXCUSE}')")
    return out


def _modules():
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield _module_name(path), path


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> our modules it imports, from ``{module: (source, is_package)}``."""
    graph = {}
    for module, (source, is_package) in sources.items():
        by_node: dict[int, set[str]] = {}
        for node, name in imports(module, ast.parse(source), is_package):
            if name in sources:
                by_node.setdefault(id(node), set()).add(name)
        # `from package import submodule` needs the submodule, not the package's __init__
        targets = set().union(*[names - {n for n in names if any(m.startswith(n + ".") for m in names)}
                                for names in by_node.values()])
        graph[module] = targets - {module}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in ``graph`` (empty when there is none)."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return []


@pytest.mark.parametrize("package", LAYERS)
def test_every_import_points_downstream_and_sits_at_the_top(package):
    found = [v for module, path in _modules() if module.split(".")[0] == package
             for v in violations(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")]
    assert found == []


def test_no_import_cycle():
    sources = {module: (path.read_text(encoding="utf-8"), path.name == "__init__.py") for module, path in _modules()}
    assert cycle(import_graph(sources)) == []


def test_the_check_fails_on_an_upstream_import():
    assert violations("geo.units", "from features.units import build_units\n") == [
        "geo.units:1 imports features.units: geo is upstream of features"]
    assert violations("models.ranking", "import service.settings\n") == [
        "models.ranking:1 imports service.settings: models is upstream of service"]
    assert violations("sources.ingest", "from features.build import FeatureBuilder\n") == [
        "sources.ingest:1 imports features.build: sources is upstream of features"]


def test_the_check_fails_on_a_relative_upstream_import():
    assert violations("sources.loaders.areas", "from ...features.build import FeatureBuilder\n") == [
        "sources.loaders.areas:1 imports features.build: sources is upstream of features"]
    assert violations("sources.loaders", "from ..readers import DataError\n", is_package=True) == []


def test_the_check_fails_on_importlib():
    source = "import importlib\nMOD = importlib.import_module('service.settings')\n"
    assert violations("models.x", source) == [
        "models.x:2 imports service.settings: models is upstream of service",
        f"models.x:2 imports service.settings inside a function (say why with '{EXCUSE}')"]


def test_the_check_fails_on_a_cycle():
    sources = {"models.a": ("from models.b import f\n", False), "models.b": ("from . import a\n", False),
               "models.c": ("import models.a\n", False)}
    found = cycle(import_graph(sources))
    assert set(found) == {"models.a", "models.b"}
    assert cycle(import_graph({**sources, "models.b": ("", False)})) == []


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
