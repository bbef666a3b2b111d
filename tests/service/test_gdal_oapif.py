"""GDAL's OGC API - Features client (through pyogrio), as QGIS uses it: Basic auth, British National Grid.

The server runs as ``svrisk serve`` in a child process: pyogrio keeps the GIL while GDAL
fetches, so a server thread in this process could not answer.

Clients that cannot negotiate a CRS: GDAL before 3.7 (Debian 12's ``gdal-bin`` is 3.6.2)
reads no ``storageCrs`` and always asks for CRS84, as QGIS 3.22 does. The system GDAL's
``ogrinfo``/``ogr2ogr``, when installed, check that such a client gets what the README says:
EPSG:4326 that is true (not metres labelled degrees), and metres with ``-t_srs EPSG:27700``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import shapely
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


def system_gdal() -> tuple[str, str, tuple[int, int]]:
    """The system's ``ogrinfo`` and ``ogr2ogr`` (not pyogrio's GDAL) and their version."""
    ogrinfo, ogr2ogr = shutil.which("ogrinfo"), shutil.which("ogr2ogr")
    if not (ogrinfo and ogr2ogr):
        pytest.skip("no system GDAL to play an older client (Debian: apt-get install gdal-bin, GDAL 3.6)")
    found = re.search(r"GDAL (\d+)\.(\d+)", subprocess.run([ogrinfo, "--version"], capture_output=True,
                                                              text=True, check=True).stdout)
    return ogrinfo, ogr2ogr, (int(found.group(1)), int(found.group(2)))


def basic_env(api_keys) -> dict:
    _, key_id, secret = api_keys["viewer"].split("_", 2)
    return {**os.environ, "GDAL_HTTP_AUTH": "BASIC", "GDAL_HTTP_USERPWD": f"{key_id}:{secret}",
            "GDAL_HTTP_TIMEOUT": "30"}


def test_the_system_gdal_gets_the_crs_the_readme_names(server, api_keys):
    ogrinfo, _, version = system_gdal()
    out = subprocess.run([ogrinfo, "-ro", "-so", "-al", f"OAPIF:{server}/ogc/collections/ranked_units"],
                         capture_output=True, text=True, check=True, env=basic_env(api_keys)).stdout
    wkt = out.split("Layer SRS WKT:", 1)[1].split("Data axis", 1)[0]
    epsg = int(re.findall(r'ID\["EPSG",(\d+)\]', wkt)[-1])
    lo_x, lo_y, hi_x, hi_y = map(float, re.search(r"Extent: \(([-\d.]+), ([-\d.]+)\) - \(([-\d.]+), ([-\d.]+)\)",
                                                   out).groups())
    if version < (3, 7):  # no Part 2: CRS84, labelled and true (degrees around Colindale, not metres)
        assert epsg == 4326, out
        assert -0.25 < lo_x < hi_x < -0.21 and 51.59 < lo_y < hi_y < 51.62, out
    else:  # Part 2: storageCrs
        assert epsg == 27700, out
        assert [round(v) for v in (lo_x, lo_y, hi_x, hi_y)] == [522000, 190000, 523500, 191500], out


def test_an_older_client_gets_metres_by_reprojecting_what_it_reads(server, api_keys, tmp_path):
    # the README's recipe for GDAL 3.6: ogr2ogr -t_srs EPSG:27700 (the round trip costs under a centimetre)
    _, ogr2ogr, _ = system_gdal()
    out = subprocess.run([ogr2ogr, "-t_srs", "EPSG:27700", "-f", "CSV", "/vsistdout/",
                          f"OAPIF:{server}/ogc/collections/ranked_units", "-lco", "GEOMETRY=AS_WKT",
                          "-select", "unit_id,rank", "-where", "rank = 1"],
                         capture_output=True, text=True, check=True, env=basic_env(api_keys)).stdout
    wkt, unit_id = re.search(r'"(POLYGON[^"]+)",(\w+),', out).groups()
    assert unit_id == "G11"
    bounds = shapely.from_wkt(wkt).bounds
    assert max(abs(a - b) for a, b in zip(bounds, (522250, 190250, 522500, 190500), strict=True)) < 0.01
