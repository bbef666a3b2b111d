"""GDAL's OGC API - Features client (through pyogrio), as QGIS uses it: Basic auth, British National Grid.

The server runs as ``svrisk serve`` in a child process: pyogrio keeps the GIL while GDAL
fetches, so a server thread in this process could not answer.
"""

from __future__ import annotations

import pytest
from live_server import cli_server, free_port

pyogrio = pytest.importorskip("pyogrio")


@pytest.fixture(scope="module")
def server(api_settings, tmp_path_factory):
    if "OAPIF" not in pyogrio.list_drivers():
        pytest.skip("this GDAL has no OAPIF driver")
    log = tmp_path_factory.mktemp("oapif") / "serve.log"
    with cli_server(api_settings.out_dir, api_settings.service.keys_file, free_port(), log) as (base, _):
        yield base


@pytest.fixture
def basic_auth(api_keys):
    _, key_id, secret = api_keys["viewer"].split("_", 2)
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"{key_id}:{secret}",
                                     "GDAL_HTTP_TIMEOUT": "30"})
    yield
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_USERPWD": None,
                                     "GDAL_HTTP_TIMEOUT": None})


def test_gdal_lists_the_published_runs_collections(server, basic_auth):
    names = [name for name, _ in pyogrio.list_layers(f"OAPIF:{server}/ogc")]
    assert names == ["ranked_units", "hotspots", "emerging", "areas", "hubs", "youth_places"]


def test_gdal_reads_a_collection_in_british_national_grid(server, basic_auth):
    df = pyogrio.read_dataframe(f"OAPIF:{server}/ogc/collections/ranked_units")
    assert df.crs.to_epsg() == 27700  # from storageCrs: GDAL asks for crs=...EPSG/0/27700
    assert len(df) == 36
    # the 6 x 6 grid of 250 m cells from (522000, 190000), in metres
    assert [round(v) for v in df.total_bounds] == [522000, 190000, 523500, 191500]
    top = df.loc[df["rank"] == 1].iloc[0]
    assert top["unit_id"] == "G11" and top["expected"] == 12.0
    assert [round(v) for v in top.geometry.bounds] == [522250, 190250, 522500, 190500]


def test_gdal_without_credentials_is_refused(server):
    with pytest.raises(Exception, match="401"):
        pyogrio.read_dataframe(f"OAPIF:{server}/ogc/collections/ranked_units")
