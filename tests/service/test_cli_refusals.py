"""Fast refusals: a wrong --data, --cutoff or --units is one `error:` line and exit code 2,
given before the pipeline, the models or the geometry libraries are imported.

How fast is measured by ``benchmarks/cli_start.py``; these tests check what makes it fast
(nothing heavy imported, no progress line) and that each refusal says what was wrong.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.inputs import check_units
from service.settings import get_settings

HEAVY = ("geopandas", "sklearn", "xgboost", "libpysal", "fastapi")
COMMANDS = ("run", "train", "rank", "backtest", "hotspots", "features", "evaluate", "ingest")
runner = CliRunner()


def heavy_modules(code: str) -> list[str]:
    """The heavy top-level packages imported by ``code`` run in a fresh interpreter."""
    probe = (f"{code}\nimport sys, json\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bad_inputs(tmp_path) -> dict[str, tuple[list[str], str]]:
    (tmp_path / "empty").mkdir(exist_ok=True)
    (tmp_path / "file.csv").write_text("a,b\n")
    return {
        "missing folder": (["--data", str(tmp_path / "nowhere")], "nowhere not found"),
        "empty folder": (["--data", str(tmp_path / "empty")], "is empty: it holds no input files"),
        "a file": (["--data", str(tmp_path / "file.csv")], "is not a folder"),
        "month 13": (["--cutoff", "2024-13"], "cutoff: not a month: '2024-13'"),
        "not a month": (["--cutoff", "abc"], "cutoff: not a month: 'abc'"),
        "grid1": (["--units", "grid1"], "asks for 1 m cells"),
        "lsoa2099": (["--units", "lsoa2099"], "'lsoa2099' is not a unit set"),
    }


def arguments(command: str, options: list[str]) -> list[str] | None:
    """The command line for ``command`` with ``options``, None where the command has no such option."""
    takes = {"ingest": {"--data"}, "evaluate": {"--data", "--units"}, "backtest": {"--data", "--units"}}
    if options[0] not in takes.get(command, {"--data", "--cutoff", "--units"}):
        return None
    required = {"evaluate": ["--area", "A1", "--start", "2018-01"], "features": ["--cutoff", "2018-01"]}
    return [command, *required.get(command, []), *options]  # the option tested comes last, so it wins


def test_importing_the_cli_imports_nothing_heavy():
    code = "import service.cli"
    assert heavy_modules(code) == []
    # the probe can fail: the pipeline does import them
    # (libpysal no longer: since issue 34 it is imported where the weights are built)
    assert set(heavy_modules("import service.pipeline")) >= {"geopandas", "sklearn"}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_refusal_is_one_line_exit_2_and_no_work(tmp_path, command):
    out = tmp_path / "out"
    for what, (options, message) in bad_inputs(tmp_path).items():
        args = arguments(command, options)
        if args is None:
            continue
        result = runner.invoke(app, args, env={"SVRISK_OUT_DIR": str(out)})
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, (what, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (what, lines)
    assert not out.exists()  # no demo borough, no store, no run


def test_the_refusals_come_before_any_heavy_import(tmp_path):
    bad = bad_inputs(tmp_path)
    calls = [arguments(c, o) for c in COMMANDS for o, _ in bad.values()]
    code = ("from typer.testing import CliRunner\nfrom service.cli import app\n"
            f"codes = [CliRunner().invoke(app, a, env={{'SVRISK_OUT_DIR': {str(tmp_path / 'out')!r}}}).exit_code "
            f"for a in {[c for c in calls if c]!r}]\n"
            "assert set(codes) == {2}, codes")
    assert heavy_modules(code) == []


def test_unit_set_names_known_before_any_data():
    s = get_settings()
    this_year = datetime.date.today().year
    for good in ("lsoa2011", "ward2022", f"ward{this_year}", "borough", "grid250", "grid62.5", "hex", "hex300"):
        assert check_units(good, s) == good
    for bad in (f"lsoa{this_year + 1}", "lsoa2099", "msoa2011", "ward22", "lsoa", "parish2020", "gridded"):
        with pytest.raises(ValueError, match=f"units: '{bad}' is not a unit set"):
            check_units(bad, s)


def test_evaluate_help_states_the_evaluation_defaults():
    import typer.main

    from models.interventions import DEFAULT_BUFFER_M, DEFAULT_PLACEBOS, DEFAULT_PRE_MONTHS

    command = typer.main.get_command(app).commands["evaluate"]  # the options as Click sees them
    helps = {p.opts[0]: p.help for p in command.params}
    assert helps["--buffer"].endswith(f"(default: {DEFAULT_BUFFER_M:g}).")
    assert helps["--pre-months"].endswith(f"(default: {DEFAULT_PRE_MONTHS}).")
    assert helps["--placebos"].endswith(f"(default: {DEFAULT_PLACEBOS}).")


@pytest.mark.parametrize("command", ("run", "train", "rank", "backtest", "hotspots", "features"))
def test_without_units_every_command_takes_the_settings_default(tmp_path, command):
    # A default the check refuses shows it was the one used: lsoa2011 written in a command would pass.
    env = {"SVRISK_OUT_DIR": str(tmp_path / "out"), "SVRISK_UNITS__DEFAULT": "lsoa2099"}
    result = runner.invoke(app, [command, *(["--cutoff", "2018-01"] if command == "features" else [])], env=env)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == ("error: units: 'lsoa2099' is not a unit set: a boundary edition is lsoa or "
                                     f"ward and its year (no later than {datetime.date.today().year}, e.g. "
                                     "lsoa2011, ward2022) or borough; cells are grid<metres> or hex<metres> "
                                     "(e.g. grid250, hex300), or grid / hex alone")
    assert not (tmp_path / "out").exists()


def test_the_units_help_names_every_published_boundary_edition():
    from geo.editions import BOUNDARY_EDITIONS

    result = runner.invoke(app, ["features", "--help"])
    text = " ".join(result.output.replace("│", " ").split())  # the help as one line, out of its box
    assert result.exit_code == 0
    assert f"--units <str> {', '.join(BOUNDARY_EDITIONS)}, grid<metres>" in text
    assert "(default: settings units.default)" in text
