"""The data commands through the CLI: counts printed, files written, user errors as one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
from ingest_fixtures import STREET_HEADER, street_row, write_boundaries, write_csv
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def fixture_data(tmp_path):
    data = tmp_path / "data"
    write_boundaries(data / "boundaries")
    # 12 months of 2017 (a feature matrix needs at least 9 complete months before its cutoff)
    rows = [street_row(f"{i:064x}", f"2017-{1 + i % 12:02d}", 530100 + 150 * (i % 12), 180200 + 60 * (i % 12))
            for i in range(24)]
    rows.append(street_row("f" * 64, "2017-01", 545000, 195000))  # far outside: rejected
    write_csv(data / "crime" / "2017-01-fixture-street.csv", STREET_HEADER, rows)
    return data


def test_ingest_prints_counts_and_writes_the_report(tmp_path):
    data = fixture_data(tmp_path)
    result = runner.invoke(app, ["ingest", "--data", str(data), "--out", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.endswith("outside the study area"))
    assert re.search(r"\s25\s+24\s+1\s+outside the study area$", line), line
    report = json.loads((tmp_path / "store" / "ingest_report.json").read_text())
    assert report["totals"]["rejected"] == 1 and report["reconciled"]


def test_ingest_loads_no_features_models_or_reports(tmp_path):
    """`svrisk ingest` imports the loaders only: scikit-learn, scipy, libpysal and jinja2 (with the
    features and models that need them, through ``service.pipeline``) took ~200 MB of its peak memory."""
    data = fixture_data(tmp_path)
    heavy = {"sklearn", "scipy", "libpysal", "jinja2", "xgboost", "models", "service.pipeline", "features.scale"}
    probe = ("import json, sys\nfrom typer.testing import CliRunner\nfrom service.cli import app\n"
             f"result = CliRunner().invoke(app, ['ingest', '--data', {str(data)!r}, '--out', {str(tmp_path / 'store')!r}])\n"
             "print(json.dumps([result.exit_code, result.output, sorted(sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    exit_code, output, loaded = json.loads(out.strip().splitlines()[-1])
    assert exit_code == 0, output
    assert "store written to" in output  # the ingest ran to the end, not only its imports
    assert sorted(heavy & ({m.split(".")[0] for m in loaded} | set(loaded))) == []
    assert {"pandas", "sources"} <= set(loaded)  # the probe sees what the run imported


def test_ingest_of_a_missing_folder_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["ingest", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert result.output.startswith("error: data folder ") and result.output.rstrip().endswith("nope not found")
    assert "Traceback" not in result.output


def test_features_writes_a_matrix_with_one_row_per_unit(tmp_path):
    data = fixture_data(tmp_path)
    runner.invoke(app, ["ingest", "--data", str(data), "--out", str(tmp_path / "store")])
    result = runner.invoke(app, ["features", "--units", "lsoa2011", "--cutoff", "2017-12",
                                 "--store", str(tmp_path / "store"), "--out", str(tmp_path / "feat")])
    assert result.exit_code == 0, result.output
    matrix = pd.read_parquet(tmp_path / "feat" / "features_lsoa2011_2017-12.parquet")
    assert len(matrix) == 2
    assert (tmp_path / "feat" / "dictionary.csv").is_file()


def test_features_on_the_dask_engine_equal_the_local_engine(tmp_path):
    pytest.importorskip("distributed", reason="the Dask engine needs the `scale` extra (pip install -e .[scale])")
    data = fixture_data(tmp_path)
    runner.invoke(app, ["ingest", "--data", str(data), "--out", str(tmp_path / "store")])
    matrices = {}
    for engine in ("local", "dask"):
        out = tmp_path / engine
        result = runner.invoke(app, ["features", "--units", "grid250", "--cutoff", "2017-12", "--store",
                                     str(tmp_path / "store"), "--out", str(out)], env={"SVRISK_ENGINE": engine})
        assert result.exit_code == 0, result.output
        matrices[engine] = pd.read_parquet(out / "features_grid250_2017-12.parquet")
    local, dask = matrices["local"], matrices["dask"]
    assert local["cnt_violence_3m"].sum() > 0
    pd.testing.assert_frame_equal(local.drop(columns="geometry"), dask.drop(columns="geometry"), rtol=1e-9)


def test_demo_command_writes_several_boroughs_that_ingest(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--boroughs", "2", "--years", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["ingest", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "s" / "ingest_report.json").read_text())
    borough = pd.read_parquet(tmp_path / "s" / "units_borough.parquet")
    assert len(borough) == 2 and report["reconciled"]


def test_hotspots_on_hexagons_prints_the_diagnostics(real_store, tmp_path):
    out = tmp_path / "hs"
    result = runner.invoke(app, ["hotspots", "--store", str(real_store), "--units", "hex", "--cutoff", "2018-07",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "neighbourhood: fixed distance band" in result.output
    assert re.search(r"neighbours min \d+ / mean [\d.]+ / max \d+", result.output)
    assert re.search(r"diagnostics: global Moran's I [\d.]+ \(z [\d.]+, p [<\d.]+\), \d+ units, smallest q", result.output)
    meta = json.loads((out / "hotspots.json").read_text())
    assert meta["unit_set"]["cell_shape"] == "hexagon" and "distinct event locations" in meta["unit_set"]["cell_size_rule"]
    table = pd.read_parquet(out / "hotspots.parquet")
    assert table["unit_id"].str.startswith(f"h{meta['unit_set']['cell_size_m']:.0f}_").all()
    assert meta["diagnostics"]["n_units"] == len(table)


def test_hotspots_options_and_their_errors(real_store, tmp_path):
    result = runner.invoke(app, ["hotspots", "--store", str(real_store), "--cutoff", "2018-07", "--out",
                                 str(tmp_path / "q"), "--neighbourhood", "band", "--band", "1500"])
    assert result.exit_code == 0, result.output
    assert "fixed distance band 1,500 m (a 1,500 m band was given" in result.output
    bad = runner.invoke(app, ["hotspots", "--store", str(real_store), "--cutoff", "2018-07", "--out",
                              str(tmp_path / "x"), "--neighbourhood", "band"])
    assert bad.exit_code == 2 and "needs band_m" in bad.output and "Traceback" not in bad.output


def test_features_accept_hexagons(real_store, tmp_path):
    result = runner.invoke(app, ["features", "--store", str(real_store), "--units", "hex400", "--cutoff", "2018-01",
                                 "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    frames = list((tmp_path / "f").glob("*.parquet"))
    assert frames and pd.read_parquet(frames[0])["unit_id"].str.startswith("h400_").all()


def test_run_refuses_a_tile_option_that_is_not_a_url_template_before_any_work(tmp_path):
    result = runner.invoke(app, ["run", "--data", str(tmp_path / "nothing"), "--tiles", "https://maps.example/x.png"])
    assert result.exit_code == 2
    assert "tile URL template" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "nothing").exists()
