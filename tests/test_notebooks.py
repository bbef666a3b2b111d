"""The analyst notebooks run end to end on the demo borough.

Each notebook is kept as a jupytext percent-format ``.py`` file; the test reads it
with jupytext, executes it with nbclient in the ``python3`` kernel of this
interpreter (``SVRISK_NOTEBOOK_DATA`` unset, so the notebook generates the demo
borough), fails on the first cell error with the cell's traceback, and checks
that the cells tagged for the key outputs showed them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "python3"
INSTALL_HINT = ".venv/bin/python -m ipykernel install --sys-prefix"
# jupyter_client replaces these argv[0] values by the interpreter that launches the kernel
PYTHON_NAMES = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}

pytestmark = pytest.mark.slow


def check_kernel() -> None:
    """Fail with a clear message unless the ``python3`` kernel runs this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        pytest.fail(f"no Jupyter kernel {KERNEL!r} is installed; run `{INSTALL_HINT}`")
    exe = spec.argv[0] if spec.argv else ""
    if exe not in PYTHON_NAMES and Path(exe).absolute() != Path(sys.executable).absolute():
        pytest.fail(
            f"Jupyter kernel {KERNEL!r} ({spec.resource_dir}) runs {exe!r}, not this interpreter "
            f"{sys.executable!r}, so it may not see the svrisk packages; run `{INSTALL_HINT}`"
        )


def execute(name: str, tmp_path: Path, monkeypatch):
    """Read ``notebooks/<name>`` with jupytext and execute it; fail on a cell error."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    check_kernel()
    monkeypatch.delenv("SVRISK_NOTEBOOK_DATA", raising=False)  # the demo borough
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's temporary folders land here
    nb = jupytext.read(NOTEBOOKS / name)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"notebooks/{name}: a cell raised an error\n{exc}")
    return nb


def tagged(nb, tag: str) -> list:
    cells = [c for c in nb.cells if c.cell_type == "code" and tag in c.get("metadata", {}).get("tags", [])]
    assert cells, f"no code cell tagged {tag!r}"
    return cells


def text(nb, tag: str) -> str:
    """Everything the cells tagged ``tag`` printed or displayed, as text."""
    parts = []
    for cell in tagged(nb, tag):
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts += [str(out.data.get(k, "")) for k in ("text/plain", "text/html", "text/markdown")]
    return "\n".join(parts)


def images(nb, tag: str) -> int:
    return sum("image/png" in out.get("data", {}) for c in tagged(nb, tag) for out in c.get("outputs", []))


def test_notebooks_are_percent_scripts_without_paired_ipynb():
    import jupytext

    for name in ("01_explore.py", "02_retrain_backtest.py"):
        nb = jupytext.read(NOTEBOOKS / name)
        assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
        assert nb.metadata["kernelspec"]["name"] == KERNEL
        assert tagged(nb, "parameters")
    assert not list(NOTEBOOKS.glob("*.ipynb")), "commit the .py form only"


def test_explore_notebook_runs_on_the_demo(tmp_path, monkeypatch):
    nb = execute("01_explore.py", tmp_path, monkeypatch)

    ingest = text(nb, "ingest")
    assert "reconciled: True" in ingest
    assert "policeuk_street" in ingest
    # the demo writes stop and search rows with blank coordinates, and one sparse month
    assert "missing coordinates" in text(nb, "rejects")
    assert "thin_months" in text(nb, "quality")
    trends = text(nb, "trends")
    for group in ("violence", "robbery", "asb", "burglary"):
        assert group in trends
    figures = text(nb, "figures")
    assert "rate_per_1000" in figures and "serious violence" in figures and "change_pct" in figures
    for tag in ("rates_lsoa", "rates_ward"):
        assert "sv_rate_eb" in text(nb, tag)
    assert "E019" in text(nb, "rates_lsoa")  # demo LSOA codes
    assert "E059" in text(nb, "rates_ward")  # demo ward codes
    assert images(nb, "map") == 1
    assert "Persistent Hot Spot" in text(nb, "emerging")  # the demo plants persistent hot spots


def test_retrain_notebook_runs_on_the_demo(tmp_path, monkeypatch):
    from models.backtest import default_methods

    nb = execute("02_retrain_backtest.py", tmp_path, monkeypatch)

    table = text(nb, "backtest")
    for method in default_methods():
        assert method in table, f"method {method!r} missing from the backtest table"
    for slice_ in ("1% area", "5% area", "10% area", "top 10"):
        assert slice_ in table
    compare = text(nb, "compare")
    assert "pei" in compare and "xgb" in compare and "count_12m" in compare
    train = text(nb, "train")
    assert "version: v0001" in train
    assert "## Backtest" in train and "## Fairness profile" in train  # the model card
    ranking = text(nb, "ranking")
    assert "reason_1" in ranking and "the borough median" in ranking  # reasons quote values against the median
    assert "gi_class" in ranking and "emerging" in ranking
    assert images(nb, "shap") == 1
    assert "rate_ratio" in text(nb, "glm")
    assert "IMD" in text(nb, "fairness")
    assert "A1" in text(nb, "deployment")
